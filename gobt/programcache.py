"""The warm path: a whole rewrite, reused when nothing it read has changed.

People re-run one script against one binary dozens of times while they
debug. The per-binary cache (cache.BinaryCache) already spares the ELF,
DWARF and disassembly work, but a run would still import lark, parse the
script and import the readers. This cache keeps the finished program, so a
repeat run costs a hash, a few stat() calls and the exec of bpftrace.

An entry is found by everything the rewrite read that is not a binary:
gobt's own code, the bpftrace binary, the script's text and name, -p, the
working directory and $PATH (they decide which file a BIN names). It is
used only if each BIN still resolves to the same file, with the same
device, inode, size, mtime and ctime (ctime is there because no user tool
can set it back: a binary rewritten in place and touched to its old mtime
still misses), and each place its separate debug file was looked for
(debugfile.py) holds the same file, or none, as before, and if every probe's function still has the bytes its
offsets were proven on (binary/proof.py). Only successful rewrites are kept, so errors are always
found afresh, with their locations.

The warnings the rewrite printed are kept too and printed again: a warm
run says exactly what the cold run said.
"""

import os
import sys

from .cache import cache_dir, code_fingerprint, prune, read_sealed, touch_used, write_atomic

FORMAT = 3
KEEP = 256  # programs: every edit of a script makes one


class Rewritten:
    def __init__(self, program, needs_unsafe, probe_count, unsafe_used, messages, bpftrace_version,
                 max_probes, bpftrace=None, spans=(), proven=()):
        self.program = program
        # rewrite.spanmap.SpanMap's segments: bpftrace's messages back to the script
        self.spans = [list(s) for s in spans]
        self.proven = [list(p) for p in proven]  # [BIN, file offset] of offsets gobt proved
        self.needs_unsafe = needs_unsafe  # why the probes need --unsafe, or ""
        self.probe_count = probe_count
        self.unsafe_used = unsafe_used  # --unsafe builtins the script itself calls
        self.messages = messages  # gobt's warnings and notes, as printed
        # What the probe count check needs of the bpftrace (in the key).
        self.bpftrace_version = bpftrace_version
        self.max_probes = max_probes  # bpftrace's default limit
        self.bpftrace = bpftrace  # the bpftrace the program is for (cli may have picked a capable one)

    def say_again(self):
        """Print the warnings the run that made this printed."""
        from .errors import replay

        for line in self.messages:
            replay(line)


def _well_formed(done):
    # A hand-edited or foreign entry must miss, not crash gobt later.
    return (isinstance(done.program, str) and isinstance(done.needs_unsafe, str)
            and type(done.probe_count) is int and type(done.max_probes) is int
            and isinstance(done.bpftrace_version, str)
            and (done.bpftrace is None or (isinstance(done.bpftrace, str) and os.access(done.bpftrace, os.X_OK)))
            and isinstance(done.unsafe_used, list) and all(isinstance(w, str) for w in done.unsafe_used)
            and isinstance(done.messages, list) and all(isinstance(m, str) for m in done.messages)
            and all(len(s) == 5 and all(type(x) is int for x in s[:4]) and type(s[4]) is bool for s in done.spans)
            and all(len(p) == 2 and isinstance(p[0], str) and type(p[1]) is int for p in done.proven))


def _identity(st):
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def _identity_or_none(path):
    try:
        return _identity(os.stat(path))
    except OSError:
        return None


def _capable_identity():
    # The bpftrace gobt may pick by itself (cli) is part of what a program
    # or listing was made for: another one, or none, must miss.
    from .run.bpftrace import CAPABLE_BPFTRACE

    path = os.environ.get("GOBT_CAPABLE_BPFTRACE", CAPABLE_BPFTRACE)
    try:
        return [path, *map(str, _identity(os.stat(path)))] if path else [""]
    except OSError:
        return [path, "absent"]


class ProgramCache:
    def __init__(self, source, bpftrace_path, pid, bpftrace_chosen=False):
        import zlib

        self.pid = pid
        self.path = None
        self.source = source.text
        # A listing (cli._list) is printed, not run: it has no probes to prove.
        self.listing = source.filename in ("-l", "-lv")
        base = cache_dir(binary_facts=True, sub="programs")
        if base is None:
            return
        st = os.stat(bpftrace_path)
        parts = [
            f"format {FORMAT}", code_fingerprint(),
            os.path.realpath(bpftrace_path), *map(str, _identity(st)),
            # A bpftrace the user named is never swapped for a capable one.
            "named" if bpftrace_chosen else "found", *_capable_identity(),
            source.filename, str(pid), os.getcwd(), os.environ.get("PATH", ""),
            # bpftrace's string size: gobt's warnings and stack check depend on it.
            os.environ.get("BPFTRACE_STRLEN", ""), os.environ.get("BPFTRACE_MAX_STRLEN", ""),
            # Whether a stripped binary's DWARF may come from a debuginfod server.
            os.environ.get("DEBUGINFOD_URLS", ""),
            source.text,
        ]
        # The entry holds the whole key and a hit must equal it, so the file
        # name can be a cheap checksum: a collision only costs a miss.
        self.key = "\0".join(parts)
        name = zlib.crc32(self.key.encode("utf-8", "surrogateescape"))
        self.path = os.path.join(base, f"{name:08x}-{len(self.key)}.json")

    def load(self):
        """The cached Rewritten, or None when absent, stale or unreadable."""
        import json

        from .errors import GobtError
        from .binary.proof import still_holds
        from .binary.targets import resolve_binary

        text = read_sealed(self.path) if self.path else None
        if text is None:
            return None
        try:
            entry = json.loads(text)
            if entry.get("key") != self.key:
                return None
            for target, path, identity, consulted in entry["targets"]:
                if resolve_binary(target, self.pid) != path or _identity(os.stat(path)) != identity:
                    return None
                # A debug file installed, removed or changed since.
                if any(_identity_or_none(place) != seen for place, seen in consulted):
                    return None
            done = Rewritten(**entry["rewritten"])
            if not _well_formed(done):
                return None
            # The same file is not proof of the same bytes, and a sealed
            # entry is not proof of anything: every probe of the program is
            # proven again on the bytes, and every runtime.g read checked
            # against the binary (binary/proof.py).
            targets = [[t, path] for t, path, _, _ in entry["targets"]]
            if not self.listing and not still_holds(entry["proofs"], done.program, self.source, targets):
                return None
            touch_used(self.path)
            return done
        except (OSError, ValueError, KeyError, TypeError, AttributeError, GobtError):
            return None

    def store(self, rewritten, binaries, proofs):
        """binaries: target text -> (the path the rewrite read for it, and
        that file's stat as it was when read); proofs: what the program's
        probes and runtime.g reads were proven on (proof.still_holds)."""
        if not self.path:
            return
        targets = [[t, p, _identity(st), consulted] for t, (p, st, consulted) in sorted(binaries.items())]
        if write_atomic(self.path, {"key": self.key, "targets": targets, "proofs": proofs,
                                    "rewritten": rewritten.__dict__}):
            prune(os.path.dirname(self.path), KEEP)
