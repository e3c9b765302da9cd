"""Where a probe's BIN is on disk, as bpftrace will open it.

Kept apart from rewrite.py, which imports the binary readers: the warm path
(programcache.py) re-resolves every target on each run and must stay light.
"""

import os

from ..errors import GobtError
from ..paths import which


def resolve_binary(target, pid):
    """The path of BIN as bpftrace must see it, or None.

    Without -p, as bpftrace finds it: a path, or a name in $PATH. With -p,
    as that process sees it: through /proc/PID/root, which reaches into its
    mount namespace (a container), and failing that /proc/PID/exe when BIN
    names the process's own executable.

    But a path names what it names now: a deploy that renamed a new build
    over it while the old process runs leaves the process mapping a file
    the path no longer reaches (or none does). Probes on the path's file
    would attach to an inode the process never runs. So when the process
    maps a file under that name and it is not the one the path gives, BIN
    is that mapped file, through /proc/PID/exe or /proc/PID/map_files.
    """
    if pid is not None:
        proc = f"/proc/{pid}"
        if not os.path.isdir(proc):
            raise GobtError(f"-p {pid}: no such process")
        inside = os.path.join(proc, "root", os.path.abspath(target).lstrip("/"))
        mapped = _mapped_as(proc, os.path.abspath(target))
        if os.path.isfile(inside):
            if mapped is not None and not _same_file(mapped, inside):
                return mapped
            if os.path.exists(target) and _same_file(target, inside):
                return target
            return inside
        if mapped is not None:
            return mapped
        try:
            exe = os.readlink(f"{proc}/exe")
        except OSError:
            exe = ""
        if exe and os.path.basename(exe.removesuffix(" (deleted)")) == os.path.basename(target):
            return f"{proc}/exe"
    if os.path.exists(target):
        return target
    if "/" not in target:
        return which(target)
    return None


def _same_file(a, b):
    try:
        sa, sb = os.stat(a), os.stat(b)
    except OSError:
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def _mapped_as(proc, path):
    """A path that opens the file the process maps as `path`, when it maps
    one (also when it was since deleted or replaced), else None."""
    try:
        with open(f"{proc}/maps", "rb") as f:
            maps = f.read().decode("utf-8", "surrogateescape")
    except OSError:
        return None
    for line in maps.splitlines():
        fields = line.split(None, 5)
        if len(fields) < 6 or fields[5].removesuffix(" (deleted)") != path:
            continue
        # The executable is the usual case, and /proc/PID/exe reads it
        # without the privileges map_files needs.
        exe = f"{proc}/exe"
        by_range = f"{proc}/map_files/{fields[0]}"
        if _same_file(exe, by_range) or not os.path.exists(by_range):
            try:
                if os.stat(exe).st_ino == int(fields[4]):
                    return exe
            except (OSError, ValueError):
                pass
        return by_range if os.path.exists(by_range) else None
    return None


def debug_places(pid, target, found):
    """(root, folder) to look for the debug file of BIN in process pid:
    its root, and BIN's folder as the process sees it; without -p, ("", None)."""
    if pid is None:
        return "", None
    if found == f"/proc/{pid}/exe":
        try:
            return f"/proc/{pid}/root", os.path.dirname(os.readlink(found).removesuffix(" (deleted)"))
        except OSError:
            pass
    return f"/proc/{pid}/root", os.path.dirname(os.path.abspath(target))
