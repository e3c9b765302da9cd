"""Resolve: DIEs read straight from the bytes, one at a time, without pyelftools.

dwarf.py reads a handful of DIEs per function (found by their bytes) and
the types they name. pyelftools costs a cold run ~35 ms to import and set
up, then ~40 us per DIE; this reads the same DIEs with the same values
(attribute names as pyelftools spells them, strings as bytes, addrx
resolved to addresses, CU-relative references as offsets in the unit) from
sections it decompresses itself. It reads 32-bit DWARF 2 to 5 with 8-byte
addresses, as Go writes it; anything else raises Unsupported and dwarf.py
uses pyelftools instead.
"""

import bisect
import struct
import zlib

from .dwarfindex import Unsupported, _abbrevs, _uleb

TAGS = {0x01: "DW_TAG_array_type", 0x05: "DW_TAG_formal_parameter", 0x0B: "DW_TAG_lexical_block",
        0x0D: "DW_TAG_member", 0x0F: "DW_TAG_pointer_type", 0x11: "DW_TAG_compile_unit",
        0x13: "DW_TAG_structure_type", 0x15: "DW_TAG_subroutine_type", 0x16: "DW_TAG_typedef",
        0x18: "DW_TAG_unspecified_parameters", 0x1D: "DW_TAG_inlined_subroutine", 0x21: "DW_TAG_subrange_type",
        0x24: "DW_TAG_base_type", 0x26: "DW_TAG_const_type", 0x2E: "DW_TAG_subprogram",
        0x34: "DW_TAG_variable", 0x3B: "DW_TAG_unspecified_type", 0x0A: "DW_TAG_label",
        0x27: "DW_TAG_constant", 0x1F: "DW_TAG_ptr_to_member_type", 0x04: "DW_TAG_enumeration_type",
        0x17: "DW_TAG_union_type", 0x28: "DW_TAG_enumerator", 0x35: "DW_TAG_volatile_type",
        0x39: "DW_TAG_namespace", 0x41: "DW_TAG_type_unit", 0x42: "DW_TAG_rvalue_reference_type",
        0x10: "DW_TAG_reference_type", 0x38: "DW_TAG_interface_type"}
ATTRS = {0x01: "DW_AT_sibling", 0x02: "DW_AT_location", 0x03: "DW_AT_name", 0x0B: "DW_AT_byte_size",
         0x10: "DW_AT_stmt_list", 0x11: "DW_AT_low_pc", 0x12: "DW_AT_high_pc", 0x13: "DW_AT_language",
         0x1B: "DW_AT_comp_dir", 0x1C: "DW_AT_const_value", 0x20: "DW_AT_inline", 0x25: "DW_AT_producer",
         0x2F: "DW_AT_upper_bound", 0x31: "DW_AT_abstract_origin", 0x37: "DW_AT_count",
         0x38: "DW_AT_data_member_location", 0x3A: "DW_AT_decl_file", 0x3B: "DW_AT_decl_line",
         0x3E: "DW_AT_encoding", 0x3F: "DW_AT_external", 0x40: "DW_AT_frame_base",
         0x49: "DW_AT_type", 0x4B: "DW_AT_variable_parameter", 0x55: "DW_AT_ranges", 0x58: "DW_AT_call_file",
         0x59: "DW_AT_call_line", 0x56: "DW_AT_trampoline", 0x72: "DW_AT_str_offsets_base",
         0x73: "DW_AT_addr_base", 0x74: "DW_AT_rnglists_base", 0x22: "DW_AT_lower_bound",
         0x3C: "DW_AT_declaration", 0x27: "DW_AT_prototyped", 0x34: "DW_AT_artificial"}
FORMS = {0x01: "DW_FORM_addr", 0x03: "DW_FORM_block2", 0x04: "DW_FORM_block4", 0x05: "DW_FORM_data2",
         0x06: "DW_FORM_data4", 0x07: "DW_FORM_data8", 0x08: "DW_FORM_string", 0x09: "DW_FORM_block",
         0x0A: "DW_FORM_block1", 0x0B: "DW_FORM_data1", 0x0C: "DW_FORM_flag", 0x0D: "DW_FORM_sdata",
         0x0E: "DW_FORM_strp", 0x0F: "DW_FORM_udata", 0x10: "DW_FORM_ref_addr", 0x11: "DW_FORM_ref1",
         0x12: "DW_FORM_ref2", 0x13: "DW_FORM_ref4", 0x14: "DW_FORM_ref8", 0x15: "DW_FORM_ref_udata",
         0x17: "DW_FORM_sec_offset", 0x18: "DW_FORM_exprloc", 0x19: "DW_FORM_flag_present",
         0x1A: "DW_FORM_strx", 0x1B: "DW_FORM_addrx", 0x1E: "DW_FORM_data16", 0x1F: "DW_FORM_line_strp",
         0x20: "DW_FORM_ref_sig8", 0x21: "DW_FORM_implicit_const", 0x22: "DW_FORM_loclistx",
         0x23: "DW_FORM_rnglistx", 0x25: "DW_FORM_strx1", 0x26: "DW_FORM_strx2", 0x27: "DW_FORM_strx3",
         0x28: "DW_FORM_strx4", 0x29: "DW_FORM_addrx1", 0x2A: "DW_FORM_addrx2", 0x2B: "DW_FORM_addrx3",
         0x2C: "DW_FORM_addrx4"}
_SIZED = {0x05: 2, 0x06: 4, 0x07: 8, 0x0B: 1, 0x0C: 1, 0x0E: 4, 0x10: 4, 0x11: 1, 0x12: 2, 0x13: 4, 0x14: 8,
          0x17: 4, 0x1F: 4, 0x20: 8, 0x25: 1, 0x26: 2, 0x27: 3, 0x28: 4, 0x29: 1, 0x2A: 2, 0x2B: 3, 0x2C: 4,
          0x01: 8}
_CU_REF = {0x11, 0x12, 0x13, 0x14, 0x15}
_STRX = {0x1A, 0x25, 0x26, 0x27, 0x28}
_ADDRX = {0x1B, 0x29, 0x2A, 0x2B, 0x2C}
_SHF_COMPRESSED = 0x800


class Attr:
    __slots__ = ("name", "form", "value")

    def __init__(self, name, form, value):
        self.name = name
        self.form = form
        self.value = value


class Unit:
    __slots__ = ("cu_offset", "end", "version", "abbrevs", "die_start", "addr_base", "str_offsets_base")

    def __init__(self, offset):
        self.cu_offset = offset


class Die:
    __slots__ = ("offset", "tag", "attributes", "has_children", "cu", "end", "_reader")

    def get_DIE_from_attribute(self, name):
        attr = self.attributes[name]
        target = attr.value if attr.form == "DW_FORM_ref_addr" else attr.value + self.cu.cu_offset
        return self._reader.die_at(target)

    def iter_children(self):
        if not self.has_children:
            return
        reader = self._reader
        pos = self.end
        while True:
            child = reader.die_at(pos, self.cu)
            if child is None:  # the null entry that ends the children
                return
            yield child
            pos = reader.subtree_end(child)


class LeanDwarf:
    """The DIEs of one binary's .debug_info, parsed one by one on demand."""

    def __init__(self, binary):
        self.info = _section(binary, "info")
        self.abbrev = _section(binary, "abbrev")
        if self.info is None or self.abbrev is None:
            raise Unsupported("no .debug_info or .debug_abbrev")
        self._binary = binary
        self._other = {}
        self._units = []  # sorted by offset
        self._starts = []
        self._tables = {}
        self._dies = {}
        self._bases_pending = False
        pos = 0
        data = self.info
        while pos + 11 <= len(data):
            length, version = struct.unpack_from("<IH", data, pos)
            if length >= 0xFFFFFFF0:
                raise Unsupported("64-bit DWARF")
            unit = Unit(pos)
            unit.end = pos + 4 + length
            unit.version = version
            if version >= 5:
                unit_type, addr_size, abbrev_off = struct.unpack_from("<BBI", data, pos + 6)
                unit.die_start = pos + 12
                if unit_type not in (1, 3):
                    raise Unsupported(f"DWARF unit type {unit_type}")
            elif 2 <= version <= 4:
                abbrev_off, addr_size = struct.unpack_from("<IB", data, pos + 6)
                unit.die_start = pos + 11
            else:
                raise Unsupported(f"DWARF version {version}")
            if addr_size != 8 or unit.end > len(data):
                raise Unsupported("not 8-byte addresses, or a truncated unit")
            table = self._tables.get(abbrev_off)
            if table is None:
                table = self._tables[abbrev_off] = _abbrevs(self.abbrev, abbrev_off)
            unit.abbrevs = table
            unit.addr_base = 8
            unit.str_offsets_base = 8
            self._units.append(unit)
            self._starts.append(pos)
            pos = unit.end
        self._bases_pending = True  # the top DIEs give the bases: indexes stay raw
        for unit in self._units:
            top = self.die_at(unit.die_start, unit)
            if top is not None:
                for name, attr in (("addr_base", "DW_AT_addr_base"), ("str_offsets_base", "DW_AT_str_offsets_base")):
                    found = top.attributes.get(attr)
                    if found is not None:
                        setattr(unit, name, found.value)
                self._dies.pop(unit.die_start, None)  # re-read with the bases known
        self._bases_pending = False

    def _unit_of(self, offset):
        i = bisect.bisect_right(self._starts, offset) - 1
        if i < 0:
            raise Unsupported(f"no unit holds 0x{offset:x}")
        unit = self._units[i]
        if not unit.die_start <= offset < unit.end:
            raise Unsupported(f"0x{offset:x} is not in a unit's DIEs")
        return unit

    def get_DIE_from_refaddr(self, offset):
        die = self.die_at(offset)
        if die is None:
            raise Unsupported(f"a null entry at 0x{offset:x}")
        return die

    def die_at(self, offset, unit=None):
        """The DIE at offset (None for a null entry)."""
        die = self._dies.get(offset)
        if die is not None:
            return die
        unit = unit or self._unit_of(offset)
        data = self.info
        code, pos = _uleb(data, offset)
        if code == 0:
            return None
        try:
            tag, children, specs = unit.abbrevs[code]
        except KeyError:
            raise Unsupported(f"abbreviation {code} at 0x{offset:x}") from None
        attrs = {}
        for attr, form, const in specs:
            value, pos = self._value(unit, form, const, pos)
            name = ATTRS.get(attr, attr)
            attrs[name] = Attr(name, FORMS.get(form, form), value)
        if pos > unit.end:
            raise Unsupported(f"DIE at 0x{offset:x} runs past its unit")
        die = Die()
        die.offset = offset
        die.tag = TAGS.get(tag, tag)
        die.attributes = attrs
        die.has_children = children
        die.cu = unit
        die.end = pos
        die._reader = self
        self._dies[offset] = die
        return die

    def subtree_end(self, die):
        """Where the DIE after `die` and all its descendants starts."""
        if not die.has_children:
            return die.end
        depth = 1
        pos = die.end
        while depth:
            child = self.die_at(pos, die.cu)
            if child is None:
                depth -= 1
                pos += 1
                continue
            pos = child.end
            if child.has_children:
                depth += 1
        return pos

    def _value(self, unit, form, const, pos):
        data = self.info
        if form == 0x08:  # string
            end = data.index(b"\0", pos)
            return data[pos:end], end + 1
        n = _SIZED.get(form)
        if n is not None:
            value = int.from_bytes(data[pos : pos + n], "little")
            pos += n
            if form == 0x0C:
                return bool(value), pos
            if form in _CU_REF:
                return value, pos  # CU-relative, as pyelftools gives it
            if form == 0x0E:
                return self._string("str", value), pos
            if form == 0x1F:
                return self._string("line_str", value), pos
            if form in _STRX:
                return self._string_at_index(unit, value), pos
            if form in _ADDRX:
                return self._address(unit, value), pos
            return value, pos
        if form in (0x0F, 0x15, 0x22, 0x23):  # udata, ref_udata, loclistx, rnglistx
            return _uleb(data, pos)
        if form == 0x1A:
            value, pos = _uleb(data, pos)
            return self._string_at_index(unit, value), pos
        if form == 0x1B:
            value, pos = _uleb(data, pos)
            return self._address(unit, value), pos
        if form == 0x0D:  # sdata
            value, end = _uleb(data, pos)
            bits = 7 * (end - pos)
            if value & (1 << (bits - 1)):
                value -= 1 << bits
            return value, end
        if form == 0x19:
            return True, pos
        if form == 0x21:
            return const, pos
        if form in (0x09, 0x18):  # block, exprloc: a ULEB length
            n, pos = _uleb(data, pos)
            return list(data[pos : pos + n]), pos + n
        if form in (0x0A, 0x03, 0x04):
            size = {0x0A: 1, 0x03: 2, 0x04: 4}[form]
            n = int.from_bytes(data[pos : pos + size], "little")
            pos += size
            return list(data[pos : pos + n]), pos + n
        if form == 0x1E:
            return data[pos : pos + 16], pos + 16
        raise Unsupported(f"DWARF form 0x{form:x}")

    def _other_section(self, name):
        if name not in self._other:
            self._other[name] = _section(self._binary, name)
        found = self._other[name]
        if found is None:
            raise Unsupported(f"no .debug_{name}")
        return found

    def _string(self, section, offset):
        data = self._other_section(section)
        return data[offset : data.index(b"\0", offset)]

    def _string_at_index(self, unit, index):
        if self._bases_pending:
            return index
        offsets = self._other_section("str_offsets")
        at = unit.str_offsets_base + 4 * index
        return self._string("str", int.from_bytes(offsets[at : at + 4], "little"))

    def _address(self, unit, index):
        if self._bases_pending:
            return index
        addrs = self._other_section("addr")
        at = unit.addr_base + 8 * index
        if at + 8 > len(addrs):
            raise Unsupported("address index outside .debug_addr")
        return int.from_bytes(addrs[at : at + 8], "little")


_FORWARDED = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1")


def prefetch(binary, names=("info", "abbrev")):
    """Start decompressing these sections in a thread, for _section to join.

    zlib lets go of the GIL while it inflates, so the ~25 ms cmd/go's
    .debug_info takes overlap with the Python work between opening the
    binary and the first DWARF question (pclntab, disassembly, proofs).
    The bytes come from the same mapping gobt reads everything else from,
    so they are the bytes of the file gobt proves its offsets against."""
    import signal
    import threading

    pending = binary.__dict__.setdefault("_dwarf_pending", {})
    for name in names:
        if name in pending:
            continue
        box = {}

        def work(name=name, box=box):
            # The signals the supervisor forwards (run/supervise.py) must
            # wait for its sigwaitinfo, not land in a thread still inflating
            # when bpftrace starts: there a Ctrl-C became a late
            # KeyboardInterrupt in gobt, with bpftrace left attaching.
            signal.pthread_sigmask(signal.SIG_BLOCK, [getattr(signal, n) for n in _FORWARDED])
            try:
                box["data"] = _read_section(binary, name)
            except BaseException as e:  # re-raised where the bytes are asked for
                box["error"] = e

        thread = threading.Thread(target=work, name=f"gobt-dwarf-{name}", daemon=True)
        pending[name] = (thread, box)
        thread.start()


def _section(binary, name):
    """The bytes of .debug_NAME (SHF_COMPRESSED or .zdebug_NAME), or None."""
    started = binary.__dict__.get("_dwarf_pending", {}).pop(name, None)
    if started is None:
        return _read_section(binary, name)
    thread, box = started
    thread.join()
    if "error" in box:
        raise box["error"]
    if "data" in box:
        return box["data"]
    return _read_section(binary, name)  # begun before a fork: not in this process


def _read_section(binary, name):
    sec = binary._sections.get(f".debug_{name}")
    if sec is not None:
        flags = binary.section_flags(f".debug_{name}")
        if not flags & _SHF_COMPRESSED:
            return binary._section_bytes(f".debug_{name}")
        # A view: zlib reads the mapping itself, with the GIL let go (a
        # copy first would hold it, and fault the pages in, for ~3 ms).
        raw = binary.section_view(f".debug_{name}")
        ch_type, _reserved, size, _align = struct.unpack_from("<IIQQ", raw, 0)
        if ch_type != 1:  # ELFCOMPRESS_ZLIB
            raise Unsupported(f"compression type {ch_type}")
        data = _inflate(raw[24:], size)
    elif binary._sections.get(f".zdebug_{name}") is not None:
        raw = binary.section_view(f".zdebug_{name}")
        if bytes(raw[:4]) != b"ZLIB":
            raise Unsupported(".zdebug section without a ZLIB header")
        size = int.from_bytes(raw[4:12], "big")
        data = _inflate(raw[12:], size)
    else:
        return None
    if len(data) != size:
        raise Unsupported(f".debug_{name}: {len(data)} bytes decompressed, {size} announced")
    return data


def _inflate(compressed, size):
    # The announced size as the output buffer, so zlib does not grow and
    # copy it (a size no DWARF compresses to is not believed).
    if size <= 64 * len(compressed) + (1 << 20):
        return zlib.decompress(compressed, bufsize=max(size, 1))
    return zlib.decompress(compressed)
