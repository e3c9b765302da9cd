"""Resolve: a Go function's parameters and results, from its DWARF.

Reading is lazy, as pyelftools allows: the compile unit holding a function
is found from each CU's top DIE (its low_pc/ranges), and only that CU's
DIEs are parsed; types are read one DIE at a time through their
references. A full scan of a big binary's DIEs takes seconds; this takes
milliseconds.
"""


import struct
import zlib
from ..record import dataclass
from functools import cached_property

from ..errors import GobtError
from .subprogram import WORD, Param, Subprogram, _place_dictionary  # noqa: F401 (dwarf.Param etc. are public)

DW_AT_GO_KIND = 0x2900
ADDRESS_MASK = (1 << 64) - 1

# reflect.Kind, as Go writes it in DW_AT_go_kind.
GO_KINDS = {
    1: "bool", 2: "int", 3: "int", 4: "int", 5: "int", 6: "int",
    7: "uint", 8: "uint", 9: "uint", 10: "uint", 11: "uint", 12: "uintptr",
    13: "float", 14: "float", 15: "complex", 16: "complex",
    17: "array", 18: "chan", 19: "func", 20: "interface", 21: "map",
    22: "pointer", 23: "slice", 24: "string", 25: "struct", 26: "unsafe.Pointer",
}
# Kinds that are one machine word holding an address.
ADDRESS_KINDS = {"pointer", "map", "chan", "func", "unsafe.Pointer", "uintptr"}

DW_ATE_BOOLEAN, DW_ATE_COMPLEX, DW_ATE_FLOAT, DW_ATE_SIGNED, DW_ATE_UNSIGNED = 2, 3, 4, 5, 7


def unreadable(binary, e, what=""):
    """Damage in the sections DIEs are read from shows as whatever the reader
    trips on (an unknown abbreviation or form, a reference out of range)."""
    return GobtError(f"{binary.display_path}: unreadable DWARF{what} in .debug_info/.debug_abbrev/.debug_str "
                     f"(damaged?): {type(e).__name__}: {e}")


def _reading(method):
    """method, with any failure but a GobtError reported by unreadable()."""
    def read(self, *args):
        try:
            return method(self, *args)
        except GobtError:
            raise
        except Exception as e:  # noqa: BLE001 - any damage, one clear error
            raise unreadable(getattr(self, "binary", None) or self._reader.binary, e) from None

    read.__name__, read.__doc__ = method.__name__, method.__doc__
    return read


@dataclass
class Field:
    name: str
    offset: int
    type: "GoType"


class GoType:
    """A Go type as DWARF describes it; members and elements load on demand."""

    def __init__(self, reader, die):
        self._reader = reader
        self._die = die
        attrs = die.attributes
        self.name = _str(attrs.get("DW_AT_name")) or _anonymous_name(die)
        self.kind = _kind(reader, die)
        self.size = _size(reader, die)

    def __repr__(self):
        return f"GoType({self.name}, {self.kind}, {self.size})"

    @cached_property
    @_reading
    def underlying(self):
        """The DIE a typedef names (Go's named types are typedefs)."""
        die = self._die
        while die.tag == "DW_TAG_typedef" and "DW_AT_type" in die.attributes:
            die = die.get_DIE_from_attribute("DW_AT_type")
        return die

    @cached_property
    @_reading
    def fields(self):
        die = self.underlying
        if die.tag != "DW_TAG_structure_type":
            return []
        out = []
        for child in die.iter_children():
            if child.tag != "DW_TAG_member":
                continue
            loc = child.attributes.get("DW_AT_data_member_location")
            offset = loc.value if loc is not None and isinstance(loc.value, int) else 0
            out.append(Field(_str(child.attributes.get("DW_AT_name")), offset, self._reader.type_of(child)))
        return out

    def field(self, name):
        for f in self.fields:
            if f.name == name:
                return f
        return None

    @cached_property
    @_reading
    def elem(self):
        """The pointee of a pointer, or the element of an array or slice."""
        die = self.underlying
        if self.kind == "slice":
            array = self.field("array")
            return array.type.elem if array else None
        if die.tag in ("DW_TAG_pointer_type", "DW_TAG_array_type") and "DW_AT_type" in die.attributes:
            return self._reader.type_of(die)
        return None

    @cached_property
    @_reading
    def length(self):
        return _array_length(self.underlying)

    @property
    @_reading
    def align(self):
        """Go's alignment of the type on a 64-bit machine."""
        if self.kind == "struct":
            return max((f.type.align for f in self.fields), default=1)
        if self.kind == "array":
            return self.elem.align if self.elem else 1
        if self.kind == "complex":
            return max(1, self.size // 2)
        if self.kind in ("string", "slice", "interface"):
            return 8
        return max(1, min(self.size, 8))

    @property
    @_reading
    def signed(self):
        die = self.underlying
        enc = die.attributes.get("DW_AT_encoding")
        return enc is not None and enc.value == DW_ATE_SIGNED


def _str(attr):
    if attr is None:
        return ""
    v = attr.value
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)


def _anonymous_name(die):
    return {"DW_TAG_pointer_type": "unsafe.Pointer"}.get(die.tag, "?")


def _kind(reader, die):
    attr = die.attributes.get(DW_AT_GO_KIND)
    if attr is not None and attr.value in GO_KINDS:
        return GO_KINDS[attr.value]
    tag = die.tag
    name = _str(die.attributes.get("DW_AT_name"))
    if tag == "DW_TAG_typedef":
        if "DW_AT_type" not in die.attributes:
            return "unknown"
        return _kind(reader, die.get_DIE_from_attribute("DW_AT_type"))
    if tag == "DW_TAG_base_type":
        enc = die.attributes.get("DW_AT_encoding")
        enc = enc.value if enc is not None else None
        if name == "uintptr":
            return "uintptr"
        return {
            DW_ATE_BOOLEAN: "bool", DW_ATE_SIGNED: "int", DW_ATE_UNSIGNED: "uint",
            DW_ATE_FLOAT: "float", DW_ATE_COMPLEX: "complex",
        }.get(enc, "unknown")
    if tag == "DW_TAG_pointer_type":
        return "unsafe.Pointer" if name == "unsafe.Pointer" or "DW_AT_type" not in die.attributes else "pointer"
    if tag == "DW_TAG_structure_type":
        if name == "string":
            return "string"
        if name.startswith("[]"):
            return "slice"
        if name in ("runtime.iface", "runtime.eface"):
            return "interface"
        return "struct"
    if tag == "DW_TAG_array_type":
        return "array"
    if tag == "DW_TAG_subroutine_type":
        return "func"
    return "unknown"


def _size(reader, die):
    while True:
        attr = die.attributes.get("DW_AT_byte_size")
        if attr is not None:
            return attr.value
        if die.tag == "DW_TAG_pointer_type" or die.tag == "DW_TAG_subroutine_type":
            return 8
        if die.tag == "DW_TAG_array_type" and "DW_AT_type" in die.attributes:
            return reader.type_of(die).size * _array_length(die)
        if die.tag == "DW_TAG_typedef" and "DW_AT_type" in die.attributes:
            die = die.get_DIE_from_attribute("DW_AT_type")
            continue
        return 0


def _array_length(die):
    for child in die.iter_children():
        if child.tag == "DW_TAG_subrange_type":
            attrs = child.attributes
            if "DW_AT_count" in attrs:
                return attrs["DW_AT_count"].value
            if "DW_AT_upper_bound" in attrs:
                return attrs["DW_AT_upper_bound"].value + 1
    return 0


def _is_repeat(named, name, decl, is_result, fn):
    """Whether this formal parameter DIE repeats one already seen.

    Go 1.18 and 1.19 write some results twice (golang/go#51725): cmd/go 1.19
    has 370 such DIEs, each right after its twin and identical to it (same
    name, type, flag, an empty location list), so `~r0 ~r0 ~r1 ~r1` for two
    results. Go allows no two params or results of one function the same
    name except `_`, which DWARF leaves out before 1.22 and names `~p0`,
    `~b0`, ... after (each numbered apart), so a repeated name can only be
    such a twin. One that differs in type or kind is not a twin but damaged
    DWARF: refused rather than guessed at.
    """
    key = (decl.attributes.get("DW_AT_type").value if "DW_AT_type" in decl.attributes else None, is_result)
    return _repeats(named, name, key, fn)


def _repeats(named, name, key, fn):
    """_is_repeat with the DIE's (type reference, is_result) as key."""
    if not name or name == "_":
        return False
    if name not in named:
        named[name] = key
        return False
    if named[name] != key:
        raise GobtError(f"{fn.name}: its DWARF names two different params {name}; gobt cannot tell "
                        "which is which")
    return True


# The DWARF sections gobt reads DIEs from. pyelftools decompresses every
# debug section up front; .debug_line, .debug_frame and .debug_loclists,
# which gobt never reads, are over half of a Go binary's DWARF bytes and of
# a cold run's DWARF time (cmd/go: 86 -> 37 ms).
_SECTIONS_READ = {".debug_info", ".debug_abbrev", ".debug_str", ".debug_str_offsets", ".debug_line_str",
                  ".debug_addr", ".debug_ranges", ".debug_rnglists"}


def _dwarf_info_of(elf, sections):
    """elf.get_dwarf_info(), reading only `sections` (plain or .z names).

    get_dwarf_info asks get_section_by_name for each section it knows, and
    passes None on for those it does not find: hiding the rest for the
    length of the call is all it takes.
    """
    find = elf.get_section_by_name

    def only_these(name):
        return find(name) if ("." + name[2:] if name.startswith(".z") else name) in sections else None

    elf.get_section_by_name = only_these
    try:
        return elf.get_dwarf_info(relocate_dwarf_sections=False, follow_links=False)
    finally:
        del elf.get_section_by_name


class DwarfReader:
    def __init__(self, binary):
        self.binary = binary
        self._types = {}
        self._cus = None
        self._by_cu = {}
        self.bulk = False  # set by a caller about to ask for many functions
        self._index = None  # dwarfindex.DwarfIndex, built on the first question in bulk

    @_reading
    def index(self):
        """Build the one-pass index now (in bulk mode), not on the first question."""
        self._bulk_index()

    def _bulk_index(self):
        """The one-pass index, when in bulk mode and the DWARF is of a kind it reads."""
        if not self.bulk:
            return None
        if self._index is None:
            from .dwarfindex import DwarfIndex, Unsupported

            lean = self.lean
            try:
                if lean is not None:
                    info, abbrev = lean.info, lean.abbrev
                    try:
                        addr = lean._other_section("addr")
                    except Unsupported:
                        addr = None
                else:
                    dwarf = self.info
                    info = dwarf.debug_info_sec.stream.getvalue()
                    abbrev = dwarf.debug_abbrev_sec.stream.getvalue()
                    addr = dwarf.debug_addr_sec.stream.getvalue() if dwarf.debug_addr_sec is not None else None
                self._index = DwarfIndex(info, abbrev, addr)
            except (Unsupported, IndexError, ValueError, struct.error):
                self.bulk = False  # the per-function path reads it (or says why not)
                return None
        return self._index

    def _indexed(self, fn):
        """fn's concrete subprogram in the index, chosen as _find_by_name and
        the CU walk choose; None to ask the per-function path."""
        index = self._bulk_index()
        if index is None:
            return None
        subs = index.by_low.get(fn.start)
        if not subs:
            # No subprogram starts there (assembly): the per-function
            # path, which looks only at subprograms starting at fn.start,
            # would search the bytes and a whole CU to say so.
            raise GobtError(f"{self.binary.display_path}: no DWARF entry for {fn.name}")
        for s in subs:
            if s.name == fn.name:
                return s
        for s in subs:
            abstract = index.by_offset.get(s.origin) if s.origin is not None else None
            if abstract is not None and abstract.inline and abstract.name == fn.name:
                return s
        # No name matches (an assembly function's DWARF name has no .abi0):
        # the CU walk's choice, the last subprogram at that address.
        return subs[-1]

    def _describe_indexed(self, sub, fn):
        index = self._index
        params = []
        n_args = n_results = 0
        named = {}
        for p in sub.params:
            decl = p
            if p.origin is not None and p.type is None:
                decl = index.by_offset.get(p.origin)
                if decl is None or not decl.is_param:
                    return None
            if decl.type is None:
                return None
            is_result = decl.variable
            # Go 1.18/1.19's twin results, as _describe drops them.
            if _repeats(named, decl.name or "", (decl.type, is_result), fn):
                continue
            index_ = n_results if is_result else n_args
            if is_result:
                n_results += 1
            else:
                n_args += 1
            params.append(Param(decl.name or "", self.type_at(decl.type), is_result, index_, None))
        params = _place_dictionary(params, fn.name, self.binary.go_version_tuple)
        return Subprogram(fn.name, params, None)

    @_reading
    def type_at(self, offset):
        """The type whose DIE is at `offset` in .debug_info."""
        t = self._types.get(offset)
        if t is None:
            t = GoType(self, self._dies().get_DIE_from_refaddr(offset))
            self._types[offset] = t
        return t

    @cached_property
    def lean(self):
        """dwarfread.LeanDwarf: DIEs read without pyelftools; None when the
        DWARF is of a kind it does not read (then pyelftools reads it all)."""
        self._require_dwarf()
        from .dwarfread import LeanDwarf, Unsupported

        try:
            return LeanDwarf(self.binary.dwarf_file)
        except (Unsupported, zlib.error, struct.error, IndexError, ValueError, KeyError):
            return None

    def _dies(self):
        """What reads a DIE at an offset: the lean reader, else pyelftools."""
        return self.lean or self.info

    def _info_bytes(self):
        return self.lean.info if self.lean else self.info.debug_info_sec.stream.getvalue()

    @cached_property
    def info(self):
        """pyelftools' DWARF: for what the lean reader does not do (the CU
        walk by address ranges), or all of it when it cannot read this DWARF."""
        self._require_dwarf()
        try:
            return _dwarf_info_of(self.binary.dwarf_file.elf, _SECTIONS_READ)
        except Exception as e:
            raise unreadable(self.binary, e) from None

    def _require_dwarf(self):
        if not self.binary.has_dwarf:
            from .debugfile import way_forward

            raise GobtError(f"{self.binary.display_path} has no DWARF (built with -ldflags=-w or stripped)",
                            hints=way_forward(self.binary))

    @_reading
    def type_named(self, name):
        """The struct type called `name`, found without walking any CU.

        Go writes a type's name inline (DW_FORM_string) as its first
        attribute, right after a one-byte abbreviation code, so the name's
        bytes in .debug_info point at the DIE.
        """
        for die in self._dies_at(name.encode() + b"\0"):
            if die.tag == "DW_TAG_structure_type" and _str(die.attributes.get("DW_AT_name")) == name:
                return GoType(self, die)
        return None

    @_reading
    def inlined_call_sites(self, fn):
        """How many calls of fn the compiler inlined (each invisible to its probes)."""
        indexed = self._indexed(fn)
        if indexed is not None:
            return 0 if indexed.origin is None else self._index.inlined.get(indexed.origin, 0)
        sub = self.subprogram(fn)
        origin = sub.die.attributes.get("DW_AT_abstract_origin")
        if origin is None:
            return 0  # never inlined: Go writes an abstract entry only then
        target = origin.value if origin.form == "DW_FORM_ref_addr" else origin.value + sub.die.cu.cu_offset
        count = 0
        for die in self._dies_at(struct.pack("<I", target)):
            attr = die.attributes.get("DW_AT_abstract_origin")
            if die.tag == "DW_TAG_inlined_subroutine" and attr is not None and attr.value == target:
                count += 1
        return count

    @_reading
    def type_of(self, die):
        ref = die.attributes["DW_AT_type"]
        key = ref.value if ref.form == "DW_FORM_ref_addr" else ref.value + die.cu.cu_offset
        t = self._types.get(key)
        if t is None:
            t = GoType(self, die.get_DIE_from_attribute("DW_AT_type"))
            self._types[key] = t
        return t

    def _cu_ranges(self, cu):
        top = cu.get_top_DIE()
        attrs = top.attributes
        if "DW_AT_ranges" in attrs:
            base = attrs["DW_AT_low_pc"].value if "DW_AT_low_pc" in attrs else 0
            rl = self.info.range_lists()
            if rl is None:
                return top, []
            return top, range_list(rl, attrs["DW_AT_ranges"].value, cu, base)
        if "DW_AT_low_pc" in attrs and "DW_AT_high_pc" in attrs:
            lo = attrs["DW_AT_low_pc"].value
            hi = attrs["DW_AT_high_pc"].value
            if attrs["DW_AT_high_pc"].form != "DW_FORM_addr":
                hi += lo
            return top, [(lo, hi)]
        return top, []

    def subprogram(self, fn):
        """The DWARF description of a Function (from the symbol table)."""
        try:
            indexed = self._indexed(fn)
            if indexed is not None:
                described = self._describe_indexed(indexed, fn)
                if described is not None:
                    return described
            die = self._find_by_name(fn)
            if die is not None:
                return self._describe(die, fn)
            for ranges, cu in self._cu_ranges_all():
                if any(lo <= fn.start < hi for lo, hi in ranges):
                    die = self._subprograms_in(cu).get(fn.start)
                    if die is not None:
                        return self._describe(die, fn)
        except GobtError:
            raise
        except Exception as e:
            raise unreadable(self.binary, e, f" for {fn.name}") from None
        raise GobtError(f"{self.binary.display_path}: no DWARF entry for {fn.name}")

    def _dies_at(self, needle, back=1):
        """DIEs that may start `back` bytes before each occurrence of needle.

        Go writes a DIE's first attribute right after a one-byte
        abbreviation code: a subprogram's inline name, an inlined call's or
        out-of-line copy's 4-byte DW_AT_abstract_origin. Finding those bytes
        finds the DIE without walking its CU (seconds for runtime's).
        """
        data = self._info_bytes()
        dies = self._dies()
        pos = data.find(needle)
        while pos != -1:
            try:
                yield dies.get_DIE_from_refaddr(pos - back)
            except Exception:  # not a DIE boundary after all
                pass
            pos = data.find(needle, pos + 1)

    def _find_by_name(self, fn):
        """fn's concrete subprogram DIE, found by bytes; None to walk CUs instead."""
        abstract = None
        for die in self._dies_at(fn.name.encode() + b"\0"):
            if die.tag != "DW_TAG_subprogram" or _str(die.attributes.get("DW_AT_name")) != fn.name:
                continue
            low = die.attributes.get("DW_AT_low_pc")
            if low is not None and low.value == fn.start:
                return die
            if "DW_AT_inline" in die.attributes:
                abstract = die
        if abstract is None:
            return None
        # An inlinable function's out-of-line copy has no name of its own,
        # only a reference to the abstract entry.
        for die in self._dies_at(struct.pack("<I", abstract.offset)):
            origin = die.attributes.get("DW_AT_abstract_origin")
            low = die.attributes.get("DW_AT_low_pc")
            if (die.tag == "DW_TAG_subprogram" and origin is not None and origin.value == abstract.offset
                    and low is not None and low.value == fn.start):
                return die
        return None

    def _cu_ranges_all(self):
        """(address ranges, CU) of every CU, from the top DIEs only, once."""
        if self._cus is None:
            self._cus = []
            for cu in self.info.iter_CUs():
                top, ranges = self._cu_ranges(cu)
                self._cus.append((ranges, cu))
        return self._cus

    def _subprograms_in(self, cu):
        """low_pc -> subprogram DIE for one CU, built the first time it is asked."""
        index = self._by_cu.get(cu.cu_offset)
        if index is None:
            index = {}
            for die in cu.get_top_DIE().iter_children():
                if die.tag == "DW_TAG_subprogram":
                    low = die.attributes.get("DW_AT_low_pc")
                    if low is not None:
                        index[low.value] = die
            self._by_cu[cu.cu_offset] = index
        return index

    @_reading
    def _describe(self, die, fn):
        params = []
        n_args = n_results = 0
        named = {}  # name -> (DW_AT_type, is_result) of the first DIE so named
        for child in die.iter_children():
            if child.tag != "DW_TAG_formal_parameter":
                continue
            # An out-of-line copy of an inlinable function describes its
            # params by reference to the abstract (inlinable) entry.
            decl = child
            if "DW_AT_abstract_origin" in child.attributes and "DW_AT_type" not in child.attributes:
                decl = child.get_DIE_from_attribute("DW_AT_abstract_origin")
            flag = decl.attributes.get("DW_AT_variable_parameter")
            is_result = bool(flag and flag.value)
            name = _str(decl.attributes.get("DW_AT_name"))
            if _is_repeat(named, name, decl, is_result, fn):
                continue
            index = n_results if is_result else n_args
            if is_result:
                n_results += 1
            else:
                n_args += 1
            params.append(Param(name, self.type_of(decl), is_result, index, child))
        params = _place_dictionary(params, fn.name, self.binary.go_version_tuple)
        return Subprogram(fn.name, params, die)


def range_list(rl, offset, cu, base):
    """[(low, high)] of the range list at `offset`, DWARF 4 or 5, from the
    CU's base address."""
    out = []
    for entry in rl.get_range_list_at_offset(offset, cu=cu):
        if hasattr(entry, "base_address"):
            base = entry.base_address
        elif hasattr(entry, "begin_offset"):
            absolute = getattr(entry, "is_absolute", False)
            lo = entry.begin_offset if absolute else base + entry.begin_offset
            hi = entry.end_offset if absolute else base + entry.end_offset
            # DWARF 5 offsets below the CU's base are negative, as 64-bit
            # two's complement: the sum wraps.
            out.append((lo & ADDRESS_MASK, hi & ADDRESS_MASK))
    return out
