"""Inlined copies of a Go function, and where its params are inside one.

The compiler describes each inlined call as a DW_TAG_inlined_subroutine
under its caller's subprogram (or under another inlined copy, for calls
inlined into inlined code), pointing through DW_AT_abstract_origin at the
function's abstract entry. Go writes no DW_AT_entry_pc, and neither the
lowest address of a copy nor the runtime's parentPc (an instruction of the
caller at the call's line, which may be one hoisted into a loop) runs
exactly once per call: see _Finder._entry (checked against the programs'
own call counts on Go 1.19, 1.23 and 1.27).

Finding them costs no walk of the CUs: Go writes a DIE's first attribute
right after a one-byte abbreviation code, so the abstract entry is found by
its inline name's bytes and every copy by the 4 bytes of its
DW_AT_abstract_origin (DW_FORM_ref_addr). The copies' locations need
.debug_loc/.debug_loclists and their call files .debug_line, which the
DwarfReader never decompresses: this module has its own DWARFInfo, made
only when a name is looked up here, and the sites are cached per binary.
"""

import os
import struct
import bisect
from ..record import astuple, dataclass
from functools import cached_property

from ..errors import GobtError
from .dwarf import _SECTIONS_READ, ADDRESS_MASK, _dwarf_info_of, _str, range_list, unreadable

_SECTIONS = _SECTIONS_READ | {".debug_line", ".debug_loc", ".debug_loclists"}

# DWARF register numbers, as bpftrace's reg() names them.
DWARF_REGS = {
    "amd64": ("ax", "dx", "cx", "bx", "si", "di", "bp", "sp", "r8", "r9", "r10", "r11", "r12", "r13",
              "r14", "r15"),
    "arm64": tuple(f"r{i}" for i in range(31)) + ("sp",),
}


@dataclass(frozen=True)
class InlinedSite:
    """One inlined copy of a function, inside its caller's code."""

    name: str  # the inlined function
    caller: str  # the function whose code holds the copy
    caller_start: int
    caller_size: int
    offset: int  # the copy's entry, from the caller's start
    call_line: int
    die: int  # offset of its DW_TAG_inlined_subroutine in .debug_info
    cu: int  # offset of its CU, whose line table names the call's file
    call_file: int  # index into that table (names are read only to show them)

    @property
    def address(self):
        return self.caller_start + self.offset


def where(binary, site):
    """How messages and -lv name a copy: caller+0x12 (file.go:33)."""
    key = f"{site.cu}:{site.call_file}"
    file = binary.cache.get("inlfile", key)
    if file is None:
        try:
            file = os.path.basename(finder_of(binary).file_name(site.cu, site.call_file))
        except GobtError:
            file = "?"
        binary.cache.put("inlfile", key, file)
    return f"{site.caller}+0x{site.offset:x} ({file}:{site.call_line})"


def inlined_sites(binary, name):
    """Every inlined copy of the function called `name` (cached per binary);
    [] without DWARF."""
    rows = binary.cache.get("inlsites", name)
    if rows is None:
        if not binary.has_dwarf:
            return []
        try:
            rows = [list(astuple(s)) for s in _Finder.of(binary).sites(name)]
        except GobtError:
            raise
        except Exception as e:  # DWARF pyelftools cannot parse
            raise unreadable(binary, e, f" for the inlined copies of {name}") from None
        binary.cache.put("inlsites", name, rows)
    return [InlinedSite(*row) for row in rows]


def finder_of(binary):
    """The DWARF view this module keeps for a binary."""
    return _Finder.of(binary)


def is_position_independent(binary):
    """ET_DYN: its code's addresses are known only once loaded."""
    return binary._map[16:18] != b"\x02\x00"  # e_type ET_EXEC


class _Finder:
    """The DWARF of one binary, as this module reads it."""

    @classmethod
    def of(cls, binary):
        finder = binary.__dict__.get("_inlined_finder")
        if finder is None:
            finder = binary.__dict__["_inlined_finder"] = cls(binary)
        return finder

    def __init__(self, binary):
        self.binary = binary
        self._lines = {}
        self._loops_of = {}

    @cached_property
    def info(self):
        try:
            return _dwarf_info_of(self.binary.dwarf_file.elf, _SECTIONS)
        except Exception as e:
            raise unreadable(self.binary, e) from None

    @cached_property
    def _data(self):
        return self.info.debug_info_sec.stream.getvalue()

    def _dies_at(self, needle):
        data = self._data
        pos = data.find(needle)
        while pos != -1:
            try:
                yield self.info.get_DIE_from_refaddr(pos - 1)
            except Exception:  # not a DIE boundary after all
                pass
            pos = data.find(needle, pos + 1)

    def abstract(self, name):
        """The abstract entries (DW_AT_inline) of the function called name."""
        out = []
        for die in self._dies_at(name.encode() + b"\0"):
            if (die.tag == "DW_TAG_subprogram" and "DW_AT_inline" in die.attributes
                    and _str(die.attributes.get("DW_AT_name")) == name):
                out.append(die)
        return out

    def die(self, offset):
        return self.info.get_DIE_from_refaddr(offset)

    def sites(self, name):
        out = []
        for abstract in self.abstract(name):
            for die in self._dies_at(struct.pack("<I", abstract.offset)):
                origin = die.attributes.get("DW_AT_abstract_origin")
                if die.tag != "DW_TAG_inlined_subroutine" or origin is None or origin.value != abstract.offset:
                    continue
                ranges = self.ranges(die)
                if not ranges:
                    continue  # no code of its own: nothing to probe
                caller = self._caller(ranges[0][0])
                if caller is None:
                    continue
                entry = self._entry(caller, ranges)
                attrs = die.attributes
                line = attrs["DW_AT_call_line"].value if "DW_AT_call_line" in attrs else 0
                file = attrs["DW_AT_call_file"].value if "DW_AT_call_file" in attrs else -1
                out.append(InlinedSite(name, caller.name, caller.start, caller.size, entry - caller.start,
                                       line, die.offset, die.cu.cu_offset, file))
        return sorted(out, key=lambda s: (s.caller_start, s.offset))

    @cached_property
    def _functions(self):
        fns = sorted(self.binary.symbols.all_functions(), key=lambda f: f.start)
        return [f.start for f in fns], fns

    def _caller(self, address):
        starts, fns = self._functions
        i = bisect.bisect_right(starts, address) - 1
        return fns[i] if i >= 0 and fns[i].start <= address < fns[i].end else None

    def _loops(self, caller):
        """[(first, last)] address spans of the caller's loops: from each
        backward branch's target to the branch."""
        loops = self._loops_of.get(caller.start)
        if loops is None:
            from .disasm import ARCHES, _immediate, decoded

            facts = ARCHES[self.binary.arch]
            loops = []
            insns = decoded(self.binary.arch, self.binary.code(caller), caller.start)
            for i in insns.where(facts["branch_or_ret"]):
                address = insns.addresses[i]
                mnemonic, ops = insns.text(i)
                if mnemonic in facts["jump"] or facts["cond_branch"](mnemonic):
                    target = _immediate(ops.split(",")[-1])
                    if target is not None and caller.start <= target <= address:
                        loops.append((target, address))
            self._loops_of[caller.start] = loops
        return loops

    def _entry(self, caller, ranges):
        """Where execution enters a copy: the first of its ranges, in DWARF
        order, that runs as often as the copy's main body.

        The register allocator can leave a copy's first instruction (say,
        a reload of its argument) in a loop of the caller that the call
        itself is after: a probe there fires on every iteration (seen on
        Go 1.19). So each range is weighed by the loops it sits in; the
        ranges in the same loops as most of the copy's bytes are its body.
        """
        loops = self._loops(caller)
        inside = [frozenset(i for i, (a, b) in enumerate(loops) if a <= lo <= b) for lo, _hi in ranges]
        weight = {}
        for (lo, hi), nest in zip(ranges, inside):
            weight[nest] = weight.get(nest, 0) + hi - lo
        body = max(weight, key=weight.get)
        return next(lo for (lo, _hi), nest in zip(ranges, inside) if nest == body)

    def _cu_base(self, cu):
        top = cu.get_top_DIE()
        low = top.attributes.get("DW_AT_low_pc")
        return low.value if low is not None else 0

    def ranges(self, die):
        attrs = die.attributes
        if "DW_AT_ranges" not in attrs:
            if "DW_AT_low_pc" in attrs and "DW_AT_high_pc" in attrs:
                lo, hi = attrs["DW_AT_low_pc"].value, attrs["DW_AT_high_pc"]
                return [(lo, hi.value if hi.form == "DW_FORM_addr" else lo + hi.value)]
            return []
        rl = self.info.range_lists()
        if rl is None:
            return []
        return range_list(rl, attrs["DW_AT_ranges"].value, die.cu, self._cu_base(die.cu))

    def file_name(self, cu_offset, index):
        files = self._lines.get(cu_offset)
        if files is None:
            cu = self.info.get_CU_at(cu_offset)
            files = []
            try:
                program = self.info.line_program_for_CU(cu)
                if program is not None:
                    dirs = program.header.get("include_directory", [])
                    for entry in program.header.file_entry:
                        name = _decode(entry.name)
                        d = entry.get("dir_index", 0)
                        if not os.path.isabs(name) and 0 < d <= len(dirs):
                            name = os.path.join(_decode(dirs[d - 1]), name)
                        files.append(name)
                    # Before DWARF 5 file numbers count from 1.
                    if program.header.version < 5:
                        files.insert(0, "?")
            except Exception:
                files = []
            self._lines[cu_offset] = files
        return files[index] if 0 <= index < len(files) else "?"

    def location_at(self, die, address):
        """The DWARF expression (a list of ops) locating `die` at `address`,
        or None when nothing does there."""
        attr = die.attributes.get("DW_AT_location")
        if attr is None:
            return None
        from elftools.dwarf.dwarf_expr import DWARFExprParser
        from elftools.dwarf.locationlists import LocationParser

        exprs = DWARFExprParser(die.cu.structs)
        if attr.form.startswith(("DW_FORM_block", "DW_FORM_exprloc")):
            # One expression (Go writes an empty DW_FORM_block1 for none),
            # which pyelftools takes for a location only in DWARF < 4.
            return exprs.parse_expr(attr.value)
        parser = LocationParser(self.info.location_lists())
        loc = parser.parse_from_attribute(attr, die.cu.header.version, die)
        if hasattr(loc, "loc_expr"):  # one expression for the whole scope
            return exprs.parse_expr(loc.loc_expr)
        base = self._cu_base(die.cu)
        for entry in loc:
            if hasattr(entry, "base_address"):
                base = entry.base_address
            elif hasattr(entry, "begin_offset"):
                absolute = getattr(entry, "is_absolute", False)
                lo = (entry.begin_offset if absolute else base + entry.begin_offset) & ADDRESS_MASK
                hi = (entry.end_offset if absolute else base + entry.end_offset) & ADDRESS_MASK
                if lo <= address < hi:
                    return exprs.parse_expr(entry.loc_expr)
        return None


def _decode(v):
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
