"""gobt: bpftrace for Go programs.

The pipeline is a small compiler, one module per stage:

    script.py   parse     the bpftrace script, with gobt's extensions
    binary.py   resolve   the Go binary: symbols, segments, build info
    disasm.py   resolve   RET offsets and tail calls, by disassembly
    rewrite.py  rewrite   goret/goarg/... into plain bpftrace
    bpftrace.py emit/exec what the installed bpftrace accepts, and exec
"""

__version__ = "0.1.0"
