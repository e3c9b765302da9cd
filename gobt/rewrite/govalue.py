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

from ..binary.inlined import is_position_independent
from ..errors import GobtError
from ..lang.script import Use
from .ifacevalue import BIAS, STACK_STRINGS, Render
from .inlined import IP, site_address
from .printf import _VERB, _skip_space, _skip_string, map_key_elements, map_keys, print_calls, printf_calls, \
    string_read, string_size
from .textmatch import unquote


KINDS = ("goerr", "gotype")
# gotrace's spelling of gotype(PATH) as %v shows it: a nil interface prints
# <nil> there (gotype's own nil is "", as %T's is).
NIL_VERB = "%v"


def check_goerr_keys(script):
    """A map keyed by goerr(...) somewhere and with another number of keys
    elsewhere: said here, in the user's terms, where bpftrace would speak
    of string[64] pairs. (goerr as a key element is two elements.)"""
    text = script.source.text
    goerrs = {(u.span.start, u.span.end) for p in script.probes for u in p.uses if u.kind == "goerr"}
    if not goerrs:
        return  # (no scan of every block of a script that keys nothing by goerr)
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
        self.renders = []  # (Use, Render)
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
        render = Render(len({id(r) for _, r in self.renders}), binary, first, data, eface,
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
