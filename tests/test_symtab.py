"""The .symtab scanner on a symbol table as GNU ld writes it for cgo builds."""

import struct

import pytest

from gobt.binary.symtab import STT_FUNC, SymbolTable

# Reads binaries or text only: the same on every bpftrace (scripts/test runs it once).
pytestmark = pytest.mark.bpftrace_independent


def test_suffix_merged_names_are_found():
    # External linking merges a name into the tail of a longer one:
    # main.Foo's st_name points into xmain.Foo's bytes.
    strtab = b"\0example.com/xmain.Foo\0main.Bar\0"
    tail = strtab.index(b"main.Foo")
    entry = struct.Struct("<IBBHQQ")
    symtab = b"".join([
        entry.pack(0, 0, 0, 0, 0, 0),
        entry.pack(1, STT_FUNC, 0, 1, 0x401000, 0x20),                      # example.com/xmain.Foo
        entry.pack(tail, STT_FUNC, 0, 1, 0x401100, 0x30),                   # main.Foo
        entry.pack(strtab.index(b"main.Bar"), STT_FUNC, 0, 1, 0x401200, 0x10),
    ])
    table = SymbolTable(symtab, strtab)
    assert table.lookup("main.Foo").start == 0x401100
    assert table.lookup("example.com/xmain.Foo").start == 0x401000
    assert [f.name for f in table.match("main.*")] == ["main.Foo", "main.Bar"]
    assert table.lookup("ain.Foo") is None  # a tail no symbol points at
