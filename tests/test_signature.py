"""Go signatures declared in the probe: goarg by name where there is no DWARF.

The program (tests/programs/signature) prints every call's params and
results; the probes, placed by the declared signatures alone on stripped
builds, must print the same. A declaration the binary contradicts (its
DWARF, or the runtime's args size) is refused at the user's line.
"""

import re

import pytest

from conftest import gobt, no_traceback

GOS = ["go1.15", "go1.19", "newest"]  # the stack ABI, and the register ABI old and new
PROGRAM = "tests/programs/signature"


def stripped(go_build, go):
    return go_build(go, PROGRAM, ldflags="-s -w", tag="-stripped")


@pytest.mark.parametrize("go", GOS)
def test_declared_signatures_read_params_and_results_on_a_stripped_build(go, go_build, bpf):
    binary = stripped(go_build, go)
    from gobt.binary.gobinary import GoBinary

    assert GoBinary(binary).stripped and not GoBinary(binary).has_section(".debug_info")
    script = f"""
uprobe:{binary}:main.tick(n int, label string) (int, string) {{ printf("T %d %s\\n", goarg(n), goarg(label)); }}
goret:{binary}:main.tick(n int, label string) (int, string) {{ printf("R %s %d\\n", goarg(~r1), goarg(~r0)); }}
goentry:{binary}:main.(*S).Get(s *main.S, key string, n int) (count int, err error) {{
  printf("E %s %d\\n", goarg(key), goarg(n));
}}
goret:{binary}:main.(*S).Get(s *main.S, key string, n int) (count int, err error) {{
  printf("G %d %d %d\\n", goarg(count), goarg(err) != 0, retval);
}}
goentry:{binary}:main.sum(a, b int32, xs []int) int64 {{ printf("S %d %d %d %d\\n", goarg(a), goarg(b), goarg(xs.len), goarg(xs[2])); }}
"""
    calls = 5
    proc = gobt("-e", script, "-c", f"{binary} {calls}")
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    ticks = re.findall(r"^tick (\d+) (\S+) -> (\d+) (\S+)$", out, re.M)
    gets = re.findall(r"^get (\S+) (\d+) -> (\d+) (true|false)$", out, re.M)
    assert len(ticks) == len(gets) == calls, out
    assert sorted(re.findall(r"^T (\d+) (\S+)$", out, re.M)) == sorted((n, label) for n, label, _, _ in ticks)
    assert sorted(re.findall(r"^R (\S+) (\d+)$", out, re.M)) == sorted((l, r) for _, _, r, l in ticks)
    assert sorted(re.findall(r"^E (\S+) (\d+)$", out, re.M)) == sorted((k, n) for k, n, _, _ in gets)
    assert sorted(re.findall(r"^G (\d+) ([01]) (\d+)$", out, re.M)) == sorted(
        (c, str(int(e == "true")), c) for _, _, c, e in gets)
    assert sorted(re.findall(r"^S (\d+) (\d+) (\d+) (\d+)$", out, re.M)) == sorted(
        (str(i), "2", "3", "5") for i in range(1, calls + 1))


@pytest.mark.bpftrace_independent
@pytest.mark.parametrize("go", GOS)
def test_a_declaration_of_the_wrong_size_is_refused_by_the_runtime_args_size(go, go_build):
    binary = stripped(go_build, go)
    # label left out: 16 bytes too few, however the ABI assigns them
    script = f'uprobe:{binary}:main.tick(n int) (int, string) {{ printf("%d\\n", goarg(n)); }}'
    proc = gobt("--emit", "-e", script)
    no_traceback(proc)
    assert proc.returncode == 1
    first = proc.stderr.splitlines()[0]
    assert re.search(r"-e:1:\d+: error: the signature declares \d+ bytes of arguments for main.tick, "
                     r"the Go runtime records \d+", first), proc.stderr
    column = int(first.split(":")[3])
    assert script[column - 1:].startswith("(n int) (int, string)")


@pytest.mark.bpftrace_independent
@pytest.mark.parametrize("declared, message", [
    ("main.tick(n int, label string, x int) (int, string)", "declares 3 params for main.tick, its DWARF has 2 (n int, label string)"),
    ("main.tick(n int, name string) (int, string)", "param 1 of main.tick is 'label' in its DWARF, declared 'name'"),
    ("main.tick(n int, label int) (int, string)", "param 'label' of main.tick is string (string, 16 bytes) in its DWARF, "
                                                 "declared int (int, 8 bytes)"),
    ("main.tick(n int32, label string) (int, string)", "is int (int, 8 bytes) in its DWARF, declared int32 (int, 4 bytes)"),
    ("main.(*S).Get(s *main.S, key string, n int) (count int)", "declares 1 result for main.(*S).Get, its DWARF has 2"),
    ("main.(*S).Get(s *main.S, key string, n int) (count int, e error)", "result 1 of main.(*S).Get is 'err' in its DWARF"),
])
@pytest.mark.parametrize("go", GOS)
def test_a_declaration_dwarf_contradicts_is_refused(go, declared, message, go_build):
    binary = go_build(go, PROGRAM)
    proc = gobt("--emit", "-e", f"goentry:{binary}:{declared} {{ @ = count(); }}")
    no_traceback(proc)
    assert proc.returncode == 1
    assert message in proc.stderr.splitlines()[0], proc.stderr


@pytest.mark.bpftrace_independent
@pytest.mark.parametrize("go", ["go1.15", "newest"])
def test_with_dwarf_an_agreeing_declaration_reads_as_dwarf_does_and_names_unnamed_results(go, go_build):
    binary = go_build(go, PROGRAM)
    plain = gobt("--emit", "-e", f'goret:{binary}:main.tick {{ printf("%d %s", goarg(~r0), goarg(~r1)); }}')
    named = gobt("--emit", "-e", f'goret:{binary}:main.tick(n int, label string) (r int, l string) '
                                 f'{{ printf("%d %s", goarg(r), goarg(l)); }}')
    assert plain.returncode == 0 and named.returncode == 0, plain.stderr + named.stderr
    assert plain.stdout == named.stdout


@pytest.mark.bpftrace_independent
@pytest.mark.parametrize("declared, column_of, message", [
    ("main.tick(n integer, label string)", "integer", "unknown type 'integer' in the signature"),
    ("main.tick(n int, label S)", "S)", "unknown type 'S'"),
    ("main.tick(s main.S)", "main.S", "main.S is passed by value: without DWARF gobt knows nothing of its layout"),
    # A named interface is declared as any: the refusal says so (on restic, os.FileInfo got a struct's advice).
    ("main.tick(n int, fi os.FileInfo)", "os.FileInfo", "os.FileInfo is an interface: declare it as any"),
    ("main.tick(n int, label str$ing)", "$", "syntax error in the signature: unexpected '$'"),
    ("main.tick(n int,, label string)", ", label", "unexpected ','"),
    ("main.tick(n int, string)", "string)", "mixed named and unnamed params"),
    ("main.tick(n, label)", "n,", "unknown type 'n'"),  # as Go reads it: two types
    ("main.tick(n, label int, x)", "x)", "param 'x' has no type"),
    ("main.(*S).Get(key string, n int) (int, error)", "string,", "main.(*S).Get is a method: declare its receiver first"),
])
def test_signature_errors_point_at_the_column(declared, column_of, message, go_build):
    binary = stripped(go_build, "newest")
    script = f"goentry:{binary}:{declared} {{ @ = count(); }}"
    proc = gobt("--emit", "-e", script)
    no_traceback(proc)
    assert proc.returncode == 1
    first = proc.stderr.splitlines()[0]
    assert message in first, proc.stderr
    column = int(first.split(":")[3])
    assert column == script.index(column_of, script.index(":main.")) + 1, proc.stderr


@pytest.mark.bpftrace_independent
def test_a_signature_is_for_one_function(go_build):
    binary = stripped(go_build, "newest")
    proc = gobt("--emit", "-e", f"goentry:{binary}:main.t*(n int) {{ @ = count(); }}")
    no_traceback(proc)
    assert proc.returncode == 1
    assert "a declared signature is for one function" in proc.stderr


@pytest.mark.bpftrace_independent
def test_the_signature_never_reaches_bpftrace(go_build):
    binary = stripped(go_build, "newest")
    proc = gobt("--emit", "-e", f"uprobe:{binary}:main.tick(n int, label string) (int, string), "
                                f"uprobe:{binary}:main.sum(a, b int32, xs []int) int64 /pid > 0/ {{ @ = count(); }}")
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    attach = proc.stdout.split(" /")[0]  # up to the predicate
    assert "int" not in attach and "(" not in attach, proc.stdout
    assert len(re.findall(r"uprobe:\S+:0x[0-9a-f]+", attach)) == 2, proc.stdout


@pytest.mark.bpftrace_independent
@pytest.mark.parametrize("go", ["go1.15", "newest"])
def test_lv_on_a_stripped_build_says_how_to_declare_and_shows_a_declaration(go, go_build):
    binary = stripped(go_build, go)
    proc = gobt("-lv", f"goret:{binary}:main.tick")
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    # What pclntab records of main.tick(n int, label string) (int, string), and no example signature
    # that this size would refuse.
    words = "3 words of params (register ABI" if go == "newest" else "6 words of params and results (stack ABI"
    assert f"bytes of args for main.tick: {words}" in proc.stdout, proc.stdout
    assert f"goret:{binary}:main.tick(...)" in proc.stdout and "(name string" not in proc.stdout, proc.stdout
    proc = gobt("-lv", f"gotrace:{binary}:main.tick")
    assert proc.returncode == 0 and f"bytes of args for main.tick: {words}" in proc.stdout, proc.stdout
    assert "(n int) error" not in proc.stdout, proc.stdout
    proc = gobt("-lv", f"goret:{binary}:main.(*S).Get(s *main.S, key string, n int) (count int, err error)")
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    # The param rows (indented), after the header comments (how many: as the binary needs) and the probe.
    rows = [line.split() for line in proc.stdout.splitlines() if line.startswith("    ")]
    assert [r[0] for r in rows] == ["s", "key", "n", "count", "err"], proc.stdout
    if go == "newest":
        assert rows[1][2] == "RBX,RCX" and rows[4][-3:] == ["RBX,RCX", "at", "return"], proc.stdout
    else:
        assert rows[1][2] == "[SP+16]" and rows[4][-3:] == ["[SP+48]", "at", "return"], proc.stdout


@pytest.mark.bpftrace_independent
def test_a_pointer_to_a_named_type_is_an_address_without_fields(go_build):
    binary = stripped(go_build, "newest")
    head = f"uprobe:{binary}:main.(*S).Get(s *main.S, key string, n int) (int, error)"
    ok = gobt("--emit", "-e", f'{head} {{ printf("%d\\n", goarg(s)); }}')
    assert ok.returncode == 0, ok.stderr
    proc = gobt("--emit", "-e", f'{head} {{ printf("%d\\n", goarg(s.hits)); }}')
    no_traceback(proc)
    assert proc.returncode == 1
    assert "s is a main.S (declared by name only: its fields are in DWARF); it has no field 'hits'" in proc.stderr
