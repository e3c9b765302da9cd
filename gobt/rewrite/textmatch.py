"""Whether what a printf would print equals a string literal, decided in BPF.

goerr(e) == "open /x: no such file or directory" asks about a text that
gobt never holds whole: bpftrace cannot join strings, so the text exists
only as one printf per error type, its constant parts in the format and
each Go string or number an argument (govalue.py). The literal is known
when gobt rewrites, so gobt splits it along each such format instead: the
format's constant parts must be where the literal has them, and each
argument must then equal the piece of the literal between them. A format
whose constants are not in the literal cannot print it, and costs nothing
in BPF; one that can becomes `arg == piece && ...`, a Go string compared
by its length and its bytes in the program's memory.
"""

import re

from ..errors import GobtError

# The verbs govalue's formats use, and the escapes of their constant text.
_TOKEN = re.compile(r'%%|%l?[sdux]|\\\\|\\"|\\n|\\t|[^%\\]+|.', re.S)
_ESCAPES = {"%%": "%", "\\\\": "\\", '\\"': '"', "\\n": "\n", "\\t": "\t"}
# The ways to split one literal along one format (a *net.OpError's
# "%s %s: %s" splits a DNS error's text in a dozen): more than this is not
# a question anyone asks of an error's text; refused, not truncated.
MAX_SPLITS = 64


def tokens(fmt):
    """[("text", constant) or ("verb", conversion)] of a printf format's body."""
    out = []
    for m in _TOKEN.finditer(fmt):
        t = m.group(0)
        if t.startswith("%") and t != "%%":
            out.append(("verb", t[-1]))
        else:
            t = _ESCAPES.get(t, t)
            if out and out[-1][0] == "text":
                out[-1] = ("text", out[-1][1] + t)
            else:
                out.append(("text", t))
    return out


def _prints(conv, piece):
    """Whether a printf conversion can print exactly `piece`."""
    if conv == "s":
        return True
    if conv == "x":
        return re.fullmatch(r"0|[1-9a-f][0-9a-f]*", piece) is not None
    if conv == "d":
        return re.fullmatch(r"0|-?[1-9][0-9]*", piece) is not None
    return re.fullmatch(r"0|[1-9][0-9]*", piece) is not None  # u


def splits(fmt, literal):
    """Each way the format prints `literal`: the arguments' pieces, in order."""
    toks = tokens(fmt)
    found = []

    def walk(i, pos, pieces):
        if len(found) > MAX_SPLITS:
            return
        if i == len(toks):
            if pos == len(literal):
                found.append(list(pieces))
            return
        kind, value = toks[i]
        if kind == "text":
            if literal.startswith(value, pos):
                walk(i + 1, pos + len(value), pieces)
            return
        after = toks[i + 1][1] if i + 1 < len(toks) and toks[i + 1][0] == "text" else None
        for end in range(pos, len(literal) + 1):
            if after is not None and not literal.startswith(after, end):
                continue
            if i + 1 == len(toks) and end != len(literal):
                continue
            piece = literal[pos:end]
            if _prints(value, piece):
                pieces.append((value, piece))
                walk(i + 1, end, pieces)
                pieces.pop()

    walk(0, 0, [])
    return found


def literal(text):
    """A bpftrace string literal of `text`."""
    out = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return f'"{out}"'


def unquote(source):
    """The text of a bpftrace string literal as written (quotes included)."""
    return re.sub(r'\\["\\nt]', lambda m: _ESCAPES[m.group(0)], source[1:-1])


def _string_parts(arg):
    """(pointer, length) of a `str(P, N)` or `str(P, N + 1)` argument, else None."""
    m = re.fullmatch(r"str\((.*)\)", arg.strip(), re.S)
    if not m:
        return None
    depth, cut = 0, None
    for k, ch in enumerate(m.group(1)):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            cut = k
    if cut is None:
        return None
    p, n = m.group(1)[:cut].strip(), m.group(1)[cut + 1:].strip()
    return p, n[:-4] if n.endswith(" + 1") else n


def _equals(conv, arg, piece, keep):
    if conv != "s":
        # The integer's own signedness (bpftrace 0.23 warns at a mix).
        value = int(piece, 16 if conv == "x" else 10)
        return f"({arg}) == {'(int64)' if conv == 'd' else '(uint64)'}{value}"
    raw = piece.encode()
    parts = _string_parts(arg)
    if parts is None:
        # Not a Go string's words: as a bpftrace string, as far as it is kept.
        if len(raw) > keep:
            return "0"
        return f"strncmp({arg}, {literal(piece)}, {len(raw) + 1}) == 0"
    pointer, length = parts
    return " && ".join([f"({length}) == (uint64){len(raw)}"] + _same_bytes(pointer, raw))


# A Go string is compared in place, a word at a time: no bpftrace string (a
# strncmp is a branch a byte, and dozens of them overwhelm the verifier;
# 0.17 also warns at `str() == "..."`), and every byte of it, however long.
_SIGNED = {8: "int64", 4: "int32", 2: "int16", 1: "int8"}


def _same_bytes(pointer, raw):
    """Terms true where the len(raw) bytes at pointer are raw's: 8 at a time,
    the last 8 overlapping the ones before (never a byte past the string)."""
    n = len(raw)
    if n >= 8:
        at = list(range(0, n - 7, 8)) + ([n - 8] if n % 8 else [])
        chunks = [(k, raw[k:k + 8]) for k in at]
    else:
        chunks, pos = [], 0
        for size in (4, 2, 1):
            if n - pos >= size:
                chunks.append((pos, raw[pos:pos + size]))
                pos += size
    return [f"*({_SIGNED[len(c)]} *)uptr({pointer} + {k}) == ({_SIGNED[len(c)]}){int.from_bytes(c, 'little', signed=True)}"
            for k, c in chunks]


def condition(fmt, args, text, keep, where=None):
    """A bpftrace expression true where printf(fmt, args...) prints `text`;
    "0" where it never can. keep: the bytes of a string bpftrace keeps."""
    ways = splits(fmt, text)
    if len(ways) > MAX_SPLITS:
        raise GobtError(f"{literal(text)} can be split along an error's text in more than {MAX_SPLITS} ways: "
                        "compare a shorter text, or the parts with goarg", where)
    alternatives = []
    for way in ways:
        terms = [_equals(conv, arg, piece, keep) for (conv, piece), arg in zip(way, args)]
        if "0" in terms:
            continue
        alternatives.append(" && ".join(terms) if terms else "1")
    if not alternatives:
        return "0"
    return " || ".join(f"({a})" for a in alternatives)
