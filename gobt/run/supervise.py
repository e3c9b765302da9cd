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
  "exit now" and would not print its maps.
- The exit status is bpftrace's: its code, or death by the same signal.
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
_SI_KERNEL = 0x80  # si_code of a signal the kernel sent (tty, hang-up)


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
                                          restore_signals=True, preexec_fn=_unblock)
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
            early = info.si_signo in self._early
            if self.keeper is not None and info.si_signo != signal.SIGUSR1:
                # bpftrace may be on its way out: whatever it attached since
                # the last poll must be kept before it starts closing.
                self.keeper.sweep(signalled=info.si_signo in (signal.SIGINT, signal.SIGTERM))
            self._early.discard(info.si_signo)
            if not early and info.si_code == _SI_KERNEL and os.getpgid(0) == _pgid(self.pid):
                continue  # the terminal signalled the group: bpftrace has it
            try:
                self.send(info.si_signo)
            except ProcessLookupError:
                pass

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


def _unblock():
    # In the child, between fork and exec: only async-signal-safe work.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED)


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
