"""Parse: a bpftrace script, with gobt's extensions, into probes and uses.

The grammar lives in the top-level grammar/bpftrace.lark, installed as the
package gobt.grammar; lark turns it into tables once (tables.py) and
lalr.py runs them. Only the structure gobt rewrites
is extracted here (attach points, predicates, blocks, and the gobt helpers
inside blocks), each with its offsets in the original text, so the rewriter
can splice the text and leave every other byte alone.
"""

import os
import re
from ..record import dataclass, field

from ..errors import GobtError
from .signature import find_signature, parse_signature

GOBT_PROVIDERS = {"goret", "goentry", "gotrace"}
# uprobe:BIN:cpp:func names a C++ function to bpftrace: not a Go symbol.
LANGUAGE_PREFIXES = ("cpp:",)
UPROBE_PROVIDERS = {"uprobe", "u"}
HELPER_WORDS = {"goid", "goelapsed", "retval", "goarg"}
# gobt's own words in the probes it writes itself: gotrace's lines' indent.
# (Names starting with __gobt are gobt's, as man gobt says.)
GENERATED_WORDS = {"__gobt_nest"}

# What bpftrace accepts unquoted in a probe's function part (bpftrace 0.17's
# lexer); anything else in a Go symbol needs quotes.
BPFTRACE_UNQUOTED = re.compile(r"[_\-./a-zA-Z0-9#*]+\Z")
POSITIONAL = re.compile(r"\$(?:\d|#)")


@dataclass
class Span:
    start: int
    end: int


# pkg.Name, path/pkg.Name, pkg.(*T).M: an identifier, a dot, an identifier.
_GO_NAME = re.compile(r"^[\w/.\-]*\w\.[\w(]")


@dataclass
class AttachPoint:
    text: str
    span: Span
    provider: str
    target: str = ""  # the binary, unquoted
    func: str = ""  # the function (or pattern), unquoted
    func_quoted: bool = False
    func_offset: int = 0  # where `func` starts within `text`
    probe_offset: int | None = None  # the +N of "func"+N
    signature: object = None  # a signature.Signature declared after the name

    @property
    def is_gobt(self):
        return self.provider in GOBT_PROVIDERS

    @property
    def is_uprobe(self):
        return self.provider in UPROBE_PROVIDERS

    def needs_quoting(self):
        """An unquoted uprobe function bpftrace would not lex (`main.(*T).M`)."""
        return (
            self.is_uprobe
            and not self.func_quoted
            and bool(self.func)
            and not self.func.startswith(LANGUAGE_PREFIXES)
            and not BPFTRACE_UNQUOTED.match(self.func)
            # uprobe:/bin/bash:$1 is bpftrace's to fill in from its params
            and not POSITIONAL.search(self.func)
        )

    def may_name_go(self):
        """A uprobe at the entry of what may be a Go function (pkg.Name):
        in a stripped binary only gobt can find it (by .gopclntab)."""
        return (self.is_uprobe and self.probe_offset is None and "*" not in self.func
                and bool(_GO_NAME.search(self.func)))


@dataclass
class Use:
    """A gobt helper used inside a block: goarg/goerr/gotype(PATH), goid, goelapsed, retval."""

    kind: str
    span: Span
    path: str = ""  # goarg's argument, as written
    path_offset: int = 0  # where the path starts in the text


@dataclass
class Probe:
    attach_points: list
    span: Span  # from the first attach point to the closing brace
    predicate: Span | None
    block: Span
    uses: list = field(default_factory=list)
    words: set = field(default_factory=set)  # identifiers used in the block

    @property
    def is_gobt(self):
        # A declared signature is gobt's to remove, even where nothing reads it.
        return any(ap.is_gobt or ap.needs_quoting() or ap.signature is not None or ap.may_name_go()
                   for ap in self.attach_points)


@dataclass
class Script:
    source: object
    probes: list

    @property
    def words(self):
        return set().union(*(p.words for p in self.probes))

    @property
    def needs_rewrite(self):
        # retval alone is bpftrace's own (in a uretprobe); it is gobt's only
        # inside a goret, which is_gobt already counts.
        return any(p.is_gobt or any(u.kind != "retval" for u in p.uses) for p in self.probes)


def _grammar_path():
    # Run from a source tree (a git worktree, PYTHONPATH=., the installed
    # launcher), its own grammar: an editable install elsewhere maps
    # gobt.grammar to that other tree. (os.path: importlib.resources and
    # pathlib would cost a cold start ~5 ms.)
    found = source_tree_grammar()
    if found:
        return found
    from importlib.resources import files

    return files("gobt.grammar").joinpath("bpftrace.lark")


def source_tree_grammar():
    """grammar/bpftrace.lark of the source tree gobt runs from, or None."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
    path = os.path.join(root, "grammar", "bpftrace.lark")
    return path if os.path.isfile(os.path.join(root, "pyproject.toml")) and os.path.isfile(path) else None


_parser = None


def _get_parser():
    global _parser
    if _parser is None:
        from . import lalr, tables

        grammar = _grammar_path()
        if isinstance(grammar, str):
            with open(grammar, encoding="utf-8") as f:
                text = f.read()
        else:
            text = grammar.read_text()
        _parser = lalr.Parser(tables.load(text, "start", "bpftrace", shipped=tables.shipped_path(grammar)))
    return _parser


def split_attach_point(text):
    """provider:target:func, honouring quotes. Returns (parts, offsets)."""
    parts, offsets = [], []
    start = 0
    i = 0
    in_quote = False
    while i < len(text):
        c = text[i]
        if in_quote:
            if c == "\\":
                i += 1
            elif c == '"':
                in_quote = False
        elif c == '"':
            in_quote = True
        elif c == ":" and len(parts) < 2:
            parts.append(text[start:i])
            offsets.append(start)
            start = i + 1
        i += 1
    parts.append(text[start:])
    offsets.append(start)
    return parts, offsets


_FUNC_PLUS_OFFSET = re.compile(r'("(?:[^"\\]|\\.)*"|[^"+]+)\+(0[xX][0-9a-fA-F]+|\d+)\Z')


def _unquote(piece):
    if len(piece) >= 2 and piece[0] == '"' and piece[-1] == '"':
        return piece[1:-1], True
    return piece, False


def attach_point(text, start, source):
    """An AttachPoint from its text, found at offset `start` of `source`."""
    span = Span(start, start + len(text))
    parts, offsets = split_attach_point(text)
    ap = AttachPoint(text=text, span=span, provider=parts[0])
    if ap.provider in GOBT_PROVIDERS or ap.provider in UPROBE_PROVIDERS:
        if len(parts) != 3 or not parts[1] or not parts[2]:
            loc = source.location(span.start, len(text))
            raise GobtError(
                f"'{text}' is not of the form {ap.provider}:BINARY:FUNCTION",
                loc,
                [f"  for example: {ap.provider}:./app:main.handle"],
            )
        _check_utf8(parts[2], span.start + offsets[2], source)
        ap.target = _unquote(parts[1])[0]
        func = parts[2]
        if not func.startswith(LANGUAGE_PREFIXES):
            at = find_signature(func)
            if at > 0:
                sig_text = func[at:]
                func = func[:at].rstrip()
                ap.signature = parse_signature(sig_text, start + offsets[2] + at, source)
        m = _FUNC_PLUS_OFFSET.match(func)
        if m:
            func, ap.probe_offset = m.group(1), int(m.group(2), 0)
        ap.func, ap.func_quoted = _unquote(func)
        ap.func_offset = offsets[2]
    return ap


def _check_utf8(text, start, source):
    # Scripts are read with surrogateescape, so bytes that are not UTF-8
    # survive to here (a path may hold them); no Go symbol does.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise GobtError("this name is not valid UTF-8 (a byte 0x%02x); Go symbols are UTF-8"
                        % (ord(text[e.start]) & 0xFF), source.location(start + e.start)) from None


def parse(source):
    """Parse a Source into a Script, raising GobtError on a syntax error."""
    from .lalr import ParseError, Tree

    try:
        tree = _get_parser().parse(source.text)
    except ParseError as e:
        raise _syntax_error(source, e) from None

    probes = []
    for node in tree.children:
        if isinstance(node, Tree) and node.data == "probe":
            probes.append(_probe(node, source))
    return Script(source, probes)


def _probe(node, source):
    from .lalr import Token

    attach_list, *rest = node.children
    rest = [r for r in rest if r is not None]
    block = next((r for r in rest if r.data == "block"), None)
    predicate = next((r for r in rest if r.data == "predicate"), None)
    aps = [attach_point(str(t), t.start_pos, source) for t in attach_list.children]
    pred_span = None
    if predicate is not None:
        tok = predicate.children[0]
        pred_span = Span(tok.start_pos, tok.end_pos)
    if block is None:
        # gotrace's block is optional (it prints without one); bpftrace's never is.
        end = pred_span.end if pred_span is not None else aps[-1].span.end
        if predicate is not None or any(ap.provider != "gotrace" for ap in aps):
            raise GobtError("this probe has no block: a probe needs { ... } (only gotrace: may go without)",
                            source.location(aps[0].span.start, len(aps[0].text)))
        return Probe(attach_points=aps, span=Span(aps[0].span.start, end), predicate=None, block=Span(end, end))
    probe = Probe(
        attach_points=aps,
        span=Span(aps[0].span.start, block.meta.end_pos),
        predicate=pred_span,
        block=Span(block.meta.start_pos, block.meta.end_pos),
    )
    if pred_span is not None:
        probe.uses += _uses_in_predicate(source.text, pred_span)
    for tok in block.scan_values(lambda v: isinstance(v, Token)):
        if tok.type == "GOARG_CALL":
            text = str(tok)
            open_paren = text.index("(")
            inner = text[open_paren + 1 : -1]
            lead = len(inner) - len(inner.lstrip())
            probe.uses.append(
                Use(
                    text[:open_paren].strip(),
                    Span(tok.start_pos, tok.end_pos),
                    path=inner.strip(),
                    path_offset=tok.start_pos + open_paren + 1 + lead,
                )
            )
        elif tok.type == "WORD":
            word = str(tok)
            probe.words.add(word)
            if word in HELPER_WORDS or word in GENERATED_WORDS:
                probe.uses.append(Use(word, Span(tok.start_pos, tok.end_pos)))
    return probe


# The block's tokens that matter to gobt, for scanning a predicate (which the
# grammar keeps as one token): strings are skipped, fields are not helpers.
_PREDICATE_TOKENS = re.compile(
    r'(?P<string>"(?:[^"\\]|\\.)*")'
    r"|(?P<goarg>(?P<helper>goarg|goerr|gotype)\s*\((?P<path>[^()\"{};]*)\))"
    r"|(?P<field>(?:\.|->)[ \t]*[A-Za-z_]\w*)"
    r"|(?P<word>[$@]?[A-Za-z_]\w*)"
)


def _uses_in_predicate(text, span):
    uses = []
    for m in _PREDICATE_TOKENS.finditer(text, span.start + 1, span.end - 1):
        if m.group("goarg"):
            inner = m.group("path")
            lead = len(inner) - len(inner.lstrip())
            uses.append(Use(m.group("helper"), Span(m.start(), m.end()), inner.strip(), m.start("path") + lead))
        elif m.group("word") in HELPER_WORDS:
            uses.append(Use(m.group("word"), Span(m.start(), m.end())))
    return uses


def _syntax_error(source, e):
    token = e.token
    pos = token.start_pos if token is not None else e.pos
    at_end = token is not None and token.type == "$END"
    if pos is None or pos >= len(source.text) or at_end:
        end = len(source.text.rstrip()) or 1
        return GobtError(
            "unexpected end of script: is a '{', '\"' or '/*' left open?",
            source.location(end - 1),
        )
    if e.kind == "character":
        return GobtError(
            f"syntax error: unexpected character {source.text[pos]!r}", source.location(pos)
        )
    text = str(token)
    return GobtError(f"syntax error: unexpected {text!r}", source.location(pos, len(text)))
