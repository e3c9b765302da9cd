"""goarg, retval and -lv: errors that teach, and listings that tell the truth."""

import re
import subprocess

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
    # (in gobt's time map, 64 bits wide, the sign cast back: rewrite/probes.py)
    assert "@zz_gobt_t[0, 0, $__gobt_g, $__gobt_d] = (int64)((int8)reg(\"ax\"))" in entry
    assert "$__gobt_v0 = (int64)@zz_gobt_t[0, 0, $__gobt_g, $__gobt_d]" in ret
    assert 'printf("%ld\\n", $__gobt_v0)' in ret  # an int8 Go value: %d widened
    lines = proc.stdout.splitlines()
    # the user's probe stays on its one line; only a line of BEGIN and END
    # (rewrite/gate.py) is added
    assert len(lines) == 2 and lines[1].startswith("BEGIN {") and " END {" in lines[1]


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


def second_instruction(binary, func):
    out = subprocess.run(["objdump", "-d", "--no-show-raw-insn", binary], capture_output=True, text=True).stdout
    body = out.split(f"<{func}>:\n", 1)[1].splitlines()
    first, second = (int(line.split(":")[0], 16) for line in body[:2])
    return second - first


def test_goarg_at_an_offset_is_refused(matrix):
    offset = second_instruction(matrix, "main.Mixed")
    prog = f'uprobe:{matrix}:"main.Mixed"+{offset} {{ printf("%d\\n", goarg(a)); }}'
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


@pytest.mark.parametrize("probe", ["uprobe", "goentry", "goret"])
def test_method_with_star_is_probed_exactly(probe, go_build, bpf):
    # bpftrace reads the '*' in "main.(*T).M" as a wildcard, which also
    # matches main.(*ST).M: gobt must probe exactly the function whose
    # params it resolved.
    binary = go_build("go1.19", "tests/programs/methods")
    read = "goarg(t.B)" if probe != "goret" else "retval"
    proc = gobt("-e", f'{probe}:{binary}:main.(*T).M {{ printf("B %s %ld\\n", probe, {read}); }}', "-c", binary)
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    hits = re.findall(r"^B .* (\d+)$", proc.stdout, re.M)
    assert hits == (["2"] if probe != "goret" else ["12"]), proc.stdout
    assert "12 25" in proc.stdout


def test_pid_filter_with_goarg_in_the_predicate(matrix):
    for probe in ("goentry", "uprobe"):
        prog = f'{probe}:{matrix}:main.Mixed /goarg(a) < 0/ {{ printf("%d\\n", goarg(c)); }}'
        proc = gobt("--emit", "-p", "1", "-e", prog)
        no_traceback(proc)
        assert proc.returncode == 0, proc.stderr
        # (and gobt's gate, rewrite/gate.py)
        assert '/pid == 1 && @zz_gobt_t[-1, -1, (uint64)0, (uint64)0] && ((int8)reg("ax") < 0)/' in proc.stdout


def test_params_carried_to_the_return_keep_their_value_at_every_width(matrix, bpf):
    # One probe per integer width, signed and unsigned, in one program: each
    # param read at the entry (goentry) and carried to the return (goret) in
    # gobt's shared map must print the same. (A map of one value type for
    # all of them printed a uint8 255 as 18446744073709551615 at the return.)
    names = re.findall(r":(main\.Int\d\d_u?int\w*) ", gobt("-l", f"goret:{matrix}:main.Int*").stdout)
    assert len(names) >= 10 and any("uint" in n for n in names) and any("_int" in n for n in names), names
    script = "".join(f'goentry:{matrix}:{n} {{ printf("E {n} %d\\n", goarg(x)); }} '
                     f'goret:{matrix}:{n} {{ printf("R {n} %d\\n", goarg(x)); }}\n' for n in names)
    proc = gobt("-e", script, "-c", matrix)
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    entry = dict(re.findall(r"^E (\S+) (-?\d+)$", proc.stdout, re.M))
    ret = dict(re.findall(r"^R (\S+) (-?\d+)$", proc.stdout, re.M))
    assert sorted(entry) == sorted(names), proc.stdout
    assert ret == entry, proc.stdout


def test_not_a_go_binary(tmp_path):
    src = tmp_path / "c.c"
    src.write_text("int foo(int x, long y) { return x + (int)y; }\nint main(void) { return foo(1, 2); }\n")
    binary = tmp_path / "c"
    subprocess.run(["gcc", "-g", "-O0", "-o", str(binary), str(src)], check=True)
    for helper in ("goarg(x)", "goid"):
        proc = gobt("--emit", "-e", f'uprobe:{binary}:foo {{ printf("%d\\n", {helper}); }}')
        no_traceback(proc)
        assert proc.returncode == 1
        assert "is not a Go binary" in proc.stderr and "-e:1:" in proc.stderr


def test_too_many_probes_stop_before_bpftrace(matrix):
    proc = gobt("-e", f"goret:{matrix}:main.* {{ @n = count(); }}", env={"BPFTRACE_MAX_PROBES": "10"})
    no_traceback(proc)
    assert proc.returncode == 1
    m = re.search(r"expands to (\d+) probes; bpftrace [\d.]+ allows 10", proc.stderr)
    assert m and int(m.group(1)) > 10, proc.stderr
    assert f"BPFTRACE_MAX_PROBES={m.group(1)}" in proc.stderr


def test_probe_limit_counts_the_gates_begin_and_end(matrix):
    # bpftrace counts BEGIN and END against BPFTRACE_MAX_PROBES: with a limit
    # of one more than gobt's uprobes, the program (uprobes + the gate's
    # BEGIN and END) is over it, and gobt must say so, not bpftrace.
    script = f"goret:{matrix}:main.* {{ @n = count(); }}"
    emitted = gobt("--emit", "-e", script)
    uprobes = emitted.stdout.count("uprobe:")
    assert uprobes > 10 and "BEGIN" in emitted.stdout and "END" in emitted.stdout, emitted.stdout
    proc = gobt("-e", script, "-c", "/nonexistent/gobt-test", env={"BPFTRACE_MAX_PROBES": str(uprobes + 1)})
    no_traceback(proc)
    assert proc.returncode == 1
    assert f"expands to {uprobes + 2} probes; bpftrace" in proc.stderr, proc.stderr
    assert "Can't attach" not in proc.stderr


def test_many_probes_say_how_long_the_exit_will_take(matrix, bpf):
    # bpftrace (0.17 and 0.23 alike) detaches each uprobe at an offset on
    # its own, ~0.1 s apiece. gobt keeps them open past bpftrace's exit and
    # detaches them in the background (test_detach), except for a script
    # that calls signal(): then gobt says before the user waits. The -c
    # command does not exist, so bpftrace stops before attaching anything.
    signals = f'goret:{matrix}:fmt.* {{ @n = count(); if (@n > 1000000) {{ signal("KILL"); }} }}'
    proc = gobt("--unsafe", "-e", signals, "-c", "/nonexistent/gobt-test")
    no_traceback(proc)
    m = re.search(r"gobt: (\d+) probes: bpftrace detaches uprobes at offsets one at a time.* expect ~(\d+) s",
                  proc.stderr)
    assert m, proc.stderr
    assert int(m.group(1)) >= 50 and int(m.group(2)) == round(int(m.group(1)) * 0.11)
    assert proc.returncode != 0
    quiet = gobt("-e", f"goret:{matrix}:fmt.* {{ @n = count(); }}", "-c", "/nonexistent/gobt-test")
    no_traceback(quiet)
    assert "one at a time" not in quiet.stderr and quiet.returncode != 0
