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
    if _comparable(name) != _comparable(fn.name):
        raise Stale(f".gopclntab names the function at 0x{fn.start:x} {name}, not {fn.name}")
    return start, min(end, fn.end)


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


def still_holds(proofs):
    """Whether the probes a cached program was made of still hold: each
    function's bytes as they were, each RET a RET. proofs: [path, file
    offset, size, [RET offsets], digest, arch] per function."""
    fds = {}
    try:
        for path, file_start, size, rets, sum_, arch in proofs:
            if path not in fds:
                fds[path] = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            code = os.pread(fds[path], size, file_start)
            if len(code) != size or digest(code) != sum_:
                return False
            if not all(is_ret(arch, code, r) for r in rets):
                return False
        return True
    except (OSError, ValueError, TypeError, OverflowError):
        return False
    finally:
        for fd in fds.values():
            os.close(fd)


def refuse(stale, where):
    """The error when an offset gobt computed afresh still fails its proof."""
    return GobtError(f"gobt will not place this probe: {stale}", where,
                     ["  gobt's own analysis disagrees with the binary's bytes; this is a bug in gobt, "
                      "please report it with the binary"])
