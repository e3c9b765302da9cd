"""Go's calling conventions: one assignment algorithm for every architecture.

The register ABI (amd64 since Go 1.17, arm64 since 1.18) and the older
stack ABI, as written in Go's src/cmd/compile/abi-internal.md. The facts
that differ between architectures are data in register_abi.py; the
algorithm here is the same for all of them.
"""

from ..record import dataclass

from ..errors import GobtError
from .register_abi import REGISTER_ABI, uses_register_abi  # noqa: F401 (re-exported for callers)


# Kinds that take one integer register, by the ABI's rules.
_WORD_KINDS = {"bool", "int", "uint", "uintptr", "pointer", "map", "chan", "func", "unsafe.Pointer"}
_MULTIWORD = {"string": 2, "interface": 2, "slice": 3}


@dataclass(frozen=True)
class Leaf:
    """One register-sized piece of a value: which bytes, in which register."""

    offset: int  # within the value
    size: int
    reg: str  # bpftrace name for int registers, Go's name for float ones
    is_float: bool = False


@dataclass(frozen=True)
class Location:
    """Where a param lives at entry (args) or at RET (results)."""

    leaves: tuple | None = None  # register-assigned
    stack: int | None = None  # else at SP + stack

    @property
    def in_registers(self):
        return self.leaves is not None


def _align(n, a):
    return (n + a - 1) // a * a


def _flatten(t, base=0):
    """The register pieces of a value of type t, or None if it cannot go in registers."""
    if t.size == 0:
        return []
    kind = t.kind
    if kind in _WORD_KINDS:
        return [(base, t.size, False)]
    if kind == "float":
        return [(base, t.size, True)]
    if kind == "complex":
        half = t.size // 2
        return [(base, half, True), (base + half, half, True)]
    if kind in _MULTIWORD:
        return [(base + 8 * i, 8, False) for i in range(_MULTIWORD[kind])]
    if kind == "struct":
        out = []
        for f in t.fields:
            sub = _flatten(f.type, base + f.offset)
            if sub is None:
                return None
            out.extend(sub)
        return out
    if kind == "array":
        if t.length == 0:
            return []
        if t.length == 1:
            return _flatten(t.elem, base)
        return None
    raise GobtError(f"gobt does not know how Go passes a value of type {t.name} (kind {kind})")


def abi_shape(t):
    """What the assignment reads of a type: two types of one shape are
    placed alike. Kept on the type, which is asked again and again."""
    shape = getattr(t, "_abi_shape", None)
    if shape is None:
        try:
            pieces = _flatten(t)
        except GobtError:
            # A kind the register ABI cannot place: the stack ABI still
            # can, and the register ABI's assign() says why not.
            pieces = ("unplaceable", t.kind)
        else:
            pieces = None if pieces is None else tuple(pieces)
        # kind: -lv marks float values; the pieces already tell registers.
        shape = (t.size, t.align, pieces, t.kind in ("float", "complex"))
        try:
            t._abi_shape = shape
        except AttributeError:  # a type that takes no attributes: asked each time
            pass
    return shape


class _Assigner:
    def __init__(self, abi):
        self.abi = abi
        self.stack = 0
        self.reset()

    def reset(self):
        self.ints = 0
        self.floats = 0

    def assign(self, t):
        pieces = _flatten(t)
        if pieces is not None and t.size > 0:
            n_int = sum(1 for p in pieces if not p[2])
            n_float = len(pieces) - n_int
            if self.ints + n_int <= len(self.abi.int_regs) and self.floats + n_float <= len(self.abi.float_regs):
                leaves = []
                for offset, size, is_float in pieces:
                    if is_float:
                        reg = self.abi.float_regs[self.floats]
                        self.floats += 1
                    else:
                        reg = self.abi.int_regs[self.ints]
                        self.ints += 1
                    leaves.append(Leaf(offset, size, reg, is_float))
                return Location(leaves=tuple(leaves))
        # Does not fit: the whole value goes to the stack, and later values
        # may still get registers.
        return self.on_stack(t)

    def on_stack(self, t):
        self.stack = _align(self.stack, t.align)
        loc = Location(stack=self.abi.first_slot + self.stack)
        self.stack += t.size
        return loc


def assign(subprogram, arch, go_version):
    """Location of every param of a Subprogram, keyed by (is_result, index)."""
    if uses_register_abi(arch, go_version) and not subprogram.abi0:
        a = _Assigner(REGISTER_ABI[arch])
        out = {}
        for p in subprogram.args:
            out[False, p.index] = a.assign(p.type)
        a.stack = _align(a.stack, 8)
        a.reset()
        for p in subprogram.results:
            out[True, p.index] = a.assign(p.type)
        return out
    # The stack ABI: everything in memory in declaration order, results
    # after the args at the next pointer-aligned slot.
    a = _Assigner(REGISTER_ABI.get(arch) or REGISTER_ABI["amd64"])
    out = {}
    for p in subprogram.args:
        out[False, p.index] = a.on_stack(p.type)
    a.stack = _align(a.stack, 8)
    for p in subprogram.results:
        out[True, p.index] = a.on_stack(p.type)
    return out


def arg_width(subprogram, arch, go_version):
    """The args size the runtime records for the function, from DWARF's params.

    Stack-assigned args, then stack-assigned results, then (register ABI)
    a spill slot for each register-assigned arg, each part pointer-aligned.
    """
    register = uses_register_abi(arch, go_version) and not subprogram.abi0
    a = _Assigner(REGISTER_ABI.get(arch) or REGISTER_ABI["amd64"])
    spills = []
    for p in subprogram.args:
        loc = a.assign(p.type) if register else a.on_stack(p.type)
        if loc.in_registers:
            spills.append(p.type)
    a.stack = _align(a.stack, 8)
    a.reset()
    for p in subprogram.results:
        if register:
            a.assign(p.type)
        else:
            a.on_stack(p.type)
    a.stack = _align(a.stack, 8)
    for t in spills:
        a.on_stack(t)
    return _align(a.stack, 8)


def describe(location, abi_arch):
    """How -lv shows a location: RBX,RCX or X0 or [SP+8]."""
    if location.in_registers:
        if not location.leaves:
            return "(zero size)"
        abi = REGISTER_ABI[abi_arch]
        names = dict(zip(abi.int_regs, abi.int_names))
        return ",".join(names.get(leaf.reg, leaf.reg) for leaf in location.leaves)
    return f"[SP+{location.stack}]"
