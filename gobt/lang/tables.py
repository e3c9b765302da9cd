"""Parse: the tables lalr.py runs, computed by lark from a grammar/*.lark
file, so that a run never imports lark.

They ship with gobt: grammar/NAME.tables, made by `python -m
gobt.lang.tables` and installed beside the grammar, is used when the
grammar's digest recorded in it is the grammar's (tests/test_lalr.py
checks that the files in the tree match their grammars and lark's output).
A grammar edited since (a source tree) has its tables made by lark and kept
in gobt's cache, keyed on the grammar's text, lark's version and FORMAT,
sealed with a checksum and read only if it is the user's own regular file
(cache.py); anything else and the tables are made again.
"""

import marshal
import os
import re

from ..cache import cache_dir, digest, read_sealed_bytes, write_sealed_bytes

FORMAT = 1


def load(grammar_text, start, name, shipped=None):
    """The tables for `grammar_text`: the shipped file `shipped` if it was
    made from this very text, else from the cache or made now."""
    key = digest(grammar_text.encode())
    if shipped:
        tables = read_shipped(shipped, key)
        if tables is not None:
            return tables
    folder = cache_dir()
    path = os.path.join(folder, f"{name}-tables-{FORMAT}-{key}-lark{_lark_version()}.marshal") if folder else None
    if path:
        tables = _read(path)
        if tables is not None:
            return tables
    tables = build(grammar_text, start)
    if path:
        write_sealed_bytes(path, marshal.dumps(tables))
    return tables


def read_shipped(path, key):
    """The tables in a shipped .tables file, if made from the grammar whose
    digest is `key` in this FORMAT; else None."""
    try:
        with open(path, "rb") as f:
            tables = marshal.loads(f.read())
    except (OSError, EOFError, ValueError, TypeError):
        return None
    if not isinstance(tables, dict) or tables.get("format") != FORMAT or tables.get("grammar") != key:
        return None
    return tables


def shipped_path(grammar_path):
    """Where the shipped tables of a grammar/*.lark file are."""
    return os.path.splitext(str(grammar_path))[0] + ".tables"


def _lark_version():
    # From lark's own __init__.py, without importing it (~30 ms); a lark
    # that cannot be found gives "none", and build() then says why.
    import importlib.util

    try:
        spec = importlib.util.find_spec("lark")
        with open(spec.origin, encoding="utf-8") as f:
            m = re.search(r"^__version__\s*(?::\s*str\s*)?=\s*[\"']([^\"']+)", f.read(), re.M)
        return re.sub(r"[^\w.]", "_", m.group(1)) if m else "unknown"
    except (ImportError, AttributeError, TypeError, ValueError, OSError):
        return "none"


def write_shipped(grammar_path, start):
    """Make grammar_path's tables with lark and write them beside it."""
    with open(grammar_path, encoding="utf-8") as f:
        text = f.read()
    tables = build(text, start)
    tables["grammar"] = digest(text.encode())
    out = shipped_path(grammar_path)
    with open(out + ".tmp", "wb") as f:
        f.write(marshal.dumps(tables))
    os.replace(out + ".tmp", out)
    return out


# The grammars gobt ships, and the start rule of each.
GRAMMARS = {"bpftrace.lark": "start", "gosignature.lark": "signature"}


def _read(path):
    body = read_sealed_bytes(path)  # this user's own regular file, its checksum holding
    if body is None:
        return None
    try:
        tables = marshal.loads(body)
    except (EOFError, ValueError, TypeError):
        return None
    return tables if isinstance(tables, dict) and tables.get("format") == FORMAT else None


def build(grammar_text, start):
    """Ask lark for the LALR tables, the contextual lexer's terminals per
    state and the tree-building recipe of every rule."""
    import lark

    parser = lark.Lark(grammar_text, start=start, parser="lalr", lexer="contextual",
                       propagate_positions=True)
    frontend = parser.parser
    table = frontend.parser._parse_table
    rules = list(table_rules(table))
    index = {id(rule): i for i, rule in enumerate(rules)}
    states = {}
    for state, actions in table.states.items():
        states[state] = {symbol: (0, arg) if action.name == "Shift" else (1, index[id(arg)])
                         for symbol, (action, arg) in actions.items()}
    lexer = frontend.lexer
    lexers, seen = [], {}

    def lexer_index(basic):
        scanner = basic.scanner  # lark drops the keywords a regex terminal covers, and keeps callbacks
        terminals = tuple((t.name, t.pattern.to_regexp()) for t in scanner.terminals)
        unless = {}
        for name, callback in basic.callback.items():
            if type(callback).__name__ != "UnlessCallback":
                raise ValueError(f"lark lexer callback {type(callback).__name__} on {name}: lalr.py has none")
            unless[name] = tuple((t.name, t.pattern.to_regexp()) for t in callback.scanner.terminals)
        key = (terminals, tuple(sorted(unless.items())))
        if key not in seen:
            seen[key] = len(lexers)
            lexers.append((terminals, unless))
        return seen[key]

    lexer_of_state = {state: lexer_index(basic) for state, basic in lexer.lexers.items()}
    root = lexer_index(lexer.root_lexer)
    return {
        "format": FORMAT,
        "states": states,
        "start_state": table.start_states[start],
        "end_state": table.end_states[start],
        "rules": [_recipe(rule, parser.options.maybe_placeholders) for rule in rules],
        "lexer_of_state": lexer_of_state,
        "lexers": lexers,
        "root_lexer": root,
        "ignore": tuple(parser.lexer_conf.ignore),
    }


def table_rules(table):
    """Every rule the table reduces by, once each, in a stable order."""
    seen = set()
    for state in sorted(table.states):
        for symbol in sorted(table.states[state]):
            action, arg = table.states[state][symbol]
            if action.name != "Shift" and id(arg) not in seen:
                seen.add(id(arg))
                yield arg


def _recipe(rule, maybe_placeholders):
    """(origin, size, (tree name, expand1, include, trailing Nones)): what
    lark's ParseTreeBuilder does with the rule's children."""
    options = rule.options
    keep_all = options.keep_all_tokens
    expansion = rule.expansion
    empty = options.empty_indices if maybe_placeholders else ()
    if empty:
        bits = "".join(str(int(b)) for b in empty)
        nones_at = [len(ones) for ones in bits.split("0")]
    else:
        nones_at = [0] * (len(expansion) + 1)
    include, pending = [], 0
    for i, sym in enumerate(expansion):
        pending += nones_at[i]
        if keep_all or not (sym.is_term and sym.filter_out):
            include.append((i, not sym.is_term and sym.name.startswith("_"), pending))
            pending = 0
    pending += nones_at[len(expansion)]
    filtered = bool(empty) or len(include) < len(expansion) or any(inline for _, inline, _ in include)
    name = rule.alias or options.template_source or rule.origin.name
    expand1 = bool(options.expand1 and not rule.alias)
    build = (str(name), expand1, tuple(include) if filtered else None, pending if filtered else 0)
    return (str(rule.origin.name), len(expansion), build)


if __name__ == "__main__":  # python -m gobt.lang.tables [GRAMMAR_DIR]: remake the shipped tables
    import sys

    folder = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "grammar")
    for grammar, start_rule in GRAMMARS.items():
        print(write_shipped(os.path.join(folder, grammar), start_rule))
