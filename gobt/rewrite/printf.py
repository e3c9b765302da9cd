"""Rewrite: printf verbs, so a Go value gobt reads prints as Go prints it.

bpftrace's printf hands its format to C's: `%d` is C's 32-bit int on every
bpftrace gobt runs (0.17 and 0.23 alike: `printf("%d", (int64)-9000000000)`
prints -410065408, and a uint32 of 4000000000 prints -294967296). Go's
`int` is 64 bits, and Go prints unsigned values unsigned. bpftrace hands
every integer to printf as 64 bits, sign- or zero-extended by its type
(checked on both: `(int32)-5` with `%lu` is 18446744073709551611), so the
`l` forms print any integer whole.

Which printf arguments are changed: only one that IS a value gobt reads
(goarg, retval, goid, goelapsed, maybe in parentheses), whose Go type gobt
knows. There the verb takes its l-form: `%d` becomes `%ld` for a signed
value and `%lu` for an unsigned one (Go's %d), and `%u`, `%x`, `%X` of an
8-byte value become `%lu`, `%lx`, `%lX` (a narrower value loses no bits
to them). Verbs with a length modifier are the user's choice, and stay.

An argument that is the user's own expression on such a value
(`goarg(n) / 1000`) is bpftrace's expression, with bpftrace's meaning:
gobt cannot know what the user means by it, so it changes nothing there and
warns that `%d` prints only the low 32 bits. Changing every `%d` of a probe
would also change what a `%d` of the user's own 32-bit expressions prints
(`(uint32)x` above): gobt only changes what it can prove is a Go value.
"""

import os
import re
from ..record import dataclass

from ..errors import once, warn

# %[flags][width][.precision][length]conversion, as C's printf (and bpftrace's checker) reads it.
_VERB = re.compile(r"%(?P<flags>[-+ #0]*)(?:\d+|\*)?(?:\.(?:\d+|\*))?(?P<length>hh|h|ll|l|j|z|t)?(?P<conv>[a-zA-Z%])")
_WORD = re.compile(r"[$@]?[A-Za-z_]\w*")
_MAP = re.compile(r"@\w*")


@dataclass
class Call:
    """A printf call: the format literal's span (quotes included) and its args' spans."""

    format_start: int
    format_end: int
    args: list  # [(start, end)], whitespace trimmed


def _skip_string(text, i):
    """The offset after the string literal starting at text[i] == '"'."""
    i += 1
    while i < len(text) and text[i] != '"':
        i += 2 if text[i] == "\\" else 1
    return i + 1


def _skip_comment(text, i):
    """The offset after a comment at i, or i if none starts there."""
    if text.startswith("//", i):
        end = text.find("\n", i)
        return len(text) if end == -1 else end
    if text.startswith("/*", i):
        end = text.find("*/", i + 2)
        return len(text) if end == -1 else end + 2
    return i


def _skip_space(text, i, end):
    while i < end:
        j = _skip_comment(text, i)
        if j != i:
            i = j
        elif text[i].isspace():
            i += 1
        else:
            break
    return i


def _args(text, k, end):
    """The spans of the comma-separated arguments from k, and the offset of
    the bracket that closes them (or end)."""
    args = []
    first = True
    while k < end:
        arg_start = _skip_space(text, k if first else k + 1, end)
        first = False
        k, depth = arg_start, 0
        while k < end:
            ch = text[k]
            if ch == '"':
                k = _skip_string(text, k)
                continue
            if _skip_comment(text, k) != k:
                k = _skip_comment(text, k)
                continue
            if ch in "([{":
                depth += 1
            elif ch in ")]}":
                if depth == 0:
                    break
                depth -= 1
            elif ch == "," and depth == 0:
                break
            k += 1
        arg_end = k
        while arg_end > arg_start and text[arg_end - 1].isspace():
            arg_end -= 1
        args.append((arg_start, arg_end))
        if k >= end or text[k] != ",":
            break
    return args, k


def _words(text, start, end, word=None):
    """Each word (identifier, $var, @map; or what `word` matches) between
    start and end outside strings and comments: its match."""
    word = word or _WORD
    i = start
    while i < end:
        c = text[i]
        if c == '"':
            i = _skip_string(text, i)
            continue
        j = _skip_comment(text, i)
        if j != i:
            i = j
            continue
        m = word.match(text, i)
        if not m:
            i += 1
            continue
        yield m
        i = m.end()


def _opened(text, start, end, name):
    """(the call's start, the offset after its `(`) of each call of `name`
    between start and end (not a field or member of that name)."""
    for m in _words(text, start, end):
        before = text[m.start() - 1] if m.start() > 0 else ""
        if m.group(0) != name or before in (".", ">"):
            continue
        k = _skip_space(text, m.end(), end)
        if k < end and text[k] == "(":
            yield m.start(), k + 1


def printf_calls(text, start, end):
    """Every printf(...) call between start and end whose format is a literal."""
    calls = []
    for _, k in _opened(text, start, end, "printf"):
        k = _skip_space(text, k, end)
        if k >= end or text[k] != '"':
            continue
        fmt_end = _skip_string(text, k)
        call = Call(k, fmt_end, [])
        k = _skip_space(text, fmt_end, end)
        if k < end and text[k] == ",":
            call.args, _ = _args(text, k + 1, end)
        calls.append(call)
    return calls


def print_calls(text, start, end):
    """Every print(VALUE) call between start and end with one argument:
    (start of `print`, the argument's span, the offset of its `)`)."""
    out = []
    for at, k in _opened(text, start, end, "print"):
        args, close = _args(text, k, end)
        if len(args) == 1 and close < end and text[close] == ")":
            out.append((at, _bare(text, *args[0]), close))
    return out


def map_keys(text, start, end):
    """Every map key `@name[a, b]` between start and end: (name, offset of
    the @, the elements' spans, each without parentheses around all of it)."""
    out = []
    for m in _words(text, start, end, _MAP):
        k = _skip_space(text, m.end(), end)
        if k < end and text[k] == "[":
            args, _ = _args(text, k + 1, end)
            out.append((m.group(0), m.start(), [_bare(text, a, b) for a, b in args]))
    return out


def map_key_elements(text, start, end):
    """The spans of the elements of every map key between start and end."""
    return {span for _, _, spans in map_keys(text, start, end) for span in spans}


def _bare(text, start, end):
    """(start, end) of an argument without the parentheses around all of it."""
    while end - start >= 2 and text[start] == "(" and text[end - 1] == ")":
        depth = 0
        for k in range(start, end):
            depth += {"(": 1, ")": -1}.get(text[k], 0)
            if depth == 0 and k < end - 1:
                return start, end  # "(a) + (b)": the first ')' closes early
        start, end = start + 1, end - 1
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
    return start, end


def one_number(numbers):
    """(signed, size) for values read in several functions: signed if any is, the widest."""
    numbers = list(numbers)
    if not numbers or None in numbers:
        return None
    return any(s for s, _ in numbers), max(size for _, size in numbers)


def _widened(conv, number):
    """The conversion (with its new length) for a Go integer, or None to keep it."""
    signed, size = number
    if conv == "d":
        return "ld" if signed else "lu"
    if conv in ("u", "x", "X") and size == 8:
        return "l" + conv
    return None


def verb_edits(source, block_start, block_end, values, make_edit):
    """Edits of the printf verbs in one probe's block.

    values: {(start, end) of a gobt use: (signed, size) if it reads an
    integer, else None}. make_edit(start, end, text) builds an Edit.
    """
    text = source.text
    edits = []
    for call in printf_calls(text, block_start, block_end):
        literal = text[call.format_start + 1 : call.format_end - 1]
        verbs = [m for m in _VERB.finditer(literal) if m.group("conv") != "%"]
        for m, (arg_start, arg_end) in zip(verbs, call.args):
            conv, length = m.group("conv"), m.group("length")
            if length or conv not in "duxX":
                continue
            span = _bare(text, arg_start, arg_end)
            at = call.format_start + 1 + m.start("conv")
            if span in values:
                number = values[span]
                new = _widened(conv, number) if number is not None else None
                if new is not None:
                    edits.append(make_edit(at, at + 1, new))
                continue
            inside = [n for (s, e), n in values.items() if arg_start <= s and e <= arg_end and n is not None]
            if inside:
                warn(f"%{conv} prints only the low 32 bits of a value in bpftrace; gobt widens it for "
                     "a Go value it reads, but this argument is an expression of yours: write "
                     f"%l{conv} if it can exceed 32 bits",
                     source.location(call.format_start + 1 + m.start(), len(m.group(0))))
    return edits


# bpftrace's string size when BPFTRACE_STRLEN is not set, and its maximum.
DEFAULT_STRLEN = 64
MAX_STRLEN = 200


def string_size():
    """bpftrace's string size for this run (gobt execs bpftrace with this environment)."""
    try:
        return int(os.environ.get("BPFTRACE_STRLEN", DEFAULT_STRLEN))
    except ValueError:
        return DEFAULT_STRLEN  # bpftrace reports a bad value itself


def string_read(ctx, probe, location):
    """Note a Go string read in a probe: for the stack check, and the warning."""
    ctx.string_reads.setdefault(probe, location)
    warn_string_cut(ctx, location)


def warn_string_cut(ctx, location):
    """Once per program: a Go string longer than bpftrace's string size prints cut.

    A Go string carries its length, and bpftrace's str() keeps at most
    BPFTRACE_STRLEN - 1 bytes of it (63 by default); what a probe will
    meet is known only at run time, so gobt says it once, where the first
    string is read. bpftrace 0.17 cuts with no mark.
    """
    if getattr(ctx, "warned_string_cut", False):
        return
    if ctx.bpftrace.version >= (0, 23):
        return  # it marks a cut string itself, with a trailing ".." (seen on 0.23)
    ctx.warned_string_cut = True
    size = string_size()
    raise_it = (f"set BPFTRACE_STRLEN (at most {MAX_STRLEN}) in the environment to keep more"
                if size < MAX_STRLEN else "that is bpftrace's largest string size")
    # A fact about this bpftrace, not about the script: said once per
    # bpftrace and size (errors.once), whatever script first meets it.
    where = f"{location}: " if location else ""
    once(f"gobt: {where}warning: bpftrace keeps at most {size - 1} bytes of a string "
         f"(BPFTRACE_STRLEN={size}): a longer Go string prints cut; {raise_it}",
         key=f"string size {ctx.bpftrace.version} {size}")


def _spellings(func):
    """How bpftrace may name a uprobe gobt spelled with `func` (its part after BIN:)."""
    m = re.fullmatch(r'"?(.*?)"?\+(\d+)', func)
    if m:
        return {f"{m.group(1)}+{m.group(2)}", func}
    if re.fullmatch(r"0x[0-9a-fA-F]+", func):
        return {str(int(func, 16)), func, func.lower()}
    return {func.strip('"'), func}


def refused_probe(ctx, name):
    """The index of the probe (among those reading strings) that gobt made
    the uprobe bpftrace names for, or None."""
    for probe, made in ctx.attach_names.items():
        if probe in ctx.string_reads and any(name.endswith(":" + s) for _, f in made for s in _spellings(f)):
            return probe
    return None


def stack_error(ctx, name, strlen, fits):
    """The GobtError for a program bpftrace refuses for its BPF stack.

    name: the probe bpftrace named; it is matched to the user's probe that
    gobt made it for. fits: the largest BPFTRACE_STRLEN that compiles, or None.
    """
    from ..errors import GobtError

    probe = refused_probe(ctx, name)
    where = ctx.string_reads.get(probe)
    if where is None and ctx.string_reads:
        where = next(iter(ctx.string_reads.values()))
    version = ctx.bpftrace.version_text
    hints = [f"  each Go string it reads takes BPFTRACE_STRLEN ({strlen}) bytes of that stack, more than once"]
    if fits is not None:
        hints.append(f"  it fits with BPFTRACE_STRLEN={fits} or less; or read fewer strings in this probe")
    else:
        hints.append("  read fewer strings in this probe (split the printf or the probe)")
    return GobtError(f"bpftrace {version} would refuse this probe: it needs more than the 512 bytes of "
                     "BPF stack a probe may use", where, hints)
