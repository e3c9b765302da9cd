"""goentry sits where the stack pointer still has its entry value.

An oracle independent of gobt's disassembly: the CFA rules Go writes in
.debug_frame. At the goentry offset the CFA must still be computed from
SP exactly as at the function's first instruction, i.e. the frame is not
yet allocated, so SP-relative reads (stack args, call depth) are right.
Checked on amd64 and on arm64 cross-builds, whose disassembly cannot be
run here.
"""

import pytest

from gobt.binary.gobinary import GoBinary
from gobt.binary.disasm import analyze
from gobt.errors import GobtError


def cfa_rules(binary):
    """{function start: [(pc, cfa offset)]} from .debug_frame."""
    dwarf = binary.elf.get_dwarf_info(relocate_dwarf_sections=False)  # .debug_frame: not read by gobt
    out = {}
    for entry in dwarf.CFI_entries():
        if not hasattr(entry, "cie") or entry.cie is None or "initial_location" not in entry.header:
            continue
        start = entry.header["initial_location"]
        rows = [(row["pc"], row["cfa"].offset) for row in entry.get_decoded().table if "cfa" in row]
        out[start] = rows
    return out


def cfa_at(rows, pc):
    current = None
    for row_pc, offset in rows:
        if row_pc <= pc:
            current = offset
    return current


@pytest.mark.parametrize("go", ["go1.19", "newest"])
@pytest.mark.parametrize("arch", ["amd64", "arm64"])
def test_goentry_is_before_the_frame_is_allocated(go, arch, go_build):
    binary = GoBinary(go_build(go, "tests/programs/goroutines", goarch=arch, tag=f"-{arch}"))
    rules = cfa_rules(binary)
    checked = with_check = 0
    for fn in binary.symbols.all_functions():
        if fn.start not in rules:
            continue
        try:
            code = analyze(binary, fn)
        except GobtError:
            continue
        rows = rules[fn.start]
        assert cfa_at(rows, fn.start + code.entry_offset) == cfa_at(rows, fn.start), (
            fn.name, hex(code.entry_offset), rows[:4])
        checked += 1
        with_check += code.entry_offset > 0
    assert checked > 1000 and with_check > 500, (checked, with_check)
