"""The last check before bpftrace: every probe offset proven on the bytes.

A uprobe in the middle of an instruction corrupts the traced program, and
one on another function's RET reads another function's values. Offsets
come from disassembly, from the per-binary cache (cache.BinaryCache) or
from a whole cached program (programcache.py); whatever their source,
rewrite calls prove() for each one before it is written into a program,
and the program cache calls still_holds() before it reuses one. Nothing
else decides that an offset is safe.

What is proven, on the binary's current bytes:
- the function starts where .gopclntab says a function starts, and the
  offset is inside its bounds there;
- a RET offset holds a RET (a byte check: amd64 0xC3, arm64 RET);
- every offset is an instruction boundary, found by decoding from the
  function's start (capstone).

Nothing a cache says is taken as proven: prove() decodes the function
each time, and a cached program (still_holds) has its functions' bytes
read again and decoded, its attach points matched to what was proven, and
its runtime.g reads checked against the binary's Go version.
"""

import os
import struct

from ..cache import digest
from ..errors import GobtError


class Stale(Exception):
    """A claimed offset does not hold on the binary's bytes (a stale or
    damaged cache): drop the caches and compute again."""


def is_ret(arch, code, offset):
    """Whether code[offset:] starts with the bytes of a RET."""
    if arch == "amd64":
        return code[offset : offset + 1] == b"\xc3"
    word = code[offset : offset + 4]
    # RET Xn (0xd65f0000 | n << 5); Go's RET returns through LR (x30).
    return len(word) == 4 and int.from_bytes(word, "little") & 0xFFFFFC1F == 0xD65F0000


def prove(binary, fn, offset, ret):
    """Check fn+offset on the binary's bytes: a RET if `ret`, else an
    instruction boundary. Returns the function's (file offset, size,
    digest) for the program cache. Raises Stale when it does not hold."""
    start, end = _bounds(binary, fn)
    if not 0 <= offset < end - start:
        raise Stale(f"{fn.name}+{offset} is outside {fn.name} (0x{end - start:x} bytes)")
    file_start = binary.file_offset(start)
    code = binary.bytes_at(file_start, end - start)
    if len(code) != end - start:
        raise Stale(f"{fn.name} runs past the end of {binary.display_path}")
    if ret and not is_ret(binary.arch, code, offset):
        raise Stale(f"{fn.name}+{offset} is not a RET")
    # Decoded every time: a cached list of offsets already proven would be
    # a claim of the cache's, and a resealed cache could add any offset to
    # it. analyze() decoded the same bytes just before on a cold run
    # (disasm.decoded keeps them); on a binary-cache hit this is the decode.
    starts, rets = _decode(binary.arch, code, start)
    if offset not in starts:
        raise Stale(f"{fn.name}+{offset} is not at an instruction boundary")
    if ret and offset not in rets:
        raise Stale(f"{fn.name}+{offset} is not a RET")
    return file_start, end - start, digest(code)


def _bounds(binary, fn):
    found = binary.pcln_bounds(fn)
    if found is None:
        if binary.has_section(".gopclntab") and binary.go_version is not None and _in_go_text(binary, fn):
            raise Stale(f"no function starts at 0x{fn.start:x} ({fn.name}) in .gopclntab")
        return fn.start, fn.end  # not Go code: .symtab is all there is
    start, end, name = found
    if not same_function(name, fn.name):
        raise Stale(f".gopclntab names the function at 0x{fn.start:x} {name}, not {fn.name}")
    return start, min(end, fn.end)


def same_function(pcln_name, symtab_name):
    """Whether .gopclntab's name and .symtab's name the same function."""
    return _comparable(pcln_name) == _comparable(symtab_name)


def _comparable(name):
    """A function's name with what .symtab and .gopclntab spell apart made
    alike: the ABI0 twin's suffix, the middle dot the linker turns into a
    dot (type:.eq.T·4), and type-argument lists, which Go 1.18+ elides in
    .gopclntab (main.(*Stack[...]).Push for main.(*Stack[go.shape.string_0]).Push)."""
    name = name.removesuffix(".abi0").replace("\u00b7", ".")
    out, depth = [], 0
    for c in name:
        if c == "[":
            if depth == 0:
                out.append("[...]")
            depth += 1
        elif c == "]" and depth:
            depth -= 1
        elif depth == 0:
            out.append(c)
    return "".join(out)


def _in_go_text(binary, fn):
    # cgo's C functions are in .text too, but not in .gopclntab: only
    # the range .gopclntab covers can be checked against it.
    low = binary.pcln_text_range
    return low is not None and low[0] <= fn.start < low[1]


_decoded = {}  # (arch, start) -> (code, starts, RETs), decoded in this process


def _decode(arch, code, start):
    """Offsets of instruction starts and of RETs, decoding from the start
    (once per function and run: a function has several RETs to prove)."""
    from .disasm import ARCHES, decoded

    code = bytes(code)
    done = _decoded.get((arch, start))
    if done is not None and done[0] == code:
        return done[1], done[2]
    facts = ARCHES[arch]
    insns = decoded(arch, code, start)
    starts = {a - start for a in insns.addresses}
    ret_at = {insns.addresses[i] - start for i in insns.where(facts["branch_or_ret"])
              if insns.text(i)[0] in facts["ret"]}
    _decoded[(arch, start)] = (code, starts, ret_at)
    return starts, ret_at


def record(proofs, binary, fn, offset, ret, proven, text):
    """Note an attach point prove() proved, as `text` says it to bpftrace:
    proofs[(path, function's file offset)] = [path, file offset, size,
    digest, arch, name, address, [[text, offset, ret], ...]]."""
    file_start, size, sum_ = proven
    entry = proofs.setdefault((binary.path, file_start),
                              [binary.path, file_start, size, sum_, binary.arch, fn.name, fn.start, []])
    if [text, offset, ret] not in entry[7]:
        entry[7].append([text, offset, ret])


def for_program_cache(proofs, binaries):
    """What still_holds checks: each probed function's proven attach
    points (record), and each runtime.g the program reads (goroutine_of)."""
    return {"functions": [entry for _, entry in sorted(proofs.items())],
            "runtime_g": [[b.path, *b.runtime_g_read] for b in binaries if getattr(b, "runtime_g_read", None)]}


def still_holds(proofs, program, source, targets):
    """Whether a cached program is still what gobt proved, on the bytes of
    now, whatever the entry claims (a gobt bug, or its owner, can reseal
    it): each probed function's bytes as they were; each attach point the
    program has and the script does not is one proven here, spelled for
    its function and offset, that offset an instruction boundary (decoded
    again) and a RET where it was one; each runtime.g field the program
    reads and the script does not is the one of the binary's Go version.
    targets: [BIN as written, path] of the entry. Not checked again: that
    the function starts at its file offset and that bpftrace finds its name
    there (the bytes there are the ones proven, by their digest)."""
    fds = {}
    files = {}
    try:
        allowed = {}
        for target, path in targets:
            allowed.setdefault(path, {path}).add(target)
        proven = set()
        for path, file_start, size, sum_, arch, name, address, points in proofs["functions"]:
            if path not in fds:
                fds[path] = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            code = os.pread(fds[path], size, file_start)
            if len(code) != size or digest(code) != sum_ or arch not in ("amd64", "arm64"):
                return False
            if not _starts_function(files.setdefault(path, _File(fds[path])), name, file_start, address, size):
                return False
            starts = None
            last = max((p[1] for p in points if type(p[1]) is int), default=0)
            for text, offset, ret in points:
                if not (type(offset) is int and 0 <= offset < size and type(ret) is bool
                        and _spelled_for(text, allowed.get(path, ()), name, file_start, address, offset)):
                    return False
                if offset:
                    if starts is None:
                        starts = _boundaries(arch, code, last)
                    if offset not in starts:
                        return False
                if ret and not is_ret(arch, code, offset):
                    return False
                proven.add(text)
        if not _attach_points(program) - _attach_points(source) <= proven:
            return False
        return _runtime_g_holds(proofs["runtime_g"], program, source, allowed, fds, files)
    except (OSError, ValueError, TypeError, OverflowError, KeyError, AttributeError, IndexError, BufferError,
            struct.error):
        return False
    finally:
        for file in files.values():
            file.close()
        for fd in fds.values():
            os.close(fd)


def _starts_function(file, name, file_start, address, size):
    """Whether .gopclntab has a function called `name` (as prove() compares
    names) at `address`, of at least `size` bytes, and `address` is at
    `file_start` in the file: the function the bytes were proven for is
    where the entry says. False also where this cannot be told cheaply (no
    .gopclntab section, a Go 1.18+ table without its text start, code
    outside Go's table): the cold path then proves it."""
    from .pclntab import bounds

    section = file.section_of(address)
    table = file.sections.get(".gopclntab")
    if section is None or address - section[1] + section[2] != file_start or table is None:
        return False
    data = file.view(table)
    if data is None or len(data) < 64:
        return False
    magic = struct.unpack_from("<I", data, 0)[0]
    texts = [0]  # before Go 1.18 the entries are addresses
    if magic in (0xFFFFFFF0, 0xFFFFFFF1):
        # 1.18+: offsets from runtime.text, which 1.20+ leaves 0 in the
        # header. Any guess is safe: a wrong one finds no function of this
        # name at this address.
        header = struct.unpack_from("<Q", data, 24)[0]
        texts = [header] if header else [file.sections.get(".text", (0, 0))[1], lambda: file.symbol("runtime.text")]
    for text in texts:
        text = text() if callable(text) else text  # the symbol only if .text is not it (cgo)
        found = bounds(data, text, address) if text is not None else None
        if found is not None and found[0] == address and found[1] - found[0] >= size \
                and _comparable(found[2]) == _comparable(name):
            return True
    return False


class _File:
    """An ELF file's section headers, read with a few preads (the warm
    path imports no ELF reader), and a map of it for .gopclntab."""

    def __init__(self, fd):
        self.fd = fd
        self._map = None
        self.sections = {}  # name -> (type, address, file offset, size)
        head = os.pread(fd, 64, 0)
        if head[:6] != b"\x7fELF\x02\x01":
            self.arch = None
            return
        self.arch = {62: "amd64", 183: "arm64"}.get(struct.unpack_from("<H", head, 18)[0])
        shoff, = struct.unpack_from("<Q", head, 0x28)
        entsize, count, names_at = struct.unpack_from("<HHH", head, 0x3A)
        table = os.pread(fd, entsize * count, shoff)
        rows = [struct.unpack_from("<IIQQQQ", table, i * entsize) for i in range(count)]
        names = os.pread(fd, rows[names_at][5], rows[names_at][4]) if names_at < count else b""
        for name_at, kind, _flags, address, offset, size in rows:
            name = names[name_at : names.find(b"\0", name_at)].decode("ascii", "replace")
            self.sections.setdefault(name, (kind, address, offset, size))

    def symbol(self, name):
        """The value of .symtab's symbol `name`, or None."""
        symtab, strtab = self.sections.get(".symtab"), self.sections.get(".strtab")
        if symtab is None or strtab is None or self.view(strtab) is None:
            return None
        found = self._map.find(b"\0" + name.encode() + b"\0", strtab[2], strtab[2] + strtab[3])
        if found < 0:
            return None
        key = struct.pack("<I", found + 1 - strtab[2])
        start, end = symtab[2], symtab[2] + symtab[3]
        hit = self._map.find(key, start, end)
        while hit >= 0:
            if (hit - start) % 24 == 0:
                return struct.unpack_from("<Q", self._map, hit + 8)[0]
            hit = self._map.find(key, hit + 1, end)
        return None

    def section_of(self, address):
        """(type, address, file offset, size) of the section with bytes in
        the file that holds `address`."""
        for kind, start, offset, size in self.sections.values():
            if kind != 8 and start and start <= address < start + size:  # 8: SHT_NOBITS
                return kind, start, offset, size
        return None

    def read(self, address, size):
        found = self.section_of(address)
        if found is None or address + size > found[1] + found[3]:
            return b""
        return os.pread(self.fd, size, found[2] + address - found[1])

    def view(self, section):
        import mmap

        if self._map is None:
            self._map = mmap.mmap(self.fd, 0, prot=mmap.PROT_READ)
        _kind, _address, offset, size = section
        return memoryview(self._map)[offset : offset + size] if offset + size <= len(self._map) else None

    def close(self):
        if self._map is not None:
            try:
                self._map.close()
            except BufferError:  # a view still held: the map goes with the process
                pass


def _spelled_for(text, targets, name, file_start, address, offset):
    """Whether a uprobe's text names fn+offset: the function by its name
    (offset 0), "name"+offset, or the offset's file offset or address."""
    head, _, rest = text.rpartition(":")  # Go's names have no ':'
    if not head.startswith("uprobe:") or head[7:].strip('"') not in targets:
        return False
    if rest.startswith("0x"):
        # A file offset (bpftrace without bfd; uprobes._spelled); an
        # address only for a name bpftrace would read as a wildcard.
        at = int(rest, 16)
        return rest == f"0x{at:x}" and (at == file_start + offset
                                         or at == address + offset and any(c in name for c in "*?["))
    quoted, plus, number = rest.rpartition("+")
    if plus and quoted[:1] == quoted[-1:] == '"' and len(quoted) > 1:
        return quoted[1:-1] == name and number.isdigit() and int(number) == offset and number == str(offset)
    return rest.strip('"') == name and offset == 0


def _attach_points(text):
    """The uprobe attach points a bpftrace program names (any spelling)."""
    import re

    return set(re.findall(r'(?<![\w$@.])(?:uprobe|uretprobe|u|ur)[ \t]*:(?:"(?:[^"\\\n]|\\.)*"|[^\s,{}"])+', text))


def _boundaries(arch, code, until):
    """Offsets of instruction starts in a function's bytes, at least up to
    `until`: x86len.py's decoding (capstone takes 7 ms to load), or
    capstone's where that stops at an instruction it does not know."""
    if arch == "arm64":
        return range(0, len(code), 4)  # fixed width: every aligned word
    from .x86len import boundaries

    found = boundaries(code, until)
    if found is None:
        from .decode import Decoded

        found = set(Decoded(arch, code, 0).addresses)
    return found


def _runtime_g_holds(rows, program, source, allowed, fds, files):
    """Each read of a runtime.g field in the program (uptr(G + N)) that the
    script does not have itself is of a field of a binary whose runtime.g
    the entry says it reads: G that binary's, N its goid's or stack.hi's
    offset for its Go version (abi/runtime_g.py's table)."""
    from ..abi.runtime_g import G_POINTER, g_pointer, runtime_g_offsets

    fields = set()
    for path, g, goid, hi in rows:
        if path not in allowed:
            return False
        if path not in fds:
            fds[path] = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        arch, version = _go_facts(files.setdefault(path, _File(fds[path])))
        offsets = runtime_g_offsets(version)
        if offsets is None or [g, goid, hi] != [g_pointer(arch, version), *offsets]:
            return False
        fields |= {f"uptr({g} + {goid})", f"uptr({g} + {hi})"}
    for g in set(G_POINTER.values()):
        if not _reads(program, g) - _reads(source, g) <= fields:
            return False
    return True


def _reads(text, g):
    """The reads uptr(g + N) in text."""
    found = set()
    start = f"uptr({g} + "
    at = text.find(start)
    while at >= 0:
        end = text.find(")", at + len(start))
        found.add(text[at : end + 1] if end >= 0 else text[at:])
        at = text.find(start, at + 1)
    return found


def _go_facts(file):
    """(arch, (major, minor)) of an ELF file from its header and its
    .go.buildinfo; (arch, None) when the version is not there."""
    import re
    found = file.sections.get(".go.buildinfo")
    data = os.pread(file.fd, min(found[3], 64 + 256), found[2]) if found else b""
    if not data.startswith(b"\xff Go buildinf:"):
        return file.arch, None
    if data[15] & 2:  # Go 1.18+: the version inline, after its uvarint length
        length, at = 0, 32
        for shift in range(0, 35, 7):
            length |= (data[at] & 0x7F) << shift
            at += 1
            if not data[at - 1] & 0x80:
                break
        version = data[at : at + length]
    else:  # before: a pointer to a string header
        fmt = "<QQ" if data[14] == 8 else "<II"
        header = file.read(struct.unpack_from(fmt[:2], data, 16)[0], struct.calcsize(fmt))
        if len(header) != struct.calcsize(fmt):
            return file.arch, None
        pointer, length = struct.unpack(fmt, header)
        version = file.read(pointer, length)
    m = re.match(rb"go(\d+)\.(\d+)", version)  # as gobinary.go_version_tuple reads it
    return file.arch, (int(m.group(1)), int(m.group(2))) if m else None


def refuse(stale, where):
    """The error when an offset gobt computed afresh still fails its proof."""
    return GobtError(f"gobt will not place this probe: {stale}", where,
                     ["  gobt's own analysis disagrees with the binary's bytes; this is a bug in gobt, "
                      "please report it with the binary"])
