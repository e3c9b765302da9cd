"""gobt's own DIE reader (gobt/binary/dwarfread.py) against pyelftools':
for every subprogram and each of its children (formal parameters first
among them) in gofmt built by each toolchain here, the same tag, the same
attributes with the same forms and values, the same children.

pyelftools is the oracle: a DIE dwarfread reads differently is named with
its offset, the attribute, and both values.
"""

import pytest
from elftools.elf.elffile import ELFFile

from conftest import BUILD_DIR, need
from gobt.binary.dwarfread import LeanDwarf
from gobt.binary.gobinary import GoBinary
from toolchains import build_package

pytestmark = pytest.mark.bpftrace_independent

CHAINS = ["go1.15", "go1.19", "go1.23", "newest"]


def _attrs(die):
    return {name: (attr.form, bytes(attr.value) if isinstance(attr.value, (bytes, bytearray, memoryview))
                   else attr.value)
            for name, attr in die.attributes.items()}


def _children(lean, die):
    """Offsets of die's children as dwarfread walks them."""
    out = []
    if not die.has_children:
        return out
    pos = die.end
    while True:
        child = lean.die_at(pos, die.cu)
        if child is None:
            return out
        out.append(pos)
        pos = lean.subtree_end(child)


@pytest.mark.parametrize("chain", CHAINS)
def test_dwarfread_reads_every_subprogram_as_pyelftools(toolchains, chain):
    need(chain in toolchains, f"Go toolchain {chain} is missing (run scripts/setup)")
    path = build_package(toolchains[chain], "cmd/gofmt", BUILD_DIR)
    lean = LeanDwarf(GoBinary(path))
    subprograms = params = attributes = 0
    with open(path, "rb") as f:
        dwarf = ELFFile(f).get_dwarf_info()
        for cu in dwarf.iter_CUs():
            for die in cu.iter_DIEs():
                if die.tag != "DW_TAG_subprogram":
                    continue
                subprograms += 1
                kids = list(die.iter_children())
                for theirs in [die, *kids]:
                    ours = lean.die_at(theirs.offset)
                    where = f"{chain} DIE 0x{theirs.offset:x} ({theirs.attributes.get('DW_AT_name')})"
                    assert ours is not None, where
                    assert ours.tag == theirs.tag, where
                    assert ours.has_children == theirs.has_children, where
                    want, got = _attrs(theirs), _attrs(ours)
                    assert list(got) == list(want), where
                    for name in want:
                        assert got[name] == want[name], f"{where} {name}: gobt {got[name]}, pyelftools {want[name]}"
                    attributes += len(want)
                    params += theirs.tag == "DW_TAG_formal_parameter"
                assert _children(lean, lean.die_at(die.offset)) == [k.offset for k in kids], where
    assert subprograms > 1000 and params > 1000, (subprograms, params)
    print(f"{chain}: {subprograms} subprograms, {params} params, {attributes} attributes agree")


def test_every_name_is_the_dwarf_standards():
    """Each tag, attribute and form number dwarfread names has pyelftools'
    name for it (0x56 is DW_AT_trampoline, 0x38 DW_TAG_interface_type)."""
    from elftools.dwarf.enums import ENUM_DW_AT, ENUM_DW_FORM, ENUM_DW_TAG

    from gobt.binary.dwarfread import ATTRS, FORMS, TAGS

    for ours, theirs in ((TAGS, ENUM_DW_TAG), (ATTRS, ENUM_DW_AT), (FORMS, ENUM_DW_FORM)):
        wrong = {hex(n): name for n, name in ours.items() if theirs.get(name) != n}
        assert not wrong, wrong
