"""runtime.g's layout per Go version, for binaries without DWARF.

goid and goelapsed read two fields of the current goroutine's runtime.g:
goid, and stack.hi (the top of its stack). With DWARF gobt reads their
offsets from the binary itself; a stripped binary has only its Go version
(in .go.buildinfo), and one Go version has one layout, so this table
answers for it. Same offsets on amd64 and arm64 (the fields before goid
are pointer-sized or pairs of uint32).

Each row holds from its Go minor version up to the next row's. Versions
below the first row or above LAST_MINOR are unknown: gobt refuses them
rather than guess (a field inserted before goid moves it, as Go 1.23's
syscallbp did until 1.25 took a field out again).
"""

# Where the current goroutine's g is, per (arch, ABI). With the register ABI
# a register holds it; before, Go kept it in thread-local storage, which on
# amd64 is just below the thread's FS base. bpftrace reaches that through
# the current task's BTF; uptr() makes it read user memory, not kernel
# memory as it would for an address derived from curtask.
G_POINTER = {
    ("amd64", "register"): 'reg("r14")',
    ("arm64", "register"): 'reg("r28")',
    ("amd64", "stack"): "*(uint64 *)uptr(curtask->thread.fsbase - 8)",
}

# The first Go version of each arch's register ABI (register_abi.py's
# `since`; here, so that the warm path's check of a cached g, proof.py,
# need not build register_abi's table).
REGISTER_ABI_SINCE = {"amd64": (1, 17), "arm64": (1, 18)}


def g_pointer(arch, version):
    """G_POINTER's expression for a binary of this arch and Go version."""
    since = REGISTER_ABI_SINCE.get(arch)
    register = since is not None and version is not None and version >= since
    return G_POINTER.get((arch, "register" if register else "stack"))


# (first Go 1.x minor version, goid offset, stack.hi offset)
RUNTIME_G = (
    (15, 152, 8),
    (23, 160, 8),
    (25, 152, 8),
)

# The newest Go minor version whose layout is known to be the last row's.
LAST_MINOR = 27

# Minor versions whose rows were checked against runtime.g in the DWARF of
# a real build, amd64 and arm64 (1.15: amd64 only; arm64 needs the register
# ABI). tests/test_runtime_g.py re-checks every toolchain the tests have.
# 1.16-1.18 and 1.20 had no toolchain here: their rows are inferred from
# the DWARF of both neighbours agreeing (1.15 and 1.19, 1.19 and 1.21).
CHECKED_AGAINST_DWARF = (15, 19, 21, 22, 23, 24, 25, 26, 27)


def runtime_g_offsets(version):
    """(goid offset, stack.hi offset) for a (major, minor) Go version, or
    None when the table does not know that version."""
    if version is None or version[0] != 1:
        return None
    minor = version[1]
    if minor < RUNTIME_G[0][0] or minor > LAST_MINOR:
        return None
    row = [r for r in RUNTIME_G if r[0] <= minor][-1]
    return row[1], row[2]


def known_versions():
    """'go1.15 to go1.27', for messages."""
    return f"go1.{RUNTIME_G[0][0]} to go1.{LAST_MINOR}"
