"""gobt: bpftrace for Go programs.

The pipeline is a small compiler, one package per stage; each imports only
the stages above it, and errors.py and cache.py, which all share:

    lang/      parse     the script's text and its tree (Lark grammar in grammar/)
    binary/    resolve   the Go binary: symbols, pclntab, DWARF, disassembly
    abi/       resolve   Go's calling conventions, as tables and one algorithm
    rewrite/   rewrite   goret/goentry/goarg/goid/... into plain bpftrace
    run/       emit/exec what the installed bpftrace accepts, and exec

cli.py wires them together; listing.py is -l/-lv; programcache.py is the
warm path that skips parse, resolve and rewrite when nothing changed.
"""

__version__ = "0.1.0"
