"""goarg, retval and -lv: errors that teach, and listings that tell the truth."""

import re

import pytest

from conftest import gobt, no_traceback


@pytest.fixture(scope="session")
def matrix(go_build, matrix_src):
    return go_build("go1.19", matrix_src)


def error_of(proc):
    no_traceback(proc)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    first = proc.stderr.splitlines()[0]
    m = re.match(r"^gobt: (-e|[^ ]+):(\d+):(\d+): error: (.+)$", first)
    assert m, proc.stderr
    return int(m[2]), int(m[3]), m[4], proc.stderr


def test_unknown_name_lists_the_signature(matrix):
    prog = f"uprobe:{matrix}:main.Mixed {{ printf(\"%d\\n\", goarg(nope)); }}"
    line, col, msg, err = error_of(gobt("-e", prog))
    assert "has no parameter or result named 'nope'" in msg
    assert col == prog.index("nope") + 1
    for row in ("param  a  int8", "param  s  string", "result ~r0  int32", "result ~r1  string"):
        assert re.search(r"\s+".join(map(re.escape, row.split())), err), err


def test_float_in_sse_register_is_refused(matrix):
    prog = f"uprobe:{matrix}:main.FloatsAndInts {{ printf(\"%d\\n\", goarg(f)); }}"
    _, _, msg, _ = error_of(gobt("-e", prog))
    assert "X0" in msg and "BPF cannot read SSE/FP registers" in msg


def test_param_at_return_is_captured_at_entry(matrix):
    # At a RET the param's register is dead: gobt reads it at the entry
    # and carries it to the return of the same call (issue 3/5).
    prog = f"goret:{matrix}:main.Mixed {{ printf(\"%d\\n\", goarg(a)); }}"
    proc = gobt("--emit", "-e", prog)
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    entry, ret = proc.stdout.split("} ", 1)
    assert "@__gobt_i[0, 0, $__gobt_g, $__gobt_d] = (int8)reg(\"ax\")" in entry
    assert "$__gobt_v0 = @__gobt_i[0, 0, $__gobt_g, $__gobt_d]" in ret
    assert 'printf("%d\\n", $__gobt_v0)' in ret
    lines = proc.stdout.splitlines()
    # the user's probe stays on its one line; only an END line is added
    assert len(lines) == 2 and lines[1].startswith("END {")


def test_result_at_entry_is_refused(matrix):
    prog = f"uprobe:{matrix}:main.Mixed {{ printf(\"%d\\n\", goarg(~r0)); }}"
    _, _, msg, err = error_of(gobt("-e", prog))
    assert "has a value only at return" in msg and "goret" in err


def test_goarg_outside_go_probes(matrix, tmp_path):
    script = tmp_path / "k.gbt"
    body = '  printf("%d\\n", goarg(x));'
    script.write_text("BEGIN\n{\n" + body + "\n}\n")
    line, col, msg, _ = error_of(gobt(str(script)))
    assert (line, col) == (3, body.index("goarg") + 1)
    assert "valid only in goret:, goentry:, or a uprobe: at a Go function's entry" in msg


def test_goarg_at_an_offset_is_refused(matrix):
    prog = f'uprobe:{matrix}:"main.Mixed"+4 {{ printf("%d\\n", goarg(a)); }}'
    _, _, msg, _ = error_of(gobt("-e", prog))
    assert "not at the entry" in msg


def test_retval_without_results(matrix):
    prog = f"goret:{matrix}:main.main {{ printf(\"%d\\n\", retval); }}"
    _, _, msg, _ = error_of(gobt("-e", prog))
    assert "returns nothing" in msg


@pytest.mark.parametrize(
    "path,expect",
    [
        ("p", "goarg reads single values"),
        ("p.Nope", "has no field 'Nope'"),
        ("p.X.Y", "has no field 'Y'"),
        ("p[0]", "only arrays and slices take [N]"),
        ("p.X!", "expected .FIELD or [N]"),
    ],
)
def test_bad_paths(matrix, path, expect):
    prog = f"uprobe:{matrix}:main.FlatStruct {{ printf(\"%d\\n\", goarg({path})); }}"
    _, _, msg, _ = error_of(gobt("-e", prog))
    assert expect in msg


def test_array_index_is_bounds_checked(matrix):
    prog = f"uprobe:{matrix}:main.ArrayTwo {{ printf(\"%d\\n\", goarg(a[2])); }}"
    _, _, msg, _ = error_of(gobt("-e", prog))
    assert "index 2 is out of range" in msg


def test_no_dwarf_is_a_clear_error(go_build):
    binary = go_build("go1.19", "tests/programs/multiret", ldflags="-w", tag="-nodwarf")
    prog = f"uprobe:{binary}:main.classify {{ printf(\"%d\\n\", goarg(n)); }}"
    proc = gobt("-e", prog)
    no_traceback(proc)
    assert proc.returncode == 1 and "has no DWARF" in proc.stderr


def test_lv_shows_types_and_abi_locations(matrix):
    proc = gobt("-lv", f"uprobe:{matrix}:main.FloatsAndInts")
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    rows = {line.split()[0]: " ".join(line.split()[1:]) for line in proc.stdout.splitlines()[2:]}
    assert rows["s"] == "string RCX,RDI"
    assert rows["f"] == "float64 X0 (unreadable)"
    assert rows["~r2"] == "string RBX,RCX at return"
    proc = gobt("-lv", f"goret:{matrix}:main.ElevenResults")
    assert re.search(r"^\s+~r9\s+int\s+\[SP\+8\] at return$", proc.stdout, re.M), proc.stdout
    assert re.search(r"^goret:.*:main\.ElevenResults\s+1 RET$", proc.stdout, re.M), proc.stdout
