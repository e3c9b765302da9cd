"""Where gobt keeps what it can reuse between runs."""

import os
import stat

_disabled = False
_warned = False


def disable():
    global _disabled
    _disabled = True


def cache_dir(binary_facts=False, sub=None):
    """$XDG_CACHE_HOME/gobt (default ~/.cache/gobt), or its folder `sub`,
    created on demand.

    None when it cannot be made, or cannot be trusted: gobt then simply does
    the work again. --no-cache (or GOBT_NO_CACHE) turns off what gobt learns
    about binaries and scripts; the compiled grammar and the installed
    bpftrace's capabilities depend on neither.
    """
    global _warned
    if binary_facts and (_disabled or os.environ.get("GOBT_NO_CACHE")):
        return None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    path = os.path.join(base, "gobt")
    for folder in (path, os.path.join(path, sub)) if sub else (path,):
        try:
            os.makedirs(folder, mode=0o755, exist_ok=True)
            # lstat: a symlink planted in the cache must not lead elsewhere.
            st = os.lstat(folder)
        except OSError:
            return None
        if not (stat.S_ISDIR(st.st_mode) and _trusted(st)):
            if not _warned:
                # Straight to stderr, not errors.note: errors asks this module
                # where its once-notes go (said_before). Never replayed anyway:
                # without a cache there is no warm run.
                import sys

                print(f"gobt: not using the cache in {folder}: it belongs to uid {st.st_uid}, or others can "
                      "write to it, or it is not a folder (set XDG_CACHE_HOME to a folder of your own)",
                      file=sys.stderr)
                _warned = True
            return None
    return folder


def _trusted(st):
    # Only what this user wrote. Root running gobt on a user's cache (sudo
    # keeps XDG_CACHE_HOME or HOME) must not run a program that user left
    # there, nor unpickle their grammar cache.
    return st.st_uid == os.geteuid() and not st.st_mode & 0o022


# A cache file is this line, then its JSON. The checksum is over the JSON's
# bytes: a file changed by hand, by a disk, or cut short is a miss, never
# used as it is (JSON that still parses can say a wrong offset).
_SEAL = "gobt-cache {:08x} {}\n"


def _seal(payload):
    import zlib

    return _SEAL.format(zlib.crc32(payload), len(payload)).encode() + payload


def read_sealed(path):
    """The JSON text of a cache file that this user wrote, that only they
    can change and whose checksum holds, or None (then it is rewritten)."""
    payload = read_sealed_bytes(path)
    return None if payload is None else payload.decode("utf-8", "surrogateescape")


def read_sealed_bytes(path):
    """read_sealed's payload as bytes, for a file that is not JSON."""
    import zlib

    data = _read_own(path)
    if data is None:
        return None
    head, sep, payload = data.partition(b"\n")
    if not sep or head + sep != _SEAL.format(zlib.crc32(payload), len(payload)).encode():
        return None
    return payload


def digest(data):
    """Two independent 32-bit checksums of data, as hex: different bytes
    pass both only by a 1 in 2**64 chance; zlib is loaded on every path,
    hashlib is not."""
    import zlib

    return f"{zlib.crc32(data):08x}{zlib.adler32(data):08x}"


def _read_own(path):
    # O_NONBLOCK: a FIFO planted at a cache path must not hang gobt in
    # open(); O_NOFOLLOW: nor a symlink lead it to another file. Only a
    # regular file is read.
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not (stat.S_ISREG(st.st_mode) and _trusted(st)):
            return None
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read()
    except OSError:
        return None
    finally:
        os.close(fd)


_fingerprint = None


def code_fingerprint():
    """gobt's own code, as the size and mtime of its modules and grammar: a
    changed gobt (an upgrade, a developer's edit) must not reuse what an
    older one cached. Returned whole, not hashed: the warm path compares it
    and must not pay for importing hashlib. Taken once per run: the program
    cache and each binary's cache both key on it."""
    global _fingerprint
    if _fingerprint is None:
        _fingerprint = _code_fingerprint()
    return _fingerprint


def _code_fingerprint():
    import importlib.util

    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(here)
    if os.path.isfile(os.path.join(root, "pyproject.toml")) and os.path.isdir(os.path.join(root, "grammar")):
        # A source tree (or the installed launcher) reads its own grammar.
        dirs = [here, os.path.join(root, "grammar")]
    else:
        spec = importlib.util.find_spec("gobt.grammar")
        dirs = [here, *(spec.submodule_search_locations or [] if spec else [])]
    parts = []
    for d in dirs:
        for sub, folders, names in sorted(os.walk(d)):
            folders[:] = [f for f in folders if f != "__pycache__"]
            for name in sorted(names):
                if name.endswith((".py", ".lark")):
                    st = os.stat(os.path.join(sub, name))
                    parts.append(f"{os.path.relpath(os.path.join(sub, name), d)}:{st.st_size}:{st.st_mtime_ns}")
    # The libraries' answers are cached too (capstone's disassembly, lark's
    # parse, pyelftools' DWARF): an upgrade of one must not reuse them. Their
    # packages are found, not imported: the warm path imports none of them.
    for lib in ("capstone", "elftools", "lark"):
        spec = importlib.util.find_spec(lib)
        if spec and spec.origin and os.path.exists(spec.origin):
            st = os.stat(spec.origin)
            parts.append(f"{lib}:{spec.origin}:{st.st_size}:{st.st_mtime_ns}")
    return ";".join(parts)


def prune(directory, keep):
    """Remove the least recently used files of a cache folder, beyond `keep`.

    Every rebuilt binary and every edited script makes a new entry, so
    without this the folder only grows. Entries are marked used by their
    mtime (touch_used); two gobts pruning at once only remove a file twice.
    """
    import time

    try:
        entries = [(e.stat().st_mtime_ns, e.path, e.name.startswith(".tmp-")) for e in os.scandir(directory)
                   if e.is_file()]
    except OSError:
        return
    # A write in flight is a .tmp- file for milliseconds; one an hour old
    # was left by a gobt that was killed.
    stale = time.time_ns() - 3600 * 10**9
    for mtime, path, _ in [e for e in entries if e[2] and e[0] < stale]:
        try:
            os.unlink(path)
        except OSError:
            pass
    entries = [e[:2] for e in entries if not e[2]]
    if len(entries) <= keep:
        return
    entries.sort()
    for _, path in entries[: len(entries) - keep]:
        try:
            os.unlink(path)
        except OSError:
            pass


def write_atomic(path, data):
    """Write data as sealed JSON to path (read_sealed), so that a reader
    sees the old file or the new one whole (a temp file renamed over it). False on failure:
    gobt then simply has nothing cached."""
    import json

    return write_sealed_bytes(path, json.dumps(data).encode("utf-8", "surrogateescape"))


def write_sealed_bytes(path, payload):
    """write_atomic for a payload that is not JSON (read_sealed_bytes)."""
    import tempfile

    tmp = None
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
        with os.fdopen(fd, "wb") as f:
            f.write(_seal(payload))
        os.replace(tmp, path)
        return True
    except OSError:
        if tmp:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        return False


def touch_used(path):
    try:
        os.utime(path)
    except OSError:
        pass


class BinaryCache:
    """What gobt learned about one binary: symbols matched, RET offsets,
    goarg reads. Kept as JSON under the cache dir, one file per binary.

    The key is the binary's identity: its Go build ID and its file's device,
    inode, size, mtime and ctime, so a rebuilt binary never gets stale
    offsets; and proof.py checks every offset against the bytes anyway.
    Writes are atomic (a temp file renamed over the old one) and merge what
    another gobt may have written meanwhile; an unreadable, corrupt or
    foreign file is ignored and rebuilt.
    """

    FORMAT = 1
    KEEP = 64  # binaries

    def __init__(self, identity):
        self.identity = identity
        self._data = None
        self._dirty = False
        base = cache_dir(binary_facts=True, sub="binaries")
        name = sha256_hex(identity.encode())[:32]
        self.path = os.path.join(base, f"{name}.json") if base else None

    def _load(self):
        if self._data is not None:
            return self._data
        self._data = self._read() or {}
        return self._data

    def _read(self):
        import json

        if not self.path:
            return None
        text = read_sealed(self.path)
        if text is None:
            return None
        try:
            data = json.loads(text)
            touch_used(self.path)
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("identity") != self.identity or data.get("format") != self.FORMAT:
            return None
        tables = data.get("tables")
        return tables if isinstance(tables, dict) else None

    def get(self, table, key):
        return self._load().get(table, {}).get(key)

    def put(self, table, key, value):
        self._load().setdefault(table, {})[key] = value
        self._dirty = True

    def drop(self):
        """Forget everything: the file held a claim the binary's bytes
        refute (proof.py). What is learnt from now on is saved afresh."""
        self._data = {}
        self._dirty = False
        self._dropped = True
        if self.path:
            try:
                os.unlink(self.path)
            except OSError:
                pass

    def save(self):
        if not self._dirty or not self.path:
            return
        # Merge what another gobt may have written meanwhile (unless what
        # was there turned out wrong).
        merged = {} if getattr(self, "_dropped", False) else self._read() or {}
        for table, rows in self._data.items():
            merged.setdefault(table, {}).update(rows)
        if write_atomic(self.path, {"format": self.FORMAT, "identity": self.identity, "tables": merged}):
            self._dirty = False
            prune(os.path.dirname(self.path), self.KEEP)


def sha256_hex(data):
    """hashlib.sha256(data).hexdigest(), from the built-in module when there
    is one: hashlib loads OpenSSL first, 3 ms of a cold run."""
    try:
        from _sha256 import sha256  # Python 3.11
    except ImportError:
        try:
            from _sha2 import sha256  # 3.12 on
        except ImportError:
            from hashlib import sha256
    return sha256(data).hexdigest()
