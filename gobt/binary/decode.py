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
architecture it knows (~25 ms, a large part of a cold start). The layout
of cs_insn read here is capstone 5's; on any other major version (or
without the library where the package keeps it) this falls back to the
package's disasm_lite, which gives the same instructions more slowly.
"""

import os

_ARCH = {"amd64": (3, 1 << 3), "arm64": (1, 0)}  # (CS_ARCH_X86, CS_MODE_64), (CS_ARCH_ARM64, CS_MODE_ARM)
_CS_OPT_DETAIL, _CS_OPT_OFF = 2, 0

# capstone 5's cs_insn: id (uint32), address (uint64), size (uint16),
# bytes[24], mnemonic[32], op_str[160], detail (pointer).
_ID, _ADDRESS, _SIZE, _MNEMONIC, _OP_STR, _INSN_SIZE = 0, 8, 16, 42, 74, 248

_lib = None  # (ctypes, CDLL), False when unusable
_handles = {}
_names = {}


def _library():
    global _lib
    if _lib is None:
        _lib = False
        try:
            _lib = _load()
        except (OSError, AttributeError, ImportError):
            pass
    return _lib


def _load():
    import ctypes
    import importlib.util

    spec = importlib.util.find_spec("capstone")
    if spec is None or not spec.submodule_search_locations:
        return False
    for folder in spec.submodule_search_locations:
        path = os.path.join(folder, "lib", "libcapstone.so")
        if os.path.exists(path):
            break
    else:
        return False
    lib = ctypes.CDLL(path, mode=getattr(os, "RTLD_DEEPBIND", 0))
    lib.cs_version.restype = ctypes.c_int
    lib.cs_version.argtypes = [ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int)]
    major, minor = ctypes.c_int(), ctypes.c_int()
    lib.cs_version(ctypes.byref(major), ctypes.byref(minor))
    if major.value != 5:
        return False
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
    return ctypes, lib


def _handle(arch):
    h = _handles.get(arch)
    if h is None:
        ctypes, lib = _lib
        handle = ctypes.c_size_t()
        if lib.cs_open(*_ARCH[arch], ctypes.byref(handle)) != 0:
            raise OSError(f"capstone cannot open {arch}")
        lib.cs_option(handle.value, _CS_OPT_DETAIL, _CS_OPT_OFF)
        h = _handles[arch] = handle.value
    return h


def ids_named(arch, wanted):
    """The instruction ids whose capstone name satisfies wanted(name)."""
    key = (arch, wanted)
    found = _names.get(key)
    if found is None:
        _, lib = _lib
        h = _handle(arch)
        found = set()
        misses = 0
        i = 1
        while misses < 64:  # ids are dense from 1 to the architecture's last
            name = lib.cs_insn_name(h, i)
            if name is None:
                misses += 1
            else:
                misses = 0
                if wanted(name.decode()):
                    found.add(i)
            i += 1
        _names[key] = found
    return found


class Decoded:
    """The instructions decoded from the start of `code` until capstone
    stops: addresses, sizes, ids (None in the fallback), and each one's
    (mnemonic, op_str) on demand."""

    def __init__(self, arch, code, address):
        self.arch = arch
        self._raw = None
        self._texts = None
        lib = _library()
        if lib:
            self._direct(lib, code, address)
        else:
            self._fallback(code, address)

    def _direct(self, lib, code, address):
        ctypes, cs = lib
        h = _handle(self.arch)
        out = ctypes.c_void_p()
        code = bytes(code)
        n = cs.cs_disasm(h, code, len(code), address, 0, ctypes.byref(out))
        if n == 0:
            self.addresses, self.sizes, self.ids = [], [], []
            return
        try:
            raw = ctypes.string_at(out, n * _INSN_SIZE)
        finally:
            cs.cs_free(out, n)
        view = memoryview(raw)
        self.ids = view.cast("I")[_ID // 4 :: _INSN_SIZE // 4].tolist()
        self.addresses = view[_ADDRESS:].cast("Q")[:: _INSN_SIZE // 8].tolist()
        self.sizes = view[_SIZE:].cast("H")[:: _INSN_SIZE // 2].tolist()
        self._raw = raw

    def _fallback(self, code, address):
        insns = list(_disassembler(self.arch).disasm_lite(bytes(code), address))
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
        raw = self._raw
        base = i * _INSN_SIZE
        m = raw[base + _MNEMONIC : raw.index(b"\0", base + _MNEMONIC)].decode("ascii")
        o = raw[base + _OP_STR : raw.index(b"\0", base + _OP_STR)].decode("ascii")
        return m, o

    def where(self, wanted_names):
        """Indexes of the instructions whose id's name satisfies
        wanted_names(name) (every index in the fallback: then the caller
        looks at each mnemonic itself)."""
        if self.ids is None:
            return range(len(self.addresses))
        ids = ids_named(self.arch, wanted_names)
        return [i for i, x in enumerate(self.ids) if x in ids]


_disassemblers = {}


def _disassembler(arch):
    cs = _disassemblers.get(arch)
    if cs is None:
        import capstone

        cs = capstone.Cs(*_ARCH[arch])
        cs.detail = False
        _disassemblers[arch] = cs
    return cs
