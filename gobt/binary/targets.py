"""Where a probe's BIN is on disk, as bpftrace will open it.

Kept apart from rewrite.py, which imports the binary readers: the warm path
(programcache.py) re-resolves every target on each run and must stay light.
"""

import os
import shutil

from ..errors import GobtError


def resolve_binary(target, pid):
    """The path of BIN as bpftrace must see it, or None.

    Without -p, as bpftrace finds it: a path, or a name in $PATH. With -p,
    as that process sees it: through /proc/PID/root, which reaches into its
    mount namespace (a container), and failing that /proc/PID/exe when BIN
    names the process's own executable.
    """
    if pid is not None:
        proc = f"/proc/{pid}"
        if not os.path.isdir(proc):
            raise GobtError(f"-p {pid}: no such process")
        inside = os.path.join(proc, "root", os.path.abspath(target).lstrip("/"))
        if os.path.isfile(inside):
            if os.path.exists(target) and _same_file(target, inside):
                return target
            return inside
        try:
            exe = os.readlink(f"{proc}/exe")
        except OSError:
            exe = ""
        if exe and os.path.basename(exe.removesuffix(" (deleted)")) == os.path.basename(target):
            return f"{proc}/exe"
    if os.path.exists(target):
        return target
    if "/" not in target:
        return shutil.which(target)
    return None


def _same_file(a, b):
    try:
        sa, sb = os.stat(a), os.stat(b)
    except OSError:
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)
