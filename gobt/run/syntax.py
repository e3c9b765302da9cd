"""bpftrace's own syntax errors for a script gobt's parser rejects.

gobt's grammar is coarser than bpftrace's and its messages are its own. A
script that mixes gobt constructs with a syntax error gets bpftrace's
message instead, in bpftrace's format and with bpftrace's name for the
program (`stdin` for -e). bpftrace parses the script with gobt's attach
points stood in for by BEGIN (lang/precheck.py keeps every position),
followed by a sentinel line that is a syntax error in any context: its
messages before that line are about the user's text. A script that only
ends too early (an open block) is asked again without the sentinel. Either
way bpftrace runs as a dry run (--emit-elf): nothing is ever attached.
"""

import os
import re
import subprocess

from .bpftrace import argv0
from .messages import _MEMLOCK, _memlock_is_moot

SENTINEL = "\n)}\n"
# How bpftrace's lexer and parser begin their messages; anything else comes
# from its later passes, which run only on a script it parsed.
_PARSE_ERRORS = ("syntax error", "invalid character", "unterminated", "Invalid escape", "missing")
_HEAD = re.compile(r"^(?P<name>.*?):(?P<line>\d+)(?P<columns>:\d+-\d+)?(?:-\d+)?: (?P<kind>ERROR|WARNING): ")


def _ask(bpftrace, program):
    try:
        proc = subprocess.run([argv0(bpftrace), "--emit-elf", os.devnull, "-e", program], executable=bpftrace,
                              capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return proc.stderr.decode("utf-8", "surrogateescape")


def bpftrace_syntax_errors(bpftrace, stand_in, user_text, display_name):
    """bpftrace's messages about the script, as it prints them about the
    user's own file (name, lines), or None when it finds no syntax error
    (gobt's grammar then has the last word)."""
    said = _messages(_ask(bpftrace, stand_in + SENTINEL), stand_in.count("\n") + 2, user_text, display_name)
    if said is None:
        # Only the sentinel was wrong: an open block or parenthesis ends the
        # script, which bpftrace reports at its end.
        plain = _ask(bpftrace, stand_in)
        if "syntax error" in plain:
            said = _messages(plain, None, user_text, display_name)
    return said


def _messages(stderr, sentinel_line, user_text, display_name):
    user_lines = user_text.split("\n")
    # Lines before the first message are bpftrace's to print, as it would,
    # but for 0.17's RLIMIT_MEMLOCK line, which a program gobt rewrites
    # never shows where the kernel no longer counts BPF memory there
    # (messages.py): a syntax error must not bring it back.
    shown, errors, keep, source_next, source = [], 0, True, False, None
    for raw in stderr.splitlines(keepends=True):
        if _MEMLOCK.match(raw.encode("utf-8", "surrogateescape")) and _memlock_is_moot():
            continue
        head = _HEAD.match(raw)
        if head:
            line = int(head.group("line"))
            keep = head.group("name") == "stdin" and (sentinel_line is None or line < sentinel_line)
            if keep and head.group("kind") == "ERROR" and not raw[head.end():].startswith(_PARSE_ERRORS):
                # bpftrace parsed the script and went on to its meaning: its
                # complaint is about gobt's words (Unknown function: goarg),
                # so the syntax error is gobt's grammar's to report.
                return None
            if keep:
                errors += head.group("kind") == "ERROR"
                shown.append(display_name + raw[len("stdin"):])
                source = user_lines[line - 1] if line <= len(user_lines) else None
                source_next = head.group("columns") is not None  # a line's span: its text follows
            continue
        if not keep:
            continue
        if source_next and source is not None:
            # bpftrace's copy of the line is the stand-in's: show the user's.
            shown.append(source.replace("\t", "    ") + ("\n" if raw.endswith("\n") else ""))
            source_next = False
            continue
        shown.append(raw)
    return "".join(shown) if errors else None
