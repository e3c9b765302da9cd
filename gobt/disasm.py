"""Resolve: where a Go function returns, found by disassembling its bytes.

A return probe made of uprobes on every RET never touches the return address
on the stack, so the Go runtime can copy the goroutine stack under it
(which a uretprobe cannot survive). The offsets come from capstone over
exactly the function's bytes: a linear sweep of all of .text stops early
in capstone, and costs far more than the functions asked for.
"""

from dataclasses import dataclass, field

# Per-architecture facts, as data: capstone's names for the machine and the
# mnemonics that end a function's execution here.
ARCHES = {
    "amd64": {
        "cs": ("CS_ARCH_X86", "CS_MODE_64"),
        "ret": {"ret", "retq"},
        "jump": {"jmp"},
        # int3 pads functions to their alignment.
        "padding": {b"\xcc", b"\x00"},
    },
    "arm64": {
        "cs": ("CS_ARCH_ARM64", "CS_MODE_ARM"),
        "ret": {"ret"},
        "jump": {"b"},
        "padding": {b"\x00"},
    },
}


@dataclass
class Returns:
    """How a function leaves: its RET offsets, and any tail call."""

    function: object
    ret_offsets: list = field(default_factory=list)  # from the function's start
    tail_calls: list = field(default_factory=list)  # (offset, target address)


_disassemblers = {}


def _disassembler(arch):
    cs = _disassemblers.get(arch)
    if cs is None:
        import capstone

        arch_name, mode_name = ARCHES[arch]["cs"]
        cs = capstone.Cs(getattr(capstone, arch_name), getattr(capstone, mode_name))
        cs.detail = False
        _disassemblers[arch] = cs
    return cs


def returns(binary, fn):
    """Disassemble `fn` and find its RET instructions and tail calls."""
    facts = ARCHES[binary.arch]
    code = binary.code(fn)
    out = Returns(fn)
    covered = 0
    for address, size, mnemonic, op_str in _disassembler(binary.arch).disasm_lite(code, fn.start):
        covered = address + size - fn.start
        if mnemonic in facts["ret"]:
            out.ret_offsets.append(address - fn.start)
        elif mnemonic in facts["jump"]:
            target = _immediate(op_str)
            # A jump out of the function's own bytes ends it there: Go's
            # promoted-method wrappers and some asm functions return this way.
            if target is not None and not fn.start <= target < fn.end:
                out.tail_calls.append((address - fn.start, target))
    rest = bytes(code[covered:])
    if rest and rest.strip(b"".join(facts["padding"])):
        from .errors import GobtError

        raise GobtError(
            f"{fn.name}: disassembly stopped at +0x{covered:x} of 0x{fn.size:x} bytes; "
            "gobt cannot prove it found every return, so it places none"
        )
    return out


def _immediate(op_str):
    text = op_str.strip().lstrip("#")
    try:
        return int(text, 16) if text.startswith("0x") else int(text)
    except ValueError:
        return None
