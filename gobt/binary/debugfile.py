"""Resolve: where a stripped binary's DWARF is, when it is not in the binary.

Distributions ship Go programs stripped and their DWARF apart, in a
-dbgsym (Debian) or -debuginfo (Fedora) package, or on a debuginfod
server. gobt looks where gdb looks, in gdb's order:

  /usr/lib/debug/.build-id/xx/rest.debug      by the GNU build ID
  DIR/NAME, DIR/.debug/NAME, /usr/lib/debug/DIR/NAME
                                              by .gnu_debuglink (DIR: the binary's folder)
  a debuginfod server                         by the GNU build ID, when DEBUGINFOD_URLS is set

With -p, the places on disk are looked up inside the process's root
(/proc/PID/root). A candidate is used only when it is this binary's:
the same GNU build ID, and for one found by .gnu_debuglink, the CRC32 the
link records (as gdb checks). Any other file is refused by name, never
read.

The code, pclntab and symbols still come from the binary itself; only
the DWARF readers read the debug file's sections.
"""

import os
import struct

from ..errors import note
from ..record import dataclass

DEBUG_DIR = "/usr/lib/debug"
NT_GNU_BUILD_ID = 3


@dataclass
class Found:
    """Where one binary's DWARF is."""

    binary: object  # the GoBinary whose sections hold the DWARF, or None
    how: str  # "in the binary", "by build ID", "by .gnu_debuglink", "from debuginfod", or ""
    # [path, identity or None] of every place looked at: a warm run that
    # finds them all unchanged would find the same thing (programcache.py).
    consulted: list

    @property
    def separate(self):
        return self.binary is not None and self.how != "in the binary"


def identity(path):
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def gnu_build_id(binary):
    """The GNU build ID (.note.gnu.build-id) as hex, or ""."""
    data = binary.section_view(".note.gnu.build-id")
    pos = 0
    while data is not None and pos + 12 <= len(data):
        namesz, descsz, kind = struct.unpack_from("<III", data, pos)
        name_end = pos + 12 + ((namesz + 3) & ~3)
        desc = bytes(data[name_end : name_end + descsz])
        if kind == NT_GNU_BUILD_ID and bytes(data[pos + 12 : pos + 12 + namesz]).rstrip(b"\0") == b"GNU":
            return desc.hex()
        pos = name_end + ((descsz + 3) & ~3)
    return ""


def debuglink(binary):
    """(file name, CRC32) from .gnu_debuglink, or None."""
    data = binary.section_view(".gnu_debuglink")
    if data is None:
        return None
    data = bytes(data)
    end = data.find(b"\0")
    if end <= 0:
        return None
    crc_at = (end + 4) & ~3
    if crc_at + 4 > len(data):
        return None
    name = data[:end].decode("utf-8", "surrogateescape")
    if "/" in name:
        return None  # a link names a file, never a path to wander off to
    return name, struct.unpack_from("<I", data, crc_at)[0]


def find(binary, open_elf, root="", folder=None):
    """Found: the DWARF of `binary` (a GoBinary), wherever it is.

    open_elf: how to open a candidate (GoBinary, passed in to keep this
    module free of an import cycle). root: the process's root for -p.
    folder: the binary's folder as its process sees it."""
    if binary.has_own_dwarf:
        return Found(binary, "in the binary", [])
    consulted = []
    build_id = gnu_build_id(binary)
    link = debuglink(binary)
    if folder is None:
        folder = os.path.dirname(os.path.realpath(binary.path))
    candidates = []
    if len(build_id) > 2:
        candidates.append((f"{DEBUG_DIR}/.build-id/{build_id[:2]}/{build_id[2:]}.debug", "by build ID"))
    if link is not None:
        for place in (folder, os.path.join(folder, ".debug"), DEBUG_DIR + folder):
            candidates.append((os.path.join(place, link[0]), "by .gnu_debuglink"))
    for inside, how in candidates:
        path = root + inside
        found = identity(path)
        consulted.append([path, found])
        if found is None or os.path.realpath(path) == os.path.realpath(binary.path):
            continue
        debug = _checked(binary, path, open_elf, build_id, link[1] if how != "by build ID" and link else None)
        if debug is not None:
            return Found(debug, how, consulted)
    if build_id and os.environ.get("DEBUGINFOD_URLS", "").strip():
        path = _debuginfod(build_id, binary.display_path)
        if path is not None:
            consulted.append([path, identity(path)])
            debug = _checked(binary, path, open_elf, build_id, None)
            if debug is not None:
                return Found(debug, "from debuginfod", consulted)
    return Found(None, "", consulted)


def _checked(binary, path, open_elf, build_id, crc):
    """The debug file at `path` as a GoBinary, if it is this binary's."""
    from ..errors import GobtError

    name = binary.display_path
    try:
        debug = open_elf(path)
    except GobtError as e:
        note(f"{path}: not used as the debug info of {name}: {e.message}")
        return None
    theirs = gnu_build_id(debug)
    if build_id and theirs != build_id:
        note(f"{path}: refused as the debug info of {name}: its build ID is {theirs or 'missing'}, "
             f"{name}'s is {build_id}")
        return None
    if crc is not None:
        got = _crc32(debug)
        if got != crc:
            note(f"{path}: refused as the debug info of {name}: its CRC32 is {got:08x}, "
                 f"{name}'s .gnu_debuglink says {crc:08x}")
            return None
    if not debug.has_own_dwarf:
        note(f"{path}: has no DWARF sections; not used for {name}")
        return None
    return debug


def _crc32(debug):
    """The CRC32 of the whole debug file, kept per file identity: a distro's
    debug file is tens of MB, and a run that is not a repeat of a cached
    program would read it all again (ctime is in the key: no user tool sets
    it back on a changed file)."""
    import zlib

    from ..cache import cache_dir, prune, read_sealed, write_atomic

    key = f"{debug.path}|{'|'.join(map(str, identity(debug.path) or ()))}"
    folder = cache_dir(binary_facts=True, sub="debugcrc")
    path = folder and os.path.join(folder, f"{zlib.crc32(key.encode('utf-8', 'surrogateescape')):08x}.json")
    text = read_sealed(path) if path else None
    if text is not None:
        import json

        try:
            kept_key, kept = json.loads(text)
            if kept_key == key and type(kept) is int:
                return kept
        except ValueError:
            pass
    got = zlib.crc32(debug.whole_file())
    if path and write_atomic(path, [key, got]):
        prune(folder, KEEP_CRCS)
    return got


KEEP_CRCS = 64


def _debuginfod(build_id, name):
    """The path of the debug file elfutils' debuginfod client fetched (or
    had in its cache, DEBUGINFOD_CACHE_PATH), or None. The client's own
    timeout (DEBUGINFOD_TIMEOUT) applies; on a terminal it shows its
    progress on stderr."""
    import sys

    env = {}
    if "DEBUGINFOD_PROGRESS" not in os.environ and sys.stderr.isatty():
        env["DEBUGINFOD_PROGRESS"] = "1"
    try:
        return _by_library(build_id, env)
    except _Failed as e:
        note(f"debuginfod ({os.environ['DEBUGINFOD_URLS'].strip()}): no debug info for {name} "
             f"(build ID {build_id}): {e}; going on without DWARF")
        return None
    except OSError:
        pass  # no libdebuginfod: its command, if installed
    return _by_command(build_id, env, name)


class _Failed(Exception):
    pass


def _by_library(build_id, env):
    import ctypes

    lib = ctypes.CDLL("libdebuginfod.so.1")
    lib.debuginfod_begin.restype = ctypes.c_void_p
    lib.debuginfod_end.argtypes = [ctypes.c_void_p]
    lib.debuginfod_find_debuginfo.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int,
                                              ctypes.POINTER(ctypes.c_void_p)]
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the client reads its settings when it begins
    try:
        client = lib.debuginfod_begin()
    finally:
        for k, v in saved.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    if not client:
        raise _Failed("the debuginfod client could not start")
    try:
        raw = bytes.fromhex(build_id)
        path = ctypes.c_void_p()
        fd = lib.debuginfod_find_debuginfo(client, raw, len(raw), ctypes.byref(path))
    finally:
        lib.debuginfod_end(client)
    if fd < 0:
        raise _Failed(os.strerror(-fd))
    os.close(fd)
    found = ctypes.string_at(path.value).decode("utf-8", "surrogateescape")
    ctypes.CDLL(None).free(path)  # a c_void_p: passed whole, never cut to an int
    return found


def _by_command(build_id, env, name):
    import shutil
    import subprocess

    command = shutil.which("debuginfod-find")
    if command is None:
        note(f"DEBUGINFOD_URLS is set, but neither libdebuginfod nor debuginfod-find is installed "
             f"(apt-get install debuginfod); going on without DWARF for {name}")
        return None
    proc = subprocess.run([command, "debuginfo", build_id], stdout=subprocess.PIPE, env={**os.environ, **env},
                          text=True)
    if proc.returncode != 0 or not proc.stdout.strip():
        note(f"debuginfod ({os.environ['DEBUGINFOD_URLS'].strip()}): no debug info for {name} "
             f"(build ID {build_id}); going on without DWARF")
        return None
    return proc.stdout.strip()


def way_forward(binary):
    """Hint lines for a binary with no DWARF anywhere: how to get some."""
    build_id = gnu_build_id(binary)
    if not build_id and debuglink(binary) is None:
        return ["  goarg reads Go's types from DWARF; goret, goentry, goid, goelapsed and "
                "retval (the first result word) work without it. Rebuild without -w to use goarg,",
                "  or declare the function's signature in the probe: goret:BIN:pkg.F(n int) (int, error)"]
    lines = ["  its DWARF is shipped apart from it, and gobt found none (it looked in /usr/lib/debug, by build ID",
             "  and .gnu_debuglink, and beside it). To use goarg:"]
    package = _dpkg_package(binary.path)
    if package:
        lines.append(f"    install {package}-dbgsym (from Debian's debug archive, debian-debug)")
    if build_id:
        lines.append(f"    {'or ' if package else ''}set DEBUGINFOD_URLS to fetch it by build ID {build_id} "
                     "(e.g. https://debuginfod.debian.net)")
    lines.append("    or declare the function's signature in the probe: goret:BIN:pkg.F(n int) (int, error)")
    return lines


def _dpkg_package(path):
    import shutil
    import subprocess

    if shutil.which("dpkg") is None:
        return None
    try:
        proc = subprocess.run(["dpkg", "-S", os.path.realpath(path)], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0 or ":" not in proc.stdout:
        return None
    return proc.stdout.split(":", 1)[0].split(",")[0].strip() or None
