"""x86len.py, the warm path's amd64 instruction lengths, against capstone
over every function of real Go binaries: where it gives a length, it is
capstone's."""

import pytest

from conftest import BUILD_DIR, need
from toolchains import build_package


def _compare(path):
    from gobt.binary.decode import Decoded
    from gobt.binary.gobinary import GoBinary
    from gobt.binary.x86len import boundaries

    binary = GoBinary(path)
    known = unknown = 0
    for fn in binary.symbols.all_functions():
        code = bytes(binary.code(fn))
        if not code:
            continue
        theirs = Decoded("amd64", code, 0)
        covered = theirs.addresses[-1] + theirs.sizes[-1] if len(theirs.addresses) else 0
        ours = boundaries(code, len(code))
        if ours is None:
            unknown += 1
            continue
        known += 1
        # capstone stops at bytes it cannot decode (data after the code).
        assert {a for a in ours if a < covered} == set(theirs.addresses), fn.name
    return known, unknown


@pytest.mark.parametrize("chain", ["go1.15", "go1.19", "newest"])
def test_lengths_are_capstones(toolchains, chain):
    need(chain in toolchains, f"Go toolchain {chain} is missing (run scripts/setup)")
    known, unknown = _compare(build_package(toolchains[chain], "cmd/gofmt", BUILD_DIR))
    # Go's own code is all known; only the runtime's assembly (AVX) is not.
    assert known > 10 * unknown, (known, unknown)
