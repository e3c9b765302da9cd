"""Rewrite gotrace:BIN:PATTERN: one line per call, at its return.

Each function the pattern matches gets a goret probe of its own whose
printf holds the goroutine id, the function, its params by name and its
results, as Go's %v shows them, and the call's duration:

    17> main.tick(n=3, label="t") => (21, "t!") 12.345us

A call made inside another traced call of the same goroutine is indented
two spaces a level (its line comes first: a line prints at the return).

A user's block, if it holds anything, stays as a goret probe over the same
pattern, after the generated ones. The generated probes are put on the
gotrace probe's first line, so no line of the user's moves; the script is
then parsed again and rewritten as if the user had written them.

What a value shows, by its Go kind (what gobt can read at a return):
integers and bools as numbers; strings quoted, cut at bpftrace's string
size (ending in … where gobt knows the cut: kept_bytes); errors as goerr;
other interfaces as gotype, nil as <nil>; pointers, maps,
channels and funcs as 0x...; slices as []T(len=N); structs and arrays by
their type; floats and complex numbers as `?` (BPF cannot read SSE
registers).
"""

import re

from ..binary.dwarf import ADDRESS_KINDS
from ..binary.gotypes import t_name
from ..binary.symbols import is_wildcard
from ..errors import GobtError
from ..lang.script import parse
from ..lang.source import Source
from .govalue import NIL_VERB
from .nesting import NEST
from .printf import _VERB, string_size

PROVIDER = "gotrace"


def expand(script, ctx):
    """The script with each gotrace probe turned into goret probes."""
    if not any(ap.provider == PROVIDER for p in script.probes for ap in p.attach_points):
        return script
    text = script.source.text
    for probe in reversed(script.probes):
        aps = [ap for ap in probe.attach_points if ap.provider == PROVIDER]
        if not aps:
            continue
        if len(aps) != len(probe.attach_points):
            raise GobtError("gotrace: cannot share a probe with other attach points",
                            script.source.location(probe.span.start))
        generated = []
        for ap in aps:
            generated += _probes_for(ap, script.source, ctx)
        body = text[probe.block.start + 1: probe.block.end - 1] if probe.block.end > probe.block.start else ""
        head = " ".join(generated) + " "
        if body.strip():
            # The user's block runs too, as a goret over the same pattern.
            rest = text[probe.span.start:probe.span.end]
            for ap in sorted(aps, key=lambda a: -a.span.start):
                off = ap.span.start - probe.span.start
                rest = rest[:off] + "goret" + rest[off + len(PROVIDER):]
            text = text[:probe.span.start] + head + rest + text[probe.span.end:]
        else:
            kept = "\n" * text.count("\n", probe.span.start, probe.span.end)
            text = text[:probe.span.start] + head + kept + text[probe.span.end:]
    return parse(Source(text, script.source.filename))


def _probes_for(ap, source, ctx):
    from .probes import functions  # (probes imports nothing of this module)
    from .signature import declared_for

    binary, fns = functions(ap, source, ctx)
    declared = declared_for(ap, binary, fns, source)
    out = []
    for fn in fns:
        if not binary.is_go_function(fn) or fn.name in ctx.gotrace_skip:
            continue
        if is_wildcard(ap.func):
            ctx.gotrace_wild[fn.name] = source.location(ap.span.start, len(ap.text))
        sub = declared or (binary.dwarf.subprogram(fn) if binary.has_dwarf else None)
        if sub is None:
            recorded = binary.args_size(fn)
            size = "" if recorded is None else f", {recorded // 8} words of args as the runtime records them"
            raise GobtError(f"gotrace: {binary.display_path} has no DWARF: declare {fn.name}'s signature "
                            f"(gotrace:BIN:{fn.name}(...) ...{size}; gobt -lv shows them)",
                            source.location(ap.span.start, len(ap.text)))
        fmt, args = line_for(sub, kept_bytes(ctx), nested(ctx))
        target = ap.text.split(":", 2)[1]
        sig = ap.text[ap.func_offset + len(ap.func) + (2 if ap.func_quoted else 0):] if declared else ""
        quoted = '"' + fn.name.replace('"', '\\"') + '"'
        out.append(f"goret:{target}:{quoted}{sig} {{ printf(\"{fmt}\\n\", {', '.join(args)}); }}")
    if not out:
        raise GobtError(f"gotrace:{ap.target}:{ap.func} matches no Go function",
                        source.location(ap.span.start, len(ap.text)))
    return out


def wildcard_function(ctx, probe):
    """(function, the gotrace's place) if `probe` is the goret gotrace wrote
    for one function its wildcard matched, else None."""
    names = [ap.func for ap in probe.attach_points]
    if len(names) == 1 and names[0] in ctx.gotrace_wild:
        return names[0], ctx.gotrace_wild[names[0]]
    return None


def describe(binary, fn, ap, source):
    """What one call's line holds, each value named by what reads it (-lv)."""
    from .signature import declared_for

    sub = declared_for(ap, binary, [fn], source) or (binary.dwarf.subprogram(fn) if binary.has_dwarf else None)
    if sub is None:
        return "nothing without DWARF: declare a signature of the args the runtime records (above)"
    fmt, args = line_for(sub)
    out, pos, values = [], 0, iter(args)
    for m in _VERB.finditer(fmt):
        out.append(fmt[pos:m.start()])
        if m.group("conv") == "%":
            out.append("%")
        else:
            shown = next(values).replace(f" {NIL_VERB})", ")")
            out.append("" if shown == NEST else "{" + shown + "}")
        pos = m.end()
    out.append(fmt[pos:])
    return "".join(out).replace('\\"', '"')


def kept_bytes(ctx):
    """How many bytes of a Go string bpftrace keeps, where gobt marks a cut
    string with `…` itself: 0.17 cuts with no mark at BPFTRACE_STRLEN - 1;
    0.23 marks a cut string itself (a trailing ..), at its own limit. On
    0.17 a param's mark carries its length from the entry: where that does
    not fit the BPF stack, cli rewrites the lines without marks."""
    if ctx.bpftrace.version >= (0, 23) or ctx.cut_marks is None:
        return None  # (None: cli found the marks cost too much of 0.17's BPF stack)
    ctx.cut_marks = True
    return string_size() - 1


def nested(ctx):
    """Whether the lines indent nested calls: on 0.17 the indent is a
    string on the BPF stack, and cli rewrites the lines without it where
    it does not fit (ctx.indented None)."""
    if ctx.indented is None:
        return False
    ctx.indented = True
    return True


def line_for(sub, kept=None, nest=True):
    """(printf format, args) of one call's line; a string longer than
    `kept` bytes ends in `…`; with nest, a nested call's line is indented."""
    params = [p for p in sub.params if not p.is_result]
    results = [p for p in sub.params if p.is_result]
    fmt = ["%s%d> " if nest else "%d> ", _escape(sub.name), "("]
    args = [NEST, "goid"] if nest else ["goid"]
    for i, p in enumerate(params):
        f, a = value(p, p.name, kept) if p.name and p.name != "_" else ("_", [])
        fmt += [", " if i else "", _escape(p.name), "=", f]
        args += a
    fmt.append(")")
    if results:
        fmt.append(" => (")
        for i, p in enumerate(results):
            f, a = value(p, f"~r{p.index}", kept)
            fmt += [", " if i else "", f]
            args += a
        fmt.append(")")
    fmt.append(" %ld.%03ldus")
    args += ["goelapsed / 1000", "goelapsed % 1000"]
    return "".join(fmt), args


def value(param, path, kept=None):
    """(format piece, args) for one value, as %v would show it."""
    t = param.type
    kind = t.kind
    if kind in ("int", "uint", "bool"):
        return "%d", [f"goarg({path})"]
    if kind == "string":
        if kept is None:
            return '\\"%s\\"', [f"goarg({path})"]
        # A literal in a ternary: on 0.17 it costs its few bytes of stack, not a string's.
        return '\\"%s%s\\"', [f"goarg({path})", f'(goarg({path}.len) > {kept} ? "…" : "")']
    if kind in ADDRESS_KINDS:
        return "0x%x", [f"goarg({path})"]
    if kind == "interface":
        # %v of a nil interface is <nil>; gotype's own nil is "" (the NIL_VERB use).
        return ("%s", [f"goerr({path})"]) if t.name == "error" else ("%s", [f"gotype({path} {NIL_VERB})"])
    if kind == "slice":
        return _escape(t_name(t.name)) + "(len=%d)", [f"goarg({path}.len)"]
    return _escape(t_name(t.name)) if kind in ("struct", "array") else "?", []


def _escape(text):
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")
