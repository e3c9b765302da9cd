"""Resolve: what a Go binary is, read from its bytes.

GoBinary (gobinary) maps the ELF lazily: segments, sections, the Go version
and build ID. Function names and bounds come from .symtab or, stripped, from
the runtime's own table (pclntab); params and types from DWARF (dwarf); RETs,
prologues and tail calls from the machine code (disasm). Where bpftrace will
open a probe's BIN is targets. This stage knows Go's binary formats, never
the script or how it is rewritten.
"""
