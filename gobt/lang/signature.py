"""Parse: a Go signature declared after a probe's function name.

    goret:./app:main.tick(n int, label string) (int, string)

A binary without DWARF (a release build, -ldflags='-s -w') says where a
function starts but not what it takes. The user can say it in Go's own
syntax; this module reads that text (grammar/gosignature.lark) into
DeclaredParams of TypeExprs, and checks what can be checked from the text
alone: known type names, Go's rule for named and unnamed params, and that
no struct of unknown layout is passed by value. Turning the declaration
into the Subprogram the ABI assigns (and checking it against the binary)
is the rewrite stage's (gobt/rewrite/signature.py).
"""

from ..record import dataclass, field

from ..errors import GobtError
from . import lalr, tables

# Go's predeclared types gobt can place: name -> (kind, size, signed).
BASIC_TYPES = {
    "bool": ("bool", 1, False),
    "int": ("int", 8, True), "int8": ("int", 1, True), "int16": ("int", 2, True),
    "int32": ("int", 4, True), "int64": ("int", 8, True), "rune": ("int", 4, True),
    "uint": ("uint", 8, False), "uint8": ("uint", 1, False), "uint16": ("uint", 2, False),
    "uint32": ("uint", 4, False), "uint64": ("uint", 8, False), "byte": ("uint", 1, False),
    "uintptr": ("uintptr", 8, False),
    "float32": ("float", 4, False), "float64": ("float", 8, False),
    "complex64": ("complex", 8, False), "complex128": ("complex", 16, False),
    "string": ("string", 16, False),
    "error": ("interface", 16, False), "any": ("interface", 16, False),
    "unsafe.Pointer": ("unsafe.Pointer", 8, False),
}


@dataclass
class TypeExpr:
    """One type as declared: what it is built of, and where it was written."""

    form: str  # name, pointer, slice, array, map, chan, func, interface, struct
    text: str  # Go's spelling, normalized (main.(*S) -> *main.S)
    offset: int  # in the script
    width: int
    elem: "TypeExpr | None" = None  # pointer, slice, array
    length: int = 0  # array

    @property
    def is_named(self):
        """A named type of some package (main.S): opaque without DWARF."""
        return self.form == "name" and self.text not in BASIC_TYPES


@dataclass
class DeclaredParam:
    name: str  # "" when unnamed (or _)
    type: TypeExpr
    offset: int  # of the name, or of the type when unnamed
    width: int


@dataclass
class Signature:
    text: str  # as written
    offset: int  # where it starts in the script
    params: list = field(default_factory=list)  # receiver first, for a method
    results: list = field(default_factory=list)

    @property
    def canonical(self):
        """One spelling per signature (a cache key): names and types only."""
        def part(ps):
            return ", ".join(f"{p.name or '_'} {p.type.text}" for p in ps)
        return f"({part(self.params)}) ({part(self.results)})"


def find_signature(func):
    """Where a signature starts in a probe's function part, or -1.

    The first '(' outside quotes and brackets that does not follow a '.':
    main.(*S).Get has its receiver's parentheses after a dot, main.tick(
    opens the params.
    """
    quoted = False
    depth = 0
    for i, c in enumerate(func):
        if quoted:
            if c == "\\":
                continue
            if c == '"':
                quoted = False
        elif c == '"':
            quoted = True
        elif c == "[":
            depth += 1
        elif c == "]":
            depth -= 1
        elif c == "(" and depth == 0 and i > 0 and func[i - 1] != ".":
            return i
    return -1


_parser = None


def _get_parser():
    global _parser
    if _parser is None:
        from importlib.resources import files
        from pathlib import Path

        # From a source tree its own grammar, as script._grammar_path does.
        path = Path(__file__).resolve().parents[2] / "grammar" / "gosignature.lark"
        if not (path.parents[1] / "pyproject.toml").is_file() or not path.is_file():
            path = files("gobt.grammar").joinpath("gosignature.lark")
        grammar = path.read_text()
        _parser = lalr.Parser(tables.load(grammar, "signature", "gosignature", shipped=tables.shipped_path(path)))
    return _parser


def parse_signature(text, offset, source):
    """A Signature from `text`, found at `offset` of `source`; GobtError at the column."""
    def at(pos, width=1):
        return source.location(offset + pos, width)

    try:
        tree = _get_parser().parse(text)
    except lalr.ParseError as e:
        raise _syntax_error(text, e, at) from None
    params_tree, *rest = tree.children
    sig = Signature(text, offset)
    sig.params = _items(params_tree, offset, at, "param")
    if rest:
        result = rest[0]
        if isinstance(result, lalr.Tree) and result.data == "params":
            sig.results = _items(result, offset, at, "result")
        else:
            t = _type(result, offset)
            sig.results = [DeclaredParam("", t, t.offset, t.width)]
    for p in sig.params + sig.results:
        _check_value(p.type, source)
    return sig


def _syntax_error(text, e, at):
    token = e.token
    pos = token.start_pos if token is not None else e.pos
    if pos is None or pos >= len(text) or (token is not None and token.type == "$END"):
        return GobtError("the signature ends too early: is a ')' missing?", at(max(0, len(text) - 1)),
                         ["  for example: main.tick(n int, label string) (int, error)"])
    word = text[pos:].split(None, 1)[0] if text[pos:].strip() else text[pos]
    if word[0].isalnum() or word[0] == "_":
        word = word.rstrip(",)]")
    else:
        word = word[0]
    expected = ""
    accepts = e.expected
    if "RPAR" in accepts and "COMMA" in accepts:
        expected = ": expected ',' or ')'"
    elif "IDENT" in accepts:
        expected = ": expected a type"
    return GobtError(f"syntax error in the signature: unexpected {word!r}{expected}", at(pos, len(word)),
                     ["  a Go signature: (name type, ...) (result types), e.g. (n int, label string) (int, error)"])


def _items(tree, base, at, role):
    """Go's rule: all params named or none; `a, b int` groups names."""
    raw = []  # (name token or None, type tree)
    for child in tree.children:
        if child is None:
            continue
        if isinstance(child, lalr.Tree) and child.data == "named":
            raw.append((child.children[0], child.children[1]))
        else:
            raw.append((None, child))
    if not any(name is not None for name, _ in raw):
        return [DeclaredParam("", t, t.offset, t.width) for t in (_type(tree_, base) for _, tree_ in raw)]
    out = []
    waiting = []  # bare names that take the next item's type
    for name, type_tree in raw:
        if name is None:
            if type_tree.data != "name" or "." in str(type_tree.children[0]):
                t = _type(type_tree, base)
                raise GobtError(f"mixed named and unnamed {role}s: give '{t.text}' a name too, as Go requires",
                                at(t.offset - base, t.width))
            waiting.append(type_tree.children[0])
            continue
        t = _type(type_tree, base)
        for tok in waiting + [name]:
            out.append(DeclaredParam(_name(tok), t, base + tok.start_pos, len(tok)))
        waiting = []
    if waiting:
        tok = waiting[-1]
        raise GobtError(f"{role} '{tok}' has no type: mixed named and unnamed {role}s",
                        at(tok.start_pos, len(tok)), ["  Go-style groups end with a type: (a, b int)"])
    return out


def _name(tok):
    name = str(tok)
    return "" if name == "_" else name


def _type(tree, base):
    """A TypeExpr from a parse tree (positions made absolute)."""
    start, end = tree.meta.start_pos, tree.meta.end_pos
    kids = [k for k in tree.children]
    form = tree.data
    t = TypeExpr(form, "", base + start, end - start)
    if form == "name":
        t.text = str(kids[0])
    elif form == "pointer":
        t.elem = _type(kids[0], base)
        t.text = "*" + t.elem.text
    elif form == "slice":
        t.elem = _type(kids[0], base)
        t.text = "[]" + t.elem.text
    elif form == "array":
        t.length = int(kids[0])
        t.elem = _type(kids[1], base)
        t.text = f"[{t.length}]{t.elem.text}"
    elif form == "map":
        key, value = _type(kids[0], base), _type(kids[1], base)
        t.text = f"map[{key.text}]{value.text}"
    elif form == "chan":
        elem = _type(kids[-1], base)
        t.text = (str(kids[0]).replace(" ", "") if len(kids) == 2 else "chan") + " " + elem.text
    elif form == "func":
        t.text = "func(...)"  # one word, whatever it takes
    elif form == "interface":
        # Its methods are not read: only whether it has any (an itab or a type first).
        t.text = "interface {...}" if kids else "interface {}"
    elif form == "struct":
        t.text = "struct {...}"
    return t


# The standard library's commonest interfaces, by the names a declaration
# spells them with: a declaration cannot name an interface (its two words
# are any, error or interface{...}), and these are never structs.
KNOWN_INTERFACES = {
    "io.Reader", "io.Writer", "io.Closer", "io.ReadCloser", "io.WriteCloser", "io.ReadWriter",
    "io.ReadWriteCloser", "io.ReaderAt", "io.WriterTo", "io.ReaderFrom", "io.Seeker", "io.ReadSeeker",
    "os.FileInfo", "fs.FileInfo", "io/fs.FileInfo", "os.DirEntry", "fs.DirEntry", "io/fs.DirEntry", "fs.File",
    "io/fs.File", "fs.FS", "io/fs.FS", "os.Signal", "context.Context", "fmt.Stringer", "net.Conn",
    "net.Listener", "net.Addr", "net.PacketConn", "net.Error", "http.Handler", "net/http.Handler",
    "http.ResponseWriter", "net/http.ResponseWriter", "http.RoundTripper", "net/http.RoundTripper",
    "sort.Interface", "hash.Hash", "reflect.Type", "driver.Value", "database/sql/driver.Value",
}

_HOW = ["  Go's basic types, string, error, any, interface{}, unsafe.Pointer, and built of them",
        "  *T, []T, [N]T, map[K]V, chan T and func(...); T in *T may be any named type (*main.S)"]


def _check_value(t, source, by_value=True):
    """Every type can be placed by the ABI: sizes known wherever they matter."""
    loc = source.location(t.offset, t.width)
    if t.form == "name" and t.is_named:
        if "." not in t.text:
            raise GobtError(f"unknown type '{t.text}' in the signature", loc,
                            [f"  if '{t.text}' names a param, give it a type: ({t.text} int)",
                             "  a named type is written with its package: main.S, net/http.Request"] + _HOW)
        if by_value:
            if t.text in KNOWN_INTERFACES:
                raise GobtError(f"{t.text} is an interface: declare it as any (or error, or its methods: interface{{ M() }}), "
                                "whose two words gotype and goerr read", loc,
                                ["  an interface param is any, error, interface{} or interface{ M() T } in a declaration"])
            raise GobtError(
                f"{t.text} is passed by value: without DWARF gobt knows nothing of its layout", loc,
                ["  if it is an interface (io.Reader, os.FileInfo), declare it as any, error or interface{ M() T }",
                 "  if it is a struct, read its words with reg() as -lv shows, or probe a function taking *" + t.text,
                 "  if it is a defined basic type (time.Duration), declare what it is defined as (int64)"])
        return
    if t.form == "struct":
        raise GobtError("a struct passed by value cannot be declared: gobt cannot place its fields "
                        "without DWARF", loc,
                        ["  declare a pointer to it, or read its words with reg() as -lv shows"])
    if t.form == "pointer":
        _check_value(t.elem, source, by_value=False)
    elif t.form == "slice":
        _check_value(t.elem, source, by_value=False)
    elif t.form == "array":
        _check_value(t.elem, source, by_value=by_value)
