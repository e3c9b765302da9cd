"""Stripped binaries (-ldflags='-s -w'): functions from .gopclntab."""

import re

import pytest

from conftest import gobt, no_traceback

GOS = ["go1.15", "go1.19", "newest"]


@pytest.mark.parametrize("go", GOS)
def test_pclntab_agrees_with_symtab(go, go_build):
    # The same build read both ways: every Go function .symtab names must be
    # found by name at the same address in .gopclntab.
    from gobt.binary.gobinary import GoBinary
    from gobt.binary.pclntab import PclnSymbols

    binary = GoBinary(go_build(go, "tests/programs/multiret"))
    pcln = PclnSymbols(binary._section_bytes(".gopclntab"), binary._sections[".text"][1], binary.path)
    checked = 0
    for fn in binary.symbols.all_functions():
        if fn.name.startswith("type") or "." not in fn.name:
            # compiler-made helpers (type..eq.*) and assembly-private labels
            # (cmpbody, gogo) are named differently there
            continue
        found = pcln.lookup(fn.name)
        assert found is not None and found.start == fn.start, (fn, found)
        checked += 1
    assert checked > 1000


@pytest.mark.parametrize("go", GOS)
def test_goret_and_goentry_on_stripped_binary(go, go_build, bpf):
    binary = go_build(go, "tests/programs/multiret", ldflags="-s -w", tag="-stripped")
    from gobt.binary.gobinary import GoBinary

    assert GoBinary(binary).stripped
    program = (
        f"goret:{binary}:main.classify {{ @rets[reg(\"sp\") != 0] = count(); }} "
        f"goentry:{binary}:main.classify {{ @entries = count(); }}"
    )
    proc = gobt("-e", program, "-c", f"{binary} 700")
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"^@entries: 700$", proc.stdout, re.M), proc.stdout
    assert re.search(r"^@rets\[1\]: 700$", proc.stdout, re.M), proc.stdout


def test_goarg_says_the_binary_has_no_dwarf(go_build):
    binary = go_build("go1.19", "tests/programs/multiret", ldflags="-s -w", tag="-stripped")
    proc = gobt("--emit", "-e", f'uprobe:{binary}:main.classify {{ printf("%d\\n", goarg(n)); }}')
    no_traceback(proc)
    assert proc.returncode == 1
    assert "has no DWARF" in proc.stderr.splitlines()[0]


# -- retval, goid and goelapsed without DWARF ---------------------------------

REGISTER_ABI_GOS = ["go1.19", "go1.23", "newest"]


def own_counts(stdout):
    """{value: count} as multiret prints them ("path VALUE COUNT")."""
    return {int(v): int(c) for v, c in re.findall(r"^path (\d+) (\d+)$", stdout, re.M)}


@pytest.mark.parametrize("go", REGISTER_ABI_GOS)
def test_retval_on_stripped_binary_is_the_first_result(go, go_build, bpf):
    binary = go_build(go, "tests/programs/multiret", ldflags="-s -w", tag="-stripped")
    proc = gobt("-e", f"goret:{binary}:main.classify {{ @r[retval] = count(); }}", "-c", f"{binary} 1000")
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    seen = {int(k): int(v) for k, v in re.findall(r"^@r\[(-?\d+)\]: (\d+)$", proc.stdout, re.M)}
    assert seen == {v: c for v, c in own_counts(proc.stdout).items() if c}, proc.stdout


def test_retval_on_stripped_stack_abi_binary_is_refused(go_build):
    # Go 1.15 puts results after the params on the stack; without DWARF
    # nothing says where the params end.
    binary = go_build("go1.15", "tests/programs/multiret", ldflags="-s -w", tag="-stripped")
    proc = gobt("--emit", "-e", f"goret:{binary}:main.classify {{ @r[retval] = count(); }}")
    no_traceback(proc)
    assert proc.returncode == 1
    first = proc.stderr.splitlines()[0]
    assert ":1:" in first and "stack ABI" in first, proc.stderr


@pytest.mark.parametrize("go", ["go1.15"] + REGISTER_ABI_GOS)
def test_goid_and_goelapsed_on_stripped_binary(go, go_build, bpf):
    binary = go_build(go, "tests/programs/goroutines", ldflags="-s -w", tag="-stripped")
    n = 30
    proc = gobt(
        "-e",
        f"goret:{binary}:main.recurse {{ @calls[goid] = count(); @slowest[goid] = max(goelapsed); }} "
        f"goentry:{binary}:main.recurse {{ @entries[goid] = count(); }}",
        "-c", f"{binary} {n}", timeout=300,
    )
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    goids = {int(i): int(g) for i, g in re.findall(r"^G (\d+) (\d+)$", out, re.M)}
    assert len(goids) == n

    def per_goid(name):
        return {int(k): int(v) for k, v in re.findall(r"^@%s\[(\d+)\]: (\d+)$" % name, out, re.M)}

    # goroutine i makes depth(i) + 1 calls of recurse, each seen under its own goid
    expected = {goids[i]: 2 + i % 24 for i in range(n)}
    assert per_goid("calls") == expected
    assert per_goid("entries") == expected
    # its outermost call lasts at least the sleep at the bottom
    slowest = per_goid("slowest")
    assert all(slowest[goids[i]] >= (1 + i % 5) * 1_000_000 for i in range(n)), slowest


def test_runtime_g_table_matches_dwarf(toolchains, go_build):
    # The table stripped binaries use, against the DWARF of every toolchain
    # the tests have, on amd64 and (register ABI) arm64.
    from gobt.abi.runtime_g import CHECKED_AGAINST_DWARF, runtime_g_offsets
    from gobt.binary.gobinary import GoBinary
    from gobt.rewrite.goroutine import goroutine_exprs

    checked = set()
    for name, t in toolchains.items():
        for arch in ("amd64", "arm64") if t.minor >= 18 else ("amd64",):
            binary = GoBinary(go_build(name, "tests/programs/goroutines", goarch=arch))
            assert binary.has_dwarf
            found = goroutine_exprs(binary)
            assert runtime_g_offsets(binary.go_version_tuple) == (found.goid_offset, found.stack_hi_offset), \
                (name, arch)
            assert t.minor in CHECKED_AGAINST_DWARF
            checked.add(t.minor)
    assert {15, 19}.issubset(checked), checked


def test_unknown_go_version_without_dwarf_is_refused(go_build, tmp_path):
    # The same stripped build claiming a Go version newer than the table:
    # gobt must refuse, not guess the layout.
    from gobt.binary.gobinary import GoBinary

    real = go_build("newest", "tests/programs/goroutines", ldflags="-s -w", tag="-stripped")
    version = GoBinary(real).go_version
    data = open(real, "rb").read()
    assert data.count(version.encode()) >= 1
    future = "go1.99" + version[len("go1.27"):]
    assert len(future) == len(version)
    patched = tmp_path / "future"
    patched.write_bytes(data.replace(version.encode(), future.encode()))
    patched.chmod(0o755)
    assert GoBinary(str(patched)).go_version == future
    for helper in ("goid", "goelapsed"):
        proc = gobt("--emit", "-e", f"goret:{patched}:main.recurse {{ @[{helper}] = count(); }}")
        no_traceback(proc)
        assert proc.returncode == 1
        first = proc.stderr.splitlines()[0]
        assert "runtime.g" in first and future in first and ":1:" in first, proc.stderr
