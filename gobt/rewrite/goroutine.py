"""Goroutine identity in bpftrace: goid, and a key for one call of a function.

Threads are the wrong key in Go: goroutines move between threads, and a
goroutine's stack moves when it grows. What stays put for one call is the
goroutine (its runtime.g, whose address is in a register) and the call's
depth in that goroutine's stack,
g.stack.hi - SP, which is the same at the entry and at the RET of a call
and is kept when the runtime copies the stack (both ends move together).

runtime.g's field offsets change between Go versions (goid is at 152, at
160 in Go 1.23-1.24, and at 152 again later), so they come from this
binary's DWARF when it has one; a binary without DWARF (-ldflags=-w) gets
them from abi/runtime_g.py's table for its Go version, and a version that
table does not know is refused.
"""

from ..record import dataclass

from ..abi.runtime_g import G_POINTER, known_versions, runtime_g_offsets
from ..binary.gobinary import require_go
from ..errors import GobtError

@dataclass(frozen=True)
class GoroutineExprs:
    g: str
    goid_offset: int
    stack_hi_offset: int

    @property
    def goid(self):
        return f"(*(uint64 *)uptr({self.g} + {self.goid_offset}))"

    @property
    def depth(self):
        """g.stack.hi - SP: this call's place in its goroutine's stack."""
        return f'(*(uint64 *)uptr({self.g} + {self.stack_hi_offset}) - reg("sp"))'


def goroutine_of(binary):
    """bpftrace expressions for this binary's goid and call depth, through
    the binary's cache. A cached row is a claim, not a fact: it is used only
    where it is what the binary says (runtime_g_holds), else read again."""
    row = binary.cache.get("goroutine", "g")
    if row is None or not runtime_g_holds(binary, row):
        found = goroutine_exprs(binary)
        row = [found.g, found.goid_offset, found.stack_hi_offset]
        binary.cache.put("goroutine", "g", row)
    binary.runtime_g_read = row  # for the program cache, which checks it again on reuse (proof.py)
    return GoroutineExprs(*row)


def runtime_g_holds(binary, row):
    """Whether a cached [g, goid offset, stack.hi offset] is this binary's:
    the g of its arch and ABI, and the offsets of runtime_g.py's table for
    its Go version (checked against every toolchain's DWARF). A version the
    table does not know is read from the DWARF again."""
    abi = "register" if binary.register_abi else "stack"
    offsets = runtime_g_offsets(binary.go_version_tuple)
    return offsets is not None and row == [G_POINTER.get((binary.arch, abi)), *offsets]


def goroutine_exprs(binary):
    require_go(binary, "goid and goelapsed read Go's runtime.g")
    abi = "register" if binary.register_abi else "stack"
    g = G_POINTER.get((binary.arch, abi))
    if g is None:
        raise GobtError(f"{binary.display_path}: gobt cannot find the goroutine on {binary.arch} with the {abi} ABI")
    if not binary.has_dwarf:
        offsets = runtime_g_offsets(binary.go_version_tuple)
        if offsets is None:
            raise GobtError(
                f"{binary.display_path} has no DWARF, and gobt does not know runtime.g's layout "
                f"in {binary.go_version or 'its Go version'}: goid and goelapsed need it",
                hints=[f"  gobt knows runtime.g of {known_versions()} without DWARF; "
                       "a build without -ldflags=-w gives it for any version"],
            )
        return GoroutineExprs(g, *offsets)
    gtype = binary.dwarf.type_named("runtime.g")
    if gtype is None:
        raise GobtError(f"{binary.display_path}: its DWARF has no runtime.g; goid needs it")
    goid = gtype.field("goid")
    stack = gtype.field("stack")
    hi = stack.type.field("hi") if stack else None
    if goid is None or hi is None:
        raise GobtError(f"{binary.display_path}: runtime.g in its DWARF has no goid or stack.hi")
    return GoroutineExprs(g, goid.offset, stack.offset + hi.offset)
