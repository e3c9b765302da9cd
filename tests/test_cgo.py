"""cgo binaries (import "C"): listings hold Go functions only, and goret,
goarg, goid read right around C calls.

tests/programs/cgocall runs N goroutines, each calling scale(i, "gI"),
which multiplies in C, and prints "G i goid result" for each.
"""

import re

import pytest

from conftest import gobt, no_traceback

PROGRAM = "tests/programs/cgocall"
GOS = ["go1.15", "go1.19", "go1.23", "newest"]


def cgo_build(go_build, go, stripped=False):
    if stripped:
        return go_build(go, PROGRAM, cgo=True, ldflags="-s -w", tag="-cgo-stripped")
    return go_build(go, PROGRAM, cgo=True, tag="-cgo")


def listed(stdout):
    return {line.split()[0].split(":", 2)[2] for line in stdout.splitlines() if line.startswith("goret:")}


@pytest.mark.parametrize("go", GOS)
def test_wildcards_list_go_functions_only(go, go_build):
    from gobt.binary.gobinary import GoBinary

    binary = cgo_build(go_build, go)
    proc = gobt("-l", f"goret:{binary}:*")
    assert "Traceback" not in proc.stderr  # (stdout names runtime.*Traceback*)
    assert proc.returncode == 0, proc.stderr
    names = listed(proc.stdout)
    assert "main.scale" in names and "runtime.main" in names
    everything = {f.name for f in GoBinary(binary).symbols.all_functions()}
    c_functions = {"c_triple", "_start", "x_cgo_init", "x_cgo_thread_start"}
    assert c_functions <= everything  # .symtab has them...
    assert not names & c_functions  # ...a wildcard does not
    assert not [n for n in names if n.startswith(("_cgo_", "x_cgo_", "go:")) or "(.text)" in n], names

    # Asked for by name, a C function is still there.
    proc = gobt("-l", f'goret:{binary}:"c_triple"')
    assert listed(proc.stdout) == {"c_triple"}, proc.stdout + proc.stderr
    # A wildcard matching only C functions says so.
    proc = gobt("-l", f"goret:{binary}:c_tri*")
    assert proc.returncode == 1
    assert "Go functions only" in proc.stderr and "c_triple" in proc.stderr, proc.stderr


def test_go_helpers_in_a_c_function_are_refused(go_build):
    binary = cgo_build(go_build, "newest")
    for helper in ("retval", "goid", "goarg(n)"):
        proc = gobt("--emit", "-e", f"goret:{binary}:c_triple {{ @[{helper}] = count(); }}")
        no_traceback(proc)
        assert proc.returncode == 1, proc.stdout
        assert "not a Go function" in proc.stderr.splitlines()[0], proc.stderr


@pytest.mark.parametrize("stripped", [False, True], ids=["dwarf", "stripped"])
@pytest.mark.parametrize("go", GOS)
def test_cgo_binary_reads_right(go, stripped, go_build, bpf):
    binary = cgo_build(go_build, go, stripped)
    n = 12
    reads = "goid, retval" + ("" if stripped else ", goarg(n), goarg(label), goarg(~r1)")
    if stripped and go == "go1.15":
        # On the stack ABI the first result follows the params, whose size
        # only DWARF (or a declared signature) gives: a refusal, not a guess.
        proc = gobt("--emit", "-e", f"goret:{binary}:main.scale {{ @[{reads}] = count(); }}")
        no_traceback(proc)
        assert proc.returncode == 1 and "retval" in proc.stderr, proc.stderr
        return
    proc = gobt("-e", f"goret:{binary}:main.scale {{ @[{reads}] = count(); }}", "-c", f"{binary} {n}")
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    truth = [tuple(map(int, m)) for m in re.findall(r"^G (\d+) (\d+) (-?\d+)$", proc.stdout, re.M)]
    assert len(truth) == n
    seen = re.findall(r"^@\[(.*)\]: (\d+)$", proc.stdout, re.M)
    expected = {f"{goid}, {result}" + ("" if stripped else f", {i}, g{i}, g{i}!"): "1" for i, goid, result in truth}
    assert dict(seen) == expected, proc.stdout


def test_runtime_args_size_found_under_external_linking(go_build):
    # With cgo the external linker puts C code before Go's text, and Go
    # 1.27's pclntab leaves its text start 0: entries are relative to the
    # module data's text, not the .text section.
    from gobt.binary.gobinary import GoBinary

    binary = GoBinary(cgo_build(go_build, "newest"))
    assert binary.pclntab.text_start != binary._sections[".text"][1]
    fn = binary.symbols.lookup("main.scale")
    assert binary.args_size(fn) is not None
