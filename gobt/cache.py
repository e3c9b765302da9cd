"""Where gobt keeps what it can reuse between runs."""

import errno
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

    Each folder is opened once per run, and every read, write, rename and
    prune under the path returned goes through that descriptor (_at), not
    through the path again: the folders above may be another user's (sudo
    keeps XDG_CACHE_HOME), who can swap gobt/ for a folder of symlinks at
    any moment of a run. The descriptor stays on the folder that was
    checked.
    """
    if binary_facts and (_disabled or os.environ.get("GOBT_NO_CACHE")):
        return None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    path = os.path.join(base, "gobt")
    if _open_folder(path, None, base) is None:
        return None
    if sub is None:
        return path
    folder = os.path.join(path, sub)
    return folder if _open_folder(folder, path, sub) is not None else None


_folders = {}  # path -> descriptor of the folder cache_dir opened there, or None if refused
_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _open_folder(path, parent, name):
    """The descriptor of path, made if absent: name in the folder `parent`
    (a path in _folders), or, for the top one, in the folder `name`, which
    may be a symlink (~/.cache often is) and need not be this user's."""
    global _warned
    if path in _folders:
        return _folders[path]
    _folders[path] = None
    above = None
    try:
        if parent is None:
            os.makedirs(name, mode=0o755, exist_ok=True)
            above = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            name = "gobt"
        dir_fd = above if parent is None else _folders[parent]
        try:
            os.mkdir(name, 0o755, dir_fd=dir_fd)
        except FileExistsError:
            pass
        # O_NOFOLLOW: a symlink planted in the cache must not lead elsewhere.
        fd = os.open(name, _DIRECTORY, dir_fd=dir_fd)
    except OSError as e:
        fd, st = None, e
    else:
        st = os.fstat(fd)
    finally:
        if above is not None:
            os.close(above)
    if fd is not None and _trusted(st):
        _folders[path] = fd
        return fd
    if fd is not None:
        os.close(fd)
    if not _warned and not (isinstance(st, OSError) and st.errno in (errno.EACCES, errno.EROFS, errno.ENOENT)):
        # Straight to stderr, not errors.note: errors asks this module
        # where its once-notes go (said_before). Never replayed anyway:
        # without a cache there is no warm run.
        import sys

        owner = f"it belongs to uid {st.st_uid}, or others can write to it" if fd is not None else \
            "it is not a folder"
        print(f"gobt: not using the cache in {path}: {owner} (set XDG_CACHE_HOME to a folder of your own)",
              file=sys.stderr)
        _warned = True
    return None


def _at(path):
    """(folder descriptor, file name, whether to close the descriptor) for a
    file in a folder cache_dir returned: its descriptor, never the path
    again. Any other folder (tests name their own) is opened here."""
    folder, name = os.path.split(os.fspath(path))
    fd = _folders.get(folder)
    if fd is not None:
        return fd, name, False
    return os.open(folder or ".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC), name, True


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
        folder, name, close = _at(path)
    except OSError:
        return None
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=folder)
    except OSError:
        return None
    finally:
        if close:
            os.close(folder)
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


# The names gobt gives its files in programs/ and binaries/, and to a
# write in flight: prune removes nothing else, even in a folder of this
# user's that is not gobt's.
_PRUNABLE = r"(?:[0-9a-f]{8}-[0-9]+|[0-9a-f]{32})\.json|\.tmp-\w+"


def prune(directory, keep):
    """Remove the least recently used files of a cache folder, beyond `keep`.

    Every rebuilt binary and every edited script makes a new entry, so
    without this the folder only grows. Entries are marked used by their
    mtime (touch_used); two gobts pruning at once only remove a file twice.
    Only regular files of this user's, named as gobt names them, are
    removed, and only in the folder cache_dir opened (_at).
    """
    import re
    import time

    try:
        folder, _, close = _at(os.path.join(directory, ""))
    except OSError:
        return
    try:
        euid = os.geteuid()
        entries = []
        for e in os.scandir(folder):
            if re.fullmatch(_PRUNABLE, e.name):
                st = e.stat(follow_symlinks=False)
                if stat.S_ISREG(st.st_mode) and st.st_uid == euid:
                    entries.append((st.st_mtime_ns, e.name, e.name.startswith(".tmp-")))
        # A write in flight is a .tmp- file for milliseconds; one an hour old
        # was left by a gobt that was killed.
        stale = time.time_ns() - 3600 * 10**9
        doomed = [name for mtime, name, tmp in entries if tmp and mtime < stale]
        entries = sorted(e[:2] for e in entries if not e[2])
        doomed += [name for _, name in entries[: max(0, len(entries) - keep)]]
        for name in doomed:
            try:
                os.unlink(name, dir_fd=folder)
            except OSError:
                pass
    except OSError:
        return
    finally:
        if close:
            os.close(folder)


def write_atomic(path, data):
    """Write data as sealed JSON to path (read_sealed), so that a reader
    sees the old file or the new one whole (a temp file renamed over it). False on failure:
    gobt then simply has nothing cached."""
    import json

    return write_sealed_bytes(path, json.dumps(data).encode("utf-8", "surrogateescape"))


def write_sealed_bytes(path, payload):
    """write_atomic for a payload that is not JSON (read_sealed_bytes)."""
    tmp = f".tmp-{os.urandom(8).hex()}"
    try:
        folder, name, close = _at(path)
    except OSError:
        return False
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=folder)
        with os.fdopen(fd, "wb") as f:
            f.write(_seal(payload))
        os.replace(tmp, name, src_dir_fd=folder, dst_dir_fd=folder)
        return True
    except OSError:
        try:
            os.unlink(tmp, dir_fd=folder)
        except OSError:
            pass
        return False
    finally:
        if close:
            os.close(folder)


def touch_used(path):
    try:
        folder, name, close = _at(path)
    except OSError:
        return
    try:
        os.utime(name, dir_fd=folder, follow_symlinks=False)
    except OSError:
        pass
    finally:
        if close:
            os.close(folder)


def seen_or_add(path, token):
    """Whether `token` is a line of the cache file `path`; adds it if not.
    Through the folder's descriptor and O_NOFOLLOW, as every cache write."""
    try:
        folder, name, close = _at(path)
    except OSError:
        return False
    try:
        fd = os.open(name, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644,
                     dir_fd=folder)
        with os.fdopen(fd, "r+") as f:
            if not _trusted(os.fstat(f.fileno())):
                return False
            if token in f.read().split():
                return True
            f.write(token + "\n")
    except OSError:
        pass
    finally:
        if close:
            os.close(folder)
    return False


def remove(path):
    """Remove a cache file, through its folder's descriptor (_at)."""
    try:
        folder, name, close = _at(path)
    except OSError:
        return
    try:
        os.unlink(name, dir_fd=folder)
    except OSError:
        pass
    finally:
        if close:
            os.close(folder)


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
            remove(self.path)

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
