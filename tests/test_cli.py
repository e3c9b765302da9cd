"""gobt as people run it: the installed command, shebang scripts, no leftovers."""

import os
import re
import shlex
import shutil
import subprocess
import sys

from conftest import need, no_traceback


def test_shebang_script_runs_through_gobt(go_build, bpf, tmp_path):
    need(shutil.which("gobt") is not None, "the gobt command is not installed (run scripts/setup)")
    binary = go_build("go1.19", "tests/programs/multiret")
    script = tmp_path / "classify.gbt"
    script.write_text(
        "#!/usr/bin/env gobt\n"
        "// the returns of main.classify, by value\n"
        f"goret:{binary}:main.classify\n"
        "{\n"
        "  @[retval] = count();\n"
        "}\n"
    )
    script.chmod(0o755)
    proc = subprocess.run([str(script), "-c", f"{binary} 70"], capture_output=True, text=True, timeout=120)
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    program = {int(v): int(c) for v, c in re.findall(r"^path (\d+) (\d+)$", proc.stdout, re.M)}
    probes = {int(v): int(c) for v, c in re.findall(r"^@\[(\d+)\]: (\d+)$", proc.stdout, re.M)}
    assert probes == program and sum(probes.values()) == 70


def test_leaves_no_temporary_files(go_build, bpf, tmp_path):
    binary = go_build("go1.19", "tests/programs/multiret")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    big = "\n".join(f"// filler {i}" for i in range(6000))  # > 128 KB: not an argument
    script = tmp_path / "s.gbt"
    script.write_text(f"goret:{binary}:main.classify {{ @n = count(); }}\n{big}\n")
    proc = subprocess.run(["python3", "-m", "gobt", str(script), "-c", f"{binary} 10"],
                          capture_output=True, text=True, env=env, timeout=120)
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"^@n: 10$", proc.stdout, re.M)
    assert os.listdir(tmp) == []  # the program went to bpftrace through a memfd


def test_exit_status_is_bpftrace_own(go_build, bpf):
    # An attach failure is bpftrace's to report; gobt's exec leaves its code.
    proc = subprocess.run(["python3", "-m", "gobt", "-e", "uprobe:/bin/true:no_such_function_here { }"],
                          capture_output=True, text=True, timeout=60)
    theirs = subprocess.run([bpf, "-e", "uprobe:/bin/true:no_such_function_here { }"],
                            capture_output=True, text=True, timeout=60)
    assert theirs.returncode != 0
    assert proc.returncode == theirs.returncode


def test_listing_into_a_closed_pipe_ends_like_bpftrace(go_build):
    # `gobt -l ... | head -1`: SIGPIPE, as bpftrace's own listing ends, never
    # an "internal error".
    binary = go_build("go1.19", "tests/programs/multiret")
    cmd = f"{shlex.quote(sys.executable)} -m gobt --no-cache -l 'goret:{binary}:*' | head -1; echo \"${{PIPESTATUS[0]}}\""
    proc = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(os.path.abspath(__file__)))})
    assert proc.stderr == "", proc.stderr
    first, status = proc.stdout.splitlines()
    assert first.startswith("goret:") and status == "141", proc.stdout
