"""Values print as Go has them, and Go 1.19's doubled DWARF results are read right.

tests/programs/values passes -9000000000 (int64), 2^64-1 (uint64),
4000000000 (uint32) and a 100-byte string, and prints each as Go does
("go NAME VALUE"); the probes print the same through bpftrace ("bt NAME
VALUE"). Both are compared: the program itself is the oracle.
"""

import os
import re

import pytest

from conftest import BUILD_DIR, ON_TRIXIE, gobt, need, no_traceback
from toolchains import build_package

GOS = ["go1.15", "go1.19", "newest"]


def _lines(out, prefix):
    return dict(line.split(" ", 2)[1:] for line in out.splitlines() if line.startswith(prefix + " "))


@pytest.mark.parametrize("go", GOS)
def test_go_integers_print_whole_with_percent_d(go, go_build, bpf, tmp_path):
    # bpftrace's %d is C's 32-bit int (0.17 and 0.23): -9000000000 printed
    # -410065408 before gobt widened the verb of the values it reads.
    app = go_build(go, "tests/programs/values")
    script = tmp_path / "ints.gbt"
    script.write_text(
        f'uprobe:{app}:main.record {{ printf("bt n %d\\nbt u %d\\nbt w %d\\n", goarg(n), goarg(u), (goarg(w))); }}\n'
        f'goret:{app}:main.record {{ printf("bt ret %d\\n", retval); }}\n')
    proc = gobt(str(script), "-c", app)
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    truth, seen = _lines(proc.stdout, "go"), _lines(proc.stdout, "bt")
    assert truth["n"] == "-9000000000", proc.stdout
    for name in ("n", "u", "w", "ret"):
        assert seen.get(name) == truth[name], f"{name}: bpftrace printed {seen.get(name)}, Go {truth[name]}\n{proc.stdout}"


def test_printf_verbs_change_only_for_gobt_values(go_build, tmp_path):
    app = go_build("go1.19", "tests/programs/values")
    script = tmp_path / "verbs.gbt"
    script.write_text(
        f'uprobe:{app}:main.record {{ printf("%d %x %u %5d %hd %d %d\\n", goarg(n), goarg(n), goarg(w), '
        f'goarg(w), goarg(n), 1 + 2, goarg(n) / 2); }}\n'
        'BEGIN { printf("%d\\n", 5); }\n')
    proc = gobt("--emit", str(script))
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    # int64: %d -> %ld, %x -> %lx; uint32: %u stays (no bits lost), %5d -> %5lu (Go's
    # %d of an unsigned value); %hd is the user's; 1 + 2 is the user's own.
    assert '"%ld %lx %u %5lu %hd %d %d\\n"' in lines[0], lines[0]
    # (gobt's gate opens first in the user's BEGIN, and END is gobt's own: rewrite/gate.py)
    assert lines[1] == 'BEGIN { @zz_gobt_t[-1, -1, (uint64)0, (uint64)0] = nsecs; printf("%d\\n", 5); }', lines[1]
    assert len(lines) == 3 and lines[2].startswith("END {")
    # goarg(n) / 2 is an expression of the user's: warned of, not changed.
    assert re.search(r"verbs.gbt:1:\d+: warning: %d prints only the low 32 bits", proc.stderr), proc.stderr


def test_long_go_string_is_never_cut_silently(go_build, bpf, tmp_path):
    app = go_build("go1.19", "tests/programs/values")
    script = tmp_path / "str.gbt"
    script.write_text(f'uprobe:{app}:main.record {{ printf("bt s %s\\n", goarg(s)); }}\n')
    size = "BPFTRACE_MAX_STRLEN" if ON_TRIXIE else "BPFTRACE_STRLEN"
    proc = gobt(str(script), "-c", app, env={size: "64", "GOBT_NOTES": "all"})  # the warning is said once otherwise
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    truth, seen = _lines(proc.stdout, "go"), _lines(proc.stdout, "bt")
    assert len(truth["s"]) == 100
    warning = [line for line in proc.stderr.splitlines() if "warning" in line and "string" in line]
    if ON_TRIXIE:
        # bpftrace 0.23 marks a cut string itself: no need for gobt's word.
        assert seen["s"].endswith("..") and truth["s"].startswith(seen["s"][:-2]), proc.stdout
        assert not warning, proc.stderr
    else:
        assert seen["s"] == truth["s"][:63], proc.stdout  # cut, as bpftrace 0.17 does, with no mark...
        # ...but gobt says so, at the user's line, with the limit and how to raise it.
        assert len(warning) == 1, proc.stderr
        assert "str.gbt:1:" in warning[0] and "63 bytes" in warning[0] and "BPFTRACE_STRLEN" in warning[0], warning

    # Raised, the whole string prints.
    proc = gobt(str(script), "-c", app, env={size: "128"})
    assert proc.returncode == 0, proc.stderr
    assert _lines(proc.stdout, "bt")["s"] == truth["s"], proc.stdout


def test_strings_over_the_bpf_stack_are_refused_at_the_users_line(go_build, bpf, tmp_path):
    # bpftrace 0.17 keeps strings on the 512-byte BPF stack: two params
    # carried to a goret at BPFTRACE_STRLEN=72 failed with "BPF stack limit
    # of 512 bytes" at a bare file offset; gobt says where and what fits.
    app = go_build("go1.19", "tests/programs/values")
    script = tmp_path / "two.gbt"
    script.write_text(f'// two strings\ngoret:{app}:main.pair {{ printf("bt pair %s %s\\n", goarg(a), goarg(b)); }}\n')
    proc = gobt(str(script), "-c", app, env={"BPFTRACE_STRLEN": "72"})
    no_traceback(proc)
    if ON_TRIXIE:  # 0.23 keeps strings in scratch maps: nothing to refuse
        assert proc.returncode == 0, proc.stderr
        return
    assert proc.returncode != 0, proc.stdout
    assert "two.gbt:2:" in proc.stderr and "512 bytes" in proc.stderr, proc.stderr
    m = re.search(r"fits with BPFTRACE_STRLEN=(\d+)", proc.stderr)
    assert m, proc.stderr
    # What gobt says fits does, and prints what Go passed (cut to the size).
    fits = int(m.group(1))
    proc = gobt(str(script), "-c", app, env={"BPFTRACE_STRLEN": str(fits)})
    assert proc.returncode == 0, proc.stderr
    s = _lines(proc.stdout, "go")["s"]
    assert f"bt pair {s[:fits - 1]} {s[:90][:fits - 1]}" in proc.stdout, proc.stdout


# -- Go 1.19's doubled DWARF results (golang/go#51725), on Go's own gofmt ------


@pytest.fixture(scope="module")
def gofmt119(toolchains):
    need("go1.19" in toolchains, "Go toolchain go1.19 is missing (run scripts/setup)")
    return build_package(toolchains["go1.19"], "cmd/gofmt", BUILD_DIR)


def test_doubled_results_are_listed_once(gofmt119):
    proc = gobt("-lv", f"uprobe:{gofmt119}:go/token.(*FileSet).AddFile")
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    results = [line.split()[0] for line in proc.stdout.splitlines() if "at return" in line]
    assert results == ["~r0"], proc.stdout
    proc = gobt("-lv", f"uprobe:{gofmt119}:main.backupFile")
    rows = [line.split()[:2] for line in proc.stdout.splitlines() if "at return" in line]
    assert rows == [["~r0", "string"], ["~r1", "error"]], proc.stdout
    proc = gobt("--emit", "-e", f'goret:{gofmt119}:"go/token.(*FileSet).AddFile" {{ printf("%lx\\n", goarg(~r1)); }}')
    no_traceback(proc)
    assert proc.returncode != 0 and "no parameter or result named '~r1'" in proc.stderr, proc.stderr


def test_doubled_results_read_right_at_return(gofmt119, bpf, tmp_path):
    # main.readFile(filename, info, in) ([]byte, error): refused before, as
    # "DWARF describes 64 bytes ... the runtime records 48".
    src = tmp_path / "f.go"
    src.write_text("package f\n\nvar x = 1\n")
    script = tmp_path / "rf.gbt"
    script.write_text(f'goret:{gofmt119}:main.readFile {{ printf("read %s %d %d\\n", goarg(filename), '
                      'goarg(~r0.len), goarg(~r1)); }\n')
    # A relative name: a long temporary path would print cut at 63 bytes.
    proc = gobt(str(script), "-c", f"{gofmt119} -l f.go", cwd=str(tmp_path))
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    assert f"read f.go {os.path.getsize(src)} 0" in proc.stdout, proc.stdout + proc.stderr
