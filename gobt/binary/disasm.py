"""Resolve: where a Go function returns and where its body starts.

A return probe made of uprobes on every RET never touches the return address
on the stack, so the Go runtime can copy the goroutine stack under it
(which a uretprobe cannot survive). The offsets come from capstone over
exactly the function's bytes: a linear sweep of all of .text stops early
in capstone, and costs far more than the functions asked for.

The same pass finds the end of the stack-growth check in the prologue.
When the goroutine stack is too small, the check branches to a block that
calls runtime.morestack and then jumps back to the function's entry, so a
uprobe at offset 0 fires twice for such a call; one just after the check
fires exactly once, and still sees the entry SP and argument registers.
"""

import bisect
from ..record import dataclass, field

def _amd64_branch_or_ret(name):
    # capstone's instruction names: the mnemonics without prefixes.
    return name.startswith("j") or name in ("ret", "retq")


def _arm64_branch_or_ret(name):
    # b.cond is "b" by name, its condition being an operand of the id.
    return name in ("ret", "b", "bl", "cbz", "cbnz", "tbz", "tbnz") or name.startswith("b.")


# Per-architecture facts, as data: the mnemonics that end a function's
# execution here.
ARCHES = {
    "amd64": {
        "ret": {"ret", "retq"},
        "jump": {"jmp"},
        "call": {"call"},
        "cond_branch": lambda m: m.startswith("j") and m != "jmp",
        # Instructions of the prologue that move SP: the stack check is
        # always before them.
        "moves_sp": lambda m, ops: m == "push" or (m in ("sub", "add", "lea", "mov") and ops.startswith("rsp,")),
        # int3 pads functions to their alignment.
        "sp_names": {"push", "sub", "add", "lea", "mov"},  # what moves_sp looks at
        "ret_sizes": {1, 3},  # C3, C2 iw: a prefixed RET is read by its text
        "padding": {b"\xcc", b"\x00"},
        "branch_or_ret": _amd64_branch_or_ret,
    },
    "arm64": {
        "ret": {"ret"},
        "jump": {"b"},
        "call": {"bl"},
        "cond_branch": lambda m: m.startswith("b.") or m in ("cbz", "cbnz", "tbz", "tbnz"),
        "moves_sp": lambda m, ops: (m in ("sub", "add", "mov") and ops.startswith("sp,"))
        or (m in ("stp", "str") and "[sp" in ops and "]!" in ops),
        "sp_names": {"sub", "add", "mov", "stp", "str"},
        "ret_sizes": {4},
        "padding": {b"\x00"},
        "branch_or_ret": _arm64_branch_or_ret,
    },
}


# The prologue's stack check is within its first few instructions.
PROLOGUE_WINDOW = 12


@dataclass
class Code:
    """What disassembly tells about one function."""

    function: object
    ret_offsets: list = field(default_factory=list)  # from the function's start
    tail_calls: list = field(default_factory=list)  # (offset, target address, or None: indirect)
    entry_offset: int = 0  # just after the stack-growth check (0: none)


def analyze(binary, fn):
    """`fn`'s RET instructions, tail calls and body entry (cached per binary)."""
    row = binary.cache.get("code", fn.name)
    if row is not None and row[0] == fn.start:
        _, rets, tails, entry = row
        return Code(fn, rets, [tuple(t) for t in tails], entry)
    code = _disassemble(binary, fn)
    binary.cache.put("code", fn.name, [fn.start, code.ret_offsets, code.tail_calls, code.entry_offset])
    return code


def _disassemble(binary, fn):
    facts = ARCHES[binary.arch]
    code = binary.code(fn)
    out = Code(fn)
    insns = decoded(binary.arch, code, fn.start)
    addresses = insns.addresses
    n = len(insns)
    covered = addresses[-1] + insns.sizes[-1] - fn.start if n else 0
    furthest_target = 0  # the furthest jump target inside the function
    conds = []  # conditional branches: their targets matter only past the code
    kind_of = _kinds(binary.arch, insns)
    # Only the instructions that may end or leave the function are read:
    # RETs and conditional branches known by capstone's id alone, the rest
    # by their text.
    for i in insns.where(facts["branch_or_ret"]):
        address = addresses[i]
        kind = kind_of.get(insns.ids[i]) if kind_of is not None else None
        if kind == "ret" and insns.sizes[i] in facts["ret_sizes"]:
            out.ret_offsets.append(address - fn.start)
            continue
        if kind == "cond":
            conds.append(i)
            continue
        mnemonic, op_str = insns.text(i)
        if mnemonic in facts["ret"]:
            out.ret_offsets.append(address - fn.start)
            continue
        is_jump = mnemonic in facts["jump"]
        if not is_jump:
            if facts["cond_branch"](mnemonic):
                conds.append(i)
            continue
        target = _immediate(op_str.split(",")[-1])
        if target is None:
            # JMP through a register or memory: a method called through an
            # interface, as promoted-method wrappers do.
            out.tail_calls.append((address - fn.start, None))
        elif fn.start <= target < fn.end:
            furthest_target = max(furthest_target, target - fn.start)
        else:
            # A jump out of the function's own bytes ends it there: Go's
            # promoted-method wrappers and some asm functions return so.
            out.tail_calls.append((address - fn.start, target))
    rest = bytes(code[covered:])
    if rest and rest.strip(b"".join(facts["padding"])) and not _data_after_code(
            insns, covered, _furthest(insns, fn, conds, furthest_target), facts):
        from ..errors import GobtError

        raise GobtError(
            f"{fn.name}: disassembly stopped at +0x{covered:x} of 0x{fn.size:x} bytes; "
            "gobt cannot prove it found every return, so it places none"
        )
    out.entry_offset = _after_stack_check(binary, fn, insns, facts)
    return out


def _furthest(insns, fn, conds, furthest_target):
    """The furthest branch target inside fn, conditional branches included."""
    for i in conds:
        target = _immediate(insns.text(i)[1].split(",")[-1])
        if target is not None and fn.start <= target < fn.end:
            furthest_target = max(furthest_target, target - fn.start)
    return furthest_target


_kind_maps = {}


def _kinds(arch, insns):
    """capstone id -> what its name alone says: "ret", "cond" (a
    conditional branch), "call", "sp" (may move SP in a prologue), or
    "text" (a jump, or a name shared by kinds: arm64's "b" is also
    b.cond); None when the decoder gave no ids. An id not in the map is
    none of these."""
    if insns.ids is None:
        return None
    kinds = _kind_maps.get(arch)
    if kinds is None:
        from .decode import ids_named

        facts = ARCHES[arch]
        kinds = {}
        for kind, wanted in (("ret", facts["ret"].__contains__), ("call", facts["call"].__contains__),
                             ("text", facts["jump"].__contains__), ("cond", facts["cond_branch"]),
                             ("sp", facts["sp_names"].__contains__)):
            for i in ids_named(arch, wanted):
                kinds.setdefault(i, kind)
        _kind_maps[arch] = kinds
    return kinds


_recent = []  # a few (arch, address, bytes, Decoded): the proof decodes what analyze just did


def decoded(arch, code, address):
    """decode.Decoded of `code` at `address`; the same bytes decoded again
    in this process (analyze, then proof.py) are not decoded twice."""
    from .decode import Decoded

    code = bytes(code)
    for entry in _recent:
        if entry[0] == arch and entry[1] == address and entry[2] == code:
            return entry[3]
    found = Decoded(arch, code, address)
    if len(code) <= 1 << 16:
        _recent.append((arch, address, code, found))
        del _recent[:-4]
    return found


def is_instruction_boundary(binary, fn, offset):
    """Whether fn+offset starts an instruction (a uprobe elsewhere corrupts code)."""
    addresses = decoded(binary.arch, binary.code(fn), fn.start).addresses
    i = bisect.bisect_left(addresses, fn.start + offset)
    return i < len(addresses) and addresses[i] == fn.start + offset


def tail_call_target(binary, code):
    """What a function without RET jumps to at its end, for messages."""
    _offset, target = code.tail_calls[-1]
    if target is None:
        return "an address in a register (an interface method)"
    found = binary.symbols.at(target)
    return found.name if found else f"0x{target:x}"


def _data_after_code(insns, covered, furthest_target, facts):
    """Undecodable bytes that no code can reach: a jump table after the code.

    (Go on arm64 puts switch tables right after a function's last
    instruction.) They are unreachable when the last instruction never
    falls through and no branch in the function lands at or beyond them.
    """
    if not len(insns):
        return False
    mnemonic, _ops = insns.text(len(insns) - 1)
    ends = mnemonic in facts["ret"] or mnemonic in facts["jump"]
    return ends and furthest_target < covered


def _after_stack_check(binary, fn, insns, facts):
    """Offset of the instruction after the last branch to the morestack block."""
    addresses = insns.addresses
    n = len(insns)
    morestack = binary.morestack_addresses
    entry = 0
    kind_of = _kinds(binary.arch, insns) or {}
    ids = insns.ids or ()
    for i in range(min(PROLOGUE_WINDOW, n)):
        if ids and kind_of.get(ids[i]) not in ("cond", "sp", "text"):
            continue  # neither moves SP nor branches: no need of its text
        mnemonic, op_str = insns.text(i)
        if facts["moves_sp"](mnemonic, op_str):
            break
        if not facts["cond_branch"](mnemonic):
            continue
        target = _immediate(op_str.split(",")[-1])
        j = bisect.bisect_left(addresses, target) if target is not None else n
        if j >= n or addresses[j] != target:
            continue
        # The growth path spills the register args, then calls
        # runtime.morestack*: its first call tells.
        for k in range(j, n):
            if ids and kind_of.get(ids[k]) not in ("call", "text", "ret"):
                continue  # a spill or a reload
            t_mnem, t_ops = insns.text(k)
            if t_mnem in facts["call"]:
                if _immediate(t_ops) in morestack:
                    entry = addresses[i] + insns.sizes[i] - fn.start
                break
            if t_mnem in facts["jump"] or t_mnem in facts["ret"]:
                break
    return entry


def _immediate(op_str):
    text = op_str.strip().lstrip("#")
    try:
        return int(text, 16) if text.startswith("0x") else int(text)
    except ValueError:
        return None
