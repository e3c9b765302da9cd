"""Go's calling conventions and runtime layouts, as data and one algorithm.

Per-architecture register tables, and the assignment of params and results
to registers and stack slots (assign). It works on Go types only: it knows
nothing of ELF, DWARF's encoding or bpftrace.
"""
