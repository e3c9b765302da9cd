"""What scripts/setup installs, checked as a user on a fresh Debian 12 meets it.

`sudo` resets PATH to SUDO_PATH, where python3 is Debian's externally
managed /usr/bin/python3: gobt lives in its own venv made from that Python,
/usr/local/bin/gobt links into it, and trixie's bpftrace 0.23 runs from a
private prefix through a launcher script. These tests check the installed
files, not the checkout, so scripts/test runs them once (in its first
pass): whichever bpftrace a pass picks, the installation is the same.
"""

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from conftest import need, no_traceback
from toolchains import ROOT, TRIXIE_BPFTRACE

pytestmark = pytest.mark.bpftrace_independent

SUDO_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
VENV = "/usr/local/lib/gobt/venv"
COMMAND = "/usr/local/bin/gobt"


def sudo_env(**extra):
    """The environment `sudo CMD` gives: PATH reset, no pyenv, no venv."""
    env = {"PATH": SUDO_PATH, "HOME": os.environ.get("HOME", "/root"), "LANG": "C.UTF-8"}
    env.update(extra)
    return env


def installed():
    need(os.path.lexists(COMMAND), f"{COMMAND} is not installed (run scripts/setup)")


def test_command_resolves_into_the_venv():
    installed()
    found = subprocess.run(["sh", "-c", "command -v gobt"], capture_output=True, text=True, env=sudo_env())
    assert found.stdout.strip() == COMMAND
    target = os.path.realpath(COMMAND)
    assert target == os.path.join(VENV, "bin", "gobt"), target
    with open(target) as f:
        shebang = f.readline()
    assert shebang.startswith("#!") and shebang[2:].split()[0].startswith(VENV + "/bin/python"), shebang


def test_venv_is_made_from_debians_python():
    installed()
    with open(os.path.join(VENV, "pyvenv.cfg")) as f:
        cfg = dict(line.split(" = ", 1) for line in f.read().splitlines() if " = " in line)
    assert cfg["home"] == "/usr/bin", cfg
    assert cfg.get("include-system-site-packages") == "false", cfg
    out = subprocess.run([os.path.join(VENV, "bin", "python"), "-c",
                          "import sys; print(sys.base_prefix); print(sys.prefix)"],
                         capture_output=True, text=True, env=sudo_env(), check=True).stdout.split()
    assert out == ["/usr", VENV]
    # And Debian's python3 stays clean: gobt never goes into it (PEP 668).
    proc = subprocess.run(["/usr/bin/python3", "-c", "import gobt"], capture_output=True, text=True,
                          env=sudo_env(), cwd="/")
    assert proc.returncode != 0


def test_installed_gobt_is_this_checkouts_code():
    # scripts/test runs scripts/setup first, which installs a copy of the
    # checkout's code whenever it differs: the tests run the code under test.
    installed()
    need(os.environ.get("GOBT_TEST_GOBT") == COMMAND, "GOBT_TEST_GOBT is not the installed gobt (run scripts/test)")
    proc = subprocess.run([os.path.join(VENV, "bin", "python"), "-c", "import gobt; print(gobt.__file__)"],
                          capture_output=True, text=True, env=sudo_env(), cwd="/", check=True)
    package = os.path.dirname(proc.stdout.strip())
    assert package.startswith(VENV + os.sep), proc.stdout  # a copy, not the checkout
    stale = []
    for folder, _, files in os.walk(os.path.join(ROOT, "gobt")):
        for name in files:
            if name.endswith(".py"):
                mine = os.path.join(folder, name)
                theirs = os.path.join(package, os.path.relpath(mine, os.path.join(ROOT, "gobt")))
                if not os.path.exists(theirs) or open(mine, "rb").read() != open(theirs, "rb").read():
                    stale.append(os.path.relpath(mine, ROOT))
    assert not stale, f"the installed gobt differs from the checkout in {stale} (run scripts/setup)"


def test_installed_gobt_needs_no_checkout():
    # The launcher and the venv name no checkout: moving or deleting the
    # clone leaves /usr/local/bin/gobt working.
    installed()
    with open(os.path.realpath(COMMAND)) as f:
        launcher = f.read()
    assert os.path.realpath(ROOT) not in launcher, launcher
    for folder, _, files in os.walk(VENV):
        for name in files:
            if name.endswith(".pth") or name.startswith("__editable__"):
                with open(os.path.join(folder, name), errors="replace") as f:
                    assert os.path.realpath(ROOT) not in f.read(), os.path.join(folder, name)


def as_nobody(*cmd, cwd="/", **env):
    need(os.geteuid() == 0, "running as another user needs root")
    return subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *cmd],
                          capture_output=True, text=True, env=sudo_env(HOME="/nonexistent", **env), cwd=cwd,
                          timeout=120)


def test_a_user_without_root_runs_gobt(go_build):
    # Whatever the checkout's permissions (a clone in /root is 0700). The
    # files go where nobody can read them (pytest's tmp_path is 0700).
    installed()
    binary = go_build("go1.19", "tests/programs/multiret")
    shared = tempfile.mkdtemp(prefix="gobt-nobody-")
    try:
        os.chmod(shared, 0o755)
        app = os.path.join(shared, "app")
        shutil.copy(binary, app)
        os.chmod(app, 0o755)
        script = os.path.join(shared, "ret.gbt")
        with open(script, "w") as f:
            f.write(f"goret:{app}:main.classify {{ @[retval] = count(); }}\n")
        os.chmod(script, 0o644)
        for args in (["--help"], ["--emit", script], ["-l", f"goret:{app}:main.classify"],
                     ["-lv", f"goret:{app}:main.classify"]):
            proc = as_nobody(COMMAND, *args, XDG_CACHE_HOME="/nonexistent")
            no_traceback(proc)
            assert proc.returncode == 0, (args, proc.stderr)
            assert (proc.stdout if args[0] != "--help" else proc.stderr).strip(), args  # help: stderr, as bpftrace's
        proc = as_nobody("man", "-P", "cat", "gobt", MANWIDTH="80")
        assert proc.returncode == 0 and "goret" in proc.stdout, proc.stderr
    finally:
        shutil.rmtree(shared, ignore_errors=True)


def test_emit_with_sudos_path(tmp_path):
    installed()
    plain = tmp_path / "plain.bt"
    plain.write_text('BEGIN { printf("hi\\n"); exit(); }\n')
    proc = subprocess.run(["gobt", "--emit", str(plain)], capture_output=True, text=True, env=sudo_env(),
                          cwd=tmp_path, timeout=60)
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == plain.read_text()


def test_emit_a_gobt_construct_with_sudos_path(go_build, tmp_path):
    # A goret needs the parser, pyelftools and capstone: all from the venv.
    installed()
    binary = go_build("go1.19", "tests/programs/multiret")
    script = tmp_path / "ret.gbt"
    script.write_text(f"goret:{binary}:main.classify {{ @[retval] = count(); }}\n")
    proc = subprocess.run(["gobt", "--emit", str(script)], capture_output=True, text=True,
                          env=sudo_env(XDG_CACHE_HOME=str(tmp_path / "cache")), timeout=120)
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    assert "goret" not in proc.stdout and re.search(r"uprobe:\S+:", proc.stdout), proc.stdout


def test_man_finds_the_page_with_sudos_path():
    need(os.path.exists("/usr/local/share/man/man1/gobt.1"), "scripts/setup has not installed the man page")
    proc = subprocess.run(["man", "-w", "gobt"], capture_output=True, text=True, env=sudo_env())
    assert proc.returncode == 0, proc.stderr
    with open(os.path.realpath(proc.stdout.strip()), "rb") as f, open(os.path.join(ROOT, "man", "gobt.1"), "rb") as g:
        assert f.read() == g.read(), "the installed man page is not this checkout's (run scripts/setup)"


# trixie's bpftrace 0.23 in its private prefix: the launcher must behave
# like the program itself.

def launcher():
    need(os.access(TRIXIE_BPFTRACE, os.X_OK), f"{TRIXIE_BPFTRACE} is missing (run scripts/setup)")
    need(os.geteuid() == 0, "bpftrace needs root")
    return TRIXIE_BPFTRACE


def test_trixie_bpftrace_info():
    proc = subprocess.run([launcher(), "--info"], capture_output=True, text=True, env=sudo_env(), timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"^\s*version: v0\.23\.", proc.stdout, re.M), proc.stdout
    assert re.search(r"^\s*bfd: yes", proc.stdout, re.M), proc.stdout
    assert re.search(r"uprobe_multi: yes", proc.stdout), proc.stdout


def test_trixie_bpftrace_runs_a_program():
    proc = subprocess.run([launcher(), "-e", 'BEGIN { printf("hi\\n"); exit(); }'],
                          capture_output=True, text=True, env=sudo_env(), timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "hi" in proc.stdout.splitlines()


def test_trixie_bpftrace_relative_paths_and_child(go_build, tmp_path):
    # The launcher keeps the caller's cwd: -c ./app and uprobe:./app mean
    # the same as for any bpftrace, and the child runs on the host's libc.
    bpftrace = launcher()
    binary = go_build("go1.19", "tests/programs/multiret")
    os.symlink(binary, tmp_path / "app")
    proc = subprocess.run([bpftrace, "-e", "uprobe:./app:main.classify { @n = count(); }", "-c", "./app 10"],
                          capture_output=True, text=True, env=sudo_env(), cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"^@n: 10$", proc.stdout, re.M), proc.stdout
    assert len(re.findall(r"^path \d+ \d+$", proc.stdout, re.M)) > 0  # the child's own output


def test_trixie_bpftrace_is_the_process_and_gets_sigint(tmp_path):
    # exec all the way: the pid the caller holds is bpftrace's (named
    # bpftrace, not ld-linux), and Ctrl-C ends it cleanly, END included.
    out = tmp_path / "out"
    with open(out, "w") as f:
        proc = subprocess.Popen([launcher(), "-e", 'interval:ms:100 { @n = count(); } END { printf("end\\n"); }'],
                                stdout=f, stderr=subprocess.STDOUT, env=sudo_env())
    try:
        deadline = time.monotonic() + 60
        while "Attaching" not in out.read_text() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        with open(f"/proc/{proc.pid}/comm") as f:
            assert f.read().strip() == "bpftrace"
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0, out.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = out.read_text()
    assert "end" in text.splitlines() and re.search(r"^@n: \d+$", text, re.M), text
