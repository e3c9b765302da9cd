"""gobt parses with lark's tables but its own driver (gobt/lang/lalr.py):
the trees, spans and errors must be lark's own, for both grammars.

Inputs: every corpus program, the examples, the scripts tests/scripts
holds, Go signatures, and for each of them cut and spliced copies that
send both parsers down their error paths.
"""

import glob
import os
import random

import lark
import pytest

from gobt.lang import lalr, tables

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

pytestmark = pytest.mark.bpftrace_independent


def _grammar(name):
    with open(os.path.join(ROOT, "grammar", name), encoding="utf-8") as f:
        return f.read()


GRAMMARS = {"bpftrace.lark": "start", "gosignature.lark": "signature"}


@pytest.fixture(scope="module", params=[(g, how) for g in sorted(GRAMMARS) for how in ("built", "shipped")],
                ids=lambda p: "-".join(p))
def both(request):
    """lark's parser, and lalr.py's on the tables lark makes now or on those
    gobt ships (grammar/*.tables, which a run uses)."""
    name, how = request.param
    text = _grammar(name)
    start = GRAMMARS[name]
    theirs = lark.Lark(text, start=start, parser="lalr", lexer="contextual", propagate_positions=True)
    if how == "built":
        made = tables.build(text, start)
    else:
        made = tables.read_shipped(tables.shipped_path(os.path.join(ROOT, "grammar", name)),
                                   tables.digest(text.encode()))
        assert made is not None, f"grammar/{name} changed: remake its tables with python -m gobt.lang.tables"
    return name, theirs, lalr.Parser(made)


def test_every_grammar_ships_its_tables():
    """The grammars tables.py makes tables of are those in grammar/, and
    pyproject installs the tables beside them."""
    assert sorted(GRAMMARS) == sorted(os.path.basename(p) for p in glob.glob(os.path.join(ROOT, "grammar", "*.lark")))
    assert tables.GRAMMARS == GRAMMARS
    with open(os.path.join(ROOT, "pyproject.toml"), encoding="utf-8") as f:
        assert '"*.tables"' in f.read()


def test_a_changed_grammar_does_not_use_the_shipped_tables(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    shipped = tables.shipped_path(os.path.join(ROOT, "grammar", "gosignature.lark"))
    text = _grammar("gosignature.lark")
    assert tables.load(text, "signature", "gosignature", shipped=shipped) == tables.read_shipped(
        shipped, tables.digest(text.encode()))
    assert not glob.glob(str(tmp_path / "gobt" / "*tables*"))  # nothing made, nothing cached
    edited = text.replace("signature:", "signature :", 1)
    assert edited != text
    made = tables.load(edited, "signature", "gosignature", shipped=shipped)
    assert "grammar" not in made  # lark's, not the shipped file's
    (cached,) = glob.glob(str(tmp_path / "gobt" / "gosignature-tables-*"))
    # The cache key has lark's version: another lark makes (and keys) its own.
    assert f"-lark{lark.__version__}." in os.path.basename(cached)


def _scripts():
    paths = sorted(glob.glob(os.path.join(ROOT, "tests", "corpus", "*", "*.bt"))
                   + glob.glob(os.path.join(ROOT, "examples", "*", "*.gbt"))
                   + glob.glob(os.path.join(ROOT, "tests", "scripts", "*.bt")))
    assert len(paths) >= 20
    out = []
    for p in paths:
        with open(p, encoding="utf-8", errors="surrogateescape") as f:
            out.append(f.read())
    out += [
        'goret:./app:main.tick(n int, label string) (int, error) { printf("%d\\n", retval); }',
        "uprobe:/bin/x:main.f /goarg(a.b[2]) > 1/ { @[goid] = count(); }",
        "BEGIN { $x = 1 }\nEND {}\n", "", "   \n// only a comment\n", "{", "}", "a:b:c", "a:b:c /x/",
        'struct s { int a; } __attribute__((packed));\nBEGIN { @x = (struct s *)0; }',
    ]
    return out


SIGNATURES = [
    "(n int, label string) (int, error)", "()", "(a, b int)", "(x map[string][]*T) error",
    "(f func(int) (bool, error), c <-chan int, d chan<- int)", "(s struct{ a int }) interface{}",
    "(p *main.S, q [4]byte)", "(r interface{ Read([]byte) (int, error) }) (n int, err interface{ Error() string })", "(a int,)", "(a int) (r1 int, r2 string)", "(int, string) bool",
]


def _mutants(text, rng, n=40):
    """Cut and spliced copies: truncations, a character dropped or
    doubled, a brace or quote inserted."""
    out = []
    for _ in range(n):
        if not text:
            break
        i = rng.randrange(len(text) + 1)
        kind = rng.randrange(4)
        if kind == 0:
            out.append(text[:i])
        elif kind == 1:
            out.append(text[:i] + text[i + 1:])
        elif kind == 2:
            out.append(text[:i] + text[i:i + 1] * 2 + text[i + 1:])
        else:
            out.append(text[:i] + rng.choice('{}"/(),:[]*') + text[i:])
    return out


def _shape(node):
    if isinstance(node, lark.Tree) or isinstance(node, lalr.Tree):
        meta = node.meta
        span = None if meta.empty else (meta.start_pos, meta.end_pos)
        return (str(node.data), span, [_shape(c) for c in node.children])
    if node is None:
        return None
    return (node.type, str(node), node.start_pos, node.end_pos)


def _outcome(parse, text):
    try:
        return ("tree", _shape(parse(text)))
    except lark.exceptions.UnexpectedCharacters as e:
        return ("character", e.pos_in_stream)
    except lark.exceptions.UnexpectedToken as e:
        return ("token", e.token.type, e.token.start_pos if e.token.type != "$END" else "end", sorted(e.expected))
    except lark.exceptions.UnexpectedEOF:
        return ("token", "$END", "end")
    except lalr.ParseError as e:
        if e.kind == "character":
            return ("character", e.pos)
        return ("token", e.token.type, e.token.start_pos if e.token.type != "$END" else "end", sorted(e.expected))


def test_same_trees_and_errors_as_lark(both):
    name, theirs, ours = both
    inputs = _scripts() if name == "bpftrace.lark" else list(SIGNATURES)
    rng = random.Random(16)
    inputs += [m for text in list(inputs) for m in _mutants(text, rng)]
    trees = errors = 0
    for text in inputs:
        want = _outcome(theirs.parse, text)
        got = _outcome(ours.parse, text)
        assert got == want, text
        trees += want[0] == "tree"
        errors += want[0] != "tree"
    # Both paths were taken, many times.
    assert trees >= 15 and errors >= 15, (trees, errors)


def test_tables_survive_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    text = _grammar("bpftrace.lark")
    made = tables.load(text, "start", "bpftrace")
    files = glob.glob(str(tmp_path / "gobt" / "bpftrace-tables-*"))
    assert len(files) == 1
    assert tables.load(text, "start", "bpftrace") == made
    # A flipped byte is a cache miss, and the file is made again.
    with open(files[0], "r+b") as f:
        f.seek(40)
        byte = f.read(1)
        f.seek(40)
        f.write(bytes([byte[0] ^ 1]))
    assert tables._read(files[0]) is None
    remade = tables.load(text, "start", "bpftrace")
    assert tables._read(files[0]) == remade
    # (lark may number the states differently each time: compare parses.)
    script = "uprobe:./a:main.f /goarg(x) > 1/ { @[goid] = hist(retval); }"
    assert _shape(lalr.Parser(remade).parse(script)) == _shape(lalr.Parser(made).parse(script))
