"""A probe's attach point, spelled as the installed bpftrace takes it, and
proven on the binary's bytes before it is (binary/proof.py)."""

from ..binary.proof import prove, record
from ..errors import UnreachableOffset
from ..lang.script import BPFTRACE_UNQUOTED


def uprobe_at(target, binary, fn, offset, ctx, loc, ret=False):
    """A uprobe at fn+offset. Every probe gobt writes is made here, so here
    each is proven on the bytes (proof.py): a RET if `ret`, else an
    instruction boundary; and noted as proven, with its text, for the
    program cache to prove again on reuse."""
    file_start, size, sum_ = prove(binary, fn, offset, ret)
    text = _spelled(target, binary, fn, offset, ctx, loc, ret)
    record(ctx.proofs, binary, fn, offset, ret, (file_start, size, sum_), text)
    # Which user probe each uprobe is made for, to place bpftrace's stack errors (printf.stack_error).
    ctx.attach_names.setdefault(ctx.current_probe, []).append((target, text[len(f"uprobe:{target}:"):]))
    return text


def _spelled(target, binary, fn, offset, ctx, loc, ret):
    """A uprobe at fn+offset, spelled as the installed bpftrace accepts it.

    By name where bpftrace finds exactly this function by that name; else
    "sym"+offset where this bpftrace checks offsets itself and no wildcard
    character can make it drop the offset; else by file offset.
    """
    bt = ctx.bpftrace
    # A '"' (a struct tag in a generic's shape) cannot be quoted; a name two
    # functions share names neither to bpftrace: both go by address.
    escapes = any(c in fn.name for c in '"\\') or not _unique(binary, fn)
    if not binary.stripped:  # a stripped binary has no names for bpftrace
        if offset == 0 and not escapes and _names_only(binary, fn):
            return f'uprobe:{target}:{fn.name if not _needs_quotes(fn.name) else chr(34) + fn.name + chr(34)}'
        if bt.attach_form == "sym_offset":
            if bt.offset_needs_unsafe:
                ctx.needs_unsafe = f"bpftrace {bt.version_text} without bfd attaches at offsets only with --unsafe"
            if not _has_glob(fn.name) and not escapes:
                return f'uprobe:{target}:"{fn.name}"+{offset}'
            # A '*' in the name would make bpftrace glob, and drop the
            # offset; a quote or backslash (a struct tag in a generic's
            # name) cannot be spelled in a probe: give the address, which
            # it maps back to fn+offset and checks itself.
            return f"uprobe:{target}:0x{fn.start + offset:x}"
    file_offset = binary.file_offset(fn.start + offset)
    _check_not_in_symbol(binary, file_offset, fn, ctx, loc)
    ctx.proven.add((target.strip('"'), file_offset))  # bpftrace 0.17 warns; messages.py hides it
    if binary.stripped:
        ctx.needs_unsafe = f"{binary.display_path} is stripped: bpftrace can only take file offsets in it"
    else:
        ctx.needs_unsafe = f"bpftrace {bt.version_text} without bfd attaches at offsets only by file offset"
    return f"uprobe:{target}:0x{file_offset:x}"


def _unique(binary, fn):
    return binary.stripped or not binary.symbols.shared(fn.name)


def _names_only(binary, fn):
    """Whether bpftrace, reading every '*' as a wildcard, finds only fn by its name."""
    if not _has_glob(fn.name):
        return True
    if "?" in fn.name or "[" in fn.name:
        return False
    return len(binary.symbols.glob(fn.name)) == 1


def _needs_quotes(name):
    return not BPFTRACE_UNQUOTED.match(name)


def _has_glob(name):
    # bpftrace >= 0.20 reads these as wildcards inside quotes, and its
    # multi-probe then silently drops the offset.
    return any(c in name for c in "*?[")


def _check_not_in_symbol(binary, file_offset, fn, ctx, loc):
    # The file-offset form only works when bpftrace cannot mistake the number
    # for an address inside some symbol (it then demands bfd to check it).
    covering = offset_covered(binary, file_offset)
    if covering:
        bt = ctx.bpftrace
        raise UnreachableOffset(
            f"bpftrace {bt.version_text} ({bt.capabilities}) cannot attach inside "
            f"{fn.name}: file offset 0x{file_offset:x} falls inside symbol {covering}",
            loc,
            ["  bpftrace < 0.22 without bfd takes an offset only as a file offset that no symbol's",
             "  address range covers, which rules out code more than ~4 MB into a binary's text"],
        )


def offset_covered(binary, file_offset):
    """The symbol a file offset falls inside, as bpftrace < 0.22 without bfd
    would read it (it then refuses the probe), or None."""
    if file_offset < binary.lowest_function:
        return None
    return binary.symbols.covering(file_offset)
