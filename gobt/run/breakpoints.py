"""Take a finished session's uprobe breakpoints out of the traced programs.

The kernel removes a uprobe perf event's breakpoint when the event is
destroyed, and it destroys them one at a time under one lock, each through
its grace periods (~0.1 s apiece on 6.18, whatever the number of closing
threads: keeper.py). At 1,000 probes the program would go on trapping into
the kernel for ~2 minutes after its results were printed, on every call,
for BPF programs whose session has ended.

So the background detach first puts each probed instruction back, as a
debugger removes its own breakpoint: it writes the file's bytes over the
breakpoint in every process that maps the file, through /proc/PID/mem,
which copies the page on write as the kernel did for the breakpoint. The
uprobes stay registered until their fds are closed. When the kernel then
removes one it finds the original instruction and leaves it (uprobes'
verify_opcode), and a thread that trapped just before the write still finds
its uprobe and is single-stepped over the instruction as usual.

Only where the breakpoint is certainly ours:
- the bytes at the address are the arch's uprobe breakpoint, and the
  file's are not; the file is the very inode that is mapped, so a binary
  rebuilt at the same path is passed by;
- no other holder of a uprobe on the same file and offset is known: another
  process's uprobe perf event (BPF_TASK_FD_QUERY), a uprobe_multi link (its
  fdinfo), a tracefs uprobe_events entry. A uprobe_multi link whose fdinfo
  does not list its offsets stops every file from being lifted;
- uprobes only: a uretprobe's breakpoint also owns the return addresses it
  has hijacked, and is left to the kernel;
- on x86-64 only, whose breakpoint is one byte (int3), written at once. An
  arm64 BRK is a 4-byte word that /proc/PID/mem does not promise to write
  in one store, under threads that may be executing it.
A probe that another tool attaches to the very same instruction between
the check and the write would lose its breakpoint in that process: the
window is the milliseconds of one pass.
"""

import ctypes
import os
import struct

UPROBE_BREAKPOINT = {"x86_64": b"\xcc"}  # the kernel's UPROBE_SWBP_INSN

_BPF_TASK_FD_QUERY = 20
UPROBE = 4  # BPF_FD_TYPE_UPROBE
URETPROBE = 5  # BPF_FD_TYPE_URETPROBE
_QUERY = struct.Struct("<IIIIQIIQQ")  # pid, fd, flags, buf_len, buf -> prog_id, fd_type, offset, addr
_UNKNOWN = None  # an offset that stands for "some holder's offsets are unknown"


def supported():
    return os.uname().machine in UPROBE_BREAKPOINT


class TaskFdQuery:
    """bpf(BPF_TASK_FD_QUERY): what a process's perf event fd probes, as
    (fd type, file, offset), or None (not a probe, or no BPF program yet).
    sys_bpf: the arch's bpf syscall number."""

    def __init__(self, sys_bpf):
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.sys_bpf = sys_bpf
        # The kernel copies the probe's file name here: PATH_MAX fits it (a
        # short buffer makes the call fail with ENOSPC).
        self.buf = ctypes.create_string_buffer(4096)

    def __call__(self, pid, fd):
        attr = ctypes.create_string_buffer(_QUERY.pack(pid, fd, 0, 4096, ctypes.addressof(self.buf), 0, 0, 0, 0), 128)
        if self.libc.syscall(self.sys_bpf, _BPF_TASK_FD_QUERY, attr, 128) < 0:
            return None
        fields = _QUERY.unpack_from(attr.raw)
        return fields[6], os.fsdecode(self.buf.value), fields[7]


def _inode(path):
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


class Lifter:
    """The breakpoints of the uprobes our fds hold, and their lifting."""

    def __init__(self, fds, query, sharing=()):
        # sharing: the pids that hold the very same perf events (bpftrace;
        # gobt, and the background process it forks), not other holders.
        self.sharing = {os.getpid(), *sharing}
        self.query = query
        self.files = {}  # (dev, inode) -> path
        self.probes = {}  # fd -> ((dev, inode), file offset)
        for fd in fds:
            found = self.query(os.getpid(), fd)
            if found is None or found[0] != UPROBE:
                continue
            key = _inode(found[1])
            if key is not None:
                self.files.setdefault(key, found[1])
                self.probes[fd] = (key, found[2])
        self.lifted_in = set()  # pids whose breakpoints were lifted

    def lift(self, open_fds=None, new_only=False):
        """Put back the instructions under the breakpoints of the probes of
        open_fds (all, by default), in every process mapping their files
        (but those lifted before, if new_only): how many."""
        bp = UPROBE_BREAKPOINT[os.uname().machine]
        wanted = {}
        for fd, (key, offset) in self.probes.items():
            if open_fds is None or fd in open_fds:
                wanted.setdefault(key, set()).add(offset)
        if not wanted:
            return 0
        held = self._others(wanted)
        count = 0
        for key, offsets in wanted.items():
            if _UNKNOWN in held[key]:
                continue
            original = self._original(key, sorted(offsets - held[key]), bp)
            if original:
                count += self._write(key, original, bp, new_only)
        return count

    def _original(self, key, offsets, bp):
        """{offset: the file's bytes there} where those are not a breakpoint."""
        try:
            fd = os.open(self.files[key], os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return {}
        try:
            st = os.fstat(fd)
            if (st.st_dev, st.st_ino) != key:
                return {}  # replaced since: not the file that is mapped
            original = {off: os.pread(fd, len(bp), off) for off in offsets}
        except OSError:
            return {}
        finally:
            os.close(fd)
        return {off: data for off, data in original.items() if len(data) == len(bp) and data != bp}

    def _write(self, key, original, bp, new_only):
        count = 0
        for name in os.listdir("/proc"):
            if not name.isdigit() or (new_only and int(name) in self.lifted_in):
                continue
            pid = int(name)
            spans = _mapped(pid, key)
            if not spans:
                continue
            try:
                mem = os.open(f"/proc/{pid}/mem", os.O_RDWR | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                for start, end, pgoff in spans:
                    for off, data in original.items():
                        if not (pgoff <= off and off + len(bp) <= pgoff + (end - start)):
                            continue
                        address = start + off - pgoff
                        if os.pread(mem, len(bp), address) == bp:
                            os.pwrite(mem, data, address)
                            count += 1
            except OSError:
                pass  # the process has gone
            finally:
                os.close(mem)
            self.lifted_in.add(pid)
        return count

    def _others(self, wanted):
        """{(dev, inode): {offset}} of uprobes that other processes and
        tracefs hold on the files of `wanted`; _UNKNOWN among them when some
        holder's offsets cannot be read."""
        held = {key: set() for key in wanted}
        unknown_all = False

        def note(path, offset):
            key = _inode(path)
            if key in held:
                held[key].add(offset)

        for name in os.listdir("/proc"):
            if not name.isdigit() or int(name) in self.sharing or int(name) == os.getpid():
                continue
            pid = int(name)
            try:
                fds = os.listdir(f"/proc/{pid}/fd")
            except OSError:
                continue
            for fd in fds:
                try:
                    kind = os.readlink(f"/proc/{pid}/fd/{fd}")
                except OSError:
                    continue
                if kind == "anon_inode:[perf_event]":
                    found = self.query(pid, int(fd))
                    if found is not None and found[0] in (UPROBE, URETPROBE):
                        note(found[1], found[2])
                elif kind == "anon_inode:bpf_link":
                    multi = _uprobe_multi(pid, fd)
                    if multi is None:
                        continue
                    path, offsets = multi
                    if path is None:
                        unknown_all = True
                    for offset in offsets:
                        note(path, offset)
        for path, offset in _tracefs_uprobes():
            note(path, offset)
        if unknown_all:
            for offsets in held.values():
                offsets.add(_UNKNOWN)
        return held


def _mapped(pid, key):
    """(start, end, file offset) of the executable mappings of the file
    `key` in pid, as /proc/PID/maps and map_files tell them."""
    dev, ino = key
    spans = []
    try:
        with open(f"/proc/{pid}/maps") as f:
            lines = f.read().split("\n")
    except OSError:
        return spans
    for line in lines:
        fields = line.split(maxsplit=5)
        if len(fields) < 6 or "x" not in fields[1] or fields[4] != str(ino):
            continue
        start, end = (int(x, 16) for x in fields[0].split("-"))
        # maps' device may be the layer's, not stat's (overlayfs): the
        # mapped file itself says (map_files names have no leading zeros).
        if _inode(f"/proc/{pid}/map_files/{start:x}-{end:x}") != key:
            continue
        spans.append((start, end, int(fields[2], 16)))
    return spans


def _uprobe_multi(pid, fd):
    """A uprobe_multi link's (path, [offsets]); path None when its fdinfo
    does not say (offsets then unknown); None for any other link."""
    try:
        with open(f"/proc/{pid}/fdinfo/{fd}") as f:
            info = f.read().split("\n")
    except OSError:
        return None
    if not any(line.split() == ["link_type:", "uprobe_multi"] for line in info):
        return None
    path = next((line.split("\t", 1)[1] for line in info if line.startswith("path:\t")), None)
    header = "offset\tref_ctr_offset\tcookie"
    if path is None:
        return None, []
    if header not in info:
        return path, [_UNKNOWN]
    offsets = []
    for line in info[info.index(header) + 1:]:
        fields = line.split()
        if fields:
            try:
                offsets.append(int(fields[0]))
            except ValueError:
                offsets.append(_UNKNOWN)
    return path, offsets


def _tracefs_uprobes():
    """(path, offset) of each uprobe_events entry: p:GROUP/NAME PATH:0xOFFSET ..."""
    for tracing in ("/sys/kernel/tracing", "/sys/kernel/debug/tracing"):
        try:
            with open(f"{tracing}/uprobe_events") as f:
                lines = f.read().split("\n")
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) >= 2 and ":" in fields[1]:
                path, _, offset = fields[1].rpartition(":")
                try:
                    yield path, int(offset.split("(")[0], 16)
                except ValueError:
                    yield path, _UNKNOWN
        return
