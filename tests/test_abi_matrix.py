"""goarg/retval against the program's own view of its values, on every ABI.

tests/abigen.py generates a Go program of many functions (every integer
width, strings, structs, arrays, pointers, methods, floats mixed with ints,
spills to the stack, named and unnamed results). Each prints what it got
and returned; the generated gobt script prints the same through goarg and
retval. Equal sets of lines mean gobt read every value right.
"""

import re

import pytest

import abigen
from conftest import gobt, no_traceback

BUILDS = [(go, flags) for go in ("go1.15", "go1.19", "newest") for flags in ("", "all=-N -l")]


def test_matrix_is_big_enough():
    fns = abigen.functions()
    assert len(fns) >= 40
    assert sum(len(f.entry) + len(f.ret) for f in fns) >= 150


@pytest.mark.parametrize("go,flags", BUILDS, ids=[f"{g}-{'noopt' if f else 'opt'}" for g, f in BUILDS])
def test_goarg_reads_what_the_program_sees(go, flags, go_build, bpf, matrix_src, tmp_path):
    binary = go_build(go, matrix_src, gcflags=flags, tag="-noopt" if flags else "")
    script = tmp_path / "matrix.gbt"
    script.write_text(abigen.gobt_script(binary))
    proc = gobt(str(script), "-c", binary, timeout=600)
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "P done" in proc.stdout, proc.stdout[-3000:]
    program = set(re.findall(r"^P ([ER] .*)$", proc.stdout, re.M))
    probes = set(re.findall(r"^B ([ER] .*)$", proc.stdout, re.M))
    expected_lines = sum(bool(f.entry) + bool(f.ret) for f in abigen.functions())
    assert len(program) == expected_lines
    missing = sorted(program - probes)
    wrong = sorted(probes - program)
    assert not missing and not wrong, "\n".join(["program said, gobt did not:"] + missing + ["gobt said:"] + wrong)
