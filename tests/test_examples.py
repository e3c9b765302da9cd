"""The examples, run exactly as their headers say, with real assertions.

Each examples/X/ holds a Go program and X.gbt, whose header gives the
command: build the program as ./X in the folder, then `gobt X.gbt -c ./X`
from there (the scripts name the binary ./X). Each test does that in a
temporary folder, with Go 1.15 (the go.mod's version, and the stack ABI),
Go 1.19 and the newest Go (the register ABI), and checks what bpftrace
printed against what the program says it did: counts exactly equal, and
each latency at least what the program slept.
"""

import glob
import os
import re
import shlex
import shutil
import subprocess

import pytest

from conftest import GOBT_CMD, ON_TRIXIE, gobt, no_traceback
from gobt.run.messages import _memlock_is_moot
from toolchains import ROOT

GOS = ["go1.15", "go1.19", "newest"]
EXAMPLES = os.path.join(ROOT, "examples")


def run_example(name, go, go_build, tmp_path, args="", gcflags="-l"):
    """Build examples/NAME, run `gobt NAME.gbt -c './NAME ARGS'` in tmp_path."""
    binary = go_build(go, f"examples/{name}", gcflags=gcflags)
    shutil.copy(binary, tmp_path / name)
    shutil.copy(os.path.join(EXAMPLES, name, f"{name}.gbt"), tmp_path / f"{name}.gbt")
    command = f"./{name} {args}".strip()
    proc = gobt(f"{name}.gbt", "-c", command, cwd=tmp_path, timeout=60)
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "fatal error" not in proc.stdout + proc.stderr, proc.stdout[-3000:]
    assert "panic:" not in proc.stdout + proc.stderr, proc.stdout[-3000:]
    return proc.stdout


def counts(stdout, name):
    """{key: value} for a printed map @name[key]: value (key kept as text)."""
    return {k: int(v) for k, v in re.findall(r"^@%s\[(.*)\]: (\d+)$" % re.escape(name), stdout, re.M)}


def _bound(text):
    m = re.fullmatch(r"(-?\d+)([KMGTP]?)", text.strip())
    assert m, text
    return int(m.group(1)) * 1024 ** " KMGTP".index(m.group(2) or " ")


def hists(stdout, name):
    """{key: [(low, high, count), ...]} for printed hist() maps @name[key]."""
    out = {}
    for key, body in re.findall(r"^@%s\[(.*)\]: ?\n((?:[\[(].*\n?)*)" % re.escape(name), stdout, re.M):
        buckets = []
        for line in body.splitlines():
            m = re.match(r"^\[(\S+), (\S+)\)\s+(\d+) \|", line)
            if m:
                buckets.append((_bound(m.group(1)), _bound(m.group(2)), int(m.group(3))))
                continue
            m = re.match(r"^\[(\S+)\]\s+(\d+) \|", line)  # [0]: a single value
            assert m, f"unexpected hist line {line!r}"
            buckets.append((_bound(m.group(1)), _bound(m.group(1)) + 1, int(m.group(2))))
        out[key] = buckets
    return out


def total(buckets):
    return sum(c for _, _, c in buckets)


def lowest(buckets):
    """The low bound of the first bucket with a sample: every sample is >= it."""
    return min(lo for lo, _, c in buckets if c)


@pytest.mark.parametrize("go", GOS)
def test_stacker(go, go_build, bpf, tmp_path):
    out = run_example("stacker", go, go_build, tmp_path, args="1000000")
    assert re.findall(r"^hello: \d+$", out, re.M) == ["hello: 999999000000"], out
    assert re.findall(r"^main.stacker returned .*$", out, re.M) == [
        'main.stacker returned "hello: 999999000000"'
    ], out


@pytest.mark.parametrize("go", GOS)
def test_swapper(go, go_build, bpf, tmp_path):
    out = run_example("swapper", go, go_build, tmp_path, args="hello go")
    assert re.findall(r"^go hello$", out, re.M) == ["go hello"], out
    assert re.findall(r"^swapping .*$", out, re.M) == ['swapping "hello" and "go"'], out
    assert re.findall(r"^results: .*$", out, re.M) == ['results: "go" and "hello"'], out


@pytest.mark.parametrize("go", GOS)
def test_httpserver(go, go_build, bpf, tmp_path):
    # ServeHTTP is called through an interface: never inlined, no -l.
    out = run_example("httpserver", go, go_build, tmp_path, args="24", gcflags="")
    assert re.search(r"^listening on http://127\.0\.0\.1:\d+$", out, re.M), out
    sent = {p: int(n) for p, n in re.findall(r"^requests (\S+) (\d+)$", out, re.M)}
    assert sent == {"/": 24, "/search": 24, "/report": 24, "/missing": 24}, out

    us = hists(out, "us")
    assert set(us) == set(sent), out
    # One sample per request, on each path. bpftrace 0.23 on two CPUs can
    # lose a first insert of a new key (map_update_elem: EEXIST, retcode
    # -17), and says so: each such warning may account for one sample.
    counted = {p: total(b) for p, b in us.items()}
    missing = sum(sent[p] - counted[p] for p in sent)
    assert all(counted[p] <= sent[p] for p in sent), out
    assert missing <= out.count("map_update_elem, retcode: -17"), out
    # No request took less than its handler slept (2 ms, 10 ms): goelapsed
    # measured each call from its own entry, even with 4 clients at once.
    assert lowest(us["/search"]) >= 1024, us["/search"]
    assert lowest(us["/report"]) >= 8192, us["/report"]
    # The fast paths are fast: most of their requests under 1 ms.
    for path in ("/", "/missing"):
        fast = sum(c for lo, hi, c in us[path] if hi <= 1024)
        assert fast > sent[path] // 2, (path, us[path])


@pytest.mark.parametrize("go", GOS)
def test_errors(go, go_build, bpf, tmp_path):
    rounds = 50
    out = run_example("errors", go, go_build, tmp_path, args=str(rounds))
    m = re.search(r"^validated (\d+) names: (\d+) nil, (\d+) errors$", out, re.M)
    assert m, out
    names, nil, errors = map(int, m.groups())
    assert (names, nil, errors) == (9 * rounds, 5 * rounds, 4 * rounds), out
    # Each error by its type as %T spells it and its text as the program's
    # Error() does; the program's own type by its name.
    assert counts(out, "") == {"<nil>, <nil>": nil, "*errors.errorString, empty name": rounds,
                               "*errors.errorString, name too long: maximilian": rounds,
                               "*errors.errorString, name too long: bartholomew": rounds,
                               "*main.caseError, *main.caseError": rounds}, out


@pytest.mark.parametrize("go", GOS)
def test_handlererrors(go, go_build, bpf, tmp_path):
    out = run_example("handlererrors", go, go_build, tmp_path)
    calls = {m[0]: m[1] for m in re.findall(r'^\d+> main\.\(\*server\)\.lookup\(s=0x[0-9a-f]+, id="([^"]*)"\) '
                                           r"=> \((.*)\) \d+\.\d{3}us$", out, re.M)}
    assert set(calls) == {"7", "42", "x4", "-1"}, out
    assert calls["7"] == "5, <nil>"
    # Each error as the handler itself logged it. On bpftrace 0.17 a string
    # keeps 63 bytes, and a wrapped error beside another string in a printf
    # is goerr's one-string form: the innermost message, which ends the text.
    logged = dict(re.findall(r"^ERR /item/(\S+): (.*)$", out, re.M))
    assert set(logged) == {"42", "x4", "-1"}, out
    for item, text in logged.items():
        shown = calls[item][len("0, "):]
        if not ON_TRIXIE and shown != text:
            assert shown == text[:63] or (text.endswith(": " + shown) and item == "x4"), (item, shown, text)
        else:
            assert shown == text, (item, shown, text)


@pytest.mark.parametrize("go", GOS)
def test_latency(go, go_build, bpf, tmp_path):
    out = run_example("latency", go, go_build, tmp_path, args="8")
    looked = {k: int(n) for k, n in re.findall(r"^looked up (\S+) (\d+) times$", out, re.M)}
    assert looked == {"user:1": 16, "user:2": 8, "order:7": 8, "order:8": 8, "report:2024": 8}, out

    stats = {
        k: (int(c), int(a), int(t))
        for k, c, a, t in re.findall(r"^@ns\[(.*)\]: count (\d+), average (\d+), total (\d+)$", out, re.M)
    }
    assert {k: c for k, (c, _, _) in stats.items()} == looked, out
    for key, (c, avg, tot) in stats.items():
        if key.startswith("report:"):
            assert avg >= 5_000_000, (key, avg)
        elif key.startswith("order:"):
            assert avg >= 1_000_000, (key, avg)
        else:  # a cache hit: no sleep at all
            assert avg < 1_000_000, (key, avg)
    assert min(stats[k][1] for k in ("order:7", "order:8")) > max(stats[k][1] for k in ("user:1", "user:2"))

    us = hists(out, "us")
    assert {k: total(b) for k, b in us.items()} == looked, out
    assert lowest(us["report:2024"]) >= 4096, us["report:2024"]  # 5000 us is in [4K, 8K)
    assert lowest(us["order:7"]) >= 512 and lowest(us["order:8"]) >= 512  # 1000 us: [512, 1K)


@pytest.mark.parametrize("go", GOS)
def test_goroutines(go, go_build, bpf, tmp_path):
    jobs = 4000
    out = run_example("goroutines", go, go_build, tmp_path, args=str(jobs))
    workers = re.findall(r"^worker (\d) on goroutine (\d+) processed (\d+) jobs$", out, re.M)
    assert len(workers) == 4, out
    own = {gid: int(n) for _, gid, n in workers}
    assert len(own) == 4, "four workers, four goroutines"
    assert sum(own.values()) == jobs, out
    # Every goroutine that did work appears under its own goid, with exactly
    # its own count (a worker that got no job has no entry).
    assert counts(out, "jobs") == {g: n for g, n in own.items() if n}, out


# --- every example stays documented and runnable as documented -------------

def example_dirs():
    return sorted(d for d in glob.glob(os.path.join(EXAMPLES, "*")) if os.path.isdir(d))


def header(script):
    """The first comment block of a script, after an optional shebang."""
    text = open(script).read()
    if text.startswith("#!"):
        text = text.split("\n", 1)[1]
    text = text.lstrip()
    if text.startswith("/*"):
        return text[: text.index("*/")]
    lines = []
    for line in text.splitlines():
        if not line.startswith("//"):
            break
        lines.append(line)
    return "\n".join(lines)


def test_examples_are_all_tested():
    names = {os.path.basename(d) for d in example_dirs()}
    tested = {n[len("test_"):] for n in globals() if n.startswith("test_")}
    assert names <= tested, f"examples without a test here: {sorted(names - tested)}"


@pytest.mark.parametrize("example", [os.path.basename(d) for d in example_dirs()])
def test_example_is_documented(example):
    folder = os.path.join(EXAMPLES, example)
    for f in ("main.go", "go.mod"):
        assert os.path.exists(os.path.join(folder, f)), f"examples/{example}/{f} is missing"
    script = os.path.join(folder, f"{example}.gbt")
    assert os.path.exists(script), f"examples/{example} needs {example}.gbt"
    head = header(script)
    assert head, f"{example}.gbt starts with no comment block"
    assert "USAGE" in head, f"{example}.gbt: the header must give USAGE"
    assert re.search(r"\boutput\b", head, re.I), f"{example}.gbt: the header must show sample output"
    assert re.search(r"gobt \S*%s\.gbt -c '?\./%s\b" % (example, example), head), (
        f"{example}.gbt: USAGE must run `gobt {example}.gbt -c ./{example}`"
    )
    assert re.search(r"go build .*-o %s \." % example, head), f"{example}.gbt: USAGE must build ./{example}"
    # The scripts name the binary relative to the example folder.
    body = open(script).read()[len(head):]
    assert re.search(r":\./%s:" % example, body), f"{example}.gbt must probe ./{example}"
    # `./X.gbt -c ./X` as the header's shebang promises: executable, run by env.
    assert open(script).readline() == "#!/usr/bin/env gobt\n", f"{example}.gbt must start with #!/usr/bin/env gobt"
    assert os.access(script, os.X_OK), f"{example}.gbt must be executable (git mode 755)"


def test_example_runs_through_its_shebang(go_build, bpf, tmp_path):
    # The script itself is the command: the kernel reads its shebang, env
    # finds `gobt` on PATH. That gobt is this checkout's (the tests' gobt
    # command), never whatever is installed in /usr/local/bin.
    binary = go_build("go1.19", "examples/errors", gcflags="-l")
    shutil.copy(binary, tmp_path / "errors")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    launcher = bindir / "gobt"
    launcher.write_text("#!/bin/sh\nexec %s \"$@\"\n" % " ".join(shlex.quote(a) for a in GOBT_CMD))
    launcher.chmod(0o755)
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([os.path.join(EXAMPLES, "errors", "errors.gbt"), "-c", "./errors 3"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr[-3000:]
    m = re.search(r"^validated \d+ names: (\d+) nil, (\d+) errors$", proc.stdout, re.M)
    assert m, proc.stdout
    # errors.gbt counts the errors by their type and text (goerr): <nil>, and the rest.
    seen = counts(proc.stdout, "")
    assert seen.pop("<nil>, <nil>") == int(m.group(1)) and sum(seen.values()) == int(m.group(2)), proc.stdout


def test_example_says_little_before_attaching_and_once(go_build, bpf, tmp_path):
    # A newcomer's plain run of an example: at most one gobt line before
    # bpftrace's, and no bpftrace line about a limit the kernel ignores.
    # Notes about the bpftrace or the binary are said once: a second run
    # starts with bpftrace's own lines; GOBT_NOTES=all says them again.
    binary = go_build("go1.19", "examples/httpserver")
    shutil.copy(binary, tmp_path / "httpserver")
    shutil.copy(os.path.join(EXAMPLES, "httpserver", "httpserver.gbt"), tmp_path / "httpserver.gbt")
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}

    def run(**more):
        proc = gobt("httpserver.gbt", "-c", "./httpserver 2", cwd=tmp_path, timeout=60, env={**env, **more})
        no_traceback(proc)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert hists(proc.stdout, "us"), proc.stdout
        assert "RLIMIT_MEMLOCK" not in proc.stderr or not _memlock_is_moot(), proc.stderr
        return [line for line in proc.stderr.splitlines() if line.startswith("gobt:")
                and "detaching in the background" not in line]

    first = run()
    assert len(first) <= 1, first
    assert run() == [], "a note said on the first run was said again"
    assert run(GOBT_NOTES="all") == first
