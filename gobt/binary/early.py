"""Resolve, ahead of the parse: start decompressing the DWARF of the Go
binaries a script names while lark is still being imported and run.

A cold rewrite on cmd/go spends ~25 ms inflating .debug_info and ~50 ms
importing and running the parser; zlib lets go of the GIL, so on a second
core the two overlap. The paths are a guess from the script's text (the
parse has not happened yet); the rewrite takes the binary opened here
only when its own path leads to the same file (device, inode, size,
mtime, ctime), so a wrong guess costs a little CPU on another core and
nothing else.
"""

import os
import re

from . import dwarfread

# BIN of provider:BIN:function, quoted or not.
_TARGET = re.compile(r'(?<![\w$])(?:goret|goentry|uprobe|uretprobe|u|ur):"?([^\s:",{}]+)"?:')
MAX_GUESSES = 4

_started = {}  # file identity -> the GoBinary whose DWARF is on its way


def _identity(st):
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def start(text):
    """Prefetch the DWARF of the binaries `text` seems to probe."""
    from .gobinary import GoBinary

    guesses = []
    for m in _TARGET.finditer(text):
        path = m.group(1)
        if "/" in path and path not in guesses:
            guesses.append(path)
            if len(guesses) == MAX_GUESSES:
                break
    for path in guesses:
        try:
            if not os.path.isfile(path):
                continue
            binary = GoBinary(path)
        except Exception:  # the rewrite reports whatever is wrong with it
            continue
        key = _identity(binary.stat)
        # Its own DWARF only: a separate debug file is looked up once -p
        # has said where (prefetch, below).
        if key not in _started and binary.has_own_dwarf:
            dwarfread.prefetch(binary)
            _started[key] = binary


def take(path, display_path):
    """The GoBinary start() opened for the file at `path` (its DWARF on its
    way), named as the rewrite names it; None when start() opened no such
    file (or it has changed since)."""
    try:
        key = _identity(os.stat(path))
    except OSError:
        return None
    binary = _started.pop(key, None)
    if binary is not None:
        binary.path, binary.display_path = path, display_path
    return binary


def prefetch(binary):
    """Have `binary`'s DWARF decompressed in the background (a no-op for
    what start() began already)."""
    if binary.has_dwarf:
        dwarfread.prefetch(binary.dwarf_file)
