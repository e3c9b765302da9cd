"""Go's run-time type descriptors, as the binary itself holds them.

An interface's first word leads to its dynamic type's descriptor
(runtime._type, internal/abi.Type since Go 1.21): an `any` holds it, an
iface holds an itab whose second word is it. The descriptor's `str` is a
nameOff, an offset from the module's `types` base to the type's name
(a flag byte, then the length: two big-endian bytes before Go 1.17, a
uvarint since, then the bytes). A type T and *T share one name, "*T": T's
descriptor has tflagExtraStar set and skips the star.

So a type is found by its name without any symbol: the name's bytes in
[types, etypes), then the descriptor whose `str` holds that offset. This
works the same on stripped binaries (no type:* symbols) and on Go 1.26+,
which emits none at all. `types` is the symbol runtime.types, else the
start of .go.type (Go 1.26+), else of .rodata (where every Go from 1.15 to
1.25 puts it: checked against runtime.types of each toolchain's builds).
"""

import re
import struct
from functools import cached_property

from ..errors import GobtError
from .pclnlocate import _Words

TFLAG_EXTRA_STAR = 2
KIND_MASK = 0x1F
KIND_UINTPTR = 12
KIND_PTR = 22
KIND_STRUCT = 25

# runtime._type / internal/abi.Type on 64-bit, the same from Go 1.14 to
# 1.27 (size, ptrdata, hash, tflag, align, fieldAlign, kind, equal, gcdata,
# str, ptrToThis); DWARF, when present, has the last word (_type_layout).
TYPE_LAYOUT = {"tflag": 20, "kind": 23, "str": 40}
_DWARF_TYPE = (("internal/abi.Type", {"tflag": "TFlag", "kind": "Kind_", "str": "Str"}),
               ("runtime._type", {"tflag": "tflag", "kind": "kind", "str": "str"}))


class GoTypes:
    """One binary's type descriptors: where they are, and which is which."""

    def __init__(self, binary):
        self.binary = binary

    @classmethod
    def of(cls, binary):
        found = binary.__dict__.get("_gotypes")
        if found is None:
            found = binary.__dict__["_gotypes"] = cls(binary)
        return found

    @cached_property
    def bounds(self):
        """(types, etypes) as static addresses."""
        b = self.binary
        symbols = b.symbols_if_any
        if symbols is not None:
            start, end = symbols.address_of("runtime.types"), symbols.address_of("runtime.etypes")
            if start and end:
                return start, end
        from .pclnlocate import module_types

        found = module_types(b)  # stripped: as the runtime knows them (a PIE's are not in .rodata)
        if found:
            return found
        for name in (".go.type", ".rodata"):
            sec = b._sections.get(name)
            if sec is not None:
                return sec[1], sec[1] + sec[3]
        raise GobtError(f"{b.display_path}: cannot tell where its Go type descriptors are "
                        "(no runtime.types, .go.type or .rodata)")

    @cached_property
    def _region(self):
        start, end = self.bounds
        off = self.binary.file_offset(start)
        return off, bytes(self.binary._map[off : off + (end - start)])

    @property
    def varint_names(self):
        v = self.binary.go_version_tuple
        return v is None or v >= (1, 17)

    @cached_property
    def layout(self):
        """Offsets of tflag, kind and str in a type descriptor: DWARF's, else the table's."""
        b = self.binary
        if b.has_dwarf:
            for name, fields in _DWARF_TYPE:
                t = b.dwarf.type_named(name)
                if t is not None:
                    got = {k: (t.field(f).offset if t.field(f) else None) for k, f in fields.items()}
                    if None not in got.values():
                        return got
        return dict(TYPE_LAYOUT)

    def _encoded(self, name):
        raw = name.encode()
        if self.varint_names:
            n, head = len(raw), b""
            while True:
                byte = n & 0x7F
                n >>= 7
                head += bytes([byte | (0x80 if n else 0)])
                if not n:
                    break
            return head + raw
        return struct.pack(">H", len(raw)) + raw

    def name_offsets(self, name):
        """nameOffs (from `types`) of the names spelled `name`."""
        _off, data = self._region
        needle = self._encoded(name)
        out = []
        pos = data.find(needle, 1)
        while pos != -1:
            # The flag byte before it; what follows the bytes is another name's flag or padding.
            out.append(pos - 1)
            pos = data.find(needle, pos + 1)
        return out

    def type_address(self, go_name):
        """The static address of the descriptor of the type %T prints as
        go_name (`*errors.errorString`, `syscall.Errno`), or None."""
        key = f"type|{go_name}"
        cached = self.binary.cache.get("gotypes", key)
        if cached is not None:
            return cached or None
        found = self._find_type(go_name)
        self.binary.cache.put("gotypes", key, found or 0)
        return found

    def _find_type(self, go_name):
        lay = self.layout
        start, _end = self.bounds
        _off, data = self._region
        # A named T is spelled "*T" with the extra star; *T itself plainly.
        wanted = [(go_name, False)]
        if not go_name.startswith("*"):
            wanted.append(("*" + go_name, True))
        for spelled, extra_star in wanted:
            for name_off in self.name_offsets(spelled):
                needle = struct.pack("<i", name_off)
                pos = data.find(needle)
                while pos != -1:
                    t = pos - lay["str"]
                    if t >= 0 and (start + t) % 8 == 0:
                        tflag, kind = data[t + lay["tflag"]], data[t + lay["kind"]] & KIND_MASK
                        if bool(tflag & TFLAG_EXTRA_STAR) == extra_star and (kind == KIND_PTR) == go_name.startswith("*"):
                            return start + t
                    pos = data.find(needle, pos + 1)
        return None

    def bytes_address(self, text):
        """A static address where the read-only data holds `text`'s bytes, or None."""
        key = f"bytes|{text}"
        cached = self.binary.cache.get("gotypes", key)
        if cached is not None:
            return cached or None
        raw = text.encode()
        found = 0
        for seg in self.binary.segments:
            if seg.executable or seg.writable:
                continue
            pos = self.binary._map.find(raw, seg.offset, seg.offset + seg.filesz)
            if pos != -1:
                found = pos - seg.offset + seg.vaddr
                break
        self.binary.cache.put("gotypes", key, found)
        return found or None

    def struct_offsets(self, dwarf_name, fields, table):
        """Field offsets of a standard library struct: its DWARF's where the
        binary has DWARF and the type, else `table` (per Go version, data)."""
        b = self.binary
        if b.has_dwarf:
            t = b.dwarf.type_named(dwarf_name)
            if t is not None:
                got = {f: t.field(f).offset for f in fields if t.field(f) is not None}
                if len(got) == len(fields):
                    return got
        return table


def t_name(dwarf_name):
    """A type's name as %T spells it: DWARF's go/printer.Config is
    printer.Config (the package's name, not its import path)."""
    return re.sub(r"(?:[\w.\-]+/)+(?=\w+\.)", "", dwarf_name)


def error_methods(binary):
    """[DWARF name, pointer receiver] of each type with an Error method:
    by the methods' own names (PKG.(*T).Error, PKG.T.Error), which the
    function table holds on every Go and in stripped binaries, where Go
    1.26+ writes no itab symbols. A generic type's (T[...]) is left out:
    its name in the binary is not the one %T prints. (Uncached: its one
    caller caches what it makes of these.)"""
    found = set()
    for fn in binary.symbols.match("*.Error"):
        head = fn.name[: -len(".Error")]
        m = re.fullmatch(r"(.+)\.\(\*(\w+)\)", head)
        if m:
            found.add((f"{m.group(1)}.{m.group(2)}", True))
            continue
        pkg, _, name = head.rpartition(".")
        if pkg and re.fullmatch(r"\w+", name) and "(" not in pkg:
            found.add((f"{pkg}.{name}", False))
    return sorted(found)


def errno_table(binary, texts):
    """(static address, entries) of the syscall package's errno text table,
    the `errors` array that syscall.Errno.Error() indexes, or None.

    By its symbol, else by its first entry: a string header whose pointer
    leads to texts[1] ("operation not permitted"). Each entry is checked
    against `texts` (errno -> the spellings Go's zerrors tables use), and
    the table ends at the last one that matches, so a read never runs past
    it into whatever the linker put next."""
    key = "errno_table"
    cached = binary.cache.get("gotypes", key)
    if cached is not None:
        return tuple(cached) if cached else None
    words = _Words(binary)
    found = None
    symbols = binary.symbols_if_any
    named = symbols.address_of("syscall.errors") if symbols is not None else None
    candidates = [named] if named else _first_entries(binary, words, texts[1][0])
    for start in candidates:
        count = _verified_entries(binary, words, start, texts)
        if count:
            found = (start, count)
            break
    binary.cache.put("gotypes", key, list(found) if found else 0)
    return found


def _first_entries(binary, words, text):
    raw = text.encode()
    length = struct.pack("<Q", len(raw))
    for seg in binary.segments:
        if not seg.writable:
            continue
        m = binary._map
        pos = m.find(length, seg.offset, seg.offset + seg.filesz)
        while pos != -1:
            if pos % 8 == 0:
                header = pos - 8 - seg.offset + seg.vaddr
                if _string_at(binary, words.at(header), len(raw)) == raw:
                    yield header - 16  # entry 0 is the empty string
            pos = m.find(length, pos + 1, seg.offset + seg.filesz)


def _string_at(binary, vaddr, size):
    try:
        off = binary.file_offset(vaddr)
    except GobtError:
        return None
    return bytes(binary._map[off : off + size])


def _verified_entries(binary, words, start, texts):
    """How many entries from `start` hold the texts expected (0: not the table)."""
    last = 0
    for n in range(1, max(texts) + 1):
        ptr = words.at(start + 16 * n)
        try:
            (size,) = struct.unpack_from("<Q", binary._map, binary.file_offset(start + 16 * n + 8))
        except (GobtError, struct.error):
            break
        expected = texts.get(n)
        if expected is None:
            if size != 0:
                break
            continue
        got = _string_at(binary, ptr, size) if size else b""
        if got is None or got.decode("utf-8", "replace") not in expected:
            break
        last = n
    return last + 1 if last >= 2 else 0
