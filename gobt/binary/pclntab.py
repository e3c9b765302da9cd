"""Function names and bounds from .gopclntab, for stripped Go binaries.

`go build -ldflags='-s -w'` drops .symtab and DWARF, but the runtime needs
its own function table for tracebacks, so .gopclntab is always there. Its
header changed with Go 1.16, 1.18 and 1.20 (the magic number says which);
this reads the function table of each and offers the same lookups as the
.symtab scanner in binary.py.
"""

import bisect
import re
import struct

from ..errors import GobtError
from .symbols import is_wildcard, pattern_regex

# magic -> layout. "words" are pointer-sized header fields after the
# 8-byte prefix; "functab" the entry encoding.
MAGIC_GO12 = 0xFFFFFFFB  # Go 1.2 - 1.15
MAGIC_GO116 = 0xFFFFFFFA  # Go 1.16 - 1.17
MAGIC_GO118 = 0xFFFFFFF0  # Go 1.18 - 1.19
MAGIC_GO120 = 0xFFFFFFF1  # Go 1.20 and later

FUNC_FLAG_ASM = 1 << 2  # runtime's funcFlag_ASM (Go 1.19+)

LAYOUTS = {
    # header words after nfunc: names of the fields we use, in order
    MAGIC_GO116: ("nfiles", "funcname", "cu", "filetab", "pctab", "pcln"),
    MAGIC_GO118: ("nfiles", "textstart", "funcname", "cu", "filetab", "pctab", "pcln"),
    MAGIC_GO120: ("nfiles", "textstart", "funcname", "cu", "filetab", "pctab", "pcln"),
}


def _name_abi_wrappers(rows):
    """Rows (name, start, size), with ABI twins named as .symtab names them.

    Since Go 1.17 a function called across ABIs has a twin of the same name
    in .gopclntab; .symtab calls the ABI0 one NAME.abi0. That is the
    assembly function when one twin is flagged ASM (Go 1.19+), and else the
    wrapper the linker placed after the Go function, i.e. the later twin.
    Lone assembly functions keep the name .gopclntab gives; lookup() also
    answers for their .symtab name NAME.abi0.
    """
    out = [list(row[:3]) for row in rows]
    twins = {}
    for i, (name, *_rest) in enumerate(rows):
        twins.setdefault(name, []).append(i)
    for name, idx in twins.items():
        if len(idx) < 2:
            continue
        asm = [i for i in idx if rows[i][3]]
        abi0 = asm[0] if len(asm) == 1 else max(idx, key=lambda i: rows[i][1])
        out[abi0][0] = name + ".abi0"
    return [tuple(row) for row in out]


def _functab(data, text_addr):
    """(nfunc, functab offset, entry format, entry size, layout, base added
    to entries, whether funcoffs are from functab) or None. layout gives the
    offsets in a _func of its args size and name, and where names start."""
    magic, _pad, _quantum, _ptr = struct.unpack_from("<IHBB", data, 0)
    (nfunc,) = struct.unpack_from("<Q", data, 8)
    if magic == MAGIC_GO12:
        return nfunc, 16, "<QQ", 16, {"args_at": 12, "name_at": 8, "names": 0}, 0, False
    if magic not in LAYOUTS:
        return None
    fields = dict(zip(LAYOUTS[magic], struct.unpack_from("<%dQ" % len(LAYOUTS[magic]), data, 16)))
    if magic == MAGIC_GO116:
        return nfunc, fields["pcln"], "<QQ", 16, {"args_at": 12, "name_at": 8, "names": fields["funcname"]}, 0, True
    layout = {"args_at": 8, "name_at": 4, "names": fields["funcname"]}
    return nfunc, fields["pcln"], "<II", 8, layout, text_addr or fields["textstart"], True


def entries(data, text_addr):
    """Every function's entry address, sorted (empty if unreadable)."""
    try:
        found = _functab(data, text_addr)
        if found is None:
            return []
        nfunc, functab, entry_fmt, entry_size, _layout, base, _rel = found
        words = struct.unpack_from("<%d%s" % (max(0, 2 * nfunc - 1), entry_fmt[-1]), data, functab)
        return [e + base for e in words[::2]]
    except (struct.error, IndexError, OverflowError, MemoryError):
        return []


def args_size(data, text_addr, address, starts=None):
    """The runtime's args size of the function at `address` (None if absent).

    For the register ABI that is the stack-assigned args and results plus
    the spill slots of the register-assigned args; for the stack ABI, all
    args and results. abi.arg_width() predicts the same from DWARF, so a
    difference reveals params DWARF leaves out.
    """
    found = _find(data, text_addr, address, starts)
    if found is None:
        return None
    _start, _end, func, layout = found
    try:
        return struct.unpack_from("<i", data, func + layout["args_at"])[0]
    except struct.error:
        return None


def bounds(data, text_addr, address, starts=None):
    """(start, end, name) of the function the runtime's table says starts at
    `address`, or None. The end is where the next function starts: the true
    extent of the code, whatever .symtab's st_size says."""
    found = _find(data, text_addr, address, starts)
    if found is None:
        return None
    start, end, func, layout = found
    try:
        (nameoff,) = struct.unpack_from("<i", data, func + layout["name_at"])
        at = layout["names"] + nameoff
        name = cstring(data, at)
    except (struct.error, ValueError):
        return None
    return start, end, name


def text_range(data, text_addr):
    """(first function's start, last function's end) in .gopclntab, or None."""
    return _find(data, text_addr, None)


def _find(data, text_addr, address, starts=None):
    """(start, end, _func offset, layout) of the functab entry at address;
    for address None, (start of the first, end of the last) instead.
    starts: entries(data, text_addr), when the caller has it: a bisect
    instead of a search that unpacks an entry per step."""
    try:
        found = _functab(data, text_addr)
        if found is None:
            return None
        nfunc, functab, entry_fmt, entry_size, layout, base, relative = found
        if address is None:
            first = struct.unpack_from(entry_fmt, data, functab)[0] + base
            last = struct.unpack_from(entry_fmt, data, functab + entry_size * nfunc)[0] + base
            return first, last
        if starts is not None and len(starts) == nfunc:
            mid = bisect.bisect_left(starts, address)
            if mid == nfunc or starts[mid] != address:
                return None
            entry, funcoff = struct.unpack_from(entry_fmt, data, functab + entry_size * mid)
            if entry + base == address:
                func = functab + funcoff if relative else funcoff
                (end, _) = struct.unpack_from(entry_fmt, data, functab + entry_size * (mid + 1))
                return address, end + base, func, layout
        lo, hi = 0, nfunc - 1
        while lo <= hi:  # functab is sorted by entry, and ends with the end of the last
            mid = (lo + hi) // 2
            entry, funcoff = struct.unpack_from(entry_fmt, data, functab + entry_size * mid)
            entry += base
            if entry == address:
                func = functab + funcoff if relative else funcoff
                (end, _) = struct.unpack_from(entry_fmt, data, functab + entry_size * (mid + 1))
                return entry, end + base, func, layout
            if entry < address:
                lo = mid + 1
            else:
                hi = mid - 1
    except (struct.error, IndexError, OverflowError):
        return None
    return None


def cstring(data, at):
    """The NUL-terminated name at `at` of a bytes object or a memoryview."""
    size = 256
    while True:
        chunk = bytes(data[at : at + size])
        end = chunk.find(b"\0")
        if end != -1:
            return chunk[:end].decode("utf-8", "replace")
        if at + size >= len(data):
            raise ValueError(f"unterminated name at {at}")
        size *= 4


class PclnSymbols:
    """Function symbols from .gopclntab, with SymbolTable's interface."""

    def __init__(self, data, text_addr, display_path):
        self._data = data
        self._name = display_path
        try:
            self._functions = self._read(text_addr)
        except (struct.error, IndexError, ValueError) as e:
            raise GobtError(f"{display_path}: corrupt .gopclntab ({e})") from None
        self._by_name = None

    def _read(self, text_addr):
        data = self._data
        magic, _pad, quantum, ptr = struct.unpack_from("<IHBB", data, 0)
        if ptr != 8:
            raise ValueError(f"pointer size {ptr}")
        word = lambda i: struct.unpack_from("<Q", data, 8 + 8 * i)[0]  # noqa: E731
        nfunc = word(0)
        if magic == MAGIC_GO12:
            return self._read_go12(nfunc)
        layout = LAYOUTS.get(magic)
        if layout is None:
            raise ValueError(f"unknown magic 0x{magic:x}")
        fields = {name: word(1 + i) for i, name in enumerate(layout)}
        funcnames = fields["funcname"]
        functab = fields["pcln"]
        out = []
        if magic == MAGIC_GO116:
            # {entry uintptr, funcoff uintptr} pairs; _func.nameoff at +8.
            entries = [struct.unpack_from("<QQ", data, functab + 16 * i) for i in range(nfunc + 1)]
            for (entry, funcoff), (end, _) in zip(entries, entries[1:]):
                (nameoff,) = struct.unpack_from("<i", data, functab + funcoff + 8)
                out.append((self._cstr(funcnames + nameoff), entry, end - entry, False))
            return _name_abi_wrappers(out)
        # Go 1.18+: {entryoff uint32, funcoff uint32}, relative to textStart;
        # _func is {entryOff uint32, nameOff int32, ...} with its flag byte
        # at 37, or at 41 once Go 1.20 added startLine.
        text = text_addr or fields["textstart"]
        flag_at = 41 if magic == MAGIC_GO120 else 37
        entries = [struct.unpack_from("<II", data, functab + 8 * i) for i in range(nfunc + 1)]
        for (entry, funcoff), (end, _) in zip(entries, entries[1:]):
            (nameoff,) = struct.unpack_from("<i", data, functab + funcoff + 4)
            is_asm = bool(data[functab + funcoff + flag_at] & FUNC_FLAG_ASM)
            out.append((self._cstr(funcnames + nameoff), text + entry, end - entry, is_asm))
        return _name_abi_wrappers(out)

    def _read_go12(self, nfunc):
        data = self._data
        base = 16  # magic, pad, quantum, ptrsize, nfunc
        entries = [struct.unpack_from("<QQ", data, base + 16 * i) for i in range(nfunc)]
        (end_pc,) = struct.unpack_from("<Q", data, base + 16 * nfunc)
        out = []
        for i, (entry, funcoff) in enumerate(entries):
            end = entries[i + 1][0] if i + 1 < nfunc else end_pc
            (nameoff,) = struct.unpack_from("<i", data, funcoff + 8)
            out.append((self._cstr(nameoff), entry, end - entry, False))
        return _name_abi_wrappers(out)

    def _cstr(self, offset):
        return cstring(self._data, offset)

    # -- SymbolTable's interface -------------------------------------------

    def _make(self, row):
        from .symtab import Function

        return Function(*row)

    def lookup(self, name):
        if self._by_name is None:
            self._by_name = {}
            for row in self._functions:
                self._by_name.setdefault(row[0], row)
        row = self._by_name.get(name)
        if row is None and name.endswith(".abi0"):
            row = self._by_name.get(name[: -len(".abi0")])
            if row is not None:
                row = (name,) + tuple(row[1:])
        return self._make(row) if row else None

    def match(self, pattern):
        fn = self.lookup(pattern)
        if fn is not None or not is_wildcard(pattern):
            return [fn] if fn else []
        regex = re.compile(pattern_regex(pattern) + r"\Z", re.S)
        return sorted((self._make(r) for n, r in self._by_name.items() if regex.match(n)), key=lambda f: f.start)

    def all_functions(self):
        return [self._make(r) for r in self._functions]

    def at(self, address):
        for row in self._functions:
            if row[1] == address:
                return self._make(row)
        return None

    def lowest_function_address(self):
        return min((r[1] for r in self._functions), default=0)

    def covering(self, address):
        # bpftrace resolves symbols from .symtab, which a stripped binary
        # does not have: no number is inside a symbol as bpftrace sees it.
        return None

    def address_of(self, name):
        return None
