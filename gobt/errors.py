"""User-facing errors and warnings.

A user's mistake is a GobtError: it prints as one `gobt: ...: error: ...`
line (with the script's line and a caret when it comes from a script) and
makes gobt exit non-zero. Anything else escaping is a bug in gobt.
"""

import sys
from collections import namedtuple


class Location(namedtuple("Location", "filename line column source_line width", defaults=("", 1))):
    """A point in a script: what the user sees in their editor."""

    __slots__ = ()

    def __str__(self):
        return f"{self.filename}:{self.line}:{self.column}"


class GobtError(Exception):
    def __init__(self, message, location=None, hints=()):
        super().__init__(message)
        self.message = message
        self.location = location
        self.hints = list(hints)

    def render(self):
        where = f"{self.location}: " if self.location else ""
        lines = [f"gobt: {where}error: {self.message}"]
        loc = self.location
        if loc and loc.source_line:
            text = loc.source_line.rstrip("\r\n").expandtabs(8)
            # expandtabs moves the caret too: measure the prefix the same way.
            prefix = loc.source_line[: loc.column - 1].expandtabs(8)
            lines.append(text)
            lines.append(" " * len(prefix) + "^" + "~" * max(0, loc.width - 1))
        lines.extend(self.hints)
        return "\n".join(lines)


class UnreachableOffset(GobtError):
    """A probe offset the chosen bpftrace cannot attach at, though gobt
    proved it: another bpftrace may take it (cli picks one)."""


class DecoderUnusable(Exception):
    """The installed capstone cannot decode an architecture at all: not a
    GobtError on purpose, so that no per-function handler turns it into
    "cannot be disassembled" rows; cli prints it as an error."""

    def __init__(self, message):
        super().__init__(message)
        self.message = message

    def render(self):
        return f"gobt: error: {self.message}"


# Every warning and note printed, in order: the warm path replays them.
printed = []


# While a rewrite may be thrown away and done again (with another bpftrace),
# its lines wait here instead of reaching stderr twice.
_held = None


def _say(line):
    if _held is not None:
        _held.append(line)
        return
    printed.append(line)
    print(line, file=sys.stderr)


class held:
    """Hold the lines said inside; print them on the way out, unless it
    is by an exception of type `dropped_on` (the work is done again)."""

    def __init__(self, dropped_on=()):
        self.dropped_on = dropped_on

    def __enter__(self):
        global _held
        self._outer, _held = _held, []
        return self

    def __exit__(self, exc_type, exc, tb):
        global _held
        lines, _held = _held, self._outer
        if not (exc_type is not None and issubclass(exc_type, self.dropped_on)):
            for line in lines:
                if line.startswith(ONCE):
                    key, _, text = line[len(ONCE):].partition("\0")
                    once(text, key)
                else:
                    _say(line)


def warn(message, location=None):
    where = f"{location}: " if location else ""
    _say(f"gobt: {where}warning: {message}")


def note(message):
    _say(f"gobt: {message}")


# Notes that matter once (what a bpftrace or a binary is like, not what is
# wrong in a script): said the first time, then kept quiet, so that later
# runs start with bpftrace's own lines. GOBT_NOTES=all says them every time
# (man gobt, ENVIRONMENT). What was said is a file of keys in gobt's cache
# folder; without one (unwritable HOME) every run says them.
ONCE = "once\0"  # in `printed` (the warm path's replay): ONCE + key + NUL + line


def said_before(key):
    """Whether a note with this key was said on an earlier run (and records it now)."""
    import hashlib
    import os

    from .cache import cache_dir, seen_or_add

    if os.environ.get("GOBT_NOTES") == "all":
        return False
    folder = cache_dir()
    if folder is None:
        return False
    digest = hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:24]
    return seen_or_add(os.path.join(folder, "said"), digest)


_pending = []  # once-notes of this run, said together by flush_once()


def once(line, key=None):
    """Say `line` (whole, "gobt: ..." included) unless it was said before
    under `key`: on one line with this run's other such notes (flush_once)."""
    key = line if key is None else key
    if _held is not None:
        _held.append(ONCE + key + "\0" + line)
        return
    printed.append(ONCE + key + "\0" + line)
    if not said_before(key):
        _defer(line)


def _defer(line):
    if not _pending:
        import atexit

        atexit.register(flush_once)
    _pending.append(line)


def flush_once():
    """This run's new once-notes, as one line: a run says at most one."""
    if not _pending:
        return
    lines = [_pending[0]] + [line[len("gobt: "):] if line.startswith("gobt: ") else line for line in _pending[1:]]
    _pending.clear()
    print("; ".join(lines) + " (said once: GOBT_NOTES=all says it on every run)", file=sys.stderr)


def replay(entry):
    """Say again a line `printed` kept: a once-note only if never said."""
    if entry.startswith(ONCE):
        key, _, line = entry[len(ONCE):].partition("\0")
        if not said_before(key):
            _defer(line)
        return
    print(entry, file=sys.stderr)
