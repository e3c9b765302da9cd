"""Rewrite: gobt's constructs into plain bpftrace, line for line.

goret/goentry become uprobes at proven offsets (probes; a wildcard's
functions, each placed or skipped alone, in goret), goarg(PATH) and
retval become ABI-correct reads (goarg), goid and goelapsed become reads of
the current runtime.g (goroutine). It asks the binary stage for facts and
the abi stage for places; it never runs bpftrace.
"""
