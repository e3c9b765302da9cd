"""Results at once however many probes: gobt keeps bpftrace's uprobes open
past its exit (gobt/run/keeper.py) and a background process detaches them.

What must hold, on real bpftrace and a real Go program with ~50 RET probes:
the output is bpftrace's own, byte for byte (every kind of map, END, -f
json), whether bpftrace ends by exit(), by Ctrl-C at a terminal or at the
end of -c; gobt says the detach goes on in the background, and once that
process is gone no uprobe of the session is left. No timings here: bench/
measures how soon the results come.
"""

import ctypes
import fcntl
import os
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import termios

import pytest

import conftest
from conftest import asleep_in_epoll, gobt, no_traceback, read_until

GOBT = getattr(conftest, "GOBT_CMD", [sys.executable, "-m", "gobt"])
CALLS = 234  # what tests/programs/detach makes: main says "done 234"
NEVER = 10 ** 9

# Every kind of map bpftrace prints at exit: count, sum, avg, min, max,
# stats, hist, lhist, one keyed by several keys (their counts all differ,
# so the order is bpftrace's sort, not the hash's), string values, one that
# is never touched and one cleared in END. The interval probe ends the run
# with exit() once every call was seen ($1; NEVER leaves it to Ctrl-C or -c).
SCRIPT = """\
goret:{bin}:main.F* {{
	@count = count();
	@sum = sum(retval);
	@avg = avg(retval);
	@min = min(retval);
	@max = max(retval);
	@stats = stats(retval);
	@hist = hist(retval);
	@lhist = lhist((uint64)retval % 100, 0, 100, 10);
	@per_hundred[(uint64)retval / 100] = count();
	@word[(uint64)retval / 100] = "seen";
	@cleared[(uint64)retval / 100] = count();
	@seen++;
}}
goret:{bin}:main.Never {{ @never = count(); }}
interval:ms:20 {{ if (@seen == $1) {{ exit(); }} }}
END {{ clear(@cleared); printf("END ran once\\n"); }}
"""


@pytest.fixture(scope="module")
def detach_bin(go_build):
    return go_build("newest", "tests/programs/detach")


@pytest.fixture
def session(detach_bin, bpf, tmp_path):
    """A copy of the program of its own (a uprobe belongs to a file, so
    what is left attached can be told from other tests' probes), and the
    script on it."""
    binary = tmp_path / "detachprog"
    shutil.copy(detach_bin, binary)
    path = tmp_path / "all.bt"
    path.write_text(SCRIPT.format(bin=binary))
    emitted = gobt("--emit", str(path))
    no_traceback(emitted)
    assert emitted.returncode == 0, emitted.stderr
    plain = tmp_path / "emitted.bt"
    plain.write_text(emitted.stdout)
    assert emitted.stdout.count("uprobe:") >= 40
    return str(binary), str(path), str(plain)


def run(cmd, ending, binary, timeout=300):
    """Run cmd (gobt or bpftrace) to its end: 'exit' and '-c' on their own,
    'ctrl-c' by ^C at a terminal once the program said it is done.
    (stdout, stderr, exit status)."""
    if ending != "ctrl-c":
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout)
        return proc.stdout, proc.stderr, proc.returncode
    master, slave = os.openpty()

    def own_terminal():
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(cmd, stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True, preexec_fn=own_terminal, pass_fds=(slave,))
    os.close(slave)
    try:
        seen = read_until(proc, b"done %d\n" % CALLS, timeout=120)
        _asleep(proc)
        os.write(master, b"\x03")  # the terminal signals the whole group
        out, err = proc.communicate(timeout=timeout)
    except BaseException:
        _kill_tree(proc)
        raise
    finally:
        os.close(master)
    return seen + out, err, proc.returncode


def _bpftrace_pid(proc):
    kids = open(f"/proc/{proc.pid}/task/{proc.pid}/children").read().split()
    return int(kids[0]) if kids and "bpftrace" in _comm(int(kids[0])) else proc.pid


def _comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read()
    except OSError:
        return ""


def _asleep(proc):
    # Signal bpftrace while it sleeps in epoll_wait (conftest.asleep_in_epoll).
    asleep_in_epoll(_bpftrace_pid(proc))

def _kill_tree(proc):
    for pid in open(f"/proc/{proc.pid}/task/{proc.pid}/children").read().split():
        os.kill(int(pid), signal.SIGKILL)
    proc.kill()
    proc.communicate()


def commands(session, ending, fmt):
    binary, script, plain = session
    calls = str(CALLS) if ending == "exit" else str(NEVER)
    command = f"{binary} hold" if ending != "-c" else binary
    opts = ["--unsafe", *(["-f", "json"] if fmt == "json" else []), "-c", command]
    bpftrace = os.environ.get("GOBT_BPFTRACE") or shutil.which("bpftrace")
    return [*GOBT, *opts, script, calls], [bpftrace, *opts, plain, calls]


@pytest.mark.parametrize("ending, fmt", [("exit", "text"), ("exit", "json"), ("ctrl-c", "text"), ("-c", "text")])
def test_output_is_bpftraces_and_the_detach_goes_on_in_the_background(ending, fmt, session):
    binary = session[0]
    ours_cmd, theirs_cmd = commands(session, ending, fmt)
    out, err, code = run(ours_cmd, ending, binary)
    err = err.decode(errors="replace")
    assert "Traceback" not in err, err
    assert code == 0, err
    said = re.findall(r"^gobt: (\d+) probes are still detaching in the background \(pid (\d+), about \d+ s\)(?:; .*)?$",
                      err, re.M)
    background = None
    # A -c command that ends within the keeper's first sweeps after the
    # attach (30 ms apart) leaves the detach to bpftrace itself: the output
    # is still bpftrace's, only later. Seen once under load in CI.
    if not (ending == "-c" and not said):
        assert len(said) == 1, err
        count, pid = int(said[0][0]), int(said[0][1])
        assert count >= 40
        # gobt has returned; the background process is the one that detaches.
        background = _pidfd(pid)

    their_out, their_err, their_code = run(theirs_cmd, ending, binary)
    assert their_code == 0, their_err
    assert out == their_out
    text = out.decode()
    assert text.count("END ran once") == 1
    if fmt == "json":
        assert '"@per_hundred"' in text and '"hist"' in text, text
    else:
        for line in ("@count: %d\n" % CALLS, "@seen: %d\n" % CALLS, "@stats: count %d," % CALLS, "@hist:",
                     "@lhist:", "@word[0]: seen\n"):
            assert line in text, text

    if background is not None:
        select.select([background], [], [], 300)
        os.close(background)
    assert not _attached_to(binary), "uprobes left on the program after the background detach"


def _pidfd(pid):
    try:
        return os.pidfd_open(pid)
    except ProcessLookupError:
        return None  # already done


def test_signal_keeps_nothing(session):
    # A kept probe's program runs until the background detach reaches it,
    # and signal() would reach the traced program: such scripts detach in
    # bpftrace, as they always did.
    binary, script, _ = session
    with open(script, "a") as f:
        f.write(f"goret:{binary}:main.Never {{ signal(\"KILL\"); }}\n")
    out, err, code = run([*GOBT, "--unsafe", "-c", binary, script, str(NEVER)], "-c", binary)
    assert code == 0, err
    assert b"detaching in the background" not in err
    assert b"@count: %d\n" % CALLS in out
    assert not _attached_to(binary)


# -- what is attached, from the kernel ---------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)
_QUERY = struct.Struct("<IIIIQIIQQ")


def _attached_to(binary):
    """(pid, fd) of every uprobe on `binary` held by any process."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") != "anon_inode:[perf_event]":
                    continue
            except OSError:
                continue
            if _uprobe_path(int(pid), int(fd)) == binary:
                found.append((int(pid), int(fd)))
    return found


def _uprobe_path(pid, fd):
    # bpf(BPF_TASK_FD_QUERY): the file of a uprobe (types 4, 5) perf event.
    buf = ctypes.create_string_buffer(4096)
    attr = ctypes.create_string_buffer(_QUERY.pack(pid, fd, 0, 4096, ctypes.addressof(buf), 0, 0, 0, 0), 128)
    if _libc.syscall(321, 20, attr, 128) < 0:
        return None
    fd_type = _QUERY.unpack_from(attr.raw)[6]
    return buf.value.decode(errors="replace") if fd_type in (4, 5) else None
