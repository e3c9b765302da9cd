"""A user's mistake gets one clear error line, its place, and a non-zero exit."""

import re
import subprocess

from conftest import gobt, no_traceback
from gobt.run.messages import _memlock_is_moot

ERROR_LINE = re.compile(r"^gobt: (?P<where>[^ ]+:\d+:\d+: )?error: (?P<msg>.+)$")


def first_error(proc):
    no_traceback(proc)
    assert proc.returncode != 0
    line = proc.stderr.splitlines()[0]
    m = ERROR_LINE.match(line)
    assert m, proc.stderr
    return m, proc.stderr


def test_missing_function_names_the_closest(go_build, tmp_path):
    binary = go_build("go1.19", "tests/programs/multiret")
    script = tmp_path / "typo.gbt"
    script.write_text(f"BEGIN {{ }}\ngoret:{binary}:main.clasify {{ @ = count(); }}\n")
    m, err = first_error(gobt(str(script)))
    col = len(f"goret:{binary}:") + 1
    assert m["where"] == f"{script}:2:{col}: "
    assert "no function matches 'main.clasify'" in m["msg"]
    assert "did you mean: main.classify" in err
    # the caret sits under the function name
    lines = err.splitlines()
    assert lines[2].index("^") == col - 1


def test_missing_binary(tmp_path):
    m, _ = first_error(gobt("-e", "goret:/nonexistent/app:main.f { exit(); }"))
    assert m["where"] == "-e:1:1: "
    assert "binary '/nonexistent/app' not found" in m["msg"]


def test_not_an_elf(tmp_path):
    m, _ = first_error(gobt("-e", "goret:/etc/passwd:main.f { exit(); }"))
    assert "not an ELF binary" in m["msg"]


def test_truncated_binary(go_build, tmp_path):
    binary = go_build("go1.19", "tests/programs/multiret")
    cut = tmp_path / "cut"
    cut.write_bytes(open(binary, "rb").read()[:3000])
    m, _ = first_error(gobt("-e", f"goret:{cut}:main.classify {{ exit(); }}"))
    assert str(cut) in m["msg"]


def test_syntax_error_in_gobt_script(go_build, bpf, tmp_path):
    binary = go_build("go1.19", "tests/programs/multiret")
    script = tmp_path / "open.gbt"
    script.write_text(f'goret:{binary}:main.classify\n{{\n  printf("x\\n");\n')
    proc = gobt(str(script))
    # bpftrace finds it too: its own message, about the user's file, as bpftrace prints it.
    assert proc.returncode == 1
    assert f"{script}:4:1-1: ERROR: syntax error, unexpected end of file" in proc.stderr, proc.stderr
    theirs = subprocess.run([bpf, str(script)], capture_output=True, text=True, timeout=60)
    # bpftrace's lines, but its moot RLIMIT_MEMLOCK line (run/messages.py).
    assert proc.stderr.splitlines() == [line for line in theirs.stderr.splitlines()
                                        if not (_memlock_is_moot() and "couldn't set RLIMIT_MEMLOCK" in line)]


def test_malformed_goret(tmp_path):
    m, err = first_error(gobt("-e", "goret:main.f { exit(); }"))
    assert "is not of the form goret:BINARY:FUNCTION" in m["msg"]


def test_missing_script_file(tmp_path):
    # bpftrace's own message and status (255 on 0.17): tests/test_cli_twin.py
    proc = gobt(str(tmp_path / "nope.gbt"))
    assert "failed to open file" in proc.stderr and proc.returncode != 0


def test_unsafe_builtin_is_not_silently_enabled(go_build, bpf):
    binary = go_build("go1.19", "tests/programs/multiret")
    proc = gobt("-e", f'goret:{binary}:main.classify {{ system("true"); }}')
    no_traceback(proc)
    assert proc.returncode != 0
    assert "adding --unsafe" not in proc.stderr
    # Where the probes need --unsafe (bpftrace 0.17 without bfd) gobt says
    # why it will not add it; elsewhere bpftrace itself refuses system().
    assert re.search(r"need --unsafe .*calls system\(\)|system\(\) is an unsafe function", proc.stderr), proc.stderr


def test_bad_pid_option():
    proc = gobt("-p", "abc", "-e", "BEGIN { exit(); }")
    assert "'abc' is not a valid decimal number" in proc.stderr and proc.returncode == 1
