"""Rewrite: gobt's constructs into plain bpftrace, line for line.

Every edit replaces a span of the user's text with text of no more lines
than it had (an expanded goret keeps its whole attach list on the user's
line), so bpftrace's own error positions still point at the user's lines.
Bytes outside the edited spans are copied through untouched.
"""

import contextlib
import os
from ..record import dataclass

from ..binary.gobinary import GoBinary
from ..binary.disasm import analyze, is_instruction_boundary
from ..binary.proof import Stale, for_program_cache, refuse
from .. import errors
from ..errors import GobtError, UnreachableOffset, note, warn
from .goarg import carried_cast, number_type, resolve
from .printf import one_number, string_read, verb_edits
from .goroutine import goroutine_of
from . import nesting
from .gate import GATE, INTERNAL, TIME_MAP, gate_and_filters
from .govalue import KINDS as GOVALUE_KINDS, check_goerr_keys, finish_values, read_value
from .inlined import at_copies, by_address, copies, only_inlined_error, resolve_site, site_address
from .signature import check_params_complete, declared_for  # noqa: F401 (listing imports one)
from .uprobes import uprobe_at
from .goret import analyze_all, expand_goret, say_skipped
from .spanmap import SpanMap
from ..binary.symbols import is_wildcard
from ..binary import early
from ..binary.targets import debug_places, resolve_binary


@dataclass
class Edit:
    start: int
    end: int
    text: str
    pieces: tuple = ()  # spans of text copied from elsewhere in the script (spanmap.py)


class Context:
    """What one rewrite needs from outside the script."""

    def __init__(self, bpftrace, pid=None, other_bpftrace_can=False, prefetch_dwarf=True):
        self.bpftrace = bpftrace
        self.prefetch_dwarf = prefetch_dwarf  # nearly every rewrite asks DWARF something
        self.pid = pid
        # cli can run a bpftrace that attaches where this one cannot.
        self.other_bpftrace_can = other_bpftrace_can
        self.needs_unsafe = ""  # why, when the program needs --unsafe
        self.probe_count = 0
        self.maps_used = set()
        # For printf.stack_error, which places bpftrace's stack errors at the user's line:
        self.current_probe = None  # the index of the probe being rewritten
        self.attach_names = {}  # probe index -> [(BIN, function part)] of the uprobes made for it
        self.string_reads = {}  # probe index -> Location of its first Go string read
        self.spans = None  # SpanMap of the program rewrite() made
        self.proven = set()  # (BIN, file offset) of probes at offsets gobt proved
        self._binaries = {}
        self.proofs = {}  # (path, function's file offset) -> what proof.still_holds checks
        self.fresh = False  # no cache left: what fails a proof now fails on the bytes
        # gotrace's lines on bpftrace 0.17 (cli fits them to the BPF stack):
        # False until gotrace uses it, True once it has, None once left out.
        self.cut_marks = False  # a … after a cut string
        self.indented = False  # a nested call's indent
        self.gotrace_skip = set()  # functions of a wildcard left out
        self.gotrace_wild = {}  # function -> the Location of the gotrace wildcard that matched it
        self.refused = None  # the index of the probe bpftrace refused for its stack

    def restart(self):
        """Start the rewrite again, with every binary's cache dropped."""
        self.fresh = True
        self.needs_unsafe = ""
        self.probe_count = 0
        self.maps_used = set()
        self.proven = set()
        self.proofs = {}
        for binary in self._binaries.values():
            binary.cache.drop()

    def save_caches(self):
        for binary in self._binaries.values():
            binary.cache.save()

    def binaries_read(self):
        """target -> (path, stat, where its debug file was looked for) of every binary read."""
        return {t: (b.path, b.stat, b.debug_consulted) for t, b in self._binaries.items()}

    def proofs_made(self):
        """What proof.still_holds checks, for the program cache."""
        return for_program_cache(self.proofs, self._binaries.values())

    def binary(self, target, location):
        """The GoBinary for a probe's BIN (its .attach_path is for bpftrace)."""
        if target not in self._binaries:
            found = resolve_binary(target, self.pid)
            if found is None:
                where = f" (nor inside process {self.pid})" if self.pid is not None else ""
                raise GobtError(f"binary '{target}' not found{where}", location,
                                ["  give a path to the Go binary (./app or /usr/local/bin/app)"])
            if self.pid is not None and found.startswith(f"/proc/{self.pid}/") and "/root/" not in found:
                now = "names another file now" if os.path.exists(target) else "names no file now"
                note(f"-p {self.pid} runs a {target} that was replaced or removed (the path {now}); "
                     f"probing the file the process runs, {found}")
            binary = early.take(found, target) or GoBinary(found, display_path=target)
            binary.attach_path = found
            binary.debug_root, binary.debug_folder = debug_places(self.pid, target, found)
            if self.prefetch_dwarf:
                early.prefetch(binary)
            self._binaries[target] = binary
        return self._binaries[target]

    def attach_target(self, ap):
        """BIN as this probe's uprobes must name it."""
        binary = self._binaries[ap.target]
        if binary.attach_path == ap.target:
            return _target_text(ap)  # the user's own spelling, quotes and all
        return binary.attach_path


@dataclass
class Site:
    """A Go function a probe fires in, and where: at its entry or a return."""

    binary: GoBinary
    target: str  # the BIN the user wrote, as bpftrace must see it
    function: object  # for an inlined copy, its caller
    at: str  # "entry", "return", or "inline" (a copy's entry, inside its caller)
    code: object = None  # disasm.Code, for goret sites
    declared: object = None  # the Subprogram a signature in the probe declares
    inlined: object = None  # binary.inlined.InlinedSite


# Maps shared by all probes for values carried from a call's entry to its
# return. One per value type keeps the empty maps bpftrace prints at exit
# (a blank line each) to a few lines: the time map holds the gate and the
# integers too (goarg.carried_cast), keyed [probe, slot, g, depth], the time
# in slot -1; only a string needs a map of its own.
CAPTURE_MAPS = {"time": TIME_MAP, "int": TIME_MAP, "str": INTERNAL + "s"}
TIME_SLOT = -1


def _apply(text, edits, base=0):
    """`text` (found at offset `base`) with the edits made."""
    out = []
    pos = 0
    # At one offset an insertion goes before a replacement starting there.
    for edit in sorted(edits, key=lambda e: (e.start, e.end)):
        start, end = edit.start - base, edit.end - base
        assert start >= pos, f"overlapping edits at {edit.start}"
        out.append(text[pos:start])
        out.append(edit.text)
        pos = end
    out.append(text[pos:])
    return "".join(out)


def rewrite(script, ctx):
    """The bpftrace program for `script`, as text.

    Every offset is proven on the binary's bytes as it is placed
    (uprobes.uprobe_at). One that fails came from a cache that no longer holds:
    the caches are dropped and the rewrite done again from the bytes. If
    an offset computed afresh fails, gobt refuses rather than guess.
    """
    try:
        with errors.held(dropped_on=Stale):  # the second try says them again
            return _rewrite(script, ctx)
    except Stale as e:
        note(f"cached facts did not hold on the binary's bytes ({e}); recomputing without them")
        ctx.restart()
    try:
        return _rewrite(script, ctx)
    except Stale as e:
        raise refuse(e, None) from None


def _rewrite(script, ctx):
    check_goerr_keys(script)
    edits = []
    rewriters = []
    for probe_id, probe in enumerate(script.probes):
        ctx.current_probe = probe_id
        rewriters.append(_ProbeRewriter(probe, probe_id, script.source, ctx))
        edits.extend(rewriters[-1].edits())
    text = script.source.text
    more, tail = gate_and_filters(script, rewriters, bool(edits), ctx.pid,
                                  sorted({CAPTURE_MAPS[k] for k in ctx.maps_used}), Edit)
    edits += more
    if tail:
        # After the user's last line, so no line of theirs moves.
        tail = ("" if text.endswith("\n") else "\n") + tail + "\n"
    ctx.spans = SpanMap.from_edits(text, edits, tail)
    return _apply(text, edits) + tail


class _ProbeRewriter:
    """The edits for one probe: its attach points, its helpers, its captures."""

    def __init__(self, probe, probe_id, source, ctx):
        self.probe = probe
        self.id = probe_id
        self.source = source
        self.ctx = ctx
        self.sites = []  # Go functions goarg & co. are read in
        self.not_go = []  # attach points where they cannot be
        self.generated = False
        self.captures = []  # (slot, map kind, {site index: entry expression})
        self.values = {}  # (start, end) of each use -> (signed, size) of its integer, or None
        self.pid_filtered = False  # fires only in -p's process (0.17 does not filter uprobes by -p)
        self.moved = False  # the user's predicate moved into the block
        self.nest = None  # the capture slot of gotrace's nesting level

    def loc(self, span_start, width=1):
        return self.source.location(span_start, width)

    def edits(self):
        out = []
        for ap in self.probe.attach_points:
            with _located(self.loc(ap.span.start, len(ap.text))):
                out.extend(self._attach_point(ap))
        use_edits = self._uses()
        if self.captures or any(u.kind == "goelapsed" for u in self.probe.uses):
            with _located(self.loc(self.probe.span.start)):
                out.extend(self._carry_from_entry(use_edits))
            self.moved = True
            self.pid_filtered = self.ctx.pid is not None
        else:
            out.extend(use_edits)
            self.pid_filtered = bool(self.generated or use_edits) and self.ctx.pid is not None
        return out

    # -- attach points ------------------------------------------------------

    def _attach_point(self, ap):
        ctx = self.ctx
        loc = self.loc(ap.span.start, len(ap.text))
        if ap.is_gobt and ap.probe_offset is not None:
            raise GobtError(f"{ap.provider} takes no +OFFSET: it places its own probes", loc,
                            [f"  for a probe at an offset, write uprobe:{ap.target}:{ap.func}+{ap.probe_offset}"])
        if ap.provider == "goret":
            binary, fns = functions(ap, self.source, ctx)
            declared = declared_for(ap, binary, fns, self.source)
            attach, codes = expand_goret(ap, binary, fns, ctx, loc)
            self.sites += [Site(binary, ctx.attach_target(ap), c.function, "return", c, declared) for c in codes]
            self.generated = True
            return [Edit(ap.span.start, ap.span.end, ", ".join(attach))]
        if ap.provider == "goentry":
            binary, fns = functions(ap, self.source, ctx, warn_inlined=False, allow_inlined=True)
            declared = declared_for(ap, binary, fns, self.source)
            attach = []
            skipped = []
            codes = analyze_all(ap, binary, fns, loc, skipped)
            say_skipped(ap, skipped, loc, placed=len(codes))
            for code in codes:
                fn = code.function
                attach.append(uprobe_at(ctx.attach_target(ap), binary, fn, code.entry_offset, ctx, loc))
                self.sites.append(Site(binary, ctx.attach_target(ap), fn, "entry", code, declared))
            ctx.probe_count += len(attach)
            attach += at_copies(ctx, ap, binary, loc, self.sites, Site, uprobe_at)
            if not attach:
                raise GobtError(f"goentry:{ap.target}:{ap.func} matches no function gobt can read", loc)
            self.generated = True
            return [Edit(ap.span.start, ap.span.end, ", ".join(attach))]
        uses_go = any(u.kind != "retval" for u in self.probe.uses)
        # A uprobe keeps bpftrace's meaning: the function's own body, never
        # its inlined copies (goentry:'s job). gobt touches it only to quote
        # a Go symbol, to read goarg, or where bpftrace cannot find the name.
        # Quoting is for Go symbols: uprobe:/bin/bash:readline) is bpftrace's to judge.
        quote = ap.needs_quoting() and _in_go_binary(ctx, ap)
        by_table = not (quote or ap.signature is not None
                        or (uses_go and not _is_address(ap.func))) and _only_pclntab_names(ctx, ap)
        if ap.is_uprobe and (quote or ap.signature is not None
                             or (uses_go and not _is_address(ap.func)) or by_table):
            binary, fns = functions(ap, self.source, ctx)
            declared = declared_for(ap, binary, fns, self.source)
            if ap.probe_offset:
                self.not_go.append((ap, f"it is at +{ap.probe_offset}, not at the entry of {ap.func}"))
            else:
                self.sites += [Site(binary, ctx.attach_target(ap), fn, "entry", None, declared) for fn in fns]
            spelled = _exact_uprobes(ap, binary, fns, ctx, loc)
            if spelled == [ap.text]:
                return []
            if by_table:
                note(f"{ap.text}: the binary has no symbol table, so bpftrace cannot find {ap.func} by name; "
                     "gobt gives it the entry address from the Go function table (.gopclntab)")
            self.generated = True
            return [Edit(ap.span.start, ap.span.end, ", ".join(spelled))]
        self.not_go.append((ap, f"{ap.provider} is not a Go function's entry or return"))
        return []

    # -- helpers in the block -------------------------------------------------

    def _uses(self):
        edits = []
        at_return = any(site.at == "return" for site in self.sites)
        for use in self.probe.uses:
            loc = self.loc(use.span.start, use.span.end - use.span.start)
            if use.kind == "retval" and not at_return:
                continue  # bpftrace's own retval, in a uretprobe
            with _located(loc):
                edits.append(self._use(use, loc))
        block = self.probe.block
        return finish_values(self, edits + verb_edits(self.source, block.start, block.end, self.values, Edit), Edit)

    def _use(self, use, loc):
        """The edit that replaces one helper use."""
        if self.not_go:
            ap, why = self.not_go[0]
            raise GobtError(
                f"{use.kind} is valid only in goret:, goentry:, or a uprobe: at a Go function's entry; "
                f"this probe also fires at '{ap.text}': {why}",
                loc,
            )
        if not self.sites:
            raise GobtError(f"{use.kind} needs a probe on a Go function", loc)
        for site in self.sites:
            if not site.binary.is_go_function(site.function):
                raise GobtError(
                    f"{use.kind}: {site.function.name} is not a Go function (C code in a cgo binary): "
                    "it has no Go calling convention or goroutine",
                    loc, ["  in C code use bpftrace's own arg0..argN (uprobe) and retval (uretprobe)"],
                )
        self.values[use.span.start, use.span.end] = (False, 8)  # goid and goelapsed: uint64
        if use.kind == "goid":
            text = _same_everywhere({goroutine_of(s.binary).goid for s in self.sites}, "goid", loc)
        elif use.kind == "goelapsed":
            if not all(s.at == "return" for s in self.sites):
                raise GobtError("goelapsed is valid only in goret: probes (it is the time since "
                                "this call's entry)", loc)
            text = "(nsecs - $__gobt_t)"
        elif use.kind == nesting.NEST:
            if self.nest is None:
                self.nest = len(self.captures)
                self.captures.append((self.nest, "int", {i: nesting.CARRIED for i in range(len(self.sites))}))
            text = nesting.shown(f"$__gobt_v{self.nest}", self.ctx.bpftrace.strings_on_stack)
            self.values[use.span.start, use.span.end] = None  # a string
        else:
            text, self.values[use.span.start, use.span.end] = self._read_value(use)
        return Edit(use.span.start, use.span.end, text)

    def _read_value(self, use):
        """The expression for goarg(PATH) or retval, the same at every site."""
        if use.kind in GOVALUE_KINDS:
            return read_value(self, use)
        source = self.source
        if use.kind == "retval":
            path, width = "~r0", use.span.end - use.span.start

            def where(offset, w):
                return source.location(use.span.start, width)
        else:
            path = use.path
            if not path:
                raise GobtError("goarg needs a name: goarg(NAME), goarg(NAME.field), goarg(~r0)",
                                self.loc(use.span.start, use.span.end - use.span.start))

            def where(offset, w):
                return source.location(use.path_offset + offset, w)

        exprs = {}
        captured = {}
        reads = []  # (address, expression) of each site
        for i, site in enumerate(self.sites):
            expr, kind, at_entry = resolve_site(site, path, where, use.kind == "retval", self.ctx.bpftrace, resolve)
            reads.append((site_address(site), expr))
            if kind == "string":
                string_read(self.ctx, self.id, where(0, len(path)))
            if at_entry:
                captured[i] = (expr, kind)
            else:
                exprs.setdefault(expr, []).append(site.function.name)
        if captured:
            if exprs:
                raise GobtError(f"goarg({path}) is a parameter in some functions of this probe and a "
                                "result in others", where(0, len(path)))
            kinds = {kind == "string" for _, kind in captured.values()}
            kind = "str" if kinds == {True} else "int"
            if len(kinds) > 1:
                raise GobtError(f"goarg({path}) is a string in some functions of this probe only",
                                where(0, len(path)))
            exprs_by_site = {i: e for i, (e, _) in captured.items()}
            number = one_number(number_type(e) for e in exprs_by_site.values())
            for slot, k, seen in self.captures:
                if seen == exprs_by_site and k == kind:
                    return f"$__gobt_v{slot}", number  # the same value read twice
            slot = len(self.captures)
            self.captures.append((slot, kind, exprs_by_site))
            return f"$__gobt_v{slot}", number
        if len(exprs) > 1 and any(s.at == "inline" for s in self.sites):
            return (by_address(self.sites[0].binary, reads, where(0, len(path))),
                    one_number(number_type(e) for _, e in reads))
        if len(exprs) > 1:
            shapes = "; ".join(f"{', '.join(names[:3])}: {e}" for e, names in exprs.items())
            raise GobtError(
                f"{use.kind} reads differently in the functions this probe covers ({shapes})",
                where(0, len(path)),
                ["  split the probe so each attach list covers functions with the same signature"],
            )
        return next(iter(exprs)), number_type(next(iter(exprs)))

    # -- carrying values from entry to return ------------------------------------

    def _carry_from_entry(self, use_edits):
        """Entry probes that record the call, and the block's read of them.

        At each entry (just after the stack check, so once per call) the
        time and the params the block reads are stored under (probe, g,
        depth); the return reads and deletes them. The goroutine's g
        pointer (in a register) stands for it: unlike goid it costs no
        memory read, and no two live goroutines share one. A return whose entry was
        not seen (the call began before tracing did) is skipped, and has
        nothing to delete (0.23 warns of a delete of a missing key).
        """
        ctx = self.ctx
        pid = f"/pid == {ctx.pid} && {GATE}/ " if ctx.pid is not None else f"/{GATE}/ "
        ctx.maps_used.add("time")
        groups = {}
        for i, site in enumerate(self.sites):
            g = goroutine_of(site.binary)
            stores = [f"$__gobt_g = {g.g}; $__gobt_d = {g.depth};",
                      f"{CAPTURE_MAPS['time']}[{self.id}, {TIME_SLOT}, $__gobt_g, $__gobt_d] = nsecs;"]
            if self.nest is not None:
                stores.append(nesting.AT_ENTRY)
            for slot, kind, entry_exprs in self.captures:
                ctx.maps_used.add(kind)
                value = entry_exprs[i]
                if kind == "int":
                    value = f"{carried_cast(entry_exprs.values())}({value})"
                stores.append(f"{CAPTURE_MAPS[kind]}[{self.id}, {slot}, $__gobt_g, $__gobt_d] = {value};")
            body = " ".join(stores)
            code = site.code or analyze(site.binary, site.function)
            attach = uprobe_at(site.target, site.binary, site.function, code.entry_offset, ctx, None)
            groups.setdefault(body, []).append(attach)
        ctx.probe_count += sum(len(v) for v in groups.values())
        entry_probes = "".join(f"{', '.join(aps)} {pid}{{ {body} }} " for body, aps in groups.items())
        keys = {goroutine_of(s.binary) for s in self.sites}
        if len(keys) > 1:
            raise GobtError("goelapsed and params in goret need all of the probe's functions in one binary",
                            self.loc(self.probe.span.start))
        g = keys.pop()
        cell = f"{CAPTURE_MAPS['time']}[{self.id}, {TIME_SLOT}, $__gobt_g, $__gobt_d]"
        loads = [f"$__gobt_g = {g.g}; $__gobt_d = {g.depth};", f"$__gobt_t = {cell};"]
        deletes = [f"delete({cell});"]
        for slot, kind, entry_exprs in self.captures:
            cell = f"{CAPTURE_MAPS[kind]}[{self.id}, {slot}, $__gobt_g, $__gobt_d]"
            cast = "(int64)" if kind == "int" and carried_cast(entry_exprs.values()) == "(int64)" else ""
            loads.append(f"$__gobt_v{slot} = {cast}{cell};")
            deletes.append(f"delete({cell});")
        if self.nest is not None:
            level = f"$__gobt_v{self.nest}"
            loads += nesting.before_block(level, self.ctx.bpftrace.strings_on_stack)
            deletes.append(nesting.at_return(level))
        # The entry stored all of them at once, or none.
        loads.append(f"if ($__gobt_t != 0) {{ {' '.join(deletes)} }}")
        condition = "$__gobt_t != 0"
        edits = [Edit(self.probe.span.start, self.probe.span.start, entry_probes)]
        pred = self.probe.predicate
        if pred is not None:
            # The user's predicate moves into the block, after the loads, so
            # that an entry is always consumed even when the predicate fails.
            inside = [e for e in use_edits if pred.start <= e.start < pred.end]
            use_edits = [e for e in use_edits if e not in inside]
            inner = self.source.text[pred.start + 1 : pred.end - 1]
            user = _apply(inner, inside, pred.start + 1)
            # Where the user's predicate lands in the block, for bpftrace's messages.
            moved = SpanMap.from_edits(inner, inside, base=pred.start + 1).shifted(
                len(" ".join(loads)) + len(f" if ({condition} && (") + 1 - (len(user) - len(user.lstrip())))
            condition += f" && ({user.strip()})"
            blank = "".join(c if c == "\n" else " " for c in self.source.text[pred.start : pred.end])
            edits.append(Edit(pred.start, pred.end, blank))
        block = self.probe.block
        edits.append(Edit(block.start + 1, block.start + 1, " " + " ".join(loads) + f" if ({condition}) {{",
                          moved.segments if pred is not None else ()))
        edits.append(Edit(block.end - 1, block.end - 1, "} "))
        return edits + use_edits


@contextlib.contextmanager
def _located(loc):
    """Give a script's place to errors raised without one (binary, DWARF)."""
    try:
        yield
    except GobtError as e:
        if e.location is None:
            e.location = loc
        raise


def _same_everywhere(values, what, loc):
    if len(values) > 1:
        raise GobtError(f"{what} reads differently in the binaries this probe covers", loc)
    return next(iter(values))


def _in_go_binary(ctx, ap):
    try:
        binary = ctx.binary(ap.target, None)
    except GobtError:
        return False  # not a binary gobt can read: bpftrace's to judge
    return binary.go_version is not None or binary.pcln_text_range is not None


def _only_pclntab_names(ctx, ap):
    """A plain uprobe on a Go name in a stripped Go binary: bpftrace finds
    no symbol by that name, pclntab does."""
    if not ap.may_name_go():
        return False
    try:
        binary = ctx.binary(ap.target, None)
    except GobtError:
        return False  # not a binary gobt can read: bpftrace's to judge
    return binary.stripped and binary.go_version is not None and bool(binary.functions_matching(ap.func))


def _is_address(func):
    return func[:2].lower() == "0x" or func.isdigit()


def not_go_error(ap, binary, loc):
    """goret:/goentry: are for Go functions: on a binary with no Go build
    info and no Go function table, a clear error (a C function's values
    are not where Go's ABI puts them)."""
    if binary.go_version is not None or binary.pcln_text_range is not None:
        return
    raise GobtError(f"{binary.display_path} is not a Go binary (no Go build info, no Go function table); "
                    f"{ap.provider}: probes Go functions", loc,
                    [f"  for its functions, use bpftrace's uprobes: bpftrace -l 'uprobe:{ap.target}:*'"])


def functions(ap, source, ctx, warn_inlined=True, allow_inlined=False):
    """The binary and the functions an attach point names (none, with allow_inlined, for a
    name whose every call is inlined); warns of inlining."""
    loc = source.location(ap.span.start, len(ap.text))
    binary = ctx.binary(ap.target, loc)
    if ap.is_gobt:
        not_go_error(ap, binary, loc)
    fns = binary.functions_matching(ap.func)
    if warn_inlined and len(fns) == 1 and not is_wildcard(ap.func):
        # (For wildcards this would cost a DWARF search per function.)
        inlined = binary.inlined_call_sites(fns[0])
        if inlined and ap.is_uprobe and not ap.probe_offset:
            warn(f"{fns[0].name} is inlined at {inlined} call site{'s' if inlined > 1 else ''}; a uprobe "
                 f"fires at its body only, as in bpftrace: goentry:{ap.target}:{ap.func} fires at each copy too",
                 loc)
        elif inlined:
            warn(f"{fns[0].name} is inlined at {inlined} call site{'s' if inlined > 1 else ''}; "
                 "no probe sees those calls (build with -gcflags=all=-l to keep them)", loc)
    if not fns:
        func_loc = source.location(ap.span.start + ap.func_offset, len(ap.func))
        inlined = copies(ap, binary)
        if inlined and allow_inlined:
            return binary, []
        if inlined:
            raise only_inlined_error(ap.func, inlined, func_loc)
        hints = []
        if is_wildcard(ap.func):
            other = binary.symbols.match(ap.func)
            if other:
                names = ", ".join(f.name for f in other[:3]) + (" ..." if len(other) > 3 else "")
                hints.append(f"  wildcards match Go functions only; {len(other)} other "
                             f"{'functions match' if len(other) > 1 else 'function matches'} "
                             f"(C, or cgo's own): {names}; name one exactly to probe it")
        else:
            names = [f.name for f in binary.symbols.all_functions()]
            import difflib
            close = difflib.get_close_matches(ap.func, names, n=5, cutoff=0.6)
            if close:
                hints.append("  did you mean: " + ", ".join(close))
        raise GobtError(f"no function matches '{ap.func}' in {ap.target}", func_loc, hints)
    return binary, fns


def _target_text(ap):
    return ap.text[: ap.func_offset - 1].split(":", 1)[1]


def _exact_uprobes(ap, binary, fns, ctx, loc):
    """One uprobe per function gobt resolved, each naming exactly that function.

    Quoting main.(*T).M is not enough: bpftrace reads the '*' inside the
    quotes as a wildcard too, and would also probe main.(*OtherT).M, whose
    params gobt never resolved.
    """
    offset = ap.probe_offset or 0
    if offset:
        for fn in fns:
            if not is_instruction_boundary(binary, fn, offset):
                raise GobtError(f"+{offset} is not an instruction boundary in {fn.name}", loc)
    ctx.probe_count += len(fns)
    return [uprobe_at(ctx.attach_target(ap), binary, fn, offset, ctx, loc) for fn in fns]
