"""Resolve, in bulk: every subprogram's params, in one pass over .debug_info.

A listing of a whole binary asks for thousands of functions. Finding each
one by its bytes (dwarf.DwarfReader.subprogram) scans all of .debug_info
per function, and pyelftools parses a DIE in tens of microseconds: cmd/go
took minutes. This reads each DIE once, decoding only the attributes a
listing needs, and keeps no DIE objects: per subprogram its low_pc, name,
abstract origin and params (offsets, names, type offsets, result flags),
and per abstract origin the number of inlined copies. Types are still
read through pyelftools, once each, by offset (dwarf.GoType).

Anything it does not understand (a form it does not know, 64-bit DWARF, a
truncated unit) raises Unsupported: the caller then keeps the per-function
path, which is slower but general.
"""

import struct

_TAG_SUBPROGRAM = 0x2E
_TAG_FORMAL_PARAMETER = 0x05
_TAG_INLINED_SUBROUTINE = 0x1D
_AT_NAME = 0x03
_AT_LOW_PC = 0x11
_AT_TYPE = 0x49
_AT_ABSTRACT_ORIGIN = 0x31
_AT_VARIABLE_PARAMETER = 0x4B
_AT_INLINE = 0x20
_AT_ADDR_BASE = 0x73

_WANTED = {_AT_NAME, _AT_LOW_PC, _AT_TYPE, _AT_ABSTRACT_ORIGIN, _AT_VARIABLE_PARAMETER, _AT_INLINE,
           _AT_ADDR_BASE}

# Forms by how to skip or read them (32-bit DWARF, 8-byte addresses).
_FIXED = {0x01: 8, 0x05: 2, 0x06: 4, 0x07: 8, 0x0B: 1, 0x0C: 1, 0x0E: 4, 0x10: 4, 0x11: 1, 0x12: 2,
          0x13: 4, 0x14: 8, 0x17: 4, 0x19: 0, 0x1C: 4, 0x1D: 4, 0x1E: 16, 0x1F: 4, 0x20: 8, 0x21: 0,
          0x24: 8, 0x25: 1, 0x26: 2, 0x27: 3, 0x28: 4, 0x29: 1, 0x2A: 2, 0x2B: 3, 0x2C: 4}
_ULEB = {0x0F, 0x15, 0x1A, 0x1B, 0x22, 0x23}  # udata, ref_udata, strx, addrx, loclistx, rnglistx
_SLEB = {0x0D}
_STRING = 0x08
_BLOCKS = {0x0A: 1, 0x03: 2, 0x04: 4}  # block1/2/4: a length of that size, then the bytes
_ULEB_BLOCKS = {0x09, 0x18}  # block, exprloc
_FORM_ADDR, _FORM_ADDRX, _FORM_REF_ADDR = 0x01, 0x1B, 0x10
_CU_REFS = {0x11, 0x12, 0x13, 0x14, 0x15}  # CU-relative references
_INT_FIXED = {1: "<B", 2: "<H", 4: "<I", 8: "<Q"}


class Unsupported(Exception):
    pass


class Entry:
    """A DIE, as much of it as a listing reads: a subprogram (with its
    params), a formal_parameter, or scratch for a DIE read for one field."""

    __slots__ = ("offset", "is_param", "name", "low", "origin", "inline", "type", "variable", "params")

    def __init__(self, offset, is_param=False):
        self.offset = offset
        self.is_param = is_param
        self.name = None
        self.low = None
        self.origin = None
        self.inline = False
        self.type = None  # the type DIE's offset in .debug_info
        self.variable = False
        self.params = []  # a subprogram's formal_parameter Entries, in order


def _uleb(data, pos):
    b = data[pos]
    if b < 0x80:
        return b, pos + 1
    value = shift = 0
    while True:
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return value, pos


def _abbrevs(data, offset):
    """code -> (tag, has_children, [(attr, form, implicit_const)])."""
    out = {}
    pos = offset
    while True:
        code, pos = _uleb(data, pos)
        if code == 0:
            return out
        tag, pos = _uleb(data, pos)
        children = data[pos]
        pos += 1
        specs = []
        while True:
            attr, pos = _uleb(data, pos)
            form, pos = _uleb(data, pos)
            const = None
            if form == 0x21:  # implicit_const: the value is in the abbreviation
                const, pos = _uleb(data, pos)
            if attr == 0 and form == 0:
                break
            if form not in _FIXED and form not in _ULEB and form not in _SLEB and form != _STRING \
                    and form not in _BLOCKS and form not in _ULEB_BLOCKS:
                raise Unsupported(f"DWARF form 0x{form:x}")
            specs.append((attr, form, const))
        out[code] = (tag, bool(children), specs)


class DwarfIndex:
    """by_low: low_pc -> [subprogram Entry]; by_offset: DIE offset -> Entry;
    inlined: abstract origin offset -> inlined copies."""

    def __init__(self, info, abbrev, addr):
        self.by_low = {}
        self.by_offset = {}
        self.inlined = {}
        self._addr = addr
        pos = 0
        end = len(info)
        cache = {}
        while pos < end:
            pos = self._unit(info, abbrev, pos, cache)

    def _unit(self, data, abbrev, start, cache):
        if start + 11 > len(data):
            raise Unsupported("truncated unit header")
        length, version = struct.unpack_from("<IH", data, start)
        if length >= 0xFFFFFFF0:
            raise Unsupported("64-bit DWARF")
        if version >= 5:
            unit_type, addr_size, abbrev_off = struct.unpack_from("<BBI", data, start + 6)
            pos = start + 12
            if unit_type not in (1, 3):  # DW_UT_compile, DW_UT_partial
                return start + 4 + length
        else:
            abbrev_off, addr_size = struct.unpack_from("<IB", data, start + 6)
            pos = start + 11
        if addr_size != 8:
            raise Unsupported(f"{addr_size}-byte addresses")
        unit_end = start + 4 + length
        if unit_end > len(data):
            raise Unsupported("truncated unit")
        table = cache.get(abbrev_off)
        if table is None:
            table = cache[abbrev_off] = _abbrevs(abbrev, abbrev_off)
        addr_base = 8  # DWARF 5's default: right after .debug_addr's header
        depth = 0
        sub = None  # the subprogram whose direct children are being read
        sub_depth = -1
        uleb = _uleb
        while pos < unit_end:
            die = pos
            code = data[pos]
            if code < 0x80:
                pos += 1
            else:
                code, pos = uleb(data, pos)
            if code == 0:
                depth -= 1
                if depth <= sub_depth:
                    sub, sub_depth = None, -1
                continue
            try:
                tag, children, specs = table[code]
            except KeyError:
                raise Unsupported(f"abbreviation {code} at 0x{die:x}") from None
            keep = None
            if tag == _TAG_SUBPROGRAM:
                keep = Entry(die)
            elif tag == _TAG_FORMAL_PARAMETER and sub is not None and depth == sub_depth + 1:
                keep = Entry(die, is_param=True)
            elif tag == _TAG_INLINED_SUBROUTINE or depth == 0:
                keep = Entry(die)  # scratch: only its origin (or the CU's addr_base) is read
            for attr, form, const in specs:
                if keep is None or attr not in _WANTED:
                    n = _FIXED.get(form)
                    if n is not None:
                        pos += n
                    elif form == _STRING:
                        pos = data.index(b"\0", pos) + 1
                    elif form in _ULEB or form in _SLEB:
                        while data[pos] & 0x80:
                            pos += 1
                        pos += 1
                    elif form in _ULEB_BLOCKS:
                        n, pos = uleb(data, pos)
                        pos += n
                    else:
                        size = _BLOCKS[form]
                        n = int.from_bytes(data[pos : pos + size], "little")
                        pos += size + n
                    continue
                # A wanted attribute: its value.
                if form == _STRING:
                    stop = data.index(b"\0", pos)
                    value = data[pos:stop].decode("utf-8", "replace")
                    pos = stop + 1
                elif form in _FIXED:
                    n = _FIXED[form]
                    value = const if form == 0x21 else int.from_bytes(data[pos : pos + n], "little")
                    pos += n
                    if form in _CU_REFS:
                        value += start
                elif form in _ULEB:
                    value, pos = uleb(data, pos)
                    if form == 0x15:
                        value += start
                else:
                    raise Unsupported(f"form 0x{form:x} for attribute 0x{attr:x}")
                if attr == _AT_NAME:
                    keep.name = value if isinstance(value, str) else None
                elif attr == _AT_LOW_PC:
                    if form == _FORM_ADDRX:
                        value = self._address(addr_base, value)
                    elif form != _FORM_ADDR:
                        raise Unsupported(f"low_pc of form 0x{form:x}")
                    keep.low = value
                elif attr == _AT_TYPE:
                    keep.type = value
                elif attr == _AT_ABSTRACT_ORIGIN:
                    keep.origin = value
                elif attr == _AT_VARIABLE_PARAMETER:
                    keep.variable = bool(value)
                elif attr == _AT_INLINE:
                    keep.inline = True
                elif attr == _AT_ADDR_BASE and depth == 0:
                    addr_base = value
            if keep is not None:
                if tag == _TAG_SUBPROGRAM:
                    self.by_offset[die] = keep
                    if keep.low is not None:
                        self.by_low.setdefault(keep.low, []).append(keep)
                    if children:
                        sub, sub_depth = keep, depth
                elif tag == _TAG_INLINED_SUBROUTINE:
                    if keep.origin is not None:
                        self.inlined[keep.origin] = self.inlined.get(keep.origin, 0) + 1
                elif tag == _TAG_FORMAL_PARAMETER:
                    sub.params.append(keep)
                    self.by_offset[die] = keep
            if children:
                depth += 1
        return unit_end

    def _address(self, base, index):
        at = base + index * 8
        if self._addr is None or at + 8 > len(self._addr):
            raise Unsupported("address index outside .debug_addr")
        return int.from_bytes(self._addr[at : at + 8], "little")
