"""goret: and wildcards: the RETs of every function a pattern matches.

A wildcard over a whole binary (goret:BIN:*) meets functions no probe can
go in: tail-call wrappers and functions that never return (no RET), code
that cannot be disassembled whole, places the installed bpftrace cannot
attach at. Each is skipped, never failing the others, and said: one line
per function for a few, one line in all for many (-l names each).
"""

from ..binary.disasm import analyze, tail_call_target
from ..binary.proof import Stale
from ..binary.symbols import is_wildcard
from ..errors import GobtError, UnreachableOffset, warn
from .uprobes import uprobe_at


def analyze_all(ap, binary, fns, loc, skipped):
    """disasm.Code of each function; for wildcards, skipping (into `skipped`)
    the few that cannot be disassembled whole rather than failing them all."""
    codes = []
    for fn in fns:
        try:
            codes.append(analyze(binary, fn))
        except GobtError as e:
            if not is_wildcard(ap.func):
                raise GobtError(e.message, loc) from None
            skipped.append((fn.name, "cannot be disassembled whole", f"{fn.name} gets no probe: {e.message}"))
    return codes


# Up to this many skipped functions are named one per line; more, and a
# wildcard says them in one line, and -l lists each with its reason.
SKIPPED_NAMED = 3


def expand_goret(ap, binary, fns, ctx, loc):
    """The uprobes on every RET of the functions; (attach points, their Codes).

    One function that cannot be placed never fails a wildcard: it is
    skipped, and said (one line for many)."""
    attach = []
    codes = []
    skipped = []  # (name, reason, the full message)
    for found in analyze_all(ap, binary, fns, loc, skipped):
        name = found.function.name
        if not found.ret_offsets:
            if found.tail_calls:
                to = tail_call_target(binary, found)
                skipped.append((name, "no RET (a tail call)",
                                f"{name} has no RET: it ends in a tail call (JMP to {to}); goret never fires for it"))
            else:
                skipped.append((name, "no RET (never returns)",
                                f"{name} has no RET (it never returns); goret never fires for it"))
            continue
        try:
            probes = [uprobe_at(ctx.attach_target(ap), binary, found.function, offset, ctx, loc, ret=True)
                      for offset in found.ret_offsets]
        except GobtError as e:
            # Every match gets its probe when another bpftrace can take them.
            if not is_wildcard(ap.func) or (isinstance(e, UnreachableOffset) and ctx.other_bpftrace_can):
                raise
            skipped.append((name, f"bpftrace {ctx.bpftrace.version_text} cannot attach there",
                            f"{name} gets no probe: {e.message}"))
            continue
        except Stale as e:
            # Computed afresh and still refuted by the bytes: this function
            # is skipped, the others placed. (From a cache, rewrite() drops
            # the caches and tries again first.)
            if not is_wildcard(ap.func) or not ctx.fresh:
                raise
            skipped.append((name, "gobt cannot prove its bounds", f"{name} gets no probe: gobt's proof fails on the bytes ({e})"))
            continue
        codes.append(found)
        attach.extend(probes)
    say_skipped(ap, skipped, loc, placed=len(codes))
    if not attach:
        raise GobtError(f"goret:{ap.target}:{ap.func} matches no function with a RET instruction", loc)
    ctx.probe_count += len(attach)
    return attach, codes


def say_skipped(ap, skipped, loc, placed):
    if not skipped:
        return
    if len(skipped) <= SKIPPED_NAMED:
        for _name, _reason, message in skipped:
            warn(message, loc)
        return
    reasons = {}
    for name, reason, _message in skipped:
        reasons.setdefault(reason, []).append(name)
    why = "; ".join(f"{len(names)} {reason}, e.g. {names[0]}" for reason, names in
                    sorted(reasons.items(), key=lambda kv: -len(kv[1])))
    warn(f"{len(skipped)} of the {len(skipped) + placed} functions matching '{ap.func}' get no probe "
         f"({why}); `gobt -l '{ap.provider}:{ap.target}:{ap.func}'` lists each and why", loc)
