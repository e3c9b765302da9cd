"""The lengths of amd64 instructions, without capstone: the warm path's
instruction-boundary proof (proof.still_holds).

A reused program's probe offsets are proven again on each run, by decoding
their functions from the start. capstone costs ~7 ms to load (ctypes and a
library with every architecture in it); a warm run is ~40 ms in all. Go's
compiler emits a small part of the instruction set, and an instruction's
length needs only its prefixes, opcode, ModRM/SIB and immediate size, so
this decoder covers the one- and two-byte maps and the 0F38/0F3A maps.
Whatever it does not know (VEX/EVEX/XOP, 3DNow!, opcodes invalid in 64-bit
mode, an operand-size prefix on a near branch) it does not guess: None, and
the caller decodes with capstone instead. tests/test_x86len.py compares it
with capstone over every function of real Go binaries.
"""

# One-byte map, by opcode: what follows the opcode.
#   "m": ModRM; "i1"/"i2"/"iz": an immediate of 1, 2, or 4 bytes (2 with
#   0x66); "mi1"/"miz": ModRM then such an immediate; "" nothing; None:
#   not decoded here (invalid in 64-bit mode, a prefix handled apart, VEX).
_ONE = [None] * 256
for _op in range(0x40):
    if _op & 7 < 4:
        _ONE[_op] = "m"  # ALU r/m forms
    elif _op & 7 == 4:
        _ONE[_op] = "i1"  # ALU AL, imm8
    elif _op & 7 == 5:
        _ONE[_op] = "iz"  # ALU eAX, imm
for _op in list(range(0x50, 0x60)) + list(range(0x90, 0x9A)) + list(range(0x9B, 0xA0)) + \
        [0x6C, 0x6D, 0x6E, 0x6F, 0xA4, 0xA5, 0xA6, 0xA7, 0xAA, 0xAB, 0xAC, 0xAD, 0xAE, 0xAF,
         0xC3, 0xC9, 0xCB, 0xCC, 0xCF, 0xD7, 0xEC, 0xED, 0xEE, 0xEF, 0xF1, 0xF4, 0xF5,
         0xF8, 0xF9, 0xFA, 0xFB, 0xFC, 0xFD]:
    _ONE[_op] = ""
for _op in list(range(0x70, 0x80)) + [0x6A, 0xA8, 0xCD, 0xE0, 0xE1, 0xE2, 0xE3, 0xE4, 0xE5, 0xE6, 0xE7, 0xEB] + \
        list(range(0xB0, 0xB8)):
    _ONE[_op] = "i1"
for _op in list(range(0x84, 0x8F)) + [0x63, 0xD0, 0xD1, 0xD2, 0xD3, 0xFE, 0xFF] + list(range(0xD8, 0xE0)):
    _ONE[_op] = "m"
for _op, _what in {0x68: "iz", 0x69: "miz", 0x6B: "mi1", 0x80: "mi1", 0x81: "miz", 0x83: "mi1",
                   0xA9: "iz", 0xC0: "mi1", 0xC1: "mi1", 0xC2: "i2", 0xC6: "mi1", 0xC7: "miz",
                   0xCA: "i2", 0xE8: "i4", 0xE9: "i4"}.items():
    _ONE[_op] = _what
# 0x06/07/0E/16/17/1E/1F/27/2F/37/3F, 0x60-0x62, 0x82, 0x9A, 0xC4/C5 (VEX),
# 0xC8 (ENTER), 0xCE, 0xD4-0xD6, 0xEA stay None; so do the prefixes, and the
# opcodes handled in length() itself (0x8F, 0xA0-0xA3, 0xB8-0xBF, 0xF6, 0xF7).
for _op in (0x06, 0x07, 0x0E, 0x16, 0x17, 0x1E, 0x1F, 0x27, 0x2F, 0x37, 0x3F, 0x26, 0x2E, 0x36, 0x3E):
    _ONE[_op] = None

# Two-byte map (0F xx).
_TWO = [None] * 256
for _op in [0x00, 0x01, 0x02, 0x03, 0x0D, 0xA3, 0xA5, 0xAB, 0xAD, 0xAE, 0xAF, 0xB9, 0xC3, 0xC7] + \
        list(range(0x10, 0x24)) + list(range(0x28, 0x30)) + list(range(0x40, 0x70)) + \
        [0x74, 0x75, 0x76, 0x7C, 0x7D, 0x7E, 0x7F] + list(range(0x90, 0xA0)) + \
        list(range(0xB0, 0xB9)) + list(range(0xBB, 0xC2)) + list(range(0xD0, 0x100)):
    _TWO[_op] = "m"
for _op in [0x05, 0x06, 0x07, 0x08, 0x09, 0x0B, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x37, 0x77,
            0xA0, 0xA1, 0xA2, 0xA8, 0xA9, 0xAA] + list(range(0xC8, 0xD0)):
    _TWO[_op] = ""
for _op in [0x70, 0x71, 0x72, 0x73, 0xA4, 0xAC, 0xBA, 0xC2, 0xC4, 0xC5, 0xC6]:
    _TWO[_op] = "mi1"
for _op in range(0x80, 0x90):
    _TWO[_op] = "i4"  # Jcc rel32
# 0F 78/79 stay None: VMREAD/VMWRITE, but EXTRQ/INSERTQ (two immediates)
# with a 66 or F2 prefix.
_TWO[0x38] = "0f38"
_TWO[0x3A] = "0f3a"

_PREFIXES = frozenset([0xF0, 0xF2, 0xF3, 0x2E, 0x36, 0x3E, 0x26, 0x64, 0x65, 0x66, 0x67])


# Each kind as (ModRM follows, immediate bytes), -1 for "iz".
_KINDS = {"": (False, 0), "m": (True, 0), "i1": (False, 1), "i2": (False, 2), "i4": (False, 4), "i8": (False, 8),
          "iz": (False, -1), "mi1": (True, 1), "miz": (True, -1), "0f38": "0f38", "0f3a": "0f3a", None: None}
_ONE = [_KINDS[k] for k in _ONE]
_TWO = [_KINDS[k] for k in _TWO]
_MOV_IMM = ((False, -1), (False, 8))  # B8-BF without and with REX.W
_TEST_IMM = {0xF6: (True, 1), 0xF7: (True, -1)}


def length(code, at):
    """The length of the instruction at code[at], or None when this
    decoder does not know it (the caller then asks capstone)."""
    i = at
    end = min(len(code), at + 15)
    opsize16 = addr32 = False
    while i < end and code[i] in _PREFIXES:
        opsize16 |= code[i] == 0x66
        addr32 |= code[i] == 0x67
        i += 1
    rex_w = False
    if i < end and 0x40 <= code[i] <= 0x4F:
        rex_w = bool(code[i] & 8)
        i += 1
    if i >= end:
        return None
    op = code[i]
    i += 1
    if op == 0x0F:
        if i >= end:
            return None
        op2 = code[i]
        i += 1
        kind = _TWO[op2]
        if kind == "0f38" or kind == "0f3a":
            if i >= end:
                return None
            i += 1  # the third opcode byte
            kind = (True, 0) if kind == "0f38" else (True, 1)
        elif kind == (False, 4) and opsize16:
            return None  # a 16-bit Jcc: Intel and AMD differ
    else:
        kind = _ONE[op]
        if kind is None:
            if 0xB8 <= op <= 0xBF:  # MOV r, imm: 8 bytes with REX.W
                kind = _MOV_IMM[rex_w]
            elif 0xA0 <= op <= 0xA3:  # MOV AL/eAX <-> moffs
                kind = (False, 4 if addr32 else 8)
            elif op in _TEST_IMM:  # TEST r/m, imm is /0 and /1 only
                if i >= end:
                    return None
                kind = _TEST_IMM[op] if (code[i] >> 3) & 7 in (0, 1) else (True, 0)
            elif op == 0x8F:  # POP r/m is /0; else XOP
                if i >= end or (code[i] >> 3) & 7:
                    return None
                kind = (True, 0)
            else:
                return None
        elif kind == (False, 4) and opsize16:
            return None  # CALL/JMP rel16
    modrm, imm = kind
    if modrm:
        if i >= end:
            return None
        byte = code[i]
        i += 1
        mod, rm = byte >> 6, byte & 7
        if mod != 3:
            if rm == 4:
                if i >= end:
                    return None
                if mod == 0 and code[i] & 7 == 5:
                    i += 4  # SIB without a base: disp32
                i += 1
            elif mod == 0 and rm == 5:
                i += 4  # RIP-relative
            i += 1 if mod == 1 else 4 if mod == 2 else 0
    i += (2 if opsize16 else 4) if imm < 0 else imm
    return i - at if i <= end else None


def boundaries(code, until):
    """The offsets of instruction starts in code, from 0 up to `until`
    (past it, decoding stops); None if an instruction on the way is one
    this decoder does not know."""
    starts = set()
    at = 0
    size = len(code)
    while at <= until and at < size:
        starts.add(at)
        n = length(code, at)
        if n is None:
            return None
        at += n
    return starts
