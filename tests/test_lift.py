"""The background detach lifts the session's breakpoints out of the traced
program at once (gobt/run/breakpoints.py), and only its own: a uprobe that
another tool holds on the very same instruction keeps its breakpoint, and
keeps firing, while gobt's probes are still being closed by the kernel."""

import os
import re
import select
import shutil
import signal
import subprocess
import time

import pytest

import conftest
import manyfuncs
from conftest import read_until, write_program
from test_detach import _attached_to
from test_exit_signals import GOBT, READY, alive, breakpoints, detach_allowance, gone_within

pytestmark = pytest.mark.skipif(os.uname().machine != "x86_64", reason="breakpoints are lifted on x86-64 only")


@pytest.fixture(scope="module")
def many_bin(go_build):
    return go_build("newest", write_program("manyfuncs", manyfuncs.files()))


def _counts(proc, seconds):
    """The @other counts `proc` printed over the next `seconds`."""
    seen = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], max(0, deadline - time.monotonic()))
        if ready:
            seen += os.read(proc.stdout.fileno(), 65536)
    return [int(n) for n in re.findall(rb"^@other: (\d+)$", seen, re.M)]


def test_only_the_sessions_own_breakpoints_are_lifted(many_bin, bpf, tmp_path):
    binary = str(tmp_path / "many")
    shutil.copy(many_bin, binary)
    target = subprocess.Popen([binary], stdout=subprocess.PIPE)
    assert target.stdout.readline() == b"ready\n"
    # Another tool's uprobe at main.F0001's first instruction, and gobt's
    # session: 100 RETs, and a plain uprobe on that same instruction.
    other = subprocess.Popen(
        [os.environ.get("GOBT_BPFTRACE") or shutil.which("bpftrace"), "-p", str(target.pid), "-e",
         f'uprobe:{binary}:main.F0001 {{ @other = count(); }} interval:ms:100 {{ print(@other); }}'],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    gobt = None
    try:
        assert _counts(other, 1.5), "the other tool's probe does not fire"
        script = (f'goret:{binary}:main.F00* {{ @n = count(); }} uprobe:{binary}:main.F0001 {{ @e = count(); }} '
                  f'BEGIN {{ printf("{READY}\\n"); }}')
        gobt = subprocess.Popen([*GOBT, "-p", str(target.pid), "-e", script], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)
        read_until(gobt, READY.encode())
        assert breakpoints(target.pid, binary) == 101
        time.sleep(0.5)
        os.killpg(gobt.pid, signal.SIGINT)
        out, err = gobt.communicate(timeout=120)
        assert gobt.returncode == 0, err
        said = re.search(rb"(\d+) probes are still detaching in the background \(pid (\d+).*"
                         rb"their breakpoints are out of the program already", err)
        assert said, err
        # gobt's kept probes are still open in the background, its RETs'
        # breakpoints are gone, and the one another tool shares is there
        # and fires, before and after the kernel has closed gobt's.
        background = int(said.group(2))
        assert alive(background) and _attached_to(binary)
        assert breakpoints(target.pid, binary) == 1
        counts = _counts(other, 1.0)
        assert len(counts) >= 2 and counts[-1] > counts[0], counts
        assert gone_within(lambda: not alive(background), detach_allowance(101))
        assert breakpoints(target.pid, binary) == 1
        counts = _counts(other, 1.0)
        assert len(counts) >= 2 and counts[-1] > counts[0], counts
    finally:
        for proc in (gobt, other):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        assert gone_within(lambda: not _attached_to(binary), detach_allowance(202))
        assert breakpoints(target.pid, binary) == 0
        target.kill()
        target.wait()


def test_a_debian_pie_package_is_lifted(bpf, tmp_path):
    # Debian's age: stripped (its names from pclntab only), position
    # independent (the breakpoints' addresses are the load bias plus the
    # file offsets), built by nobody here. It waits on its stdin, inside
    # its own code, while gobt's probes are in it.
    age = shutil.which("age")
    conftest.need(age is not None, "Debian's age is not installed (run scripts/setup)")
    key = tmp_path / "key"
    subprocess.run([shutil.which("age-keygen"), "-o", str(key)], check=True, capture_output=True)
    recipient = re.search(r"age1[0-9a-z]+", key.read_text()).group(0)
    target = subprocess.Popen([age, "-r", recipient], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    gobt = None
    try:
        script = f'goret:{age}:filippo.io/age.* {{ @n = count(); }} BEGIN {{ printf("{READY}\\n"); }}'
        gobt = subprocess.Popen([*GOBT, "-p", str(target.pid), "-e", script], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)
        read_until(gobt, READY.encode())
        placed = breakpoints(target.pid, age)
        assert placed > 20, placed
        time.sleep(0.5)  # the keeper's sweeps (30 ms apart) have taken every probe
        os.killpg(gobt.pid, signal.SIGINT)
        out, err = gobt.communicate(timeout=120)
        assert gobt.returncode == 0, err
        said = re.search(rb"(\d+) probes are still detaching in the background \(pid (\d+).*"
                         rb"their breakpoints are out of the program already", err)
        assert said and int(said.group(1)) == placed, err
        assert breakpoints(target.pid, age) == 0
        # The program goes on as if never traced: it encrypts what comes,
        # and the key opens it.
        sealed, _ = target.communicate(b"lifted\n", timeout=60)
        assert target.returncode == 0
        opened = subprocess.run([age, "-d", "-i", str(key)], input=sealed, capture_output=True, check=True)
        assert opened.stdout == b"lifted\n"
        assert gone_within(lambda: not alive(int(said.group(2))), detach_allowance(placed))
    finally:
        for proc in (gobt, target):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
