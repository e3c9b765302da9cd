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


@pytest.mark.parametrize("helper", ["goarg(n)", "retval", "goid"])
def test_dwarf_helpers_say_the_binary_has_no_dwarf(helper, go_build):
    binary = go_build("go1.19", "tests/programs/multiret", ldflags="-s -w", tag="-stripped")
    probe = "goret" if helper != "goarg(n)" else "uprobe"
    proc = gobt("--emit", "-e", f'{probe}:{binary}:main.classify {{ printf("%d\\n", {helper}); }}')
    no_traceback(proc)
    assert proc.returncode == 1
    assert "has no DWARF" in proc.stderr.splitlines()[0]
