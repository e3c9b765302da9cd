"""Parse: an LALR(1) parser and contextual lexer driven by tables that lark
computed from grammar/*.lark (tables.py keeps them per installation).

Importing lark costs a cold gobt ~40 ms, more than all of gobt's own work
on a 23 MB binary; running its tables takes a hundred lines and `re`. The
trees are the ones lark builds with propagate_positions: rules named
`_x` are inlined into their parent, `?x` rules with one child are replaced
by it, anonymous and `_` terminals are dropped, `[x]` leaves a None, and
each tree's meta holds the span of everything it was made of (dropped
tokens included). tests/test_lalr.py checks every tree against lark's.
"""

import re

SHIFT, REDUCE = 0, 1


class Token(str):
    """A terminal's text, with its type and where it is in the text."""

    __slots__ = ("type", "start_pos", "end_pos")

    def __new__(cls, type_, value, start_pos, end_pos):
        self = super().__new__(cls, value)
        self.type = type_
        self.start_pos = start_pos
        self.end_pos = end_pos
        return self

    @property
    def value(self):
        return str(self)


class Meta:
    __slots__ = ("empty", "start_pos", "end_pos", "container_start_pos", "container_end_pos")

    def __init__(self):
        self.empty = True
        self.start_pos = self.end_pos = None
        self.container_start_pos = self.container_end_pos = None


class Tree:
    __slots__ = ("data", "children", "meta")

    def __init__(self, data, children):
        self.data = data
        self.children = children
        self.meta = Meta()

    def scan_values(self, pred):
        """The non-tree leaves (in order) for which pred is true."""
        for c in self.children:
            if isinstance(c, Tree):
                yield from c.scan_values(pred)
            elif pred(c):
                yield c

    def __repr__(self):
        return f"Tree({self.data!r}, {self.children!r})"


class ParseError(Exception):
    """kind: "character" (nothing lexes at pos), "token" (a token the
    grammar does not take there; type "$END" at the end of the text)."""

    def __init__(self, kind, pos, token=None, expected=()):
        super().__init__(f"unexpected {kind} at {pos}")
        self.kind = kind
        self.pos = pos
        self.token = token
        self.expected = set(expected)


class Parser:
    def __init__(self, tables):
        self.states = tables["states"]
        self.start_state = tables["start_state"]
        self.end_state = tables["end_state"]
        self.rules = tables["rules"]
        self.lexer_of_state = tables["lexer_of_state"]
        self.lexer_defs = tables["lexers"]
        self.root_lexer = tables["root_lexer"]
        self.ignore = frozenset(tables["ignore"])
        self._scanners = {}

    # -- lexing ------------------------------------------------------------

    def _scanner(self, index):
        """(compiled union of the lexer's terminals, {terminal: unless regex})."""
        found = self._scanners.get(index)
        if found is None:
            terminals, unless = self.lexer_defs[index]
            union = re.compile("|".join(f"(?P<{name}>{regex})" for name, regex in terminals))
            unless = {name: re.compile("|".join(f"(?P<{n}>{r})" for n, r in alts)) for name, alts in unless.items()}
            found = self._scanners[index] = (union, unless, {name for name, _ in terminals})
        return found

    def _match(self, index, text, pos):
        union, unless, _ = self._scanner(index)
        m = union.match(text, pos)
        if m is None:
            return None
        value, type_ = m.group(0), m.lastgroup
        if type_ in unless:
            # A keyword the regex terminal also matches: lark's UnlessCallback.
            exact = unless[type_].fullmatch(value)
            if exact is not None:
                type_ = exact.lastgroup
        return Token(type_, value, pos, pos + len(value))

    def _next_token(self, text, pos, state):
        """The next significant token from pos, or None at the end."""
        index = self.lexer_of_state[state]
        while pos < len(text):
            token = self._match(index, text, pos)
            if token is None:
                allowed = self._scanner(index)[2] - self.ignore or {"<END-OF-FILE>"}
                other = self._match(self.root_lexer, text, pos)
                if other is not None:
                    raise ParseError("token", pos, other, allowed)
                raise ParseError("character", pos, None, allowed)
            pos = token.end_pos
            if token.type not in self.ignore:
                return token
        return None

    # -- parsing -----------------------------------------------------------

    def parse(self, text):
        states = self.states
        state_stack = [self.start_state]
        value_stack = []
        pos = 0
        last = None
        while True:
            token = self._next_token(text, pos, state_stack[-1])
            if token is None:
                at = last.end_pos if last is not None else 0
                end = Token("$END", "", at, at)
                return self._feed(end, state_stack, value_stack, states, is_end=True)
            self._feed(token, state_stack, value_stack, states)
            pos = token.end_pos
            last = token

    def _feed(self, token, state_stack, value_stack, states, is_end=False):
        while True:
            state = state_stack[-1]
            try:
                action, arg = states[state][token.type]
            except KeyError:
                expected = {s for s in states[state] if s.isupper()}
                raise ParseError("token", token.start_pos, token, expected) from None
            if action == SHIFT:
                state_stack.append(arg)
                value_stack.append(token)
                return None
            origin, size, build = self.rules[arg]
            if size:
                children = value_stack[-size:]
                del state_stack[-size:]
                del value_stack[-size:]
            else:
                children = []
            value = _build(build, children)
            _action, next_state = states[state_stack[-1]][origin]
            state_stack.append(next_state)
            value_stack.append(value)
            if is_end and state_stack[-1] == self.end_state:
                return value_stack[-1]


def _build(build, children):
    """The value of a reduced rule, as lark's tree builder makes it."""
    name, expand1, include, trailing_nones = build
    if include is None:
        kept = list(children)
    else:
        kept = []
        for i, inline, nones in include:
            if nones:
                kept += [None] * nones
            if inline:
                kept += children[i].children
            else:
                kept.append(children[i])
        if trailing_nones:
            kept += [None] * trailing_nones
    if expand1 and len(kept) == 1:
        res = kept[0]
    else:
        res = Tree(name, kept)
    if isinstance(res, Tree):
        _positions(res.meta, children)
    return res


def _positions(meta, children):
    """lark's propagate_positions: a tree spans its first and last child
    that has a place in the text, counting what was inlined or dropped."""
    first = _placed(children)
    if first is not None:
        start = first.container_start_pos if isinstance(first, Meta) else first.start_pos
        if meta.start_pos is None:
            meta.start_pos = start
            meta.empty = False
        meta.container_start_pos = start
    last = _placed(reversed(children))
    if last is not None:
        end = last.container_end_pos if isinstance(last, Meta) else last.end_pos
        if meta.end_pos is None:
            meta.end_pos = end
            meta.empty = False
        meta.container_end_pos = end


def _placed(children):
    for c in children:
        if isinstance(c, Tree):
            if not c.meta.empty:
                return c.meta
        elif isinstance(c, Token):
            return c
    return None
