"""Emit and exec: the installed bpftrace, what it accepts, and handing over.

What a bpftrace can do (version, bfd, probe limits, attach forms), the
program handed to it (a memfd or -e), and the exec itself (bpftrace); for a
rewritten program, bpftrace as a supervised child (supervise) whose
messages are put back in the user's terms (messages); for a mixed script
gobt's parser rejects, bpftrace's own syntax errors (syntax).
"""
