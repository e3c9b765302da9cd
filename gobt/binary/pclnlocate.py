"""Where a Go binary's function table (pclntab) is, and where its text starts.

A plain Go build has a .gopclntab section. Other builds put the same bytes
elsewhere: an internally linked PIE in .data.rel.ro.gopclntab, an externally
linked one (Debian's `age`: Go 1.19, PIE, stripped) somewhere inside
.data.rel.ro with no section of its own. So when no section names it, gobt
scans the loaded segments for a pclntab header and keeps one only if it
holds together (below), preferring the one the runtime's module data points
at: runtime.firstmoduledata's first word is the pclntab's address in every
Go version from 1.2 on (the pcHeader pointer since 1.16, the pclntable
slice's data pointer before).

Since Go 1.18 function entries are offsets from the text start. The header
records it until the linker stopped relocating the pclntab (it is 0 in Go
1.27); then it comes from the module data's `text` field, which is not the
.text section's address when an external linker put C code first (cgo).
"""

import struct
from ..record import dataclass

from ..errors import GobtError
from .pclntab import LAYOUTS, MAGIC_GO12, MAGIC_GO118, MAGIC_GO120

MAGICS = (MAGIC_GO12,) + tuple(LAYOUTS)
SHT_RELA = 4
# R_X86_64_RELATIVE, R_AARCH64_RELATIVE: a word whose value is its addend
# plus the load base (0 for the file's own addresses).
RELATIVE = {8, 1027}
MAX_FUNCS = 10_000_000

# Module data words (pointer-sized) from Go 1.16 on: pcHeader, then six
# slices (funcnametab, cutab, filetab, pctab, pclntable, ftab), findfunctab,
# minpc, maxpc, text. Checked against runtime.firstmoduledata of Go 1.19,
# 1.23 and 1.27 builds.
MODULEDATA_FUNCNAMETAB = 1
MODULEDATA_TEXT = 22
# types: after text..enoptrbss (22-31), Go 1.20's covctrs and ecovctrs,
# then end, gcdata, gcbss. etypes follows it, or (Go 1.27) follows another
# word. Checked against runtime.types and runtime.etypes of Go 1.19, 1.23
# and 1.27 builds (tests/test_gotypes.py).
MODULEDATA_TYPES = [((1, 20), 37), ((1, 16), 35)]


@dataclass(frozen=True)
class Pclntab:
    data: object  # a view of the bytes from the header to the end of its segment
    vaddr: int
    text_start: int  # what 1.18+ entry offsets are relative to (0 before)


def locate(binary, by_section=True):
    """The binary's Pclntab; a GobtError if it has none gobt can trust.
    by_section=False ignores section names (the tests check the scan)."""
    words = _Words(binary)
    named = [s for s in (".gopclntab", ".data.rel.ro.gopclntab") if by_section and binary.has_section(s)]
    if named:
        _type, vaddr, _off, _size = binary._sections[named[0]]
        found = [vaddr] if _header_ok(binary, vaddr) else []
    else:
        found = [v for v in _candidates(binary) if _header_ok(binary, v)]
    if not found:
        raise GobtError(
            f"{binary.display_path}: no Go function table (pclntab) found",
            hints=["  gobt needs the function table every Go binary carries; is this a Go binary?"],
        )
    if len(found) > 1:  # the one the module data points at, else the biggest
        found = [v for v in found if words.referenced(v)] or found
    vaddr = max(found, key=lambda v: _nfunc(binary, v))
    text = _text_start(binary, vaddr, words)
    if not _entries_ok(binary, vaddr, text):
        raise GobtError(f"{binary.display_path}: its Go function table (pclntab at 0x{vaddr:x}) does not "
                        "hold together: entries unsorted or outside the text")
    return Pclntab(_bytes_from(binary, vaddr), vaddr, text)


def _bytes_from(binary, vaddr):
    # Slicing the mmap copies: once per candidate is enough.
    cache = binary.__dict__.setdefault("_pcln_bytes", {})
    if vaddr not in cache:
        cache[vaddr] = _segment_tail(binary, vaddr)
    return cache[vaddr]


def _segment_tail(binary, vaddr):
    # A view, not a copy: a lookup touches a few pages of a table that is
    # 6 MB in cmd/go (copying it cost a cold run 7 ms, and bigprog 130 MB).
    for seg in binary.segments:
        if seg.vaddr <= vaddr < seg.vaddr + seg.filesz:
            start = vaddr - seg.vaddr + seg.offset
            return memoryview(binary._map)[start : seg.offset + seg.filesz]
    raise GobtError(f"{binary.display_path}: pclntab at 0x{vaddr:x} is in no loaded segment")


def _candidates(binary):
    """Addresses in the loaded segments where a pclntab magic starts."""
    m = binary._map
    out = []
    for seg in binary.segments:
        end = seg.offset + seg.filesz
        for magic in MAGICS:
            needle = struct.pack("<I", magic) + b"\0\0"
            pos = m.find(needle, seg.offset, end)
            while pos != -1:
                if pos % 8 == 0:  # the runtime aligns it to a pointer at least
                    out.append(pos - seg.offset + seg.vaddr)
                pos = m.find(needle, pos + 1, end)
    return out


def _header(binary, vaddr):
    data = _bytes_from(binary, vaddr)
    magic, pad, quantum, ptrsize = struct.unpack_from("<IHBB", data, 0)
    (nfunc,) = struct.unpack_from("<Q", data, 8)
    return data, magic, pad, quantum, ptrsize, nfunc


def _nfunc(binary, vaddr):
    return _header(binary, vaddr)[5]


def _header_ok(binary, vaddr):
    """The header's own consistency: pad, quantum, pointer size, a plausible
    function count, and table offsets in order inside the bytes."""
    try:
        data, magic, pad, quantum, ptrsize, nfunc = _header(binary, vaddr)
        if magic not in MAGICS or pad != 0 or quantum not in (1, 2, 4) or ptrsize != 8:
            return False
        if not 0 < nfunc < MAX_FUNCS:
            return False
        if magic == MAGIC_GO12:
            return 16 + 16 * (nfunc + 1) <= len(data)
        layout = LAYOUTS[magic]
        fields = dict(zip(layout, struct.unpack_from("<%dQ" % len(layout), data, 16)))
        offsets = [fields[k] for k in ("funcname", "cu", "filetab", "pctab", "pcln")]
        header_end = 16 + 8 * len(layout)
        return header_end <= offsets[0] and offsets == sorted(offsets) and offsets[-1] < len(data)
    except (struct.error, GobtError):
        return False


def _entries_ok(binary, vaddr, text):
    """Function entries sorted and inside an executable segment."""
    data, magic, _pad, _q, _ptr, nfunc = _header(binary, vaddr)
    try:
        # Each table is read with one unpack (every other word: the entries).
        if magic == MAGIC_GO12:
            entries = list(struct.unpack_from("<%dQ" % (2 * nfunc + 1), data, 16)[::2])
        else:
            layout = LAYOUTS[magic]
            functab = dict(zip(layout, struct.unpack_from("<%dQ" % len(layout), data, 16)))["pcln"]
            if magic in (MAGIC_GO118, MAGIC_GO120):
                entries = [text + e for e in struct.unpack_from("<%dI" % (2 * nfunc + 1), data, functab)[::2]]
            else:
                entries = list(struct.unpack_from("<%dQ" % (2 * nfunc + 1), data, functab)[::2])
    except (struct.error, OverflowError, MemoryError):
        return False
    if entries != sorted(entries):
        return False
    return any(s.vaddr <= entries[0] and entries[-1] <= s.vaddr + s.memsz
               for s in binary.segments if s.executable)


def _text_start(binary, vaddr, words):
    magic, layout, fields = _fields(binary, vaddr)
    if magic not in (MAGIC_GO118, MAGIC_GO120):
        return 0  # entries are addresses
    text = fields["textstart"] or words.at(vaddr + 16 + 8 * layout.index("textstart"))
    if text:
        return text
    for md in _module_data(binary, words, vaddr, fields):
        text = words.at(md + 8 * MODULEDATA_TEXT)
        if text:
            return text
    symbols = binary.symbols_if_any
    text = symbols.address_of("runtime.text") if symbols is not None else None
    if text:
        return text
    raise GobtError(f"{binary.display_path}: cannot tell where its Go text starts "
                    "(no module data points at its function table)")


def module_types(binary):
    """(types, etypes) as the runtime's module data records them, or None:
    where a stripped build's type descriptors are (a PIE's are in
    .data.rel.ro, its words filled in by relocations)."""
    version = binary.go_version_tuple
    index = next((i for since, i in MODULEDATA_TYPES if version is not None and version >= since), None)
    if index is None:
        return None
    try:
        vaddr = binary.pclntab.vaddr
        magic, _, fields = _fields(binary, vaddr)
    except (GobtError, struct.error):
        return None
    if magic not in LAYOUTS:
        return None
    words = _Words(binary)
    for md in _module_data(binary, words, vaddr, fields):
        types = words.at(md + 8 * index)
        seg = next((s for s in binary.segments if s.vaddr <= types < s.vaddr + s.filesz), None)
        if seg is None:
            return None
        for k in (1, 2):
            etypes = words.at(md + 8 * (index + k))
            if types < etypes <= seg.vaddr + seg.filesz:
                return types, etypes
        return None
    return None


def _fields(binary, vaddr):
    """(magic, layout, {field: word}) of the pclntab header at vaddr (no
    fields for a layout gobt does not know)."""
    data, magic, *_ = _header(binary, vaddr)
    layout = LAYOUTS.get(magic)
    if layout is None:
        return magic, None, {}
    return magic, layout, dict(zip(layout, struct.unpack_from("<%dQ" % len(layout), data, 16)))


def _module_data(binary, words, vaddr, fields):
    """Each module data of this pclntab: a word that points at it, whose
    funcnametab slice points where the header says it starts."""
    for md in _module_data_candidates(binary, words, vaddr):
        if words.at(md + 8 * MODULEDATA_FUNCNAMETAB) == vaddr + fields["funcname"]:
            yield md


def _module_data_candidates(binary, words, vaddr):
    """Where the module data may be, the likeliest first: the symbol that
    names it, then words in writable segments (the runtime writes to its
    module data, so the linker never puts it in text or rodata), then
    anywhere. Each is checked by the caller; a scan costs ~10 ms on cmd/go."""
    symbols = binary.symbols_if_any
    named = symbols.address_of("runtime.firstmoduledata") if symbols is not None else None
    if named and words.at(named) == vaddr:
        yield named
    seen = {named}
    for writable in (True, False):
        for md in words.referrers(vaddr, writable=writable):
            if md not in seen:
                seen.add(md)
                yield md


class _Words:
    """Pointer-sized words as the loaded program sees them: the file's bytes,
    or for a PIE the addend of the relative relocation that fills them."""

    def __init__(self, binary):
        self.binary = binary
        self._relocs = None

    @property
    def relocs(self):
        if self._relocs is None:
            self._relocs = {}
            m = self.binary._map
            for sh_type, _addr, offset, size in self.binary._sections.values():
                if sh_type != SHT_RELA:
                    continue
                table = m[offset : offset + size]
                for r_offset, r_info, addend in struct.iter_unpack("<QQq", table[: len(table) - len(table) % 24]):
                    if r_info & 0xFFFFFFFF in RELATIVE:
                        self._relocs[r_offset] = addend
        return self._relocs

    def at(self, vaddr):
        try:
            off = self.binary.file_offset(vaddr)
            (value,) = struct.unpack_from("<Q", self.binary._map, off)
        except (GobtError, struct.error):
            return self.relocs.get(vaddr, 0)
        return value or self.relocs.get(vaddr, 0)

    def referrers(self, target, writable=None):
        """Addresses of aligned words that hold `target` (in writable
        segments only, or only in the others, if asked)."""
        m = self.binary._map
        needle = struct.pack("<Q", target)
        out = []
        for seg in self.binary.segments:
            if writable is not None and seg.writable != writable:
                continue
            pos = m.find(needle, seg.offset, seg.offset + seg.filesz)
            while pos != -1:
                if pos % 8 == 0:
                    out.append(pos - seg.offset + seg.vaddr)
                pos = m.find(needle, pos + 1, seg.offset + seg.filesz)
        if writable is not False:
            out += [r for r, addend in self.relocs.items() if addend == target]
        return out

    def referenced(self, target):
        return bool(self.referrers(target))
