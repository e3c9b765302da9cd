"""Keep bpftrace's uprobes open past its exit, so that its results come at once.

bpftrace closes each uprobe perf event on its own at exit, and the kernel's
unregistration of each one waits for a grace period (~0.1 s apiece on 0.17
and 0.23 alike, more under load). END blocks and the printing of the maps
come only after the last one: 69 RETs of a `goret:BIN:fmt.*` print 7.6 s
after Ctrl-C. The unregistration is done by whoever drops the *last*
reference to the event, so while bpftrace runs the keeper takes a duplicate
of each of its uprobe fds (pidfd_getfd). bpftrace's own closes then return at
once and it prints and exits as it always does: its output is its own,
byte for byte. A background process closes the duplicates, from a few
threads (_close_all), without holding the terminal. Before that,
breakpoints.py lifts the probes' breakpoints out of the traced programs:
the closes still take the kernel ~0.1 s a probe, but the program no
longer traps on them.

The hand-off comes as soon as bpftrace closes its first uprobe (its exit
has begun), not after it has exited: until a kept probe is closed its BPF
program still runs (bpftrace's PERF_EVENT_IOC_DISABLE does not stop a
program attached to a uprobe), and bpftrace reads its output buffers
until they stay empty. A probe that prints on every hit of a busy process
keeps bpftrace reading as long as the detach lasts, as under bpftrace
alone; a probe that only updates maps writes into maps nobody reads.

Only uprobe and uretprobe events are kept: bpf(BPF_TASK_FD_QUERY) names
them. bpftrace's output buffers are perf events too, and holding those
makes it wait for them forever at exit.

The one effect of a still running program that would reach outside,
signal(), is why the caller keeps nothing for programs that use it.

Anything missing (kernel < 5.6, no pidfd_getfd rights, an unknown fd type)
means nothing is kept: bpftrace detaches as it always has.
"""

import ctypes
import errno
import os
import threading

from . import breakpoints


POLL_SECONDS = 0.03  # while bpftrace attaches, until every probe is kept
WATCH_SECONDS = 0.03  # after: for bpftrace's first close (and the user's own uprobes)
FULL_SWEEP_EVERY = 8


def _syscall_numbers():
    """bpf and pidfd_getfd: x86_64's table, or the generic one."""
    machine = os.uname().machine
    if machine == "x86_64":
        return 321, 438
    if machine in ("aarch64", "arm64", "riscv64", "loongarch64"):
        return 280, 438
    return None


def supported():
    """Whether this kernel and Python can keep probes (pidfd_getfd: 5.6)."""
    if _syscall_numbers() is None or not hasattr(os, "pidfd_open"):
        return False
    try:
        major, minor = (int(x) for x in os.uname().release.split(".")[:2])
    except ValueError:
        return False
    return (major, minor) >= (5, 6)


class Keeper:
    """Duplicates of bpftrace's uprobe fds, taken while it runs."""

    def __init__(self, pid, expected):
        self.pid = pid
        self.expected = expected  # gobt's own probes; the user's may add more
        self.kept = {}  # bpftrace's fd number -> our duplicate
        self._other = set()  # fd numbers last seen as something else than a perf event
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None
        self._pidfd = None
        self._libc = None
        self._query = None
        self.background = None  # (pid, count, time.monotonic() at the start, breakpoints lifted)
        self._stale = []  # ours of probes bpftrace closed while it started
        self._signalled = False

    @classmethod
    def start(cls, pid, expected):
        """A Keeper polling bpftrace's fds, or None where the kernel cannot."""
        if not supported():
            return None
        keeper = cls(pid, expected)
        try:
            keeper._libc = ctypes.CDLL(None, use_errno=True)
            keeper._pidfd = os.pidfd_open(pid)
        except (OSError, AttributeError):
            return None
        sys_bpf, keeper._sys_getfd = _syscall_numbers()
        keeper._query = breakpoints.TaskFdQuery(sys_bpf)
        _more_fds(expected)
        keeper._thread = threading.Thread(target=keeper._poll, daemon=True)
        keeper._thread.start()
        return keeper

    def _poll(self):
        sweeps = 0
        while not self._stop.is_set():
            if self.sweep(full=sweeps % FULL_SWEEP_EVERY == 0) is None:
                return  # bpftrace is gone or detaching, or the kernel cannot
            sweeps += 1
            self._stop.wait(POLL_SECONDS if len(self.kept) < self.expected else WATCH_SECONDS)

    def sweep(self, full=True, signalled=False):
        """Keep every uprobe fd bpftrace has now that is not kept yet: how
        many are kept, or None when nothing more can be kept. Unless full,
        fds seen before as something else than a perf event are passed by.
        signalled: bpftrace was told to stop, so a close is its exit."""
        with self._lock:
            self._signalled |= signalled
            if self._pidfd is None:
                return None
            try:
                fds = os.listdir(f"/proc/{self.pid}/fd")
            except OSError:
                return None
            listed = {int(name) for name in fds}
            gone = [fd for fd in self.kept if fd not in listed]
            if gone and len(self.kept) < self.expected and not self._signalled:
                # Before all its probes are attached bpftrace closes only
                # what it made to try the kernel's features (0.17 attaches
                # a uprobe to see what works): not a detach. Ours are
                # closed with the rest.
                self._stale += [self.kept.pop(fd) for fd in gone]
                gone = []
            detaching = bool(gone)
            for name in fds:
                fd = int(name)
                if fd in self.kept or (fd in self._other and not full):
                    continue
                try:
                    target = os.readlink(f"/proc/{self.pid}/fd/{name}")
                except OSError:
                    continue
                # A readlink per fd costs: with 1000 probes bpftrace has 2000
                # fds. But while it starts, an fd number that was a file or
                # a probing program comes back as a uprobe: every few
                # sweeps, and on a signal, all are looked at again.
                if target != "anon_inode:[perf_event]":
                    self._other.add(fd)
                    continue
                self._other.discard(fd)
                # A perf event without its BPF program yet gives an error:
                # looked at again on the next sweep.
                found = self._query(self.pid, fd)
                if found is None or found[0] not in (breakpoints.UPROBE, breakpoints.URETPROBE):
                    continue
                dup = self._libc.syscall(self._sys_getfd, self._pidfd, fd, 0)
                if dup < 0:
                    # EBADF: closed since it was listed (0.17 closes the
                    # uprobe it tries the kernel with): not a refusal.
                    if ctypes.get_errno() in (errno.EPERM, errno.EACCES) and not self.kept:
                        # No rights (yama, an LSM): keep nothing, silently.
                        self._close_pidfd()
                        return None
                    continue
                self.kept[fd] = dup
            if detaching:
                # bpftrace is detaching (what it still had is kept above):
                # its closes were fast, as we hold the probes. From here a
                # kept probe's program must not live
                # longer than it would under bpftrace alone: bpftrace reads
                # its output until none comes (0.17 drains its buffers
                # after END), and a probe that prints on every hit of a busy
                # process would keep it reading forever.
                self._hand_off()
                return None
            return len(self.kept)

    def stop(self):
        """No more sweeps (bpftrace has exited)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        with self._lock:
            self._close_pidfd()

    def _close_pidfd(self):
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None

    def release(self):
        """bpftrace has exited: the background process that closes the kept
        fds, as (pid, count, when it started), or None when
        nothing was kept or it is done already."""
        self.stop()
        with self._lock:
            self._hand_off()
        if self.background is None:
            return None
        pid = self.background[0]
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done = pid
        return None if done == pid else self.background

    def _hand_off(self):
        """Give the kept fds to a background process that closes them and
        drop ours (fast: the background holds them). Called with the lock."""
        watch, self._pidfd = self._pidfd, None  # nothing more to keep; the background waits on it
        fds = sorted([*self.kept.values(), *self._stale])
        self.kept = {}
        self._stale = []
        if not fds:
            return
        import time

        # Out of the traced programs first (breakpoints.py): the closes
        # take the kernel ~0.1 s a probe, and until then every call traps.
        lifter, lifted = _lift(fds, self._query, (self.pid,))
        import warnings

        with warnings.catch_warnings():
            # Python >= 3.12 warns about fork with threads: the child below
            # only makes system calls.
            warnings.simplefilter("ignore", DeprecationWarning)
            try:
                pid = os.fork()
            except OSError:
                pid = -1
        if pid == 0:
            _close_in_background(fds, watch, lifter)
        # Our copies: not the last ones when the background process has them
        # (a failed fork makes gobt the one that waits, as bpftrace would have).
        for fd in fds:
            os.close(fd)
        if watch is not None:
            os.close(watch)
        if pid > 0:
            self.background = (pid, len(fds), time.monotonic(), lifted)


def _more_fds(expected):
    # A duplicate per probe: 1000 probes do not fit the usual soft limit of
    # 1024 fds (bpftrace raises its own for the same reason).
    import resource

    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = 2 * expected + 256  # and the user's own uprobes
        if soft != resource.RLIM_INFINITY and soft < want:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want if hard == resource.RLIM_INFINITY else min(want, hard), hard))
    except (ValueError, OSError):
        pass


# How long the background lets bpftrace finish its exit before it starts
# closing: see _close_in_background.
BPFTRACE_EXIT_WAIT = 2.0


def _close_in_background(fds, bpftrace=None, lifter=None):
    # In the forked child: nothing but system calls, then _exit. Its own
    # session, and no stdio, so that neither the terminal nor a pipe that
    # reads gobt's output waits for it.
    #
    # It first waits for bpftrace (its pidfd) to be gone, BPFTRACE_EXIT_WAIT
    # at most. Every uprobe destroy holds the kernel's event_mutex for its
    # grace periods, and bpftrace's exit takes that mutex too: 0.23 reads
    # tracefs' dynamic_events, and a close that is the last after all
    # destroys a uprobe. Behind 32 closing threads it waited ~3 s for the
    # mutex at 100 probes, 8-20 s at 1,000, with the results not out. But a
    # bpftrace that reads its output until none comes (a probe that prints
    # on every hit of a busy process) would never exit while its probes
    # fire: past the wait, the probes go anyway.
    try:
        os.setsid()
        null = os.open(os.devnull, os.O_RDWR)
        for std in (0, 1, 2):
            os.dup2(null, std)
        keep = set(fds) | {0, 1, 2} | ({bpftrace} if bpftrace is not None else set())
        for name in os.listdir("/proc/self/fd"):
            if int(name) not in keep:
                try:
                    os.close(int(name))
                except OSError:
                    pass
        if bpftrace is not None:
            import select

            select.select([bpftrace], [], [], BPFTRACE_EXIT_WAIT)
            os.close(bpftrace)
        _close_all(fds, lifter)
    finally:
        os._exit(0)


def _lift(fds, query, sharing):
    """(the Lifter of the kept probes, how many breakpoints it lifted), or
    (None, 0) where it cannot."""
    if not breakpoints.supported():
        return None, 0
    try:
        lifter = breakpoints.Lifter(fds, query, sharing)
        return lifter, lifter.lift()
    except Exception:  # never in the way of the detach itself
        return None, 0


CLOSING_THREADS = 4
RELIFT_SECONDS = 1.0


def _close_all(fds, lifter=None):
    """Close every fd, each waiting out its uprobe's unregistration.

    The kernel destroys a uprobe perf event under one global mutex
    (event_mutex, held across the grace periods of perf_uprobe_destroy),
    so closes from many threads mostly queue behind each other; what
    overlaps is the part outside it (the BPF program's detach waits its
    own grace period, under another mutex). Measured on 6.18, 100 probes:
    16.6 s one by one, 10.3 s from 50 threads on a quiet machine; beside
    another detach, 41 s from 1 thread, 23 s from 3, 19 s from 8. No
    number of threads or processes makes 1,000 probes go in 2 s (bench/).
    And every thread queued on the mutex is one more wait for anybody
    else's attach or detach (a perf uprobe's creation takes it too: a
    user's next run would attach behind all of them), so only a few."""
    fds = list(fds)
    closed = set()
    if lifter is not None:
        # A process that maps the file while the probes close gets their
        # breakpoints (system-wide probes): lifted there too, while their
        # fds are open.
        done = threading.Event()
        threading.Thread(target=_relift, args=(lifter, fds, closed, done), daemon=True).start()
    threads = []
    for i in range(min(CLOSING_THREADS, len(fds)) - 1):
        share = fds[i + 1::CLOSING_THREADS]
        thread = threading.Thread(target=_close_each, args=(share, closed), daemon=True)
        try:
            thread.start()
        except RuntimeError:  # no more threads: this one closes that share
            _close_each(share, closed)
            continue
        threads.append(thread)
    _close_each(fds[0::CLOSING_THREADS], closed)
    for thread in threads:
        thread.join()
    if lifter is not None:
        done.set()


def _relift(lifter, fds, closed, done):
    while not done.wait(RELIFT_SECONDS):
        try:
            lifter.lift(open_fds=set(fds) - closed, new_only=True)
        except Exception:
            return


def _close_each(fds, closed):
    for fd in fds:
        # Marked before the close: once it begins, the kernel may take the
        # uprobe away, and a breakpoint at that address may be somebody else's.
        closed.add(fd)
        try:
            os.close(fd)
        except OSError:
            pass
