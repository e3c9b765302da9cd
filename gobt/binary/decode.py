"""capstone's decoder over a function's bytes, without a Python object per
instruction.

capstone's own binding (disasm_lite) builds a tuple and decodes two
strings for every instruction: ~2 us each, 4 s for cmd/go's 1.7 million.
gobt looks at a few of them (RETs, jumps, the prologue), so this calls
libcapstone's cs_disasm once per function and reads the instructions'
ids, addresses and sizes out of the result in bulk; the text of an
instruction is decoded only when asked for.

The library is the one the capstone package ships, loaded with ctypes
directly: importing the package loads the constants of every
architecture it knows (60-170 ms here, most of a cold start). So the
architecture and mode numbers are read from the package's own source
text (they changed in capstone 6: 3, X86 in 5, is MIPS there), and the
layout of cs_insn is the one of the library's major version (5 or 6).
A layout is trusted only after it decodes a known instruction pair
right; on any other version (or without the library where the package
keeps it) this falls back to the package's disasm_lite, which gives the
same instructions more slowly. A capstone that cannot decode an
architecture at all is a DecoderUnusable, which names its version: never
a listing of functions that cannot be disassembled.
"""

import os
import re

from ..errors import DecoderUnusable

# The constants each architecture needs, by their names in capstone 5 and 6
# (capstone 6 calls ARM64 AARCH64 and keeps ARM64 as an alias in places).
_CONSTANTS = {"amd64": (("CS_ARCH_X86",), "CS_MODE_64"),
              "arm64": (("CS_ARCH_ARM64", "CS_ARCH_AARCH64"), "CS_MODE_ARM")}
_CS_OPT_DETAIL, _CS_OPT_OFF = 2, 0  # the same in capstone 5 and 6

# cs_insn by the library's major version: (id, address, size, mnemonic,
# op_str, sizeof). 5: id (uint32), address (uint64), size (uint16),
# bytes[24], mnemonic[32], op_str[160], detail. 6 puts alias_id (uint64)
# after id, and is_alias, usesAliasDetails, illegal before detail.
_LAYOUTS = {5: (0, 8, 16, 42, 74, 248), 6: (0, 16, 24, 50, 82, 256)}

# A pair each decoder must get right before gobt trusts it: (bytes,
# [(size, mnemonic)]). amd64 `mov rbp, rsp; ret`, arm64 `stp x29, x30,
# [sp, #-0x10]!; ret`.
_KNOWN = {"amd64": (bytes.fromhex("4889e5c3"), [(3, "mov"), (1, "ret")]),
          "arm64": (bytes.fromhex("fd7bbfa9c0035fd6"), [(4, "stp"), (4, "ret")])}
_KNOWN_AT = 0x401000

_lib = None  # a _Library, False when unusable
_handles = {}
_names = {}


class _Library:
    __slots__ = ("ctypes", "cs", "version", "arches", "layout")

    def __init__(self, ctypes, cs, version, arches, layout):
        self.ctypes, self.cs, self.version, self.arches, self.layout = ctypes, cs, version, arches, layout


def _library():
    global _lib
    if _lib is None:
        _lib = False
        try:
            _lib = _load() or False
        except (OSError, AttributeError, ImportError, ValueError):
            pass
    return _lib


def _package_folder():
    import importlib.util

    spec = importlib.util.find_spec("capstone")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        if os.path.exists(os.path.join(folder, "lib", "libcapstone.so")):
            return folder
    return None


_ASSIGNMENT = re.compile(r"^(CS_(?:ARCH|MODE)_\w+)\s*=\s*\(?\s*(\d+)\s*(?:<<\s*(\d+)\s*)?\)?\s*(?:#.*)?$", re.M)


def package_constants(text):
    """{"amd64": (arch, mode), ...} from the capstone package's __init__.py
    text: the values its own `capstone.Cs` would be given. An architecture
    whose names are missing is left out."""
    values = {}
    for m in _ASSIGNMENT.finditer(text):
        values.setdefault(m.group(1), int(m.group(2)) << int(m.group(3) or 0))
    found = {}
    for arch, (arch_names, mode_name) in _CONSTANTS.items():
        number = next((values[n] for n in arch_names if n in values), None)
        if number is not None and mode_name in values:
            found[arch] = (number, values[mode_name])
    return found


def _load():
    import ctypes

    folder = _package_folder()
    if folder is None:
        return None
    with open(os.path.join(folder, "__init__.py"), encoding="utf-8") as f:
        arches = package_constants(f.read())
    lib = ctypes.CDLL(os.path.join(folder, "lib", "libcapstone.so"), mode=getattr(os, "RTLD_DEEPBIND", 0))
    lib.cs_version.restype = ctypes.c_int
    lib.cs_version.argtypes = [ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int)]
    major, minor = ctypes.c_int(), ctypes.c_int()
    lib.cs_version(ctypes.byref(major), ctypes.byref(minor))
    layout = _LAYOUTS.get(major.value)
    if layout is None:
        return None
    lib.cs_open.restype = ctypes.c_int
    lib.cs_open.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.POINTER(ctypes.c_size_t)]
    lib.cs_option.restype = ctypes.c_int
    lib.cs_option.argtypes = [ctypes.c_size_t, ctypes.c_int, ctypes.c_size_t]
    lib.cs_disasm.restype = ctypes.c_size_t
    lib.cs_disasm.argtypes = [ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint64,
                              ctypes.c_size_t, ctypes.POINTER(ctypes.c_void_p)]
    lib.cs_free.restype = None
    lib.cs_free.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    lib.cs_insn_name.restype = ctypes.c_char_p
    lib.cs_insn_name.argtypes = [ctypes.c_size_t, ctypes.c_uint]
    return _Library(ctypes, lib, f"{major.value}.{minor.value}", arches, layout)


def installed_version():
    """The capstone package's version, for messages."""
    try:
        from importlib.metadata import version

        return version("capstone")
    except Exception:  # noqa: BLE001 - no metadata: say what the library says
        lib = _library()
        return lib.version if lib else "(unknown version)"


def _unusable(arch, why):
    return DecoderUnusable(
        f"the installed capstone {installed_version()} cannot decode {arch} ({why}); "
        "gobt needs capstone 5 or 6 (pip install 'capstone>=5,<7')")


def _handle(arch):
    """libcapstone's handle for arch, proven on a known pair; None when the
    direct path cannot decode arch (the binding's then does)."""
    if arch in _handles:
        return _handles[arch]
    _handles[arch] = None
    lib = _library()
    if lib and arch in lib.arches:
        ctypes = lib.ctypes
        handle = ctypes.c_size_t()
        if lib.cs.cs_open(*lib.arches[arch], ctypes.byref(handle)) == 0:
            lib.cs.cs_option(handle.value, _CS_OPT_DETAIL, _CS_OPT_OFF)
            code, want = _KNOWN[arch]
            got = _direct(lib, handle.value, code, _KNOWN_AT)
            if got is not None and _proven(got[1], got[2], [got[3](i)[0] for i in range(len(got[1]))], want):
                _handles[arch] = handle.value
    return _handles[arch]


def _proven(addresses, sizes, mnemonics, want):
    expected = [_KNOWN_AT + sum(size for size, _ in want[:i]) for i in range(len(want))]
    return (addresses == expected and sizes == [size for size, _ in want]
            and mnemonics == [m for _, m in want])


def ids_named(arch, wanted):
    """The instruction ids whose capstone name satisfies wanted(name)."""
    key = (arch, wanted)
    found = _names.get(key)
    if found is None:
        cs = _lib.cs
        h = _handle(arch)
        found = set()
        misses = 0
        i = 1
        while misses < 64:  # ids are dense from 1 to the architecture's last
            name = cs.cs_insn_name(h, i)
            if name is None:
                misses += 1
            else:
                misses = 0
                if wanted(name.decode()):
                    found.add(i)
            i += 1
        _names[key] = found
    return found


def _direct(lib, handle, code, address):
    """(raw cs_insn array, addresses, sizes, text(i), ids) by libcapstone, or
    None when it decodes nothing."""
    ctypes, cs = lib.ctypes, lib.cs
    id_at, address_at, size_at, mnemonic_at, op_str_at, insn_size = lib.layout
    out = ctypes.c_void_p()
    n = cs.cs_disasm(handle, code, len(code), address, 0, ctypes.byref(out))
    if n == 0:
        return None
    try:
        raw = ctypes.string_at(out, n * insn_size)
    finally:
        cs.cs_free(out, n)
    view = memoryview(raw)
    ids = view.cast("I")[id_at // 4 :: insn_size // 4].tolist()
    addresses = view[address_at:].cast("Q")[:: insn_size // 8].tolist()
    sizes = view[size_at:].cast("H")[:: insn_size // 2].tolist()

    def text(i):
        base = i * insn_size
        m = raw[base + mnemonic_at : raw.index(b"\0", base + mnemonic_at)].decode("ascii")
        o = raw[base + op_str_at : raw.index(b"\0", base + op_str_at)].decode("ascii")
        return m, o

    return raw, addresses, sizes, text, ids


class Decoded:
    """The instructions decoded from the start of `code` until capstone
    stops: addresses, sizes, ids (None in the fallback), and each one's
    (mnemonic, op_str) on demand."""

    def __init__(self, arch, code, address):
        self.arch = arch
        self._text = None
        self._texts = None
        code = bytes(code)
        h = _handle(arch)
        if h is not None:
            got = _direct(_lib, h, code, address)
            if got is None:
                self.addresses, self.sizes, self.ids = [], [], []
            else:
                _, self.addresses, self.sizes, self._text, self.ids = got
        else:
            self._fallback(code, address)

    def _fallback(self, code, address):
        insns = list(_disassembler(self.arch).disasm_lite(code, address))
        self.addresses = [i[0] for i in insns]
        self.sizes = [i[1] for i in insns]
        self.ids = None
        self._texts = [(i[2], i[3]) for i in insns]

    def __len__(self):
        return len(self.addresses)

    def text(self, i):
        """(mnemonic, op_str) of the i-th instruction."""
        if self._texts is not None:
            return self._texts[i]
        return self._text(i)

    def where(self, wanted_names):
        """Indexes of the instructions whose id's name satisfies
        wanted_names(name) (every index in the fallback: then the caller
        looks at each mnemonic itself)."""
        if self.ids is None:
            return range(len(self.addresses))
        ids = ids_named(self.arch, wanted_names)
        return [i for i, x in enumerate(self.ids) if x in ids]


_disassemblers = {}


def binding_constants(arch):
    """(arch, mode) for capstone.Cs, from the imported package."""
    import capstone

    arch_names, mode_name = _CONSTANTS[arch]
    number = next((getattr(capstone, n) for n in arch_names if hasattr(capstone, n)), None)
    if number is None or not hasattr(capstone, mode_name):
        raise _unusable(arch, f"it has no {' or '.join(arch_names)}")
    return number, getattr(capstone, mode_name)


def _disassembler(arch):
    cs = _disassemblers.get(arch)
    if cs is None:
        try:
            import capstone
        except ImportError as e:
            raise DecoderUnusable(f"gobt cannot decode {arch}: capstone does not import ({e}); "
                                  "gobt needs capstone 5 or 6 (pip install 'capstone>=5,<7')") from None
        try:
            cs = capstone.Cs(*binding_constants(arch))
            cs.detail = False
            code, want = _KNOWN[arch]
            insns = list(cs.disasm_lite(code, _KNOWN_AT))
        except capstone.CsError as e:
            raise _unusable(arch, str(e)) from None
        if not _proven([i[0] for i in insns], [i[1] for i in insns], [i[2] for i in insns], want):
            got = "; ".join(f"{m} {o}".strip() for _, _, m, o in insns) or "nothing"
            raise _unusable(arch, f"it decodes {code.hex()} as {got}")
        _disassemblers[arch] = cs
    return cs
