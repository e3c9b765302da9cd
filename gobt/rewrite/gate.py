"""The gate: no probe on the traced program changes a map once END begins.

bpftrace alone detaches every probe, then runs END, then prints its maps,
so what it prints is what END saw. gobt's keeper (run/keeper.py) holds the
uprobes open past bpftrace's own detach, and a held uprobe's BPF program
goes on running while END runs and the maps print: a count printed after
END's, gobt's capture maps refilled after END emptied them (and printed
with the user's), and bpftrace 0.17's clear(), done by its user space
while the probes delete keys, aborting ("Could not clear map").

So in a program gobt rewrites, every probe that attaches to a user-space
program (the ones the keeper holds) first checks the gate, which BEGIN
opens and END closes as its very first statement. The gate is a map's
value, not a map's absence, so that closing it is a delete() that leaves
the map empty. bpftrace (0.17 and 0.23) prints every map of the program at
exit, an empty one as one blank line (print_maps skips only bpftrace's own
internal maps): no map gobt adds can print nothing. So the gate is a cell
of gobt's time map, the one goelapsed and every capture use (a key no call
has: probe -1), not a map of its own: one blank line fewer. delete(), not clear(): 0.17's
clear() only asks bpftrace's user space to clear the map later (which,
with the gate closed, no probe races any more). A probe that read the
gate open on another CPU just before END closed it still finishes its
body, which runs to its end without sleeping: the window left is that of
one probe body already under way, not the whole detach.

bpftrace allows one BEGIN and one END: gobt's part goes first in the
user's own, or, when the script has none, in a probe added after its last
line (so no line of the user's moves).
"""

from ..errors import GobtError

# The map of entry times (rewrite/probes.py's CAPTURE_MAPS["time"], keyed
# [probe, slot, g, depth]) and the gate's cell in it, of the same key and
# value types (bpftrace 0.17 wants them equal). bpftrace prints every map
# at exit, by name, an empty one as a blank line: gobt's maps are named to
# come after the user's (a user's @zz... aside), so the lines before the
# user's maps are bpftrace's own, and gobt's blank lines trail.
INTERNAL = "@zz_gobt_"
TIME_MAP = INTERNAL + "t"
GATE = f"{TIME_MAP}[-1, -1, (uint64)0, (uint64)0]"

# What attaches to a user-space program, which the keeper holds open past
# bpftrace's END (uprobes, uretprobes, USDT, and gobt's own, which become
# uprobes). Kernel probes and timers bpftrace detaches itself.
HELD_PROVIDERS = {"goret", "goentry", "gotrace", "uprobe", "u", "uretprobe", "ur", "usdt", "U"}


def gate_and_filters(script, rewriters, changed, pid, empties, edit):
    """(edits, tail) that put each probe's predicate conditions in place: -p's
    pid where the rewriter asked for it, and, in a program gobt changed
    (`changed`: cli holds its uprobes only when the gate is there), the
    gate on every held probe, opened in BEGIN and closed in END. An
    unchanged program is bpftrace's alone."""
    edits = []
    for rw in rewriters:
        conditions = [f"pid == {pid}"] if rw.pid_filtered else []
        if changed and is_held(rw.probe):
            conditions.append(GATE)
        edits += predicate_edits(rw.probe, conditions, rw.moved, edit)
    if not changed:
        return edits, ""
    more, tail = begin_end(script, empties, edit)
    return edits + more, tail


def is_held(probe):
    return any(ap.provider in HELD_PROVIDERS for ap in probe.attach_points)


def predicate_edits(probe, conditions, moved, edit):
    """Edits that make `probe` fire only when every condition holds.

    Two insertions around the user's predicate, so edits inside it (goarg)
    still apply; a predicate moved into the block (moved) or none: a new one
    before the block. `edit` makes an edit (probes.Edit).
    """
    if not conditions:
        return []
    both = " && ".join(conditions)
    if moved or probe.predicate is None:
        return [edit(probe.block.start, probe.block.start, f"/{both}/ ")]
    return [edit(probe.predicate.start + 1, probe.predicate.start + 1, f"{both} && ("),
            edit(probe.predicate.end - 1, probe.predicate.end - 1, ")")]


def begin_end(script, empties, edit):
    """(edits, tail): the gate opened first in BEGIN, closed first in END,
    then gobt's maps emptied (empties: their names)."""
    opened = f"{GATE} = nsecs;"  # a time, as the map's other values
    closed = " ".join([f"delete({GATE});"] + [f"clear({m});" for m in empties])
    edits, tail = [], []
    both = _begin_and_end(script)
    if both is not None:
        # `BEGIN,END { ... }`: one block runs at both ends. The gate is
        # closed (0) only before BEGIN, so it tells the two runs apart.
        text = f"if ({GATE}) {{ {closed} }} else {{ {opened} }}"
        return [edit(both.block.start + 1, both.block.start + 1, f" {text}")], ""
    for name, text in (("BEGIN", opened), ("END", closed)):
        probe = _special(script, name)
        if probe is None:
            tail.append(f"{name} {{ {text} }}")
        else:
            edits.append(edit(probe.block.start + 1, probe.block.start + 1, f" {text}"))
    return edits, " ".join(tail)


def _begin_and_end(script):
    """The user's probe whose attach points are exactly BEGIN and END, if any."""
    for probe in script.probes:
        if sorted(ap.provider for ap in probe.attach_points) == ["BEGIN", "END"] and probe.predicate is None:
            return probe
    return None


def _special(script, name):
    """The user's BEGIN or END probe, if the script has one."""
    found = None
    for probe in script.probes:
        if not any(ap.provider == name for ap in probe.attach_points):
            continue
        loc = script.source.location(probe.span.start, len(probe.attach_points[0].text))
        if len(probe.attach_points) > 1:
            raise GobtError(f"{name} shares its block with other probes; gobt adds to {name}'s block "
                            f"(the gate that stops its probes at exit), which must run once", loc,
                            [f"  give {name} a block of its own"])
        if probe.predicate is not None:
            raise GobtError(f"{name} has a predicate; gobt adds to {name}'s block (the gate that stops "
                            "its probes at exit), which must always run", loc,
                            [f"  test the condition with if inside {name}'s block"])
        found = probe
    return found
