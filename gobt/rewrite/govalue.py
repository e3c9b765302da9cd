"""Rewrite goerr(PATH) and gotype(PATH): an interface's value as Go prints it.

Both start from the interface's two words, read as goarg reads
`PATH.tab`/`PATH._type` and `PATH.data` (so params carried to a goret,
declared signatures and stripped binaries work as for goarg). The dynamic
type is the descriptor the first word leads to (binary/gotypes.py); gotype
reads its name from the binary's memory at run time, so every type has its
name, and nothing is guessed. goerr tells the standard library's error types
(errortypes.py) apart by their descriptors' addresses, which gobt finds in
the binary by name, and spells their Error() text from their fields.

bpftrace has no string concatenation (0.17 nor 0.23) and its strings are
fixed-size buffers, so goerr takes the form its place allows:
- as a direct printf argument, the printf becomes one printf per error
  type, the type's constant text in the format and each Go string a %s: the
  whole text, each piece cut at the string limit; print(goerr(e)) is
  printf("%s\n", goerr(e));
- compared with a string literal, the literal is split along each of those
  printfs at rewrite time (textmatch.py): the whole text is compared;
- as a map key element, two elements: the dynamic type as %T prints it and
  the one-string text below, so keys differ by type and by message;
- anywhere else, one string: the text itself for errors whose Error() is
  one string (errors.New, fmt.Errorf, io.EOF, context.Canceled,
  syscall.Errno, context.DeadlineExceeded, <nil>); for the composite ones
  (*fs.PathError, ...) the text of the error they wrap (a *net.DNSError's
  Err, a *net.OpError's errno: neterrors.py); for any other type its name
  (`*main.tooLongError`).

Each use computes its words and pieces in statements at the start of the
probe's block ($__gobt_eN_*); the use itself becomes a str() of them. An
address in a position-independent binary is the static one plus the load
bias, which the block computes from the address the probe fired at.
"""

import re
from functools import cached_property

from ..binary.gotypes import GoTypes, errno_table
from ..binary.inlined import is_position_independent
from ..errors import GobtError
from ..lang.script import Span, Use
from . import errortypes
from .errnotext import ERRNO_TEXTS
from .inlined import IP, site_address
from .neterrors import NetErrors
from .printf import _VERB, _skip_space, _skip_string, map_key_elements, map_keys, print_calls, printf_calls, \
    string_read, string_size
from .textmatch import condition, unquote

# bpftrace 0.17 keeps str()s and printf arguments on the 512-byte BPF stack:
# measured with --emit-elf on Go 1.27, PIE, a goret carrying a param, a map
# keyed by goerr and a printf of it, the composite types' printfs load with
# 11 strings of 64 bytes in all, and not with 15. Beyond, a type's printf is
# the one-string form (errortypes.COMPOSITE lists the commonest first). A
# printf holding another string (a carried goarg string copies into every
# branch) loads with none of them: it gets the one-string form only.
STACK_STRINGS = 11

KINDS = ("goerr", "gotype")
# The longest type name read (bytes): a longer one shows as unread (?0x...).
MAX_NAME = 1023
BIAS = "$__gobt_b"
# gotrace's spelling of gotype(PATH) as %v shows it: a nil interface prints
# <nil> there (gotype's own nil is "", as %T's is).
NIL_VERB = "%v"


def check_goerr_keys(script):
    """A map keyed by goerr(...) somewhere and with another number of keys
    elsewhere: said here, in the user's terms, where bpftrace would speak
    of string[64] pairs. (goerr as a key element is two elements.)"""
    text = script.source.text
    goerrs = {(u.span.start, u.span.end) for p in script.probes for u in p.uses if u.kind == "goerr"}
    seen = {}  # map name: (arity, offset of its @, whether a goerr made it)
    for probe in script.probes:
        for name, at, spans in map_keys(text, probe.block.start, probe.block.end):
            doubled = sum(span in goerrs for span in spans)
            arity = len(spans) + doubled
            first = seen.setdefault(name, (arity, at, doubled))
            if first[0] != arity and (doubled or first[2]):
                where = script.source.location(at if doubled else first[1], len(name))
                other = script.source.location(first[1] if doubled else at, len(name))
                raise GobtError(f"{name} is keyed by goerr(...) here, which as a key is two keys (the "
                                f"error's type, then its text), and by another number of keys at "
                                f"{other.line}:{other.column}", where,
                                [f"  key {name} the same way everywhere, e.g. {name}[gotype(e), \"text\"]"])


def read_value(rewriter, use):
    """(expression, None) for a goerr/gotype use in a probes._ProbeRewriter."""
    return _of(rewriter).use(use)


def finish_values(rewriter, edits, edit_type):
    """The probe's edits, with what its goerr/gotype uses need added."""
    found = rewriter.__dict__.get("_govalues")
    return edits if found is None else found.finish(edits, edit_type)


def _of(rewriter):
    found = rewriter.__dict__.get("_govalues")
    if found is None:
        found = rewriter.__dict__["_govalues"] = GoValues(rewriter)
    return found


class GoValues:
    """The goerr/gotype uses of one probe (a probes._ProbeRewriter)."""

    def __init__(self, rewriter):
        self.rw = rewriter
        self.renders = []  # (Use, _Render)
        self.as_v = set()  # the spans of gotype uses that print nil as <nil>

    @cached_property
    def keys(self):
        """The spans of the block's map key elements."""
        block = self.rw.probe.block
        return map_key_elements(self.rw.source.text, block.start, block.end)

    def use(self, use):
        rw = self.rw
        loc = rw.loc(use.span.start, use.span.end - use.span.start)
        binaries = {id(s.binary): s.binary for s in rw.sites}
        if len(binaries) > 1:
            raise GobtError(f"{use.kind} needs all of the probe's functions in one binary", loc)
        binary = next(iter(binaries.values()))
        path = use.path.strip()
        as_v = path.endswith(" " + NIL_VERB) and use.kind == "gotype"
        if as_v:
            path = path[: -len(NIL_VERB)].strip()
            self.as_v.add((use.span.start, use.span.end))
        if not path:
            raise GobtError(f"{use.kind} needs an interface value: {use.kind}(err), {use.kind}(~r0)", loc)
        if path == "retval":
            path = "~r0"
        key = (use.span.start, use.span.end) in self.keys
        for _, seen in self.renders:
            if seen.path == path:  # one set of statements per value read
                seen.type_only = seen.type_only and use.kind == "gotype"
                seen.nil_as_v = seen.nil_as_v or as_v
                seen.key = seen.key or (key and use.kind == "goerr")
                seen.type_key = seen.type_key or (key and use.kind == "gotype")
                self.renders.append((use, seen))
                return self._expression(use, seen, key), None
        first, eface = self._first_word(use, path)
        data, _ = rw._read_value(Use("goarg", use.span, path=path + ".data", path_offset=use.path_offset))
        render = _Render(len({id(r) for _, r in self.renders}), binary, first, data, eface,
                         rw.ctx.bpftrace.str_size_counts_nul, use.kind == "gotype",
                         not rw.ctx.bpftrace.strings_on_stack)
        render.path = path
        render.nil_as_v = as_v
        render.key = key and use.kind == "goerr"
        render.type_key = key and use.kind == "gotype"
        self.renders.append((use, render))
        string_read(rw.ctx, rw.id, loc)
        return self._expression(use, render, key), None

    @staticmethod
    def _expression(use, render, key):
        if use.kind == "gotype":
            # A key's name reads ? where BPF could not read it, not "" as nil's.
            return (render.name(f"{render.v}gp", f"{render.v}gl", key=True) if key
                    else render.name(f"{render.v}np", f"{render.v}nl"))
        # A map key: two elements, the dynamic type as %T prints it and the
        # one-string text, since one string cannot hold both (no concatenation).
        return f"{render.name(render.v + 'kp', render.v + 'kl', key=True)}, {render.single()}" if key else render.single()

    def _first_word(self, use, path):
        rw = self.rw
        try:
            return rw._read_value(Use("goarg", use.span, path=path + "._type", path_offset=use.path_offset))[0], True
        except GobtError:
            pass
        try:
            return rw._read_value(Use("goarg", use.span, path=path + ".tab", path_offset=use.path_offset))[0], False
        except GobtError as e:
            raise GobtError(f"{use.kind}({path}) needs an interface value (error, any, interface{{...}}): "
                            f"{e.message}", e.location or rw.loc(use.span.start, use.span.end - use.span.start),
                            e.hints) from None

    def finish(self, edits, edit_type):
        """The edits with the block's statements added and each printf that
        prints a goerr whole turned into one printf per error type."""
        if not self.renders:
            return edits
        rw = self.rw
        text = rw.source.text
        block = rw.probe.block
        for use, _ in self.renders:
            pred = rw.probe.predicate
            if pred is not None and pred.start <= use.span.start < pred.end:
                raise GobtError(f"{use.kind} is computed in the probe's block: use it there, "
                                f"e.g. if ({use.kind}(...) == \"...\") {{ ... }}",
                                rw.loc(use.span.start, use.span.end - use.span.start))
        prelude = []
        binary = self.renders[0][1].binary
        if is_position_independent(binary):
            prelude.append(_bias(binary, rw.sites, rw.loc(rw.probe.span.start)))
        done = set()
        for _, render in self.renders:
            if id(render) not in done:
                done.add(id(render))
                prelude += render.statements()
        for use, render in self.renders:
            found = _compared(text, block, use) if use.kind == "goerr" else None
            if found:
                # goerr(e) == "...": which branch prints is decided at the block's start.
                start, end, op, quoted = found
                prelude += render.which_branch()
                expr = render.comparison(unquote(quoted), string_size() - 1, rw.loc(start, end - start))
                edits = [e for e in edits if not (start <= e.start and e.end <= end)]
                edits.append(edit_type(start, end, f"({expr})" if op == "==" else f"!({expr})"))
        by_span = {(u.span.start, u.span.end): (u.kind + (NIL_VERB if (u.span.start, u.span.end) in self.as_v
                                                            else ""), r) for u, r in self.renders}
        for call in printf_calls(text, block.start, block.end):
            # One goerr or gotype per printf prints whole: a goerr first.
            hit = sorted(((i, by_span[a]) for i, a in enumerate(call.args) if tuple(a) in by_span),
                         key=lambda h: h[1][0] != "goerr")
            if hit:
                verbs = [m for m in _VERB.finditer(text, call.format_start + 1, call.format_end - 1)
                         if m.group("conv") != "%"]
                if len(verbs) != len(call.args):
                    # bpftrace would say it once for each printf goerr becomes, with their counts.
                    word = "Not enough" if len(verbs) > len(call.args) else "Too many"
                    raise GobtError(f"printf: {word} arguments for format string ({len(call.args)} supplied, "
                                    f"{len(verbs)} expected)",
                                    rw.loc(call.format_start, call.format_end - call.format_start))
                budget = None
                if rw.ctx.bpftrace.strings_on_stack:
                    # Every other string of the printf: str()s, goarg strings, goerr/gotype.
                    others = sum(text.count("str(", a, b) + (rw.values.get((a, b), 0) is None)
                                 for a, b in call.args) - 1
                    budget = STACK_STRINGS if others <= 0 else 0
                edits = _fold_printf(text, call, hit[0], edits, block, edit_type, budget)
        for start, arg, close in print_calls(text, block.start, block.end):
            kind, render = by_span.get(arg, (None, None))
            if kind == "goerr":
                budget = STACK_STRINGS if rw.ctx.bpftrace.strings_on_stack else None
                edits = _fold_print(text, start, arg, close, render, edits, edit_type, budget)
        return edits + [edit_type(block.start + 1, block.start + 1, " " + " ".join(prelude) + " ")]


class _Render:
    """What one goerr/gotype use computes."""

    def __init__(self, index, binary, first, data, eface, nul, type_only, rich=False):
        self.binary = binary
        self.types = GoTypes.of(binary)
        self.v = f"$__gobt_e{index}_"
        self.first, self.data, self.eface = first, data, eface
        self.nul = nul
        self.type_only = type_only
        self.pie = is_position_independent(binary)
        self.rich = rich  # strings off the BPF stack (0.23): room for the net errors' printfs
        self.key = False  # used as a map key element: its type name too ({v}k)
        self.compared = False  # compared with a literal: {v}w is set
        self.type_key = False  # gotype used as a map key element ({v}gp)
        self.nil_as_v = False

    @cached_property
    def net(self):
        return NetErrors(self)

    def addr(self, static):
        return f"(0x{static:x} + {BIAS})" if self.pie else f"0x{static:x}"

    def str(self, p, n):
        return f"str({p}, {n} + 1)" if self.nul else f"str({p}, {n})"

    def name(self, p, n, key=False):
        """A type name's str(), its length masked where the verifier sees it.

        0.23: _name bounds it already, in a test that bpftrace's str() loses
        sight of (a printf of a name then failed to load, "size=32768").
        0.17, whose strings are on the BPF stack: a printf's str() is held
        to the string size by bpftrace, a map key's is not ("invalid write
        to stack"): a key's length is clamped to key_mask() first."""
        if self.rich:
            return self.str(p, f"({n} & {MAX_NAME})")
        return self.str(p, f"({n} & {key_mask()})") if key else self.str(p, n)

    def clamp(self, n):
        """0.17: a key's name length, cut at key_mask() (see name())."""
        return [] if self.rich else [f"if ({n} > {key_mask()}) {{ {n} = {key_mask()}; }}"]

    def single(self):
        v = self.v
        return self.str(f"{v}p", f"{v}l")

    # -- statements -------------------------------------------------------------

    def statements(self):
        v = self.v
        # bpftrace 0.17 gives every variable its own 8 bytes of the 512-byte
        # stack, which the printfs of the whole text need: few variables.
        out = [f"{v}t = (uint64){self.first};", f"{v}d = (uint64){self.data};"]
        if not self.eface:
            out.append(f"if ({v}t != 0) {{ {v}t = {_word(f'{v}t + 8')}; }}")
        if self.type_only:
            return out + self._name(v, f"{v}t") + self._nil_as_v() + self._key_name()
        composite = self.composite()
        if composite:
            out += _select([f"{v}it", f"{v}id"], [(f"{v}t == {t}", [_word(f"{v}d + {off['Err']}"),
                                                                  _word(f"{v}d + {off['Err'] + 8}")])
                                                for t, _, off in composite])
            out.append(f"if ({v}it != 0) {{ {v}it = {_word(f'{v}it + 8')}; }}")
            out += self._name(v, f"{v}it", f"{v}i")
            out += self.net.inner_statements()
        out += self._name(v, f"{v}t") + self._nil_as_v()
        errno = self.errno()
        if errno:
            cases = [(f"{v}t == {errno}", [_word(f"{v}d")])]
            if composite:
                cases.append((f"{v}it == {errno}", [_word(f"{v}id")]))
                cases += self.net.errno_cases(errno)
            out += _select([f"{v}en"], cases)
            out += [f"{v}ep = (uint64)0; {v}el = (uint64)0;"]
            table = errno_table(self.binary, ERRNO_TEXTS)
            if table:
                # Go's own table, read where syscall.Errno.Error() reads it
                # (130 ifs of constants would overflow 0.17's BPF stack).
                at, count = table
                entry = f"{self.addr(at)} + {v}en * 16"
                out.append(f"if ({v}en > 0 && {v}en < {count}) {{ {v}ep = {_word(entry)}; "
                           f"{v}el = {_word(entry + ' + 8')}; }}")
        if composite:
            out += _select([f"{v}ip", f"{v}il"], self._one_piece(f"{v}it", f"{v}id"), [f"{v}inp", f"{v}inl"])
        inner = [(f"{v}t == {t}", [f"{v}ip", f"{v}il"]) for t, _, _ in composite]
        out += _select([f"{v}p", f"{v}l"], self._one_piece(f"{v}t", f"{v}d") + self.net.top_pieces() + inner,
                       [f"{v}np", f"{v}nl"])
        out += self._key_name()
        if self.key:
            # %T's spelling: <nil> for nil, ? for a name BPF could not read
            # (pointers to those bytes in the binary: a string variable would
            # cost 0.17's BPF stack what a printf's string does).
            out.append(f"{v}kp = {v}np; {v}kl = {v}nl;")
            nil, unknown = (self.types.bytes_address(t) for t in (errortypes.NIL_TEXT, "?"))
            if nil:
                out.append(f"if ({v}t == 0) {{ {v}kp = {self.addr(nil)}; {v}kl = {len(errortypes.NIL_TEXT)}; }}")
            if unknown:
                out.append(f"if ({v}t != 0 && {v}nl == 0) {{ {v}kp = {self.addr(unknown)}; {v}kl = 1; }}")
            out += self.clamp(f"{v}kl")
        return out + self.net.address_statements()

    def _key_name(self):
        """gotype's map key: the name, or ? for a name BPF could not read."""
        if not self.type_key:
            return []
        v = self.v
        out = [f"{v}gp = {v}np; {v}gl = {v}nl;"]
        unknown = self.types.bytes_address("?")
        if unknown:
            out.append(f"if ({v}t != 0 && {v}nl == 0) {{ {v}gp = {self.addr(unknown)}; {v}gl = 1; }}")
        return out + self.clamp(f"{v}gl")

    def _nil_as_v(self):
        """The name's string reads <nil> for nil where %v's is wanted (the
        read-only data's own bytes of it; without them, "")."""
        nil = self.types.bytes_address(errortypes.NIL_TEXT) if self.nil_as_v else None
        if not nil:
            return []
        v = self.v
        return [f"if ({v}t == 0) {{ {v}np = {self.addr(nil)}; {v}nl = {len(errortypes.NIL_TEXT)}; }}"]

    def _name(self, v, t, to=None):
        """The dynamic type's name: {to}np, {to}nl (length 0 for nil)."""
        lay = self.types.layout
        base, _ = self.types.bounds
        out = [f"{v}n = {self.addr(base)} + (uint64)*(int32 *)uptr({t} + {lay['str']});",
               f"{v}x = (uint64)((*(uint8 *)uptr({t} + {lay['tflag']}) >> 1) & 1);"]
        if self.types.varint_names:
            out += [f"{v}h = (uint64)*(uint8 *)uptr({v}n + 1);",
                    f"{v}np = {v}n + (uint64)2 + {v}x;",
                    f"{v}nl = {v}h;",
                    f"if ({v}h >= 128) {{ {v}np = {v}np + 1; "
                    f"{v}nl = ({v}h & 127) + ((uint64)*(uint8 *)uptr({v}n + 2) << 7); }}"]
        else:
            out += [f"{v}h = ((uint64)*(uint8 *)uptr({v}n + 1) << 8) + (uint64)*(uint8 *)uptr({v}n + 2);",
                    f"{v}np = {v}n + (uint64)3 + {v}x;",
                    f"{v}nl = {v}h;"]
        # An unreadable name reads as length 0 (then the star is not there to
        # skip), and so does one longer than MAX_NAME: bounded in the same
        # test, where the verifier sees it (a varint length is up to 32767,
        # and a str() of that fails to load on 0.23; a test of its own
        # doubled the paths the verifier walks, past its million).
        out.append(f"if ({v}nl > {v}x && {v}nl <= {MAX_NAME}) {{ {v}nl = {v}nl - {v}x; }} else {{ {v}nl = 0; }} "
                   f"if ({t} == 0) {{ {v}nl = 0; }}")
        if to is not None:
            out.append(f"{to}np = {v}np; {to}nl = {v}nl;")
        return out

    def _one_piece(self, t, d):
        """(condition, [pointer, length]) of the one-string text of the error (t, d)."""
        nil = self.types.bytes_address(errortypes.NIL_TEXT)
        cases = [(f"{t} == 0", [self.addr(nil), str(len(errortypes.NIL_TEXT))] if nil else ["0", "0"])]
        for addr, _, off in self.whole():
            field = next(iter(off.values()))
            cases.append((f"{t} == {addr}", [_word(f"{d} + {field}"), _word(f"{d} + {field + 8}")]))
        errno = self.errno()
        if errno:
            cases.append((f"{t} == {errno} && {self.v}el != 0", [f"{self.v}ep", f"{self.v}el"]))
        for name, text in errortypes.CONSTANT:
            a, at = self.types.type_address(name), self.types.bytes_address(text)
            if a and at:
                cases.append((f"{t} == {self.addr(a)}", [self.addr(at), str(len(text.encode()))]))
        return cases

    # -- the types this binary has --------------------------------------------------

    def whole(self):
        """(address expr, pieces, offsets) of the one-string error types present."""
        return self._present(errortypes.WHOLE)

    def composite(self):
        """Their Err's text follows their fields': the inner error read ({v}it, {v}id)."""
        found = self._present(errortypes.COMPOSITE)
        if self.net.op:
            found.append((self.net.op[0], None, self.net.op[1]))
        return found

    def _present(self, rows):
        out = []
        for go_name, dwarf_name, pieces, table in rows:
            a = self.types.type_address(go_name)
            if a:
                off = self.types.struct_offsets(dwarf_name, list(table), table)
                out.append((self.addr(a), pieces, off))
        return out

    def errno(self):
        a = self.types.type_address(errortypes.ERRNO)
        return self.addr(a) if a else None

    def branches(self, budget=None):
        """(condition, format piece, args) for a printf of the whole text;
        the last has no condition (the one-string form). With a budget, the
        composite types' printfs hold at most that many strings in all."""
        v = self.v
        out = []
        for addr, pieces, off in self.composite():
            if pieces is None:
                continue  # spelled by neterrors
            strings = sum(kind != "text" for kind, _ in pieces)
            if budget is not None:
                if strings > budget:
                    break
                budget -= strings
            fmt, args = [], []
            for kind, value in pieces:
                if kind == "text":
                    fmt.append(_escape(value))
                elif kind == "err":
                    fmt.append("%s")
                    args.append(self.str(f"{v}ip", f"{v}il"))
                else:
                    fmt.append('\\"%s\\"' if kind == "quoted" else "%s")
                    o = off[value]
                    args.append(self.str(f"*(uint64 *)uptr({v}d + {o})", f"*(uint64 *)uptr({v}d + {o + 8})"))
            out.append((f"{v}t == {addr}", "".join(fmt), args))
        out += self.net.branches(self.rich)
        errno = self.errno()
        if errno:
            out.append((f"{v}t == {errno} && {v}el == 0", "errno %lu", [f"{v}en"]))
        out.append(self.unreadable(f"{v}p == {v}np && {v}l == 0"))
        out.append((None, "%s", [self.single()]))
        return out

    def which_branch(self):
        """Statements setting {v}w to the index of the branch that prints
        (branches()), for comparisons: once, before any of them. After it
        the verifier knows {v}w in each of its paths, so a comparison adds
        a path or two, where each repeating the chain would multiply them."""
        if self.compared:
            return []
        self.compared = True
        v = self.v
        chain = None
        for k, (cond, _, _) in reversed(list(enumerate(self.branches()))):
            # Typed literals: 0.23 types 0 and 1 unlike each other.
            set_w = f"{v}w = (uint64){k};"
            chain = set_w if cond is None else f"if ({cond}) {{ {set_w} }} else {{ {chain} }}"
        return [f"{v}w = (uint64)0;", chain]

    def decided(self, branches):
        """Branches (some of branches()) whose conditions are {v}w where
        which_branch() set it: each then costs the verifier one path."""
        if not self.compared:
            return branches
        index = {cond: k for k, (cond, _, _) in enumerate(self.branches()) if cond is not None}
        return [(cond if cond is None else f"{self.v}w == (uint64){index[cond]}", fmt, args)
                for cond, fmt, args in branches]

    def comparison(self, text, keep, where):
        """An expression true where the whole text (as printf prints it,
        branches()) is `text`: in place, so no variable of it stays live
        beside the others' (live ones multiply the verifier's paths)."""
        v = self.v
        inner = self.str(f"{v}ip", f"{v}il")
        alternatives = []
        for k, (cond, fmt, args) in enumerate(self.branches()):
            if fmt.startswith("?0x") or " ?" in fmt:
                continue  # a placeholder (an unread name, an address not spelled): not Go's text
            holds = condition(fmt, args, text, keep, where)
            if holds == "0":
                continue
            # A type's name stands in for a text gobt does not spell (the
            # program's own error types): it equals no text.
            if inner in args:
                holds += f" && {v}ip != {v}inp"
            if cond is None:
                holds += f" && ({v}t == 0 || {v}p != {v}np)"
                if self.net.dns and not self.rich:
                    holds += f" && {v}t != {self.net.dns[0]}"  # its Err alone, not its text
            alternatives.append(f"({v}w == (uint64){k} && ({holds}))")
        return " || ".join(alternatives) if alternatives else "(0 != 0)"

    def unreadable(self, also):
        """The branch for a type whose name could not be read: on a page the
        program has not touched yet, which BPF cannot fault in. Its static
        address, where a name would have been wrong."""
        v = self.v
        static = f"{v}t - {BIAS}" if self.pie else f"{v}t"
        return (f"{v}t != 0 && {v}nl == 0 && {also}", "?0x%lx", [static])

    def type_branches(self, nil_as_v=False):
        v = self.v
        nil = [(f"{v}t == 0", errortypes.NIL_TEXT, [])] if nil_as_v else []
        return nil + [self.unreadable("1"), (None, "%s", [self.name(f"{v}np", f"{v}nl")])]


def _compared(text, block, use):
    """(start, end, operator, literal) of `USE == "..."`, `"..." != USE`, or None."""
    a, b = use.span.start, use.span.end
    k = _skip_space(text, b, block.end)
    if text.startswith(("==", "!="), k):
        q = _skip_space(text, k + 2, block.end)
        if q < block.end and text[q] == '"':
            return a, _skip_string(text, q), text[k:k + 2], text[q:_skip_string(text, q)]
    m = re.search(r'("(?:[^"\\]|\\.)*")\s*(==|!=)\s*$', text[block.start:a])
    if m:
        return block.start + m.start(1), b, m.group(2), m.group(1)
    return None


def key_mask():
    """The longest name a map key holds on bpftrace 0.17: 2**k - 1 bytes,
    within its string size (a mask the verifier can follow)."""
    size = max(2, string_size())
    return (1 << (size - 1).bit_length() - 1) - 1 if size & (size - 1) else size - 1


def _select(names, cases, defaults=None):
    """Statements setting the variables `names` by the first case whose
    condition holds, else to `defaults` (0): flat ifs, never nested ternaries
    (a chain of 130 crashes bpftrace 0.23's parser)."""
    out = [f"{n} = {d};" for n, d in zip(names, defaults or ["(uint64)0"] * len(names))]
    for cond, values in reversed(cases):
        sets = " ".join(f"{n} = {val};" for n, val in zip(names, values))
        out.append(f"if ({cond}) {{ {sets} }}")
    return out


def _word(addr):
    return f"*(uint64 *)uptr({addr})"


def _escape(text):
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")


def _bias(binary, sites, loc):
    """$__gobt_b = the load bias, from the address the probe fired at.

    The bias is a multiple of the page size, so the probe's address and its
    static one agree in their low 12 bits: those pick the static page
    among the probe's places, and the bias is the difference of the pages."""
    addrs = set()
    for site in sites:
        if site.at == "return" and site.code is not None:
            addrs.update(site.function.start + off for off in site.code.ret_offsets)
        else:
            addrs.add(site_address(site))
    pages = {}
    for a in addrs:
        pages.setdefault(a & 0xFFF, set()).add(a & ~0xFFF)
    if any(len(p) > 1 for p in pages.values()):
        raise GobtError(f"{binary.display_path} is position-independent, and this probe fires at places "
                        "gobt cannot tell apart by their page offset to find its load bias",
                        loc, ["  split the probe into fewer functions"])
    ip = f'reg("{IP[binary.arch]}")'
    by_page = {}
    for low, p in sorted(pages.items()):
        by_page.setdefault(next(iter(p)), []).append(low)
    # uint64 throughout: 0.17 warns at a register's uint64 minus a literal's int64.
    if len(by_page) == 1:
        return f"{BIAS} = ({ip} & 0xfffffffffffff000) - (uint64)0x{next(iter(by_page)):x};"
    # Flat ifs: a ternary of the pages, 8 deep, crashes bpftrace 0.23 (a
    # segfault as it compiles; seen on Debian's age, whose RETs span pages).
    out = [f"{BIAS} = (uint64)0;"]
    for page, lows in by_page.items():
        cond = " || ".join(f"({ip} & 0xfff) == 0x{low:x}" for low in lows)
        out.append(f"if ({cond}) {{ {BIAS} = (uint64)0x{page:x}; }}")
    out.append(f"{BIAS} = ({ip} & 0xfffffffffffff000) - {BIAS};")
    return " ".join(out)


def _fold_printf(text, call, hit, edits, block, edit_type, budget):
    """Replace the printf `call`, whose argument hit[0] is a goerr, by one
    printf per error type; the other edits inside it are kept in each."""
    start = text.rfind("printf", block.start, call.format_start)
    close = text.index(")", call.args[-1][1])
    return _fold(text, start, close, (call.format_start, call.format_end), call.args, hit, edits, edit_type, budget)


def _fold_print(text, start, arg, close, render, edits, edit_type, budget):
    """print(goerr(e)) prints its value and a newline: as printf("%s\\n")
    does, so that it too prints the whole text."""
    return _fold(text, start, close, '"%s\\n"', [arg], (0, ("goerr", render)), edits, edit_type, budget)


def _fold(text, start, close, fmt, args, hit, edits, edit_type, budget):
    index, (kind, render) = hit
    inside = [e for e in edits if start <= e.start and e.end <= close + 1]
    rest = [e for e in edits if e not in inside]

    def edited(a, b):
        out, pos = [], a
        for e in sorted((e for e in inside if a <= e.start and e.end <= b), key=lambda e: (e.start, e.end)):
            out += [text[pos:e.start], e.text]
            pos = e.end
        return "".join(out) + text[pos:b]

    fmt = fmt if isinstance(fmt, str) else edited(*fmt)
    args = [edited(a, b) for a, b in args]
    verbs = [m for m in _VERB.finditer(fmt) if m.group("conv") != "%"]
    if index >= len(verbs):
        return edits  # bpftrace will say the format is short
    verb = verbs[index]
    branches = []
    for cond, piece, piece_args in (render.decided(render.branches(budget)) if kind == "goerr"
                                    else render.type_branches(kind.endswith(NIL_VERB))):
        f = fmt[:verb.start()] + piece + fmt[verb.end():]
        a = args[:index] + piece_args + args[index + 1:]
        stmt = f"printf({', '.join([f] + a)});"
        branches.append((cond, stmt))
    code = ""
    for cond, stmt in reversed(branches):
        code = stmt if cond is None else f"if ({cond}) {{ {stmt} }} else {{ {code} }}"
    # The user's `;` (or `}`) follows: end on a statement that takes it.
    return rest + [edit_type(start, close + 1, code + " $__gobt_z = 0")]
