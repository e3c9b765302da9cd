"""goid, goentry, goelapsed and params at return, on real goroutines.

tests/programs/goroutines runs N goroutines through a recursion whose 1 KB
frames make the runtime copy the goroutine stack, with a known sleep at the
bottom. Every call's return must see its own id and level, a goelapsed of
at least its sleep, and its goroutine's own goid.
"""

import re

import pytest

from conftest import gobt, no_traceback

PROGRAM = "tests/programs/goroutines"


def depth(i):
    return 1 + i % 24


def sleep_ns(i):
    return (1 + i % 5) * 1_000_000


def maps(stdout, name):
    """{key tuple: value} for bpftrace's printed map @name."""
    out = {}
    for key, value in re.findall(r"^@%s\[(.+)\]: (-?\d+)$" % name, stdout, re.M):
        out[tuple(int(k) for k in key.split(", "))] = int(value)
    return out


def scalar(stdout, name):
    m = re.search(r"^@%s: (\d+)$" % name, stdout, re.M)
    assert m, f"@{name} missing in:\n{stdout[-2000:]}"
    return int(m.group(1))


def run_traced(binary, n, tmp_path, extra=""):
    script = tmp_path / "g.gbt"
    script.write_text(
        f"goret:{binary}:main.recurse\n"
        "{\n"
        "  @calls[goarg(id), goarg(level)] = count();\n"
        "  @el[goarg(id), goarg(level)] = min(goelapsed);\n"
        "  @elmax[goarg(id), goarg(level)] = max(goelapsed);\n"
        "  @gid[goarg(id), goid] = count();\n"
        "}\n"
        f"goentry:{binary}:main.recurse {{ @entries = count(); @entry_gid[goarg(id), goid] = count(); }}\n"
        f"uprobe:{binary}:main.recurse {{ @raw = count(); }}\n" + extra
    )
    proc = gobt(str(script), "-c", f"{binary} {n}", timeout=300,
                env={"BPFTRACE_MAP_KEYS_MAX": "65536"})
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "fatal error" not in proc.stdout + proc.stderr
    return proc.stdout


def own_goids(stdout):
    return {int(i): int(g) for i, g in re.findall(r"^G (\d+) (\d+)$", stdout, re.M)}


@pytest.mark.parametrize("go", ["go1.19", "newest"])
def test_every_return_matches_its_own_call(go, go_build, bpf, tmp_path):
    n = 1000
    binary = go_build(go, PROGRAM)
    out = run_traced(binary, n, tmp_path)

    calls = int(re.search(r"^calls (\d+)$", out, re.M).group(1))
    assert calls == sum(depth(i) + 1 for i in range(n))
    seen = maps(out, "calls")
    # One goret per call, each with its own (id, level): nothing lost,
    # nothing doubled, nothing mixed up between goroutines.
    assert seen == {(i, level): 1 for i in range(n) for level in range(depth(i) + 1)}
    assert scalar(out, "entries") == calls
    # The point of goentry: a uprobe at offset 0 fires again after each
    # stack growth.
    assert scalar(out, "raw") > calls

    low, high = maps(out, "el"), maps(out, "elmax")
    bad = [(k, v) for k, v in low.items() if v < sleep_ns(k[0])]
    assert not bad, f"goelapsed below the known sleep: {bad[:5]}"
    assert all(v < sleep_ns(k[0]) + 10_000_000_000 for k, v in high.items())

    goids = own_goids(out)
    assert len(goids) == n
    assert maps(out, "gid") == {(i, goids[i]): depth(i) + 1 for i in range(n)}


@pytest.mark.parametrize("go", ["go1.15", "go1.19", "go1.23", "newest"])
def test_goid_is_the_goroutines_own(go, go_build, bpf, tmp_path, toolchains):
    binary = go_build(go, PROGRAM)
    n = 40
    out = run_traced(binary, n, tmp_path)
    goids = own_goids(out)
    assert len(goids) == n
    assert maps(out, "entry_gid") == {(i, goids[i]): depth(i) + 1 for i in range(n)}
    assert maps(out, "gid") == {(i, goids[i]): depth(i) + 1 for i in range(n)}


def test_go123_keeps_goid_at_its_own_offset(go_build, toolchains):
    # The reason 1.23 is in the list above: runtime.g.goid moved there.
    from gobt.binary.gobinary import GoBinary
    from gobt.rewrite.goroutine import goroutine_of

    offsets = {go: goroutine_of(GoBinary(go_build(go, PROGRAM))).goid_offset for go in ("go1.19", "go1.23")}
    assert offsets["go1.23"] != offsets["go1.19"], offsets


@pytest.mark.parametrize("go", ["go1.19", "newest"])
def test_goelapsed_on_stacker_does_not_crash(go, go_build, bpf, tmp_path):
    stacker = go_build(go, "examples/stacker", gcflags="-l")
    script = tmp_path / "s.gbt"
    script.write_text(
        f'goret:{stacker}:main.stacker {{ printf("%s took %d ns, count %d\\n", '
        'retval, goelapsed, goarg(count)); }\n'
    )
    proc = gobt(str(script), "-c", f"{stacker} 1000000")
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    assert "fatal error" not in proc.stdout + proc.stderr
    m = re.search(r"^hello: 999999000000 took (\d+) ns, count 1000000$", proc.stdout, re.M)
    assert m, proc.stdout
    assert int(m.group(1)) > 1_000_000  # a million Sprintf calls take more than 1 ms
