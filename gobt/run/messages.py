"""bpftrace's messages about a rewritten program, in the user's terms.

bpftrace (0.17 to 0.23 alike) reports a problem in the program as

    NAME:LINE:COL-COL: ERROR: message        (WARNING: too)
    the program's line, tabs shown as 4 spaces
    ~~~~ under columns COL to COL-1 (bytes, 1-based)

or, for a span over several lines, only `NAME:LINE-LINE: ERROR: message`.
NAME is what gobt handed over (`/proc/self/fd/N`, or `stdin` for -e), and
the line is gobt's rewrite. MessageFilter turns such a message into the
same three lines about the user's script: its name, its line, the caret
under what the user wrote. Lines are the same in both (the rewrite keeps
them); columns go back through the rewrite's span map.

It also drops bpftrace 0.17's one-line warning that it cannot check an
offset's instruction boundary, for the offsets gobt proved itself (cli.py
says so once), and bpftrace's line that it could not raise RLIMIT_MEMLOCK
on a kernel (5.11+) that no longer counts BPF memory against that limit.
Everything else passes through byte for byte.
"""

import os
import re

_AT_LINE = re.compile(rb"(\d+):(\d+)-(\d+): ")
_AT_LINES = re.compile(rb"(\d+)-(\d+): ")
_CARET = re.compile(rb"[ \t]*[~^]+[ \t]*\n?\Z")
# bpftrace 0.17, one line per probe at an offset, without bfd:
_UNCHECKED = re.compile(
    rb"WARNING: Could not determine instruction boundary for uprobe:(.*):(\d+) \(binary appears stripped\)\."
    rb" Misaligned probes can lead to tracee crashes!\n?\Z"
)


# bpftrace 0.17 (ERROR) and 0.23 (WARNING) when setrlimit is refused (a
# container without CAP_SYS_RESOURCE): the program loads all the same on a
# kernel that charges BPF maps to the memory cgroup instead (5.11+).
_MEMLOCK = re.compile(rb"(?:ERROR|WARNING): .*couldn't set RLIMIT_MEMLOCK for bpftrace\b.*\n?\Z")


# LLVM (bpftrace aborts) or the verifier, at a probe whose program is
# larger than BPF allows: a branch spans over 32767 instructions, or the
# verifier walks past its million.
_TOO_LARGE = re.compile(rb"LLVM ERROR: Branch target out of insn range|BPF program is too large")
TOO_LARGE_HINT = (b"gobt: a probe's BPF program is larger than the kernel takes; gobt spells goerr per error type "
                  b"in a printf and in each goerr(...) == \"...\" comparison: compare fewer texts in one probe, "
                  b"or split the probe\n")


def _memlock_is_moot(release=None):
    m = re.match(r"(\d+)\.(\d+)", release if release is not None else os.uname().release)
    return bool(m) and (int(m.group(1)), int(m.group(2))) >= (5, 11)


def _bytes(text):
    return text.encode("utf-8", "surrogateescape")


def _lines(text, breaks="\n"):
    """(offset of each line's start, the lines) of a text."""
    lines = re.split(f"[{breaks}]", text)
    starts, pos = [], 0
    for line in lines:
        starts.append(pos)
        pos += len(line) + 1
    return starts, lines


def _shown(line_bytes):
    return line_bytes.replace(b"\t", b"    ")


class MessageFilter:
    """feed(line) -> the lines to print instead, for bpftrace's stderr.

    program_name: how bpftrace names the program; display_name: how the user
    does; program/source: the two texts; spans: maps program offsets to
    source offsets (rewrite.spanmap.SpanMap); quiet: (BIN, file offset) of
    the probes whose boundary warning gobt answers for.
    """

    def __init__(self, program_name, display_name, program, source, spans, quiet=(), quoted_shift=False):
        self.name = _bytes(program_name) + b":"
        self.display = _bytes(display_name) + b":"
        self.program = program
        self.source = source
        self.spans = spans
        self.quiet = {(_bytes(path), offset) for path, offset in quiet}
        self.hidden = 0  # boundary warnings dropped
        # bpftrace 0.23 counts each quoted piece of an attach point one
        # column too many for the rest of its line (uprobe:BIN:"f"+8 { @x }
        # puts @x one column right; 0.17 does not).
        self.quoted_shift = quoted_shift
        # bpftrace 0.17's lexer counts a \r as a line too (line 3 of a CRLF
        # file is its line 5), but prints source lines split at \n only.
        self._program_lines = _lines(program, "\r\n")
        self._printed_lines = program.split("\n")
        self._source_lines = _lines(source)
        self._expect = []  # [(line bpftrace will print, what to print instead)]
        self.said_too_large = False

    def feed(self, line):
        if self._expect:
            # bpftrace's source line and caret, which gobt has replaced.
            theirs = self._expect[0]
            if line.rstrip(b"\n") == theirs or (theirs is None and _CARET.match(line)):
                self._expect.pop(0)
                return []
            if line.startswith(b"Additional Info") and theirs is not None:
                # 0.23 puts a runtime warning's helper details (helper:
                # map_update_elem, retcode: -17) before its copy of the line.
                return [line]
            self._expect = []
        if _MEMLOCK.match(line) and _memlock_is_moot():
            return []
        if _TOO_LARGE.search(line) and not self.said_too_large:
            self.said_too_large = True
            return [line, TOO_LARGE_HINT]
        m = _UNCHECKED.match(line)
        if m and (m.group(1), int(m.group(2))) in self.quiet:
            self.hidden += 1
            return []
        if not line.startswith(self.name):
            return [line]
        rest = line[len(self.name):]
        m = _AT_LINE.match(rest)
        if m:
            return [self._one_line(*map(int, m.groups()), rest[m.end():])]
        # A span over lines, or no position: the lines are the user's already.
        return [self.display + rest]

    def _one_line(self, line_no, col1, col2, message):
        starts, lines = self._program_lines
        plain = self.display + b"%d:%d-%d: " % (line_no, col1, col2) + message
        if not 1 <= line_no <= len(lines):
            return plain
        line = lines[line_no - 1]
        raw = _bytes(line)
        if self.quoted_shift:
            ends = _attach_quote_ends(self.program, starts[line_no - 1], raw)
            col1, col2 = _unshifted(col1, ends), _unshifted(col2, ends)

        def offset(col):
            return starts[line_no - 1] + len(raw[: max(0, col - 1)].decode("utf-8", "surrogateescape"))

        a, b = offset(col1), offset(col2)
        span = self.spans.to_user(a, max(b, a + 1)) if self.spans is not None else None
        if span is None:
            return plain
        u_starts, u_lines = self._source_lines
        first = _line_of(u_starts, span[0])
        last = _line_of(u_starts, max(span[0], span[1] - 1))
        if first != last:
            return self.display + b"%d-%d: " % (first + 1, last + 1) + message
        user = _bytes(u_lines[first].rstrip("\r"))
        u1 = len(_bytes(u_lines[first][: span[0] - u_starts[first]])) + 1
        u2 = u1 + max(1, len(_bytes(self.source[span[0]:span[1]])))
        caret = b"".join(b"    " if c == 9 else b" " for c in user[: u1 - 1]) + b"~" * (u2 - u1)
        printed = self._printed_lines[line_no - 1] if line_no <= len(self._printed_lines) else ""
        self._expect = [_shown(_bytes(printed)), None] if printed else []
        return b"".join([self.display, b"%d:%d-%d: " % (first + 1, u1, u2), message,
                         _shown(user), b"\n", caret, b"\n"])

    def holds(self, partial):
        """Whether a line bpftrace has begun must wait for its end: the
        program line and caret of a message being rewritten, or what may be
        the start of a message (NAME:..., ERROR:, WARNING:), which bpftrace
        always ends with a newline."""
        if self._expect:
            return True
        return any(head.startswith(partial) or partial.startswith(head)
                   for head in (self.name, b"ERROR: ", b"WARNING: "))

    def end(self):
        self._expect = []
        return []


def _line_of(starts, offset):
    import bisect

    return bisect.bisect_right(starts, offset) - 1


def shifts_after_quotes(version_text):
    """Whether this bpftrace miscounts columns after a quoted attach point
    (seen on 0.23.2; 0.17 counts right)."""
    try:
        return tuple(int(x) for x in version_text.split(".")[:2]) >= (0, 23)
    except (AttributeError, ValueError):
        return False


def _unshifted(col, ends):
    """The true column of a column bpftrace 0.23 counted one too many for
    each quoted attach-point piece that ends before it (ends: their end
    columns, 1-based, just past the closing quote)."""
    shift = 0
    for end in ends:
        if end + shift + 1 <= col:
            shift += 1
    return max(1, col - shift)


def _attach_quote_ends(program, line_start, raw):
    """End columns (just past the closing quote) of the quoted pieces of
    attach points on a program line: strings outside every block, right
    after a ':' (uprobe:"/bin/x":"f"), not in a predicate."""
    depth = _depth_at(program, line_start)
    ends, i, n = [], 0, len(raw)
    while i < n:
        c = raw[i : i + 1]
        if c == b'"':
            j = i + 1
            while j < n and raw[j : j + 1] != b'"':
                j += 2 if raw[j : j + 1] == b"\\" else 1
            if depth == 0 and i > 0 and raw[i - 1 : i] == b":":
                ends.append(j + 2)  # 1-based column just past the closing quote
            i = j + 1
            continue
        if raw[i : i + 2] == b"//":
            break
        if c == b"{":
            depth += 1
        elif c == b"}":
            depth = max(0, depth - 1)
        i += 1
    return ends


def _depth_at(program, offset):
    """Brace depth at an offset of the program, strings and comments aside."""
    depth, i = 0, 0
    while i < offset:
        c = program[i]
        if c == '"':
            i += 1
            while i < offset and program[i] != '"':
                i += 2 if program[i] == "\\" else 1
        elif program.startswith("//", i):
            i = program.find("\n", i)
            if i < 0:
                break
        elif program.startswith("/*", i):
            i = program.find("*/", i + 2)
            if i < 0:
                break
            i += 1
        elif c == "{":
            depth += 1
        elif c == "}":
            depth = max(0, depth - 1)
        i += 1
    return depth
