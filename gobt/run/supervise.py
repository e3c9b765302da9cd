"""Run bpftrace as a child whose stderr passes through gobt, and otherwise
behave exactly as if gobt had exec'd it.

gobt execs bpftrace when it has nothing to say about bpftrace's output. When
it rewrote the program it stays as a thin parent, so that bpftrace's
messages can be put in the user's terms (messages.py). Everything else is
bpftrace's:

- stdin and stdout are bpftrace's own (inherited): `-c`, `-p`, piping and
  the order and timing of output are untouched. Only stderr is a pipe,
  copied to gobt's stderr line by line as it comes (a partial line after
  PARTIAL_LINE_WAIT seconds of silence, unless the filter holds it: it
  may be part of a message the filter rewrites or drops).
- Signals: SIGINT, SIGTERM, SIGHUP, SIGQUIT and SIGUSR1 (bpftrace prints
  its maps on it) sent to gobt are sent on to bpftrace, once. A signal the
  kernel sent to the whole process group (Ctrl-C or Ctrl-\\ at a terminal,
  a hang-up) has reached bpftrace too, which shares gobt's group, and is not
  sent again: bpftrace 0.17 takes a second SIGINT after its main loop as
  "exit now" and would not print its maps. Nor is a kill(2) of the group
  (`kill -INT -PGID`, `timeout -s INT`), told apart by _got_it_too.
- The exit status is bpftrace's: its code, or death by the same signal.
- bpftrace never outlives gobt: it is started with PR_SET_PDEATHSIG
  (SIGKILL), so a gobt killed by SIGKILL takes bpftrace with it instead of
  leaving it tracing for nobody. The flag survives the exec of trixie's
  shell launcher and of the loader it execs, and belongs to the thread
  that forked: start() runs in gobt's main thread, the last to end.
- With keep_probes (the number of uprobes gobt made), a Keeper (keeper.py)
  holds bpftrace's uprobes open, so that its exit is not slowed by their
  detach; after bpftrace has exited, `background` is (pid, count, start)
  of the process that closes them, while it runs, or None.

Use:
    child = Supervisor(argv, line_filter, pass_fds)
    child.start()
    ...           child.send(signal.SIGUSR1) from another thread, if need be
    exit_like(child.wait())       # gobt ends as bpftrace ended

`line_filter` has feed(line: bytes) -> [bytes], end() -> [bytes] and
holds(partial line: bytes) -> bool.
"""

import os
import select
import signal
import threading

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1)
PARTIAL_LINE_WAIT = 0.05
_PR_SET_PDEATHSIG = 1
_SI_KERNEL = 0x80  # si_code of a signal the kernel sent (tty, hang-up)
_SI_USER = 0  # kill(2)
_STOPS = (signal.SIGINT, signal.SIGTERM)
REACTION_WAIT = 0.2
RESEND_AFTER = 1.0


class Supervisor:
    def __init__(self, argv, line_filter=None, pass_fds=(), argv0=None, keep_probes=0):
        self.argv = list(argv)  # argv[0]: the path to run
        self.argv0 = argv0  # the name to run it under, if not that path
        self.filter = line_filter
        self.pass_fds = tuple(pass_fds)
        self.pid = None
        self.keep_probes = keep_probes
        self.keeper = None
        self.background = None
        self._status = None
        self._early = set()
        self._lock = threading.Lock()
        self._watching = False

    def start(self):
        # Blocked here (and in every thread started after), the forwarded
        # signals wait for _forward_signals, which can see who sent them.
        signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED)
        import subprocess

        # Pending now means sent before bpftrace existed: a fork does not
        # inherit it, so even a Ctrl-C must then be sent on.
        self._early = set(signal.sigpending()) & set(FORWARDED)
        try:
            # restore_signals: SIGPIPE and SIGXFSZ back to default (Python
            # ignores them); the mask is undone in the child, so bpftrace
            # starts as from a shell. (posix_spawn would leave glibc's
            # internal signals ignored in it.)
            self._proc = subprocess.Popen([self.argv0 or self.argv[0], *self.argv[1:]], executable=self.argv[0],
                                          stderr=subprocess.PIPE, pass_fds=self.pass_fds,
                                          restore_signals=True, preexec_fn=_child_setup(os.getpid()))
        except BaseException:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED)
            raise
        self.pid = self._proc.pid
        self._stderr = self._proc.stderr.fileno()
        if self.keep_probes:
            from .keeper import Keeper

            self.keeper = Keeper.start(self.pid, self.keep_probes)
        threading.Thread(target=self._forward_signals, daemon=True).start()

    def send(self, sig):
        """Send bpftrace a signal, unless it has been reaped."""
        with self._lock:
            if self._status is None:
                os.kill(self.pid, sig)

    def wait(self):
        """Copy bpftrace's stderr until it closes, then reap bpftrace: the
        raw wait status."""
        self._copy_stderr()
        _, status = os.waitpid(self.pid, 0)
        with self._lock:
            self._status = status
        if self.keeper is not None:
            # bpftrace's output is complete: the detach may go on without us.
            self.background = self.keeper.release()
        return status

    def _forward_signals(self):
        while True:
            info = signal.sigwaitinfo(FORWARDED)
            # First: bpftrace may be closing them already.
            fds = _perf_events(self.pid) if info.si_signo in _STOPS else None
            if fds and not self._watching:
                self._watching = True
                threading.Thread(target=self._until_it_stops, args=(info.si_signo, fds), daemon=True).start()
            early = info.si_signo in self._early
            if self.keeper is not None and info.si_signo != signal.SIGUSR1:
                # bpftrace may be on its way out: whatever it attached since
                # the last poll must be kept before it starts closing.
                self.keeper.sweep(signalled=info.si_signo in (signal.SIGINT, signal.SIGTERM))
            self._early.discard(info.si_signo)
            if not early and os.getpgid(0) == _pgid(self.pid):
                if info.si_code == _SI_KERNEL:
                    continue  # the terminal signalled the group: bpftrace has it
                if info.si_code == _SI_USER and _got_it_too(self.pid, info.si_signo, fds):
                    continue  # kill -INT -PGID, timeout -s INT: so did bpftrace
            try:
                self.send(info.si_signo)
            except ProcessLookupError:
                pass

    def _until_it_stops(self, sig, fds):
        """bpftrace 0.17 sees SIGINT or SIGTERM only as an EINTR of its
        epoll_wait, which waits without end when no probe prints: one that
        lands while it is awake (finishing its attach, reading output) is
        lost, and the user's Ctrl-C does nothing, with every probe on. So
        while bpftrace, told to stop, still sleeps there with all its
        probes RESEND_AFTER later, it is told again: it never saw the
        first, and it does not see this one as a second."""
        import time

        while True:
            time.sleep(RESEND_AFTER)
            now = _fd_numbers(self.pid)
            pending = _pending(self.pid)
            if now is None or pending is None or not fds <= now:
                return  # gone, or on its way out
            if pending & (1 << (sig - 1)) or _wchan(self.pid) != "do_epoll_wait":
                continue  # it has not looked yet
            try:
                self.send(sig)
            except ProcessLookupError:
                return

    def _copy_stderr(self):
        fd = self._stderr
        pending = b""
        while True:
            if pending:
                # bpftrace writes a message a character at a time: on a busy
                # machine it can pause mid-line, and a line shown as it is
                # cannot then be rewritten or dropped (a caret of bpftrace's
                # left without its newline, the next message on its line).
                held = self.filter is not None and self.filter.holds(pending)
                ready, _, _ = select.select([fd], [], [], None if held else PARTIAL_LINE_WAIT)
                if not ready:  # a partial line, and silence: show it as it is
                    _write(self._filtered(pending, partial=True))
                    pending = b""
                    continue
            try:
                data = os.read(fd, 65536)
            except InterruptedError:
                continue
            if not data:
                break
            pending += data
            *lines, pending = pending.split(b"\n")
            _write(b"".join(self._filtered(line + b"\n") for line in lines))
        if pending:
            _write(self._filtered(pending, partial=True))
        if self.filter is not None:
            _write(b"".join(self.filter.end()))
        self._proc.stderr.close()

    def _filtered(self, line, partial=False):
        if self.filter is None or partial:
            return line
        try:
            return b"".join(self.filter.feed(line))
        except Exception:
            # A bug in the filter must not leave bpftrace writing into a pipe
            # nobody reads: from here on its stderr goes through as it is.
            if os.environ.get("GOBT_DEBUG"):
                raise
            self.filter = None
            return line


def _child_setup(parent):
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)  # loaded here, not in the child

    def setup():
        # In the child, between fork and exec: only async-signal-safe work.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED)
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != parent:  # gobt died before the prctl
            os._exit(128 + signal.SIGKILL)

    return setup


def _got_it_too(pid, sig, fds):
    """Whether bpftrace got this kill(2)'s signal as well: it was sent to
    the process group, which bpftrace shares (`kill -INT -PGID`, `timeout
    -s INT`), and sending it again would make two (0.17 takes a second
    SIGINT as "exit now", without its maps). fds: bpftrace's perf events
    (its probes) when gobt's copy came.

    siginfo does not say whether a kill was meant for a group. But the
    kernel queues a group's signal to bpftrace before gobt (the newest
    member first), so it is pending there or has been taken, and then
    bpftrace is on its way out: it closes its probes. A signal sent to
    gobt alone leaves bpftrace as it was (asleep in its loop, or
    attaching: more probes, none closed); that is watched for at most
    REACTION_WAIT, then the signal is sent on. A bpftrace 0.17 that goes on
    attaching after a group's SIGINT gets a second one, as before."""
    if sig not in _STOPS or fds is None:
        return False
    import time

    bit = 1 << (sig - 1)
    deadline = time.monotonic() + REACTION_WAIT
    while True:
        pending = _pending(pid)
        if pending is None or pending & bit:
            return True  # gone, or it is queued there
        now = _fd_numbers(pid)
        if now is None or not fds <= now:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)


def _pending(pid):
    """bpftrace's pending signals (its own and its threads'), or None once it
    has exited."""
    try:
        with open(f"/proc/{pid}/status") as f:
            status = f.read()
    except OSError:
        return None
    mask = 0
    state = None
    for line in status.splitlines():
        key, _, value = line.partition(":")
        if key in ("SigPnd", "ShdPnd"):
            mask |= int(value.strip(), 16)
        elif key == "State":
            state = value.split()[0] if value.split() else None
    return None if state in ("Z", "X") else mask


def _wchan(pid):
    try:
        with open(f"/proc/{pid}/wchan") as f:
            return f.read()
    except OSError:
        return None


def _fd_numbers(pid):
    try:
        return set(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def _perf_events(pid):
    """The numbers of bpftrace's perf event fds (uprobes, output buffers)."""
    names = _fd_numbers(pid)
    if names is None:
        return None
    found = set()
    for name in names:
        try:
            if os.readlink(f"/proc/{pid}/fd/{name}") == "anon_inode:[perf_event]":
                found.add(name)
        except OSError:
            pass
    return found


def _pgid(pid):
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def _write(data):
    view = memoryview(data)
    while view:
        try:
            n = os.write(2, view)
        except InterruptedError:
            continue
        except OSError:
            return  # stderr closed: bpftrace would not have been heard either
        view = view[n:]


def exit_status(status):
    """The exit code a shell shows for a raw wait status."""
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.waitstatus_to_exitcode(status)


def exit_like(status):
    """End gobt as bpftrace ended: with its code, or killed by its signal."""
    import sys

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if os.WCOREDUMP(status) or sig in (signal.SIGQUIT, signal.SIGABRT, signal.SIGSEGV):
            import resource

            # bpftrace dumped (or would dump) its core; gobt's is of no use.
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if sig not in (signal.SIGKILL, signal.SIGSTOP):  # those cannot be caught anyway
            signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [sig])
        os.kill(os.getpid(), sig)
    os._exit(exit_status(status))
