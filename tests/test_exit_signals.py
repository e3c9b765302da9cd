"""gobt's exit path under signals, on a busy Go program with many probes
(tests/manyfuncs.py, traced with -p): bpftrace never outlives gobt, a
signal sent to gobt's process group reaches bpftrace once, and whatever is
killed when, no uprobe stays on the program once the processes that held
them are gone. No timings: bench/ measures how soon."""

import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time

import pytest

import conftest
from textdiff import breakpoints  # noqa: F401 - the exit tests import it from here
import manyfuncs
from conftest import asleep_in_epoll, read_until, write_program
from test_detach import _attached_to

GOBT = getattr(conftest, "GOBT_CMD", [sys.executable, "-m", "gobt"])
READY = "gobt-test-ready"


@pytest.fixture(scope="module")
def many_bin(go_build):
    return go_build("newest", write_program("manyfuncs", manyfuncs.files()))


@pytest.fixture
def target(many_bin, bpf, tmp_path):
    """A copy of its own (what stays attached is told by the file), running."""
    binary = str(tmp_path / "many")
    shutil.copy(many_bin, binary)
    proc = subprocess.Popen([binary], stdout=subprocess.PIPE)
    assert proc.stdout.readline() == b"ready\n"
    yield binary, proc.pid
    proc.kill()
    proc.wait()


def start(target, probes, **kwargs):
    """gobt tracing the target with about `probes` RET probes."""
    binary, pid = target
    points, _ = manyfuncs.attach_points(binary, probes)
    script = f'{points} {{ @n = count(); }} BEGIN {{ printf("{READY}\\n"); }}'
    env = {**os.environ, "BPFTRACE_MAX_PROBES": "2100"}
    return subprocess.Popen([*GOBT, "-p", str(pid), "-e", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True, env=env, **kwargs)


def bpftrace_of(proc, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for kid in open(f"/proc/{proc.pid}/task/{proc.pid}/children").read().split():
            try:
                with open(f"/proc/{kid}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            if b"--info" not in argv and b"--emit-elf" not in argv:  # gobt's own questions to bpftrace
                return int(kid)
        time.sleep(0.01)
    raise AssertionError("gobt started no bpftrace")


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] not in ("Z", "X")
    except OSError:
        return False


def gone_within(check, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return check()


def cleanup(*pids):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, TypeError):
            pass


# The kernel detaches uprobes one at a time, ~0.1-0.2 s each: what stays
# attached is waited for that long (and more, on a busy machine).
def detach_allowance(probes):
    return 60 + 0.5 * probes


# 30 probes by default (CI's small form; test_signal_moments kills in the
# middle of the attach at other moments); scripts/test-exit-full runs
# 1,000, whose attach takes bpftrace several seconds (GOBT_SIGKILL_PROBES).
SIGKILL_PROBES = int(os.environ.get("GOBT_SIGKILL_PROBES", "30"))


def _background_of(proc, timeout=300):
    """The pid gobt says detaches its probes in the background."""
    seen = b""
    deadline = time.monotonic() + timeout
    while True:
        found = re.search(rb"detaching in the background \(pid (\d+)", seen)
        if found:
            return int(found.group(1))
        ready, _, _ = select.select([proc.stderr], [], [], max(0, deadline - time.monotonic()))
        chunk = os.read(proc.stderr.fileno(), 65536) if ready else b""
        if not chunk:
            raise AssertionError(f"no background detach announced: {seen[-2000:]!r}")
        seen += chunk


@pytest.mark.parametrize("victim,stage", [
    ("gobt", "starting"), ("gobt", "attaching"), ("gobt", "running"),
    ("bpftrace", "attaching"), ("bpftrace", "running"),
    ("the background detach", "detaching"),
])
def test_sigkill_at_any_moment_leaves_nothing_attached(victim, stage, target):
    # SIGKILL cannot be caught: what holds is that bpftrace dies with gobt
    # (PR_SET_PDEATHSIG), gobt ends when bpftrace does, and whichever dies,
    # the kernel takes back every uprobe its fds held.
    binary, _ = target
    proc = start(target, SIGKILL_PROBES)
    bpftrace = background = None
    try:
        bpftrace = bpftrace_of(proc)
        if stage == "attaching":
            read_until(proc, b"Attaching")
        elif stage in ("running", "detaching"):
            read_until(proc, READY.encode())
        if victim == "gobt":
            proc.kill()
        elif victim == "bpftrace":
            os.kill(bpftrace, signal.SIGKILL)
        else:
            asleep_in_epoll(bpftrace)
            os.killpg(proc.pid, signal.SIGINT)
            background = _background_of(proc)
            os.kill(background, signal.SIGKILL)
        proc.wait(timeout=detach_allowance(SIGKILL_PROBES))  # not its pipes: an orphan would hold them
        proc.stdout.close()
        proc.stderr.close()
        allowance = detach_allowance(SIGKILL_PROBES)
        assert gone_within(lambda: not alive(bpftrace), allowance), "bpftrace outlived gobt"
        assert gone_within(lambda: not _attached_to(binary), allowance), _attached_to(binary)
        assert gone_within(lambda: breakpoints(target[1], binary) == 0, allowance)
    finally:
        cleanup(proc.pid, bpftrace, background)


@pytest.mark.parametrize("sig", [signal.SIGINT])  # SIGTERM came once on the old code too
def test_a_signal_to_the_process_group_reaches_bpftrace_once(sig, target, bpf):
    # `kill -INT -PGID` (or `timeout -s INT`) signals gobt and bpftrace
    # alike: gobt must not send bpftrace a second one. A second bpftrace
    # counts the signals the kernel queues for it.
    binary, _ = target
    proc = start(target, 10)
    observer = None
    try:
        read_until(proc, READY.encode())
        pid = bpftrace_of(proc)
        observer = subprocess.Popen(
            [shutil.which("bpftrace"), "-e",
             f"tracepoint:signal:signal_generate /args->pid == {pid} && args->sig == {int(sig)} && args->result == 0/"
             " { @signals = count(); } BEGIN { printf(\"watching\\n\"); }"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        read_until(observer, b"watching")
        asleep_in_epoll(pid)
        os.killpg(proc.pid, sig)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert b"@n: " in out, out
        observer.send_signal(signal.SIGINT)
        seen, _ = observer.communicate(timeout=60)
        assert re.search(rb"^@signals: 1$", seen, re.M), seen
    finally:
        cleanup(proc.pid, observer and observer.pid)
