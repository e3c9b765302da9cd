"""MessageFilter and SpanMap on bpftrace's message format (the end-to-end
tests in test_supervise.py run real bpftrace; these pin the details)."""

import pytest

from gobt.rewrite.probes import Edit
from gobt.rewrite.spanmap import SpanMap
from gobt.run.messages import MessageFilter

pytestmark = pytest.mark.bpftrace_independent

USER = 'BEGIN\t{ @x = retval + "a"; }\n'
EDITS = [Edit(USER.index("retval"), USER.index("retval") + 6, '(int64)reg("ax")')]


def rewritten(user, edits):
    out, pos = [], 0
    for e in edits:
        out += [user[pos:e.start], e.text]
        pos = e.end
    return "".join(out + [user[pos:]])


def feed(f, lines):
    return b"".join(b"".join(f.feed(line)) for line in lines)


def bpftrace_says(program, line_no, start, end, what="ERROR: bad"):
    """The three lines bpftrace 0.17 prints about program[start:end]."""
    line = program.split("\n")[line_no - 1]
    col = len(line[:start].encode()) + 1
    shown = line.replace("\t", "    ")
    caret = "".join("    " if c == "\t" else " " for c in line[:start]) + "~" * (end - start)
    return [f"/proc/self/fd/3:{line_no}:{col}-{col + end - start}: {what}\n".encode(),
            shown.encode() + b"\n", caret.encode() + b"\n"]


def test_a_span_inside_an_edit_maps_to_what_the_user_wrote():
    program = rewritten(USER, EDITS)
    f = MessageFilter("/proc/self/fd/3", "my.bt", program, USER, SpanMap.from_edits(USER, EDITS))
    at = program.index("reg(")
    out = feed(f, bpftrace_says(program, 1, at, at + 3))
    assert out == (b"my.bt:1:14-20: ERROR: bad\n"
                   b'BEGIN    { @x = retval + "a"; }\n'
                   b"                ~~~~~~\n")


def test_a_span_after_an_edit_moves_with_it():
    program = rewritten(USER, EDITS)
    f = MessageFilter("/proc/self/fd/3", "my.bt", program, USER, SpanMap.from_edits(USER, EDITS))
    at = program.index('"a"')
    out = feed(f, bpftrace_says(program, 1, at, at + 3))
    assert out.splitlines()[0] == b"my.bt:1:23-26: ERROR: bad"
    assert out.splitlines()[2] == b"                         ~~~"


def test_other_lines_pass_unchanged():
    f = MessageFilter("/proc/self/fd/3", "my.bt", USER, USER, SpanMap.from_edits(USER, []))
    lines = [b"Attaching 1 probe...\n", b"ERROR: something else\n", b"/proc/self/fd/4:1:1-2: ERROR: x\n",
             b"WARNING: Could not determine instruction boundary for uprobe:/bin/x:100 (binary appears"
             b" stripped). Misaligned probes can lead to tracee crashes!\n"]
    assert feed(f, lines) == b"".join(lines)


def test_boundary_warning_only_for_proven_offsets():
    f = MessageFilter("/proc/self/fd/3", "my.bt", USER, USER, None, quiet=[("./app", 533924)])
    warning = (b"WARNING: Could not determine instruction boundary for uprobe:./app:%d (binary appears"
               b" stripped). Misaligned probes can lead to tracee crashes!\n")
    assert f.feed(warning % 533924) == []
    assert f.feed(warning % 533925) == [warning % 533925]


def test_a_multiline_span_keeps_its_lines_and_takes_the_name():
    f = MessageFilter("stdin", "stdin", USER, USER, SpanMap.from_edits(USER, []))
    assert f.feed(b"stdin:1-2: ERROR: Type mismatch\n") == [b"stdin:1-2: ERROR: Type mismatch\n"]


def test_crlf_lines_are_counted_as_bpftrace_counts_them():
    # bpftrace 0.17 counts \r and \n each as a line end.
    user = "BEGIN\r\n{\r\n @x = retval; }\r\n"
    edits = [Edit(user.index("retval"), user.index("retval") + 6, "reg(\"ax\")")]
    program = rewritten(user, edits)
    f = MessageFilter("/proc/self/fd/3", "c.bt", program, user, SpanMap.from_edits(user, edits))
    out = f.feed(b"/proc/self/fd/3:5:7-10: ERROR: bad\n")[0]
    assert out.startswith(b"c.bt:3:7-13: ERROR: bad\n @x = retval; }\n      ~~~~~~\n")


def test_bpftraces_memlock_line_is_dropped_where_the_kernel_ignores_the_limit():
    # bpftrace 0.17 (ERROR) and 0.23 (WARNING) say this when setrlimit is
    # refused; on 5.11+ BPF memory is charged to the cgroup and it loads anyway.
    from gobt.run import messages

    f = MessageFilter("/proc/self/fd/3", "my.bt", USER, USER, SpanMap.from_edits(USER, []))
    lines = [b"ERROR: Unknown error -1: couldn't set RLIMIT_MEMLOCK for bpftrace. If your program is not loading,"
             b' you can try "ulimit -l 8192" to fix the problem\n',
             b"WARNING: Unknown error -1: couldn't set RLIMIT_MEMLOCK for bpftrace. If your program is not"
             b' loading, you can try "ulimit -l 8192" to fix the problem\n']
    out = feed(f, lines)
    if messages._memlock_is_moot():
        assert out == b""
    else:
        assert out == b"".join(lines)
    assert messages._memlock_is_moot("6.1.0-18-amd64") and messages._memlock_is_moot("5.11.0")
    assert not messages._memlock_is_moot("5.10.0-28-amd64")


def test_a_program_too_large_gets_a_hint_once():
    # bpftrace 0.23 aborts with LLVM's line; the verifier's (-v) says the other.
    f = MessageFilter("stdin", "stdin", USER, USER, SpanMap.from_edits(USER, []))
    llvm = b"LLVM ERROR: Branch target out of insn range\n"
    out = f.feed(llvm)
    assert out[0] == llvm and b"compare fewer texts in one probe" in out[1]
    assert f.feed(b"BPF program is too large. Processed 1000001 insn\n") == [
        b"BPF program is too large. Processed 1000001 insn\n"]
