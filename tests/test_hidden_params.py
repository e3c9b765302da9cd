"""Params DWARF leaves out: the generic dictionary, and blank _ params.

gobt accounts for the dictionary of generic shape instances (absent from
DWARF before Go 1.27), and refuses, with a reason, to guess around a blank
_ param that DWARF omits (before Go 1.22), which the runtime's recorded
args size reveals. Never a read from the wrong register.
"""

import re

import pytest

from conftest import gobt, no_traceback

PROGRAM = "tests/programs/hidden"
SCRIPT = """
uprobe:{b}:"main.(*Stack[go.shape.string{s}]).Push" {{ printf("B Push n=%ld\\n", goarg(n)); }}
uprobe:{b}:"main.Pick[go.shape.string{s}]" {{ printf("B Pick first=%ld tag=%s\\n", goarg(first), goarg(tag)); }}
uprobe:{b}:"main.Pick[go.shape.int{s}]" {{ printf("B Pick first=%ld tag=%s\\n", goarg(first), goarg(tag)); }}
"""


@pytest.mark.parametrize("go", ["go1.19", "go1.23", "newest"])
def test_generic_dictionary_is_accounted_for(go, go_build, bpf, tmp_path):
    binary = go_build(go, PROGRAM)
    script = tmp_path / "h.gbt"
    # Go 1.18-1.20 name shapes go.shape.string_0; later go.shape.string.
    script.write_text(SCRIPT.format(b=binary, s="_0" if go == "go1.19" else ""))
    proc = gobt(str(script), "-c", binary)
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    program = sorted(re.findall(r"^P (Push.*|Pick.*)$", proc.stdout, re.M))
    # A plain uprobe at a function's first instruction fires twice for a
    # call that grows its stack (the runtime jumps back to the entry; man
    # gobt, goentry): the same values twice, which a fresh Debian 12 saw.
    probes = sorted(set(re.findall(r"^B (.*)$", proc.stdout, re.M)))
    assert len(program) == 3 and probes == program, proc.stdout


def test_blank_param_omitted_by_dwarf_is_refused(go_build):
    binary = go_build("go1.19", PROGRAM)
    proc = gobt("--emit", "-e", f'uprobe:{binary}:main.Blank {{ printf("%s\\n", goarg(c)); }}')
    no_traceback(proc)
    assert proc.returncode == 1
    assert "cannot place the params of main.Blank" in proc.stderr
    assert "blank _" in proc.stderr


def test_blank_param_named_by_dwarf_is_read(go_build, bpf):
    binary = go_build("go1.23", PROGRAM)
    proc = gobt("-e", f'uprobe:{binary}:main.Blank {{ printf("B Blank a=%ld c=%s\\n", goarg(a), goarg(c)); }}',
                "-c", binary)
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    assert re.findall(r"^B (Blank.*)$", proc.stdout, re.M) == re.findall(r"^P (Blank.*)$", proc.stdout, re.M) == [
        "Blank a=1 c=ccc"]
