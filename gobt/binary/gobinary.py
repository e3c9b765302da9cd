"""Resolve: facts about a Go binary, read lazily and cheaply.

GoBinary answers what the rewriter asks: the architecture, the Go version,
where a function's bytes are, and how a virtual address maps to a file
offset. Symbols come from a direct scan of .symtab (pyelftools'
get_symbol_by_name builds a dict of every symbol first, which costs a
large fraction of a second on a big binary).
"""

import bisect
import mmap
import os
import re
import struct
from ..record import dataclass
from functools import cached_property

from ..errors import GobtError
from .symbols import is_wildcard
from .symtab import Function, SymbolTable

EM_X86_64 = 62
EM_AARCH64 = 183
ARCH_BY_MACHINE = {EM_X86_64: "amd64", EM_AARCH64: "arm64"}

SHT_NOBITS = 8
PT_LOAD = 1
PF_X = 1
SHF_EXECINSTR = 4
PF_W = 2
_EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
_SHDR = struct.Struct("<IIQQQQIIQQ")
_PHDR = struct.Struct("<IIQQQQQQ")
BUILDINFO_MAGIC = b"\xff Go buildinf:"


@dataclass(frozen=True)
class Segment:
    vaddr: int
    memsz: int
    offset: int
    filesz: int
    executable: bool = False
    writable: bool = False


class GoBinary:
    def __init__(self, path, display_path=None):
        self.path = path
        self.display_path = display_path or path
        # Where to look for separate debug info (debugfile.py): the root
        # and folder the binary's process sees it in (-p sets them).
        self.debug_root = ""
        self.debug_folder = None
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            raise GobtError(f"{self.display_path}: no such file") from None
        except IsADirectoryError:
            raise GobtError(f"{self.display_path}: is a directory, not a binary") from None
        except PermissionError:
            raise GobtError(f"{self.display_path}: permission denied") from None
        try:
            self.stat = os.fstat(fd)
            if self.stat.st_size == 0:
                raise GobtError(f"{self.display_path}: empty file, not an ELF binary")
            self._map = mmap.mmap(fd, 0, prot=mmap.PROT_READ)
        except OSError as e:
            raise GobtError(f"{self.display_path}: cannot read: {e.strerror}") from None
        finally:
            os.close(fd)
        self._read_headers()

    # -- sections and segments ------------------------------------------
    #
    # Read with struct, not pyelftools: the ELF headers are all a warm run
    # needs, and importing pyelftools costs more than gobt's whole warm path.

    def _read_headers(self):
        m = self._map
        name = self.display_path
        if m[:4] != b"\x7fELF":
            raise GobtError(f"{name}: not an ELF binary")
        if len(m) < _EHDR.size:
            raise GobtError(f"{name}: truncated ELF header ({len(m)} bytes)")
        if m[4] != 2 or m[5] != 1:
            raise GobtError(f"{name}: only 64-bit little-endian ELF binaries are supported")
        try:
            (_ident, _type, machine, _v, _entry, phoff, shoff, _flags, _ehsize,
             phentsize, phnum, shentsize, shnum, shstrndx) = _EHDR.unpack_from(m, 0)
            self.arch = ARCH_BY_MACHINE.get(machine)
            if self.arch is None:
                raise GobtError(f"{name}: ELF machine {machine} is not supported (amd64 and arm64 are)")
            self._phdrs = [_PHDR.unpack_from(m, phoff + i * phentsize) for i in range(phnum)]
            shdrs = [_SHDR.unpack_from(m, shoff + i * shentsize) for i in range(shnum)]
            names = shdrs[shstrndx] if shnum else None
        except (struct.error, IndexError, OverflowError):
            # OverflowError: an offset past any file (e_phoff near 2**64).
            raise GobtError(f"{name}: truncated or corrupt ELF headers") from None
        self._sections = {}
        self._section_flags = {}
        for sh_name, sh_type, flags, addr, offset, size, *_ in shdrs:
            if names is None:
                break
            start = names[4] + sh_name
            end = m.find(b"\0", start, start + 4096)
            if end == -1 or start >= len(m):
                raise GobtError(f"{name}: corrupt section names (truncated?)")
            section = m[start:end].decode("ascii", "replace")
            self._sections[section] = (sh_type, addr, offset, size)
            self._section_flags[section] = flags

    def section_flags(self, name):
        return self._section_flags.get(name, 0)

    def has_section(self, name):
        return name in self._sections

    def _section_bytes(self, name):
        view = self.section_view(name)
        return None if view is None else bytes(view)

    def section_view(self, name):
        """A section's bytes as a view of the mapping (no copy), or None."""
        sec = self._sections.get(name)
        if sec is None or sec[0] == SHT_NOBITS:
            return None
        _type, _addr, start, size = sec
        if start + size > len(self._map):
            raise GobtError(f"{self.display_path}: section {name} runs past the end of the file (truncated?)")
        return memoryview(self._map)[start : start + size]

    @cached_property
    def elf(self):
        """pyelftools' view, for DWARF only."""
        from elftools.elf.elffile import ELFFile

        try:
            return ELFFile(_MapFile(self._map))
        except Exception as e:
            raise GobtError(f"{self.display_path}: unreadable ELF ({e})") from None

    @cached_property
    def segments(self):
        return [
            Segment(vaddr, memsz, offset, filesz, bool(flags & PF_X), bool(flags & PF_W))
            for p_type, flags, offset, vaddr, _paddr, filesz, memsz, _align in self._phdrs
            if p_type == PT_LOAD
        ]

    def file_offset(self, vaddr):
        """The file offset of the byte mapped at `vaddr` (what uprobes attach to)."""
        for seg in self.segments:
            if seg.vaddr <= vaddr < seg.vaddr + seg.filesz:
                return vaddr - seg.vaddr + seg.offset
        raise GobtError(f"{self.display_path}: address 0x{vaddr:x} is in no loaded segment")

    # -- symbols ----------------------------------------------------------

    @cached_property
    def symbols(self):
        found = self.symbols_if_any
        if found is not None:
            return found
        # Stripped (-ldflags=-s): the runtime's own function table.
        from .pclntab import PclnSymbols

        return PclnSymbols(self.pclntab.data, self.pclntab.text_start, self.display_path)

    @cached_property
    def symbols_if_any(self):
        """The .symtab's functions, or None when the binary has none."""
        symtab = self._section_bytes(".symtab")
        strtab = self._section_bytes(".strtab")
        if symtab is not None and strtab is not None:
            return SymbolTable(symtab, strtab)
        return None

    @cached_property
    def pclntab(self):
        """pclnlocate.Pclntab: the Go function table, wherever the linker put it."""
        from .pclnlocate import locate

        return locate(self)

    @property
    def has_own_dwarf(self):
        return self.has_section(".debug_info") or self.has_section(".zdebug_info")

    @cached_property
    def debug_file(self):
        """debugfile.Found: where this binary's DWARF is (in itself, in a
        separate debug file, or nowhere). Looked up once: a stripped Go
        binary with a GNU build ID may ask a debuginfod server."""
        from .debugfile import Found, find

        if self.has_own_dwarf or self.go_version is None:
            return Found(self if self.has_own_dwarf else None, "in the binary" if self.has_own_dwarf else "", [])
        return find(self, GoBinary, self.debug_root, self.debug_folder)

    @property
    def dwarf_file(self):
        """The GoBinary whose sections the DWARF readers read (this one,
        or its separate debug file), or None."""
        return self.debug_file.binary

    @property
    def debug_consulted(self):
        """[path, identity or None] of each place a debug file was looked
        for (none when it was not looked for)."""
        found = self.__dict__.get("debug_file")
        return found.consulted if found is not None else []

    @property
    def has_dwarf(self):
        return self.dwarf_file is not None

    def whole_file(self):
        return memoryview(self._map)

    @property
    def stripped(self):
        return not self.has_section(".symtab")

    @cached_property
    def cache(self):
        from .. import __version__
        from ..cache import BinaryCache, code_fingerprint

        # What the file is, not what it claims: reproducible builds give
        # every build one Go build ID (-buildid=fixed, Bazel's "redacted"),
        # and a rebuild written in place keeps inode and size and can get
        # its mtime back; no user tool sets ctime back. Even so, nothing
        # from this cache reaches bpftrace unproven (proof.py).
        st = self.stat
        identity = (f"gobt {__version__} {code_fingerprint()}|{self.build_id}|"
                    f"{st.st_dev}|{st.st_ino}|{st.st_size}|{st.st_mtime_ns}|{st.st_ctime_ns}")
        if not self.has_own_dwarf:
            # What it knows of DWARF comes from the debug file, if any: a
            # -dbgsym installed since must not meet a cached "no DWARF".
            found = self.debug_file
            debug = found.binary
            if debug is None:
                identity += "|no debug file"
            else:
                ds = debug.stat
                identity += (f"|debug {debug.path}|{ds.st_dev}|{ds.st_ino}|{ds.st_size}|"
                             f"{ds.st_mtime_ns}|{ds.st_ctime_ns}")
        return BinaryCache(identity)

    def functions_matching(self, pattern):
        """symbols.match(pattern), through the cache, in their true bounds.
        A wildcard matches Go functions only (see is_go_function); an exact
        name, any function."""
        rows = self.cache.get("match", pattern)
        if rows is None:
            fns = self.symbols.match(pattern)
            if is_wildcard(pattern):
                fns = [f for f in fns if self.is_go_function(f) and not _hidden_from_wildcards(f.name, pattern)]
            self.cache.put("match", pattern, [[f.name, f.start, f.size] for f in fns])
        else:
            fns = [Function(*row) for row in rows]
        return [self._within_pclntab(fn) for fn in fns]

    def _within_pclntab(self, fn):
        # .symtab's st_size is only a claim (a linker's, or a patcher's);
        # the runtime's own table is what Go's tracebacks trust. Past its
        # end lies the next function: a RET found there would be another
        # function's, and retval another function's value.
        found = self.pcln_bounds(fn)
        if found is None or fn.end <= found[1]:
            return fn  # not a Go function (cgo, asm without a table entry), or within
        from ..errors import warn

        warn(f"{fn.name}: .symtab gives it 0x{fn.size:x} bytes but .gopclntab 0x{found[1] - fn.start:x}; "
             "using .gopclntab's bounds")
        return Function(fn.name, fn.start, found[1] - fn.start)

    @cached_property
    def _pcln_or_none(self):
        try:
            return self.pclntab
        except GobtError:
            return None

    def pcln_bounds(self, fn):
        """(start, end, name) of the function pclntab records at fn.start,
        or None (no pclntab, or no function starts there)."""
        from .pclntab import bounds

        table = self._pcln_or_none
        return None if table is None else bounds(table.data, table.text_start, fn.start, self._known_pcln_starts)

    @cached_property
    def pcln_text_range(self):
        """The addresses pclntab covers, (low, high), or None."""
        from .pclntab import text_range

        table = self._pcln_or_none
        return None if table is None else text_range(table.data, table.text_start)

    def bytes_at(self, file_offset, size):
        return self._map[file_offset : file_offset + size]

    def is_go_function(self, fn):
        """Whether fn is Go code: the runtime's function table (pclntab) has
        every Go function, including Go assembly, and nothing else. .symtab
        has a cgo binary's C functions too (gcc's, cgo's _cgo_* and x_cgo_*,
        and section symbols like net(.text))."""
        if self.symbols_if_any is None:
            return True  # the functions came from pclntab
        key = f"{fn.name}@{fn.start}"
        found = self.cache.get("is_go", key)
        if found is None:
            starts = self.go_function_starts
            i = bisect.bisect_left(starts, fn.start)
            found = i < len(starts) and starts[i] == fn.start
            if found and self._pcln_or_none is not None:
                # The address alone is not enough: a C object's local
                # symbol (net(.text), at the first cgo function of net's
                # host object) shares its start with the Go function
                # pclntab names there. Go code is pclntab's entry under
                # its own name, the one proof.py checks a probe against.
                from .proof import same_function

                bounds = self.pcln_bounds(fn)
                found = bounds is not None and same_function(bounds[2], fn.name)
            self.cache.put("is_go", key, found)
        return found

    @cached_property
    def go_function_starts(self):
        """Sorted entry addresses of pclntab's functions; with no pclntab
        found, every function counts as Go."""
        # (Not kept in the binary's cache: big, and needed only on the cold
        # path; the answers per function and per pattern are kept.)
        from .pclntab import entries

        try:
            table = self.pclntab
            starts = entries(table.data, table.text_start)
        except GobtError:
            starts = []
        if not starts:  # no table to tell by: hide nothing
            starts = sorted(f.start for f in self.symbols.all_functions())
        return starts

    @property
    def _known_pcln_starts(self):
        # pclntab's entries, when a wildcard has already read them all
        # (go_function_starts): lookups then bisect them.
        return self.__dict__.get("go_function_starts")

    def args_size(self, fn):
        """The args size the Go runtime records for fn (None if unknown)."""
        from .pclntab import args_size

        table = self._pcln_or_none
        return None if table is None else args_size(table.data, table.text_start, fn.start, self._known_pcln_starts)

    def inlined_call_sites(self, fn):
        """Calls of fn the compiler inlined, from DWARF (None: no DWARF)."""
        count = self.cache.get("inlined", fn.name)
        if count is None:
            if not self.has_dwarf:
                return None
            try:
                count = self.dwarf.inlined_call_sites(fn)
            except GobtError:
                return None
            self.cache.put("inlined", fn.name, count)
        return count

    @cached_property
    def lowest_function(self):
        """The lowest function address: file offsets below it name no symbol."""
        low = self.cache.get("facts", "lowest_function")
        if low is None:
            # Functions live in executable sections, so the lowest such
            # section is a bound below every one: found from the section
            # headers, where .symtab's lowest costs a pass over 50k symbols.
            # (Offsets above it get the exact check, symbols.covering.)
            starts = [addr for name, (_type, addr, _off, _size) in self._sections.items()
                      if self.section_flags(name) & SHF_EXECINSTR and addr]
            low = min(starts) if starts else self.symbols.lowest_function_address()
            self.cache.put("facts", "lowest_function", low)
        return low

    @cached_property
    def morestack_addresses(self):
        """Entry points of runtime.morestack*, the target of prologue stack checks."""
        return {fn.start for fn in self.symbols.match("runtime.morestack*")}

    @cached_property
    def dwarf(self):
        from .dwarf import DwarfReader

        return DwarfReader(self)

    @cached_property
    def register_abi(self):
        """The register ABI table this binary uses, or None for the stack ABI."""
        from ..abi.register_abi import REGISTER_ABI, uses_register_abi

        return REGISTER_ABI[self.arch] if uses_register_abi(self.arch, self.go_version_tuple) else None

    def code(self, fn):
        """The bytes of a function, exactly its own (never a whole-.text sweep)."""
        off = self.file_offset(fn.start)
        return self._map[off : off + fn.size]

    # -- Go build facts -----------------------------------------------------

    @cached_property
    def go_version(self):
        """'go1.19.8' and the like, from .go.buildinfo; None if not a Go binary."""
        data = self._section_bytes(".go.buildinfo")
        if data is None or not data.startswith(BUILDINFO_MAGIC):
            return self._go_version_from_symbol()
        ptr_size, flags = data[14], data[15]
        if flags & 2:  # Go 1.18+: the strings are inline, varint-length-prefixed
            version, _ = _read_varint_string(data, 32)
            return version
        # Before 1.18: pointers to (ptr, len) string headers.
        fmt = "<Q" if ptr_size == 8 else "<I"
        (vers_ptr,) = struct.unpack_from(fmt, data, 16)
        return self._read_go_string(vers_ptr, ptr_size)

    def _go_version_from_symbol(self):
        # Go before 1.13 had no .go.buildinfo; its runtime.buildVersion is
        # a string header (ptr, len) in the data segment.
        try:
            addr = self.symbols.address_of("runtime.buildVersion")
        except GobtError:
            return None
        return self._read_go_string(addr, 8) if addr else None

    def _read_go_string(self, addr, ptr_size):
        fmt = "<QQ" if ptr_size == 8 else "<II"
        try:
            hdr = self._map[self.file_offset(addr) : self.file_offset(addr) + 2 * ptr_size]
            data_ptr, length = struct.unpack(fmt, hdr)
            start = self.file_offset(data_ptr)
            return self._map[start : start + length].decode("ascii", "replace")
        except (GobtError, struct.error):
            return None

    @cached_property
    def go_version_tuple(self):
        """(major, minor) such as (1, 19); None when unknown."""
        m = re.match(r"go(\d+)\.(\d+)", self.go_version or "")
        return (int(m.group(1)), int(m.group(2))) if m else None

    @cached_property
    def build_id(self):
        data = self._section_bytes(".note.go.buildid")
        if not data or len(data) < 16:
            return ""
        namesz, descsz = struct.unpack_from("<II", data, 0)
        desc_start = 12 + ((namesz + 3) & ~3)
        return data[desc_start : desc_start + descsz].decode("ascii", "replace")


# cgo's glue (in pclntab too where it is Go assembly, and no place for a Go
# probe either way) and the linker's markers (go:buildid, go:textfipsstart).
_HIDDEN_PREFIXES = ("_cgo_", "x_cgo_", "go:")


def _hidden_from_wildcards(name, pattern):
    """Not a function a wildcard means, unless the pattern asks by prefix."""
    return name.startswith(_HIDDEN_PREFIXES) and not pattern.startswith(_HIDDEN_PREFIXES)


def require_go(binary, why):
    if binary.go_version is None:
        raise GobtError(f"{binary.display_path} is not a Go binary (it has no Go build info); {why}")


def _read_varint_string(data, pos):
    # Go's uvarint is DWARF's ULEB128.
    from .dwarfindex import _uleb

    length, pos = _uleb(data, pos)
    return data[pos : pos + length].decode("utf-8", "replace"), pos + length


class _MapFile:
    """A read-only file object over an mmap, for pyelftools."""

    def __init__(self, m):
        self._m = m
        self._pos = 0

    def seek(self, pos, whence=0):
        if whence == 0:
            self._pos = pos
        elif whence == 1:
            self._pos += pos
        else:
            self._pos = len(self._m) + pos
        return self._pos

    def tell(self):
        return self._pos

    def read(self, n=-1):
        end = len(self._m) if n is None or n < 0 else self._pos + n
        data = self._m[self._pos : end]
        self._pos += len(data)
        return data
