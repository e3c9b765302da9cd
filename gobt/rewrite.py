"""Rewrite: gobt's constructs into plain bpftrace, line for line.

Every edit replaces a span of the user's text with text of no more lines
than it had (an expanded goret keeps its whole attach list on the user's
line), so bpftrace's own error positions still point at the user's lines.
Bytes outside the edited spans are copied through untouched.
"""

import difflib
import os
import shutil
from dataclasses import dataclass

from .binary import GoBinary
from .disasm import returns
from .errors import GobtError, warn

# bpftrace refuses more probes than this unless BPFTRACE_MAX_PROBES says so.
DEFAULT_MAX_PROBES = 512


@dataclass
class Edit:
    start: int
    end: int
    text: str


class Context:
    """What one rewrite needs from outside the script."""

    def __init__(self, bpftrace, pid=None):
        self.bpftrace = bpftrace
        self.pid = pid
        self.needs_unsafe = False
        self.probe_count = 0
        self._binaries = {}
        self._lowest_symbol = {}

    def binary(self, target, location):
        """The GoBinary for a probe's BIN, and the path to give bpftrace."""
        key = target
        if key not in self._binaries:
            path = _resolve_path(target, self.pid)
            if path is None:
                raise GobtError(
                    f"binary '{target}' not found",
                    location,
                    ["  give a path to the Go binary (./app or /usr/local/bin/app)"],
                )
            self._binaries[key] = GoBinary(path, display_path=target)
        return self._binaries[key]


def _resolve_path(target, pid):
    """Find BIN as bpftrace would: a path, or a name looked up in $PATH."""
    if pid is not None:
        root = f"/proc/{pid}/root"
        inside = os.path.join(root, os.path.abspath(target).lstrip("/"))
        if not os.path.exists(target) and os.path.isfile(inside):
            return inside
    if os.path.exists(target):
        return target
    if "/" not in target:
        return shutil.which(target)
    return None


def rewrite(script, ctx):
    """The bpftrace program for `script`, as text."""
    edits = []
    for probe in script.probes:
        edits.extend(_rewrite_probe(probe, script.source, ctx))
    text = script.source.text
    out = []
    pos = 0
    for edit in sorted(edits, key=lambda e: e.start):
        out.append(text[pos : edit.start])
        out.append(edit.text)
        pos = edit.end
    out.append(text[pos:])
    return "".join(out)


@dataclass
class Site:
    """A Go function a probe fires in, and where: at its entry or a return."""

    binary: GoBinary
    function: object
    at: str  # "entry" or "return"


def _rewrite_probe(probe, source, ctx):
    edits = []
    generated = False
    sites = []  # the Go functions goarg/retval are read in
    not_go = []  # attach points where they cannot be
    for ap in probe.attach_points:
        loc = source.location(ap.span.start, len(ap.text))
        if ap.provider == "goret":
            attach, fns = _expand_goret(ap, source, ctx)
            edits.append(Edit(ap.span.start, ap.span.end, ", ".join(attach)))
            sites += [Site(ctx.binary(ap.target, loc), fn, "return") for fn in fns]
            generated = True
        elif ap.provider == "goentry":
            raise GobtError("goentry probes are not implemented yet in this version of gobt", loc)
        elif ap.is_uprobe and (ap.needs_quoting() or (probe.uses and not _is_address(ap.func))):
            binary, fns = functions(ap, source, ctx)
            if ap.probe_offset:
                not_go.append((ap, f"it is at +{ap.probe_offset}, not at the entry of {ap.func}"))
            else:
                sites += [Site(binary, fn, "entry") for fn in fns]
            if ap.needs_quoting():
                edits.append(Edit(ap.span.start, ap.span.end, _quote_uprobe(ap, fns, ctx)))
                generated = True
        else:
            not_go.append((ap, f"{ap.provider} is not a Go function's entry or return"))

    has_goret = any(site.at == "return" for site in sites)
    for use in probe.uses:
        loc = source.location(use.span.start, use.span.end - use.span.start)
        if use.kind == "retval" and not has_goret:
            continue  # bpftrace's own retval, in a uretprobe
        if use.kind in ("goid", "goelapsed"):
            raise GobtError(f"{use.kind} is not implemented yet in this version of gobt", loc)
        if not_go:
            ap, why = not_go[0]
            raise GobtError(
                f"{use.kind} is valid only in goret:, or in a uprobe: at a Go function's entry; "
                f"this probe also fires at '{ap.text}': {why}",
                loc,
            )
        edits.append(Edit(use.span.start, use.span.end, _read_value(use, sites, source)))

    if generated and ctx.pid is not None:
        edits.append(_pid_filter(probe, source, ctx.pid))
    return edits


def _is_address(func):
    return func[:2].lower() == "0x" or func.isdigit()


def _read_value(use, sites, source):
    """The bpftrace expression for a goarg(PATH) or retval, the same at every site."""
    from .abi import assign
    from .goarg import GoargResolver

    if use.kind == "retval":
        path, base = "~r0", use.span.start
    else:
        path, base = use.path, use.path_offset
        if not path:
            raise GobtError("goarg needs a name: goarg(NAME), goarg(NAME.field), goarg(~r0)",
                            source.location(use.span.start, use.span.end - use.span.start))

    def where(offset, width):
        if use.kind == "retval":
            return source.location(use.span.start, use.span.end - use.span.start)
        return source.location(base + offset, width)

    exprs = {}
    for site in sites:
        sub = site.binary.dwarf.subprogram(site.function)
        if use.kind == "retval" and not sub.results:
            raise GobtError(f"retval: {sub.name} returns nothing", where(0, 6))
        locations = assign(sub, site.binary.arch, site.binary.go_version_tuple)
        resolver = GoargResolver(sub, locations, site.at, site.binary.register_abi)
        exprs.setdefault(resolver.expression(path, where), []).append(site.function.name)
    if len(exprs) > 1:
        shapes = "; ".join(f"{', '.join(names[:3])}: {e}" for e, names in exprs.items())
        raise GobtError(
            f"{use.kind} reads differently in the functions this probe covers ({shapes})",
            where(0, len(path)),
            ["  split the probe so each attach list covers functions with the same signature"],
        )
    return next(iter(exprs))


def _pid_filter(probe, source, pid):
    # bpftrace 0.17 does not filter uprobes by -p; gobt's own probes must
    # fire only in the process the user named.
    if probe.predicate is None:
        return Edit(probe.block.start, probe.block.start, f"/pid == {pid}/ ")
    inner = source.text[probe.predicate.start + 1 : probe.predicate.end - 1]
    return Edit(probe.predicate.start, probe.predicate.end, f"/pid == {pid} && ({inner})/")


def functions(ap, source, ctx):
    loc = source.location(ap.span.start, len(ap.text))
    binary = ctx.binary(ap.target, loc)
    fns = binary.symbols.match(ap.func)
    if not fns:
        func_loc = source.location(ap.span.start + ap.func_offset, len(ap.func))
        hints = []
        if "*" not in ap.func:
            names = [f.name for f in binary.symbols.all_functions()]
            close = difflib.get_close_matches(ap.func, names, n=5, cutoff=0.6)
            if close:
                hints.append("  did you mean: " + ", ".join(close))
        raise GobtError(f"no function matches '{ap.func}' in {ap.target}", func_loc, hints)
    return binary, fns


def _expand_goret(ap, source, ctx):
    binary, fns = functions(ap, source, ctx)
    attach = []
    no_ret = []
    loc = source.location(ap.span.start, len(ap.text))
    for fn in fns:
        found = returns(binary, fn)
        if not found.ret_offsets:
            no_ret.append((fn, found))
            continue
        for offset in found.ret_offsets:
            attach.append(_uprobe_at(ap, binary, fn, offset, ctx, loc))
    for fn, found in no_ret[:10]:
        if found.tail_calls:
            target = binary.symbols.at(found.tail_calls[-1][1])
            to = target.name if target else f"0x{found.tail_calls[-1][1]:x}"
            warn(f"{fn.name} has no RET: it ends in a tail call (JMP to {to}); goret never fires for it", loc)
        else:
            warn(f"{fn.name} has no RET (it never returns); goret never fires for it", loc)
    if len(no_ret) > 10:
        warn(f"{len(no_ret) - 10} more functions matching '{ap.func}' have no RET", loc)
    if not attach:
        raise GobtError(f"goret:{ap.target}:{ap.func} matches no function with a RET instruction", loc)
    ctx.probe_count += len(attach)
    no_ret_names = {fn.name for fn, _ in no_ret}
    return attach, [fn for fn in fns if fn.name not in no_ret_names]


def _uprobe_at(ap, binary, fn, offset, ctx, loc):
    target = _target_text(ap)
    if ctx.bpftrace.attach_form == "sym_offset" and not _has_glob(fn.name):
        if ctx.bpftrace.offset_needs_unsafe:
            ctx.needs_unsafe = True
        return f'uprobe:{target}:"{fn.name}"+{offset}'
    file_offset = binary.file_offset(fn.start + offset)
    _check_not_in_symbol(binary, file_offset, fn, ctx, loc)
    ctx.needs_unsafe = True
    return f"uprobe:{target}:0x{file_offset:x}"


def _has_glob(name):
    # bpftrace >= 0.20 reads these as wildcards inside quotes, and its
    # multi-probe then silently drops the offset.
    return any(c in name for c in "*?[")


def _check_not_in_symbol(binary, file_offset, fn, ctx, loc):
    # The file-offset form only works when bpftrace cannot mistake the number
    # for an address inside some symbol (it then demands bfd to check it).
    lowest = ctx._lowest_symbol.get(binary.path)
    if lowest is None:
        lowest = min((f.start for f in binary.symbols.all_functions()), default=0)
        ctx._lowest_symbol[binary.path] = lowest
    if file_offset < lowest:
        return
    covering = binary.symbols.covering(file_offset)
    if covering:
        raise GobtError(
            f"bpftrace {ctx.bpftrace.version_text} (without bfd) cannot attach inside "
            f"{fn.name}: file offset 0x{file_offset:x} falls inside symbol {covering}",
            loc,
            ["  use a bpftrace built with bfd, or bpftrace >= 0.22"],
        )


def _target_text(ap):
    parts = ap.text[: ap.func_offset - 1]
    return parts.split(":", 1)[1]


def _quote_uprobe(ap, fns, ctx):
    """uprobe:BIN:main.(*T).M -> uprobe:BIN:"main.(*T).M" (its existence checked by the caller)."""
    head = ap.text[: ap.func_offset]
    ctx.probe_count += len(fns)
    offset = f"+{ap.probe_offset}" if ap.probe_offset is not None else ""
    return f'{head}"{ap.func}"{offset}'
