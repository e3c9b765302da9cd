"""The register ABI of each architecture, as data.

Registers in assignment order, the g register, and the Go version that
switched the architecture from the stack ABI (Go's
src/cmd/compile/abi-internal.md). A new architecture is a new row.
"""

from ..record import dataclass
from .runtime_g import REGISTER_ABI_SINCE


@dataclass(frozen=True)
class RegisterABI:
    arch: str
    since: tuple  # first Go (major, minor) using it
    int_regs: tuple  # bpftrace's reg() names, in assignment order
    int_names: tuple  # the same registers as Go and objdump spell them
    float_regs: tuple  # names only: BPF cannot read them
    g_reg: str  # holds the current goroutine's runtime.g
    pointer_size: int = 8
    # At function entry and at each RET, the first stack argument slot is
    # at SP+8: amd64 has the return address at [SP], arm64 the saved LR.
    first_slot: int = 8


REGISTER_ABI = {
    "amd64": RegisterABI(
        arch="amd64",
        since=REGISTER_ABI_SINCE["amd64"],
        int_regs=("ax", "bx", "cx", "di", "si", "r8", "r9", "r10", "r11"),
        int_names=("RAX", "RBX", "RCX", "RDI", "RSI", "R8", "R9", "R10", "R11"),
        float_regs=tuple(f"X{i}" for i in range(15)),
        g_reg="r14",
    ),
    "arm64": RegisterABI(
        arch="arm64",
        since=REGISTER_ABI_SINCE["arm64"],
        int_regs=tuple(f"r{i}" for i in range(16)),
        int_names=tuple(f"R{i}" for i in range(16)),
        float_regs=tuple(f"F{i}" for i in range(16)),
        g_reg="r28",
    ),
}


def uses_register_abi(arch, go_version):
    abi = REGISTER_ABI.get(arch)
    return abi is not None and go_version is not None and go_version >= abi.since
