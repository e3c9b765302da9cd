"""gobt's argument locations against the compiler's own: DWARF location lists.

In an optimized Go build, the location list of each formal parameter says
where the compiler keeps it at each PC. At a function's entry PC (its
low_pc) that is where the caller put it: the ABI. So, for every function of
a large real binary (Go's own cmd/go, ~15k functions), what each arg's
location list says at low_pc must equal what gobt.abi.assign.assign predicts from
gobt's reading of the DWARF. The location lists are the Go compiler's,
which knows nothing of gobt: an independent oracle. Three binaries: Go 1.19
amd64 (DWARF 4, .debug_loc), the newest Go amd64 and the newest Go arm64
(DWARF 5, .debug_loclists).

What is compared:
  * args only (receiver and params): results have no location at entry;
  * piece by piece: a string in RBX,RCX is two pieces, RBX then RCX;
  * a param with no location at low_pc, and a piece the location leaves
    empty, are skipped; so are zero-size values (nothing to read).

The prediction is gobt's own code end to end, through its public API:
DwarfReader.subprogram(fn) for each function symbol, then gobt.abi.assign.assign.
test_gobt_reads_every_subprogram checks that reading (does it find the
function's DIE, are the params the DWARF's) against the test's own; test_gobt_reads_abi0_wrappers_...
checks, through gobt --emit, the ABI0 wrappers the survey compares with
the stack ABI. Where the DWARF says something other than the ABI for a reason that
is not gobt's, a named rule (RULES, and the RULE comments in the code)
explains it; every arg or function a rule covers is counted under it, and
the rule is checked as tightly as the data allows, never a blanket skip.
Any other disagreement fails the test, naming the function, the param,
gobt's prediction and what the location list says.

Run with -s to see the figures: agreement N/M per binary, and per rule.
"""

import collections
import concurrent.futures
import multiprocessing
import os
import re
import time
from dataclasses import dataclass, field

import pytest
from elftools.dwarf.dwarf_expr import DWARFExprParser
from elftools.dwarf.locationlists import BaseAddressEntry, LocationEntry

from conftest import BUILD_DIR, gobt, need, no_traceback
from gobt.abi.assign import REGISTER_ABI, assign
from gobt.binary.gobinary import GoBinary
from gobt.binary.dwarf import GoType, Param, Subprogram
from toolchains import build_package

# name -> (toolchain, GOARCH); each builds Go's own cmd/go, optimized.
BINARIES = {
    "go1.19-amd64": ("go1.19", "amd64"),
    "newest-amd64": ("newest", "amd64"),
    "newest-arm64": ("newest", "arm64"),
}

# DWARF register numbers -> the names gobt's Leaf.reg uses (bpftrace's for
# the integer registers, Go's X/F names for the float ones).
DWARF_REGS = {
    "amd64": {
        0: "ax", 1: "dx", 2: "cx", 3: "bx", 4: "si", 5: "di", 6: "bp", 7: "sp",
        **{n: f"r{n}" for n in range(8, 16)},
        **{17 + i: f"X{i}" for i in range(16)},  # XMM0-15
    },
    "arm64": {
        **{n: f"r{n}" for n in range(31)},  # X0-X30
        31: "sp",
        **{64 + i: f"F{i}" for i in range(32)},  # V0-V31
    },
}

# Go's frame base is DW_OP_call_frame_cfa, so stack slots are written as
# CFA+k (DW_OP_call_frame_cfa alone is CFA+0; DW_OP_fbreg k is CFA+k). gobt
# gives a stack slot as SP+n at the entry PC. The CFA differs:
#   amd64: CALL pushed the return address, so at entry CFA = SP+8. The
#     first stack slot, SP+8, is CFA+0: location lists say plain
#     DW_OP_call_frame_cfa for a first stack arg and fbreg 8 for the next.
#   arm64: BL pushes nothing (the return address is in LR), and Go's arm64
#     CFA is the entry SP itself. The first stack slot is still SP+8 (SP+0
#     is the word the callee saves LR into), which is CFA+8: location lists
#     say fbreg 8 for a first stack arg and never plain DW_OP_call_frame_cfa
#     (cmd/go 1.27 arm64: 1268 whole-function fbreg args, no cfa one).
# That is the BRIEF's "arm64 stack args differ by +8": the same slot SP+n is
# CFA+(n-8) on amd64 and CFA+n on arm64. So SP offset = CFA offset + this:
CFA_TO_SP = {"amd64": 8, "arm64": 0}

DW_OP_CALL_FRAME_CFA = 0x9C
ADDRESS_MASK = (1 << 64) - 1
LIST_FORMS = ("DW_FORM_sec_offset", "DW_FORM_loclistx", "DW_FORM_data4")

RULES = {
    # -- whole functions left out (counted under excluded) --
    "hidden-dict": (
        "Before Go 1.27 the generic dictionary .dict of a shape function (name containing "
        "'[go.shape.') is absent from DWARF, yet it takes an integer register: first of all in "
        "Go 1.19, right after the receiver from Go 1.20's unified IR on (seen on 1.19, 1.23 and "
        "1.27 builds). Left out whole, unless gobt's reading adds a .dict itself: then where "
        "gobt puts it is judged like any other prediction."),
    "dict-in-concrete-copy": (
        "In the out-of-line copy of an inlinable generic function (a subprogram DIE with "
        "DW_AT_abstract_origin), .dict is not among the abstract DIE's params: the copy lists it "
        "after the results, while the ABI passes it before the params (after any receiver). Left "
        "out whole, and only when gobt could not read the function; gobt's own reading of a "
        "function is always compared."),
    # -- how a piece list is read (counted, then compared as usual) --
    "doubled-pieces": (
        "Go 1.19 repeats pieces: a []string in RAX,RBX,RCX reads 'RAX,RAX,RBX,RCX', an "
        "interface{} may have 20 pieces. One register cannot hold two parts, so when the list "
        "has more pieces than the type has parts, runs of equal pieces are merged; if that "
        "gives one piece per part, the arg is compared piece by piece as usual."),
    # -- single args explained (counted under explained) --
    "hidden-param": (
        "Before Go 1.22 an unnamed or '_' receiver or param is absent from DWARF, yet it takes "
        "its registers or stack slot; so is the receiver of a compiler-made wrapper (promoted "
        "methods, generic instantiations). Guesses, in order: the receiver, first, of the type "
        "the method's name gives (pkg.(*T).M: *pkg.T, pkg.T.M: pkg.T, looked up by name in the "
        "DWARF, any pointer for an unknown *T); then one param of 1, 2 or 3 integer words "
        "(uintptr, string, []uint8) at each position. Applies only if with the guess put back "
        "EVERY arg of the function agrees with gobt.abi.assign.assign. This documents a gap in the "
        "DWARF, not a gobt success: gobt reads these functions' args from the wrong places."),
    "spill-slot": (
        "A register arg that the code never keeps in its register gets one location for the "
        "whole function instead of a list: its slot in the ABI's register-arg spill area (after "
        "the stack args and stack results, pointer-aligned, one slot per register arg in order, "
        "each aligned to its type). The caller reserves the slot but does not fill it, so at "
        "entry the value is in registers. Applies only if the slot is exactly the spill slot of "
        "gobt's assignment."),
    "dwarf-conflict": (
        "At the entry PC the location lists put this arg (or a piece of it) in a register that "
        "another arg, or another piece of this arg, also occupies there, and the other claim is "
        "the one gobt predicts. One register cannot hold both: the DWARF contradicts itself "
        "(cf. golang/go#61700)."),
    "damaged-pieces": (
        "The piece list does not fit the type's parts even after merging repeated pieces "
        "(Go 1.19: a []int32 as 'RBX,RBX,-,-,-,-,RCX,RDI'; a stack []T with 2 pieces; "
        "cf. golang/go#48405), so which piece is which part is unknown. Applies only if every "
        "place it names is one gobt predicts for this arg, or one another arg occupies as gobt "
        "predicts."),
}


# -- reading location expressions ------------------------------------------


def _entry_expr(loclists, die, low_pc, cu_low):
    """(kind, expression) of die's DW_AT_location at low_pc, or None.

    kind is "list" for a location list entry covering low_pc, "whole" for a
    single expression (valid over the whole function).
    """
    attr = die.attributes.get("DW_AT_location")
    if attr is None:
        return None
    if attr.form in LIST_FORMS:
        base = cu_low
        for entry in loclists.get_location_list_at_offset(attr.value, die):
            if isinstance(entry, BaseAddressEntry):
                base = entry.base_address
            elif isinstance(entry, LocationEntry):
                lo, hi = entry.begin_offset, entry.end_offset
                if not entry.is_absolute:  # offsets from the base wrap modulo 2**64
                    lo, hi = (base + lo) & ADDRESS_MASK, (base + hi) & ADDRESS_MASK
                if lo <= low_pc < hi:
                    return "list", entry.loc_expr
        return None
    # Go writes single expressions as DW_FORM_block1 even in DWARF 5, where
    # pyelftools' LocationParser refuses that form: read the block directly.
    return "whole", attr.value


def _scalar_parts(t, base=0):
    """(offset, size) of each scalar part of a value of GoType t, in order.

    Go's DW_OP_piece lists describe these parts one by one and skip padding
    (struct {bool; int} is "piece 1, piece 8", not "1, 7, 8"), so piece N is
    part N. Written here from the types, independently of gobt.abi.assign.
    """
    if t.size == 0:
        return []
    if t.kind in ("string", "interface"):
        return [(base, 8), (base + 8, 8)]
    if t.kind == "slice":
        return [(base, 8), (base + 8, 8), (base + 16, 8)]
    if t.kind == "complex":
        return [(base, t.size // 2), (base + t.size // 2, t.size // 2)]
    if t.kind == "struct":
        return [p for f in t.fields for p in _scalar_parts(f.type, base + f.offset)]
    if t.kind == "array" and t.elem is not None and t.length:
        return [p for i in range(t.length) for p in _scalar_parts(t.elem, base + i * t.elem.size)]
    return [(base, t.size)]


class OtherExpr(Exception):
    """A location expression that is not registers and frame slots."""


def _pieces(parser, expr, t, arch):
    """(pieces, reading) of a location expression for a value of type t.

    pieces: [(offset in the value, size, ("reg", name) | ("sp", n))] for the
    non-empty pieces. reading: "parts" (piece N is part N, or the pieces
    tile the value), "doubled" (likewise after merging repeats), or
    "damaged" (no way to tell which piece is which part: offsets are None).
    """
    regs = DWARF_REGS[arch]
    raw = []
    cur = None
    had_piece = False
    ops = parser.parse_expr(expr)
    for op in ops:
        name = op.op_name
        if name == "DW_OP_regx":
            cur = ("reg", regs.get(op.args[0], f"dwarf{op.args[0]}"))
        elif name.startswith("DW_OP_reg"):
            n = int(name[len("DW_OP_reg"):])
            cur = ("reg", regs.get(n, f"dwarf{n}"))
        elif name == "DW_OP_call_frame_cfa":
            cur = ("sp", CFA_TO_SP[arch])
        elif name == "DW_OP_fbreg":
            cur = ("sp", CFA_TO_SP[arch] + op.args[0])
        elif name == "DW_OP_piece":
            raw.append((op.args[0], cur))
            cur = None
            had_piece = True
        else:
            raise OtherExpr(" ".join(f"{o.op_name}{o.args or ''}" for o in ops))
    if not had_piece:
        return ([(0, t.size, cur)] if cur is not None else []), "parts"
    parts = _scalar_parts(t)
    reading = "parts"
    if len(raw) > len(parts):
        # RULE doubled-pieces (see RULES).
        merged = [raw[0]] + [r for prev, r in zip(raw, raw[1:]) if r != prev]
        if [s for s, _ in merged] == [s for _, s in parts]:
            raw, reading = merged, "doubled"
    if [s for s, _ in raw] == [s for _, s in parts]:
        offsets = [o for o, _ in parts]
    elif sum(s for s, _ in raw) == t.size:
        offsets = [sum(s for s, _ in raw[:i]) for i in range(len(raw))]
    else:
        return [(None, s, w) for s, w in raw if w is not None and s > 0], "damaged"
    return [(o, s, w) for o, (s, w) in zip(offsets, raw) if w is not None and s > 0], reading


def _expected(location, offset):
    """Where gobt's Location puts byte `offset` of the value: (place, size or None)."""
    if location.in_registers:
        for leaf in location.leaves:
            if leaf.offset == offset:
                return ("reg", leaf.reg), leaf.size
        return None, None
    return ("sp", location.stack + offset), None


def _places(location, size):
    """Every place gobt's Location uses for a value of `size` bytes (stack: each word)."""
    if location.in_registers:
        return {("reg", leaf.reg) for leaf in location.leaves}
    return {("sp", location.stack + off) for off in range(0, max(size, 1), 8)}


def _show(place):
    kind, where = place
    return where if kind == "reg" else f"[SP+{where}]"


def _describe(pieces):
    return ",".join(f"{_show(w)}" + (f"@{o}/{s}" if o is not None else f"/{s}") for o, s, w in pieces)


def _describe_location(location):
    if location.in_registers:
        return ",".join(f"{leaf.reg}@{leaf.offset}/{leaf.size}" for leaf in location.leaves) or "(none)"
    return f"[SP+{location.stack}]"


# -- the test's own reading of a subprogram ---------------------------------


def _attr_str(die, name):
    attr = die.attributes.get(name)
    if attr is None:
        return ""
    v = attr.value
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)


def _dwarf_params(reader, die):
    """The test's own reading: ([Param], dict_in_copy); Param.die is the DIE with the location.

    Unlike gobt's reader it follows DW_AT_abstract_origin: the out-of-line
    copy of an inlinable function names its params through the abstract
    DIE, which has their names, types and variable_parameter flags. The
    copy's children come in the copy's order, which is the ABI's (an
    unnamed receiver ~p0, a copy-only param, comes first), except for .dict
    (see RULES["dict-in-concrete-copy"]).
    """
    decls = []
    seen = set()
    for c in die.iter_children():
        if c.tag != "DW_TAG_formal_parameter":
            continue
        if "DW_AT_abstract_origin" in c.attributes:
            origin = c.get_DIE_from_attribute("DW_AT_abstract_origin")
            seen.add(origin.offset)
            decls.append((origin, c))
        else:
            decls.append((c, c))
    if "DW_AT_abstract_origin" in die.attributes:
        # Params of the abstract DIE the copy does not mention (none seen on
        # cmd/go), with no location.
        abstract = die.get_DIE_from_attribute("DW_AT_abstract_origin")
        decls += [(a, None) for a in abstract.iter_children()
                  if a.tag == "DW_TAG_formal_parameter" and a.offset not in seen]
    dict_in_copy = "DW_AT_abstract_origin" in die.attributes and any(
        d is h and _attr_str(d, "DW_AT_name") == ".dict" for d, h in decls)
    params = []
    counts = [0, 0]
    previous = None
    for decl, holder in decls:
        vp = decl.attributes.get("DW_AT_variable_parameter")
        is_result = bool(vp is not None and vp.value)
        # Go 1.18/1.19 write some results twice in a row (golang/go#51725):
        # the same name, type and flag, an empty location list. One result.
        twin = (_attr_str(decl, "DW_AT_name"), decl.attributes.get("DW_AT_type").value
                if "DW_AT_type" in decl.attributes else None, is_result)
        if is_result and twin == previous:
            continue
        previous = twin
        params.append(Param(_attr_str(decl, "DW_AT_name"), reader.type_of(decl), is_result,
                            counts[is_result], holder))
        counts[is_result] += 1
    return params, dict_in_copy


def _signature(params):
    return [(p.name, p.is_result, p.type.name, p.type.size) for p in params]


def _split_method(name):
    """(receiver type as DWARF names it, method) for a method-shaped symbol, else None.

    "pkg.(*T).M" -> ("*pkg.T", "M"); "pkg.T[a.b].M" -> ("pkg.T[a.b]", "M").
    The caller checks the type exists (a closure pkg.F.func1 splits too).
    """
    depth = 0
    for i in range(len(name) - 1, -1, -1):
        c = name[i]
        if c in "])":
            depth += 1
        elif c in "[(":
            depth -= 1
        elif c == "." and depth == 0:
            recv, method = name[:i], name[i + 1:]
            if not re.fullmatch(r"[A-Za-z_]\w*", method):
                return None
            m = re.fullmatch(r"(.*)\.\(\*(.*)\)", recv)
            return (f"*{m.group(1)}.{m.group(2)}" if m else recv), method
    return None


def _hidden_param_guesses(fn, sub, types, reader):
    """(GoType, position, "receiver" | "param") guesses of what DWARF left out (hidden-param)."""
    guesses = []
    split = _split_method(_attr_str(sub.die, "DW_AT_name") or fn.name) if sub.die is not None else None
    if split is None:
        split = _split_method(fn.name)
    if split is not None:
        recv = split[0]
        candidates = [recv, recv.replace("go.", "", 1)]
        die = next((types[c] for c in candidates if c in types), None)
        if die is None and recv.startswith("*"):
            die = types.get("unsafe.Pointer")  # any one-word pointer will do
        if die is not None and not (sub.args and sub.args[0].type.name in candidates):
            guesses.append((GoType(reader, die), 0, "receiver"))
    for name in ("uintptr", "string", "[]uint8"):  # 1, 2, 3 integer words
        if name in types:
            t = GoType(reader, types[name])
            guesses += [(t, at, "param") for at in range(len(sub.args) + 1)]
    return guesses


def _spill_slots(subprogram, locations, abi):
    """index -> SP offset of each register arg's spill slot (abi-internal.md's layout)."""
    end = 0
    for p in subprogram.params:
        loc = locations[p.is_result, p.index]
        if not loc.in_registers:
            end = max(end, loc.stack - abi.first_slot + p.type.size)
    off = (end + 7) // 8 * 8
    out = {}
    for p in subprogram.args:
        if locations[False, p.index].in_registers:
            align = max(1, p.type.align)
            off = (off + align - 1) // align * align
            out[p.index] = abi.first_slot + off
            off += p.type.size
    return out


# -- the survey of one binary -------------------------------------------------


@dataclass
class Survey:
    name: str
    arch: str
    go_version: str
    functions: int = 0  # subprograms with code (low_pc) and a symbol
    agree: int = 0  # args whose every piece at entry is where gobt predicts
    total: int = 0  # args with a location at entry
    pieces_agree: int = 0
    pieces_total: int = 0
    abi0_agree: int = 0  # args of ABI0 wrappers, against the stack ABI
    abi0_total: int = 0
    abi0_args: list = field(default_factory=list)  # (symbol, param, DWARF place) of one-word args
    doubled: int = 0  # args read by the doubled-pieces rule (and then compared)
    explained: collections.Counter = field(default_factory=collections.Counter)  # rule -> args
    examples: dict = field(default_factory=dict)  # rule -> a few "function param" texts
    excluded: collections.Counter = field(default_factory=collections.Counter)  # rule -> functions
    disagreements: list = field(default_factory=list)  # unexplained, as text
    unreadable: list = field(default_factory=list)  # (function, error) where gobt's reader raised
    misread: list = field(default_factory=list)  # (function, gobt's params, the DWARF's)
    added: list = field(default_factory=list)  # (function, [names]) of params gobt adds to the DWARF's
    seconds: float = 0.0

    def figure(self):
        return f"{self.agree}/{self.total}"

    def summary(self):
        lines = [
            f"{self.name} ({self.go_version} {self.arch}): args agree {self.figure()} "
            f"(pieces {self.pieces_agree}/{self.pieces_total}) in {self.functions} functions, "
            f"surveyed in {self.seconds:.1f} s",
            f"  ABI0 wrappers, against the stack ABI: {self.abi0_agree}/{self.abi0_total}",
        ]
        if self.doubled:
            lines.append(f"  read by rule doubled-pieces (then compared): {self.doubled} args")
        for rule, n in sorted(self.explained.items()):
            lines.append(f"  explained by rule {rule}: {n} args, e.g. " + "; ".join(self.examples.get(rule, [])))
        for rule, n in sorted(self.excluded.items()):
            lines.append(f"  left out by rule {rule}: {n} functions")
        if self.added:
            lines.append(f"  gobt adds params no DIE describes in {len(self.added)} functions, e.g. "
                         + "; ".join(f"{fn}: {names}" for fn, names in self.added[:2]))
        lines.append(f"  gobt's DwarfReader.subprogram() failed on {len(self.unreadable)} functions, misread "
                     f"{len(self.misread)} (test_gobt_reads_every_subprogram)")
        lines.append(f"  unexplained disagreements: {len(self.disagreements)}")
        return "\n".join(lines)


@dataclass
class _Observed:
    param: Param
    kind: str  # "list" or "whole"
    pieces: list  # non-empty
    reading: str  # see _pieces


def _bad_pieces(o, loc):
    """The pieces of o that are not where loc says (for damaged readings: not among loc's places)."""
    if o.reading == "damaged":
        places = _places(loc, o.param.type.size)
        return [p for p in o.pieces if p[2] not in places]
    bad = []
    for off, size, where in o.pieces:
        want, want_size = _expected(loc, off)
        if want != where or (want_size is not None and want_size != size):
            bad.append((off, size, where))
    return bad


def _agrees(o, loc):
    return o.reading != "damaged" and not _bad_pieces(o, loc)


def survey_binary(name, path):
    started = time.monotonic()
    binary = GoBinary(path)
    arch, version = binary.arch, binary.go_version_tuple
    reader = binary.dwarf
    # All of DWARF, location lists included: gobt's reader leaves them out.
    info = binary.elf.get_dwarf_info(relocate_dwarf_sections=False)
    loclists = info.location_lists()
    by_start = {}
    for fn in binary.symbols.all_functions():
        by_start.setdefault(fn.start, fn)
    s = Survey(name, arch, binary.go_version)
    types = {}  # DWARF type name -> DIE, for the hidden-param rule
    judged = []  # judged after the walk, when every type is known

    for cu in info.iter_CUs():
        parser = DWARFExprParser(cu.structs)
        top = cu.get_top_DIE()
        cu_low = top.attributes["DW_AT_low_pc"].value if "DW_AT_low_pc" in top.attributes else 0
        for die in top.iter_children():
            if die.tag != "DW_TAG_subprogram":
                if die.tag.endswith("_type") or die.tag == "DW_TAG_typedef":
                    types.setdefault(_attr_str(die, "DW_AT_name"), die)
                continue
            if "DW_AT_low_pc" not in die.attributes:
                continue
            low_pc = die.attributes["DW_AT_low_pc"].value
            fn = by_start.get(low_pc)
            if fn is None:
                continue
            s.functions += 1
            frame_base = die.attributes.get("DW_AT_frame_base")
            assert frame_base is not None and list(frame_base.value) == [DW_OP_CALL_FRAME_CFA], (
                f"{fn.name}: frame base {frame_base} is not DW_OP_call_frame_cfa")

            params, dict_in_copy = _dwarf_params(reader, die)
            ours = Subprogram(fn.name, params, die)
            try:
                sub = reader.subprogram(fn)  # gobt's reading, through its public API
            except Exception as e:  # noqa: BLE001 - whatever it is, it is a finding
                s.unreadable.append((fn.name, f"{type(e).__name__}: {e}"))
                sub = None
            if sub is not None and sub.die is not None and sub.die.offset != die.offset:
                s.misread.append((fn.name, f"the DIE at {sub.die.offset:#x}", f"the DIE at {die.offset:#x}"))
                sub = None
            if sub is not None:
                # Params gobt adds that no DIE describes (a hidden .dict) are
                # judged by the ABI comparison; the rest must be the DWARF's.
                added = [p for p in sub.params if p.die is None]
                if added:
                    s.added.append((fn.name, [p.name for p in added]))
                # gobt moves a DWARF-named .dict to where the ABI passes it
                # (out-of-line copies list it after the results), so it is
                # compared apart; its placement is judged by the ABI survey.
                described = [p for p in sub.params if p.die is not None and p.name != ".dict"]
                named = [p for p in ours.params if p.name != ".dict"]
                dict_lost = any(p.name == ".dict" for p in ours.params) and not any(
                    p.name == ".dict" and p.die is not None for p in sub.params)
                if _signature(described) != _signature(named) or dict_lost:
                    s.misread.append((fn.name, _signature(sub.params), _signature(ours.params)))

            if (version < (1, 27) and "[go.shape." in fn.name
                    and not any(p.name == ".dict" for p in (sub or ours).params)):
                s.excluded["hidden-dict"] += 1
                continue
            if sub is None:
                if dict_in_copy:
                    s.excluded["dict-in-concrete-copy"] += 1
                    continue
                sub = ours  # still compare assign() on it; the reader test fails anyway

            observed = []
            for p in sub.args:
                if p.die is None or p.type.size == 0:
                    continue
                # The DIE of this param in this subprogram, with its location,
                # as pyelftools reads it (gobt's own reader reads no location lists).
                holder = reader.info.get_DIE_from_refaddr(p.die.offset)
                found = _entry_expr(loclists, holder, low_pc, cu_low)
                if found is None:
                    continue
                try:
                    pieces, reading = _pieces(parser, found[1], p.type, arch)
                except OtherExpr as e:
                    s.total += 1
                    s.disagreements.append(f"{fn.name} {p.name} ({p.type.name}): location at entry is {e}")
                    continue
                if pieces:
                    observed.append(_Observed(p, found[0], pieces, reading))
            if observed:
                judged.append((fn, sub, observed))

    for fn, sub, observed in judged:
        if fn.name.endswith(".abi0"):
            _judge_abi0(s, fn, sub, observed)
        else:
            _judge(s, fn, sub, observed, arch, version, reader, types)
    s.seconds = time.monotonic() - started
    return s


def _explain(s, rule, n, example):
    s.explained[rule] += n
    shown = s.examples.setdefault(rule, [])
    if len(shown) < 3:
        shown.append(example)


def _judge_abi0(s, fn, sub, observed):
    # ABI0 wrappers, the linker's .abi0 symbols through which assembly calls
    # a Go function, take everything on the stack as before the register
    # ABI, and their DWARF (named like the wrapped function) says so.
    # gobt.abi.assign.assign with a pre-1.17 version gives that layout.
    locations = assign(sub, s.arch, (1, 16))
    for o in observed:
        loc = locations[False, o.param.index]
        if o.param.type.kind in ("int", "uint", "pointer") and o.param.type.size == 8 and o.reading == "parts":
            s.abi0_args.append((fn.name, o.param.name, o.pieces[0][2]))
        s.abi0_total += 1
        if _agrees(o, loc):
            s.abi0_agree += 1
        else:
            s.disagreements.append(
                f"{fn.name} {o.param.name} ({o.param.type.name}), ABI0: the stack ABI gives "
                f"{_describe_location(loc)}, DWARF says {_describe(o.pieces)}")


def _verdicts(sub, locations, observed, arch):
    """index -> None (agrees), a per-arg rule's name, or "bad"; for every observed arg."""
    loc_of = {o.param.index: locations[False, o.param.index] for o in observed}
    bad_of = {o.param.index: _bad_pieces(o, loc_of[o.param.index]) for o in observed}
    # Places the location lists give that gobt also predicts, per arg.
    held = [(o.param.index, off, w) for o in observed if o.reading != "damaged"
            for off, size, w in o.pieces if (off, size, w) not in bad_of[o.param.index]]
    spills = None
    out = {}
    for o in observed:
        p, loc, bad = o.param, loc_of[o.param.index], bad_of[o.param.index]
        verdict = "bad"
        if o.reading != "damaged" and not bad:
            verdict = None
        elif o.reading == "damaged":
            # RULE damaged-pieces (see RULES).
            if all(any(w == hw and i != p.index for i, _, hw in held) for _, _, w in bad):
                verdict = "damaged-pieces"
        else:
            if o.kind == "whole" and loc.in_registers:
                # RULE spill-slot (see RULES).
                if spills is None:
                    spills = _spill_slots(sub, locations, REGISTER_ABI[arch])
                if all(w == ("sp", spills[p.index] + off) for off, _, w in o.pieces):
                    verdict = "spill-slot"
            if verdict == "bad":
                # RULE dwarf-conflict (see RULES).
                if all(w[0] == "reg" and any(w == hw and (i, ho) != (p.index, off) for i, ho, hw in held)
                       for off, _, w in bad):
                    verdict = "dwarf-conflict"
        out[p.index] = verdict
    return out


def _judge(s, fn, sub, observed, arch, version, reader, types):
    locations = assign(sub, arch, version)
    s.total += len(observed)
    s.doubled += sum(o.reading == "doubled" for o in observed)
    for o in observed:
        s.pieces_total += len(o.pieces)
        if o.reading != "damaged":
            s.pieces_agree += len(o.pieces) - len(_bad_pieces(o, locations[False, o.param.index]))
    verdicts = _verdicts(sub, locations, observed, arch)

    if version < (1, 22) and "bad" in verdicts.values():
        # RULE hidden-param (see RULES): a guess must leave no arg "bad".
        for hidden, at, what in _hidden_param_guesses(fn, sub, types, reader):
            moved = [Param(p.name, p.type, p.is_result, p.index + (not p.is_result and p.index >= at), p.die)
                     for p in sub.params]
            guess = Subprogram(fn.name, moved[:at] + [Param("(hidden)", hidden, False, at)] + moved[at:], sub.die)
            moved_observed = [_Observed(moved[sub.params.index(o.param)], o.kind, o.pieces, o.reading)
                              for o in observed]
            if "bad" not in _verdicts(guess, assign(guess, arch, version), moved_observed, arch).values():
                _explain(s, "hidden-param", len(observed), f"{fn.name}: hidden {what} {hidden.name} at {at}")
                return

    for o in observed:
        verdict = verdicts[o.param.index]
        loc = locations[False, o.param.index]
        if verdict is None:
            s.agree += 1
        elif verdict != "bad":
            _explain(s, verdict, 1, f"{fn.name} {o.param.name}: {_describe_location(loc)} vs {_describe(o.pieces)}")
        else:
            p = o.param
            s.disagreements.append(
                f"{fn.name} {p.name} ({p.type.name}, {p.type.kind} {p.type.size}): gobt predicts "
                f"{_describe_location(loc)}, the location list at entry says {_describe(o.pieces)}"
                + (" (pieces do not fit the type)" if o.reading == "damaged" else ""))


# -- fixtures and tests ---------------------------------------------------------

_SURVEYS = {}  # name -> Survey, or a Future of one
BINARY_PATHS = {}


def _start_surveys(session, toolchains):
    """Build every binary the session's tests ask for, and survey them in parallel.

    A survey is pure Python over one binary's DWARF (10-20 s for cmd/go);
    the three run in worker processes, so the file takes about as long as
    the slowest one rather than their sum.
    """
    wanted = sorted({item.callspec.params["survey"] for item in session.items
                     if hasattr(item, "callspec") and "survey" in item.callspec.params})
    pool = concurrent.futures.ProcessPoolExecutor(
        max_workers=max(1, min(len(wanted), os.cpu_count() or 1)),
        mp_context=multiprocessing.get_context("fork"))
    for name in wanted:
        chain, goarch = BINARIES[name]
        if chain not in toolchains:
            continue  # its tests skip (or fail in CI) through need()
        path = build_package(toolchains[chain], "cmd/go", BUILD_DIR, goarch=goarch)
        BINARY_PATHS[name] = path
        _SURVEYS[name] = pool.submit(survey_binary, name, path)
    pool.shutdown(wait=False)


@pytest.fixture(scope="module", params=sorted(BINARIES))
def survey(request, toolchains):
    name = request.param
    chain = BINARIES[name][0]
    need(chain in toolchains, f"Go toolchain {chain} is missing (run scripts/setup)")
    if not _SURVEYS:
        _start_surveys(request.session, toolchains)
    if isinstance(_SURVEYS[name], concurrent.futures.Future):
        _SURVEYS[name] = _SURVEYS[name].result()
        print("\n" + _SURVEYS[name].summary())
    return _SURVEYS[name]


@pytest.mark.bpftrace_independent  # DWARF against gobt's ABI tables; no bpftrace
def test_abi_agrees_with_location_lists(survey):
    msg = survey.summary()
    assert survey.total >= 1000, msg
    shown = "\n".join(survey.disagreements[:40])
    assert not survey.disagreements, (
        f"{msg}\nagreement {survey.figure()}; {len(survey.disagreements)} disagreements, e.g.:\n{shown}")
    assert survey.agree + sum(survey.explained.values()) == survey.total, msg
    # The rules explain exceptions, not the rule: most args agree outright.
    assert survey.agree >= 0.9 * survey.total, msg


def test_gobt_reads_abi0_wrappers_from_the_stack(survey, tmp_path):
    """goarg in an ABI0 wrapper (NAME.abi0) reads where its DWARF says: the stack.

    The linker's .abi0 wrappers, through which assembly calls Go functions,
    take their args on the stack by the pre-1.17 layout whatever the Go
    version (the survey checks that layout against their DWARF). Through
    gobt --emit, each one-word arg's read must be that stack slot.
    """
    picked = survey.abi0_args[:6]
    assert picked, "no one-word args of ABI0 wrappers with a location at entry"
    path = BINARY_PATHS[survey.name]
    script = tmp_path / "abi0.gbt"
    script.write_text("".join(f'uprobe:{path}:"{fn}" {{ printf("%lx\\n", goarg({param})); }}\n'
                              for fn, param, _ in picked))
    proc = gobt("--emit", str(script))
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.startswith("uprobe:")]
    assert len(lines) == len(picked), proc.stdout
    wrong = []
    for (fn, param, place), line in zip(picked, lines):
        regs = set(re.findall(r'reg\("(\w+)"\)', line)) - {"sp"}
        slots = {sum(int(x) for x in re.findall(r"\d+", m)) for m in re.findall(r'reg\("sp"\)((?:\s*\+\s*\d+)+)', line)}
        got = {("reg", r) for r in regs} | {("sp", n) for n in slots}
        if got != {place}:
            wrong.append(f"{fn} {param}: gobt reads {sorted(got)}, its DWARF says {place}\n    {line}")
    assert not wrong, "\n".join(wrong)


def test_gobt_reads_every_subprogram(survey):
    """gobt's DwarfReader.subprogram() finds every function and gives its params as the DWARF has them."""
    problems = [f"{fn}: {err}" for fn, err in survey.unreadable[:10]]
    problems += [f"{fn}:\n    gobt  {g}\n    DWARF {d}" for fn, g, d in survey.misread[:10]]
    assert not survey.unreadable and not survey.misread, (
        f"{survey.name}: of {survey.functions} functions, gobt's DwarfReader.subprogram() failed on "
        f"{len(survey.unreadable)} and misread {len(survey.misread)}, e.g.:\n" + "\n".join(problems))


# -- signatures: every function's params and results, against the runtime ------
#
# The location lists above judge where args are, never how many results a
# function has: results have no location at entry. Go 1.18/1.19 write some
# results twice (golang/go#51725), which that survey cannot see. Three checks
# over EVERY function of cmd/go on every toolchain can:
#   * names: Go allows no two params or results of one function the same
#     name except `_` (which DWARF leaves out, or numbers as ~p0, ~b0, ...);
#   * numbering: unnamed results ~rN and blank ones ~bN are numbered by
#     result position since Go 1.19, so the result at position i is ~ri or
#     ~bi; before, ~rN after the params (Go 1.15: ~r2 for a first result
#     after two params; params DWARF leaves out make N larger, never
#     smaller), so one start per function, start + i;
#   * size: the runtime's args size in .gopclntab (the stack args and
#     results, and with the register ABI a spill slot per register arg) is
#     the compiler's own record, independent of DWARF. gobt.abi.assign.arg_width
#     on gobt's reading must give the same. Fewer bytes is DWARF leaving out
#     params (a blank `_`, an unnamed receiver, before 1.22): gobt refuses
#     those functions (check_params_complete), and each is counted. More
#     bytes than the runtime records is never right.

SIGNATURE_BINARIES = {
    "go1.15-amd64": ("go1.15", "amd64"),  # the stack ABI: results are in the args size
    "go1.19-amd64": ("go1.19", "amd64"),
    "go1.23-amd64": ("go1.23", "amd64"),
    "newest-amd64": ("newest", "amd64"),
}
ARGS_SIZE_UNKNOWN = -0x80000000  # the runtime's ArgsSizeUnknown (assembly without a frame size)


@dataclass
class SignatureSurvey:
    name: str
    go_version: str = ""
    functions: int = 0
    size_agree: int = 0
    size_unknown: int = 0  # assembly the runtime knows no args size for
    refused: int = 0  # DWARF describes fewer bytes; gobt refuses (check_params_complete)
    refused_examples: list = field(default_factory=list)
    problems: list = field(default_factory=list)
    seconds: float = 0.0

    def summary(self):
        return (f"{self.name} ({self.go_version}): {self.functions} functions; args size agrees with "
                f".gopclntab in {self.size_agree}, unknown to the runtime (assembly) in {self.size_unknown}, "
                f"DWARF lacks params (gobt refuses) in {self.refused}, e.g. {self.refused_examples[:2]}; "
                f"{len(self.problems)} problems; {self.seconds:.1f} s")


def _unnamed_number(name):
    m = re.fullmatch(r"~[rb](\d+)", name)
    return int(m.group(1)) if m else None


def survey_signatures(name, path):
    from gobt.abi.assign import arg_width
    from gobt.errors import GobtError
    from gobt.rewrite.probes import check_params_complete

    started = time.monotonic()
    binary = GoBinary(path)
    arch, version = binary.arch, binary.go_version_tuple
    reader = binary.dwarf
    s = SignatureSurvey(name, binary.go_version)
    by_start = {}
    for fn in binary.symbols.all_functions():
        by_start.setdefault(fn.start, fn)
    for cu in reader.info.iter_CUs():
        for die in cu.get_top_DIE().iter_children():
            if die.tag != "DW_TAG_subprogram" or "DW_AT_low_pc" not in die.attributes:
                continue
            fn = by_start.get(die.attributes["DW_AT_low_pc"].value)
            if fn is None:
                continue
            s.functions += 1
            try:
                sub = reader.subprogram(fn)
            except Exception as e:  # noqa: BLE001 - a finding, whatever it is
                s.problems.append(f"{fn.name}: gobt cannot read it: {type(e).__name__}: {e}")
                continue
            shown = ", ".join(f"{p.name} {p.type.name}" + (" (result)" if p.is_result else "") for p in sub.params)
            names = [p.name for p in sub.params if p.name not in ("", "_")]
            twice = sorted({n for n in names if names.count(n) > 1})
            if twice:
                s.problems.append(f"{fn.name}: {twice} named twice: {shown}")
            numbered = [(p.name[1], _unnamed_number(p.name) - p.index) for p in sub.results
                        if _unnamed_number(p.name) is not None]
            if version >= (1, 19):
                wrong = any(start != 0 for _, start in numbered)
            else:
                # Go 1.15 numbers ~rN after the params (a receiver is not
                # counted), but a blank ~bN by result position or later
                # (cmd/go: (n int, _ error) has ~b1; parse(...) (_ *Regexp, err error) ~b2).
                starts = {start for kind, start in numbered if kind == "r"}
                wrong = (len(starts) > 1 or any(start < len(sub.args) - 1 for start in starts)
                         or any(start < 0 for kind, start in numbered if kind == "b"))
            if wrong:
                s.problems.append(f"{fn.name}: unnamed results numbered out of position: {shown}")
            recorded = binary.args_size(fn)
            if recorded is None or recorded == ARGS_SIZE_UNKNOWN:
                s.size_unknown += 1
                continue
            predicted = arg_width(sub, arch, version)
            if predicted == recorded:
                s.size_agree += 1
            elif predicted < recorded:
                try:
                    check_params_complete(binary, fn, sub)
                    s.problems.append(f"{fn.name}: DWARF describes {predicted} bytes, the runtime "
                                      f"records {recorded}, and gobt does not refuse it")
                except GobtError:
                    s.refused += 1
                    if len(s.refused_examples) < 3:
                        s.refused_examples.append(f"{fn.name} {predicted}<{recorded}")
            else:
                s.problems.append(f"{fn.name}: gobt's reading takes {predicted} bytes of args, the runtime "
                                  f"records {recorded}: {shown}")
    s.seconds = time.monotonic() - started
    return s


_SIGNATURES = {}


@pytest.fixture(scope="module", params=sorted(SIGNATURE_BINARIES))
def signatures(request, toolchains):
    """The signature survey of one cmd/go; all of them start in parallel on first use."""
    name = request.param
    chain = SIGNATURE_BINARIES[name][0]
    need(chain in toolchains, f"Go toolchain {chain} is missing (run scripts/setup)")
    if not _SIGNATURES:
        wanted = sorted({item.callspec.params["signatures"] for item in request.session.items
                         if hasattr(item, "callspec") and "signatures" in item.callspec.params})
        pool = concurrent.futures.ProcessPoolExecutor(
            max_workers=max(1, min(len(wanted), os.cpu_count() or 1)),
            mp_context=multiprocessing.get_context("fork"))
        for wanted_name in wanted:
            want_chain, goarch = SIGNATURE_BINARIES[wanted_name]
            if want_chain in toolchains:
                path = build_package(toolchains[want_chain], "cmd/go", BUILD_DIR, goarch=goarch)
                _SIGNATURES[wanted_name] = pool.submit(survey_signatures, wanted_name, path)
        pool.shutdown(wait=False)
    if isinstance(_SIGNATURES[name], concurrent.futures.Future):
        _SIGNATURES[name] = _SIGNATURES[name].result()
        print("\n" + _SIGNATURES[name].summary())
    return _SIGNATURES[name]


@pytest.mark.bpftrace_independent  # DWARF against .gopclntab; no bpftrace
def test_every_signature_agrees_with_the_runtime(signatures):
    s = signatures
    assert s.functions >= 5000, s.summary()
    assert not s.problems, s.summary() + "\n" + "\n".join(s.problems[:30])
    # Refusals are the exception: most functions are read whole.
    assert s.size_agree >= 0.75 * s.functions, s.summary()
