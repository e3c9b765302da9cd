"""What bpftrace prints at exit while the traced program calls the probed
functions at full speed, under gobt's probe hand-off (run/keeper.py holds
the uprobes open past bpftrace's END; rewrite/gate.py stops them at END).

What must hold, on real bpftrace 0.17 and 0.23, whether bpftrace ends by
Ctrl-C (SIGINT), exit(), the end of -c or the -p target exiting: gobt's
internal maps never print; a map prints what END saw; the user's END runs
once beside gobt's; no message about a line gobt generated (a RET that
fires without its entry, on a program already running); bpftrace 0.17
never aborts clearing a map; a plain program's output is bpftrace's own.
Every run is checked, over several runs per ending: the races these guard
against show in some runs only. No timings.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

import conftest
from conftest import gobt, no_traceback

GOBT = getattr(conftest, "GOBT_CMD", [sys.executable, "-m", "gobt"])
# The gate's cell in gobt's time map (rewrite/gate.py), as the emitted program spells it.
GATE = "@zz_gobt_t[-1, -1, (uint64)0, (uint64)0]"
ENDINGS = ["sigint", "exit", "-c", "-p"]
RUNS = 2  # per ending; ~2-5 s each

# gobt's capture maps (goarg at a return, goelapsed), with ~200 calls of
# main.slow under way at any time: 0.17 clears a map in its user space, a
# key at a time, where a RET still running could delete one first (rc 134).
# bpftrace prints its maps by name, capitals before "@zz_gobt": a big @Calls
# gives a probe that still runs the time to refill them before they print.
CAPTURES = """\
goret:{bin}:main.f0001 {{ @Calls[(uint64)goarg(i) % 4096] = count(); @n[(uint64)goarg(i) % 3] = count();
  @ns = sum(goelapsed); }}
goret:{bin}:main.slow {{ @slow = hist(goelapsed); @odd[(uint64)goarg(i) % 2] = count(); }}
"""
# A user uprobe on the same busy function (the keeper holds it too), a user END.
COUNTS = """\
goret:{bin}:main.f0001 {{ @n++; @l = hist(goelapsed); }}
uprobe:{bin}:main.f0001 {{ @u++; }}
END {{ printf("end %d %d\\n", @n, @u); }}
"""


@pytest.fixture(scope="module")
def busy(go_build, bpf, tmp_path_factory):
    # A copy of its own: a uprobe belongs to a file, other tests' probes
    # do not fire here.
    path = tmp_path_factory.mktemp("gate") / "busy"
    shutil.copy(go_build("newest", "tests/programs/busy"), path)
    return str(path)


def run(cmd, script, ending, busy, tmp_path):
    """Run cmd (gobt or bpftrace) on script to its end; (stdout, stderr, status)."""
    path = tmp_path / "script.bt"
    path.write_text(script.format(bin=busy) + ("interval:ms:600 { exit(); }\n" if ending == "exit" else ""))
    target = None
    if ending == "-p":
        target = subprocess.Popen([busy, "60000"], stderr=subprocess.PIPE)
        assert target.stderr.readline().startswith(b"busy ")
        where = ["-p", str(target.pid)]
    else:
        # -c: the target ends the run; else a bound on it. (A SIGINT that
        # lands while 0.17 is awake between two polls is lost, under gobt
        # or not: the bound then ends the run, as -c.)
        where = ["-c", f"{busy} {({'-c': 700, 'sigint': 5000}).get(ending, 60000)}"]
    # Files, not pipes: the process that detaches gobt's held probes in the
    # background may outlive gobt, and the run ends when gobt does.
    out, err = open(tmp_path / "out", "w+b"), open(tmp_path / "err", "w+b")
    proc = subprocess.Popen([*cmd, *where, str(path)], stdout=out, stderr=err)
    try:
        if ending in ("sigint", "-p"):
            settle(proc)
            time.sleep(0.4)  # hits at full speed, in every probe
            if ending == "sigint":
                settle(proc)
                proc.send_signal(signal.SIGINT)
            else:
                target.terminate()
        proc.wait(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if target is not None:
            target.kill()
            target.wait()
    with out, err:
        out.seek(0)
        err.seek(0)
        return out.read().decode(), err.read().decode(errors="replace"), proc.returncode


def settle(proc):
    """Wait until bpftrace has attached and sleeps in its poll loop (0.17
    notices SIGINT only as an EINTR of that epoll_wait)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            kids = open(f"/proc/{proc.pid}/task/{proc.pid}/children").read().split()
            pid = int(kids[0]) if kids else proc.pid
            with open(f"/proc/{pid}/wchan") as f:
                if f.read() == "do_epoll_wait":
                    return
        except (OSError, ValueError):
            pass
        time.sleep(0.005)


# bpftrace 0.23 on two CPUs can lose a first insert of a new key of a
# user's count() (map_update_elem: EEXIST, retcode -17, as in
# test_examples), and says so on stdout, with its copy of the program's
# line (gobt filters stderr only). That warning is bpftrace's about the
# user's map; gobt's maps printing is what must never happen.
_LOST_INSERT = re.compile(r"^\S+:\d+:\d+-\d+: WARNING: File exists\nAdditional Info - helper: map_update_elem, "
                          r"retcode: -17\n.*\n *~+\n", re.M)


def _clean(out, err, status):
    assert "Traceback" not in err, err
    assert status == 0, err  # 0.17's abort in clear() is 134, with no maps
    assert "@" in out, (out, err)
    out = _LOST_INSERT.sub("", out)
    assert not re.search(r"^@zz_gobt", out, re.M), out
    # about a line of the program, e.g. "Can't delete map element" at a
    # generated delete() (which names the user's script, messages.py)
    assert not re.search(r":\d+(?:-\d+)?:\d+(?:-\d+)?: WARNING", err), err
    assert "Can't delete" not in err, err


@pytest.mark.parametrize("ending", ENDINGS)
def test_internal_maps_never_print(ending, busy, tmp_path):
    for _ in range(RUNS):
        out, err, status = run(GOBT, CAPTURES, ending, busy, tmp_path)
        _clean(out, err, status)
        assert re.search(r"^@n\[0\]: \d+$", out, re.M), out


@pytest.mark.parametrize("ending", ENDINGS)
def test_maps_print_what_the_users_END_saw(ending, busy, tmp_path):
    # bpftrace allows one END: gobt's work goes first in the user's.
    for _ in range(RUNS):
        out, err, status = run(GOBT, COUNTS, ending, busy, tmp_path)
        _clean(out, err, status)
        ends = re.findall(r"^end (\d+) (\d+)$", out, re.M)
        assert len(ends) == 1, out
        n, u = ends[0]
        assert f"\n@n: {n}\n" in out, out
        # (a map never written prints nothing: seen for @u on 0.17 in some
        # runs ended by exit(), with the code before the gate too)
        assert f"\n@u: {u}\n" in out or (u == "0" and "@u:" not in out), out
        assert int(n) > 0, out


def test_plain_program_prints_what_bpftrace_prints(busy, bpf, tmp_path):
    # A uprobe on a Go function's name goes through gobt's rewrite, which
    # changes nothing here: no gate (its empty map would print a blank
    # line), and so no probe held past END (cli), which would refill the
    # maps END cleared. (A guard: the code before the gate held no probe of
    # such a program either.)
    # (0.17 clears in its user space, a key at a time, after END: time for
    # a probe that still runs to refill @Calls.)
    script = ("uprobe:{bin}:main.f0001 {{ @Calls[reg(\"ax\") % 4096] = count(); @last = 1; }}\n"
              "uprobe:{bin}:main.slow {{ @slow[tid] = count(); }}\n"
              "END {{ clear(@Calls); clear(@slow); }}\n")
    emitted = gobt("--emit", "-e", script.format(bin=busy))
    no_traceback(emitted)
    assert emitted.stdout == script.format(bin=busy)
    for _ in range(2):
        ours = run(GOBT, script, "sigint", busy, tmp_path)
        theirs = run([bpf], script, "sigint", busy, tmp_path)
        assert ours[2] == theirs[2] == 0, (ours[1], theirs[1])
        assert _LOST_INSERT.sub("", ours[0]) == _LOST_INSERT.sub("", theirs[0])


def test_a_return_without_its_entry_deletes_nothing(busy, tmp_path):
    # main.slow sleeps inside: attached to the running program, the first
    # RET of each call under way fires without its entry; 0.23 warned at
    # the generated delete() of what the entry never stored.
    for _ in range(2):
        out, err, status = run(GOBT, "goret:{bin}:main.slow {{ @s = count(); @l = hist(goelapsed); "
                               "@p[(uint64)goarg(i) % 2] = count(); }}\n", "-p", busy, tmp_path)
        _clean(out, err, status)
        assert "@s: " in out, out


def _blank_lines(out):
    """(blank lines before the first map, the maps' lines with numbers
    masked, blank lines after the last)."""
    lines = out.split("\n")
    first = next(i for i, line in enumerate(lines) if line.startswith("@"))
    last = max(i for i, line in enumerate(lines) if line.startswith("@") or line.startswith("["))
    before, after = lines[:first], lines[last + 1:]
    return (len(before) - len("\n".join(before).rstrip("\n").split("\n")),
            [re.sub(r"\d+", "N", line) for line in lines[first:] if line.startswith("@")],
            sum(1 for line in after if line == "") - 1)  # the last "" is the final newline's


@pytest.mark.parametrize("script, extra", [
    # goelapsed: gobt's time map, which holds the gate too (one blank line)
    ("goret:{bin}:main.f0001 {{ @s = count(); @l = hist(goelapsed); }}\n", 1),
    # goid at the return, a param captured at the entry: in the time map too
    ("goret:{bin}:main.f0001 {{ @s = count(); @l = hist(goid % 8); @p[(uint64)goarg(i) % 2] = count(); }}\n", 1),
])
def test_exit_prints_a_blank_line_per_internal_map_only(script, extra, busy, bpf, tmp_path):
    # bpftrace (0.17 and 0.23) prints every map of a program at exit, by
    # name, an empty one as one blank line (no setting or kind of map is
    # left out, but bpftrace's own): gobt's maps can only be few, and come
    # last. Against bpftrace on a plain program with the same user maps:
    # the same blank lines before them, the same maps in the same order,
    # and `extra` blank lines more after them.
    plain = "uprobe:{bin}:main.f0001 {{ @s = count(); @l = hist(nsecs % 8); @p[reg(\"ax\") % 2] = count(); }}\n"
    if "goarg" not in script:
        plain = plain.replace(' @p[reg(\"ax\") % 2] = count();', "")
    ours = run(GOBT, script, "exit", busy, tmp_path)
    _clean(*ours)
    theirs = run([bpf], plain, "exit", busy, tmp_path)
    assert theirs[2] == 0, theirs[1]
    # (0.23's warning of a racing first insert, on stdout, may come anywhere)
    before_ours, maps_ours, after_ours = _blank_lines(_LOST_INSERT.sub("", ours[0]))
    before_theirs, maps_theirs, after_theirs = _blank_lines(_LOST_INSERT.sub("", theirs[0]))
    assert maps_ours == maps_theirs, (ours[0], theirs[0])
    assert before_ours == before_theirs, (ours[0], theirs[0])
    assert after_ours == after_theirs + extra, (ours[0], theirs[0])


# -- the emitted program (no bpftrace) -----------------------------------------

def test_one_begin_and_one_end_and_every_uprobe_gated(busy):
    script = (f"BEGIN {{ printf(\"go\\n\"); }}\n"
              f"goret:{busy}:main.f0001 /goarg(i) > 2/ {{ @l = hist(goelapsed); }}\n"
              f"uprobe:{busy}:main.slow {{ @s = count(); }}\n"
              f"interval:s:1 {{ @i = count(); }}\n"
              f"END {{ printf(\"end\\n\"); }}\n")
    proc = gobt("--emit", "-p", "1", "-e", script)
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 5  # nothing added: gobt's work is in the user's BEGIN and END
    assert lines[0].startswith(f"BEGIN {{ {GATE} = nsecs; printf(")
    assert lines[4].startswith(f"END {{ delete({GATE}); clear(@zz_gobt_t); printf(")
    # the entry and the return of main.f0001, and main.slow, all behind the gate
    assert lines[1].count(f"/pid == 1 && {GATE}/") == 2
    assert f"/{GATE}/ {{" in lines[2]
    assert "gobt_" not in lines[3]  # bpftrace detaches an interval itself


@pytest.mark.parametrize("script, what", [
    ("BEGIN /1/ {{ }} goret:{bin}:main.f0001 {{ @l = hist(goelapsed); }}", "BEGIN has a predicate"),
    ("goret:{bin}:main.f0001 {{ @l = hist(goelapsed); }} END, interval:s:1 {{ }}", "END shares its block"),
    ("BEGIN, END, interval:s:1 {{ }} goret:{bin}:main.f0001 {{ @l = hist(goelapsed); }}", "shares its block"),
])
def test_begin_or_end_gobt_cannot_add_to(script, what, busy):
    proc = gobt("--emit", "-e", script.format(bin=busy))
    no_traceback(proc)
    assert proc.returncode != 0
    assert re.search(r"-e:1:\d+: error", proc.stderr) and what in proc.stderr, proc.stderr


def test_a_block_shared_by_begin_and_end_opens_and_closes_the_gate(busy):
    """bpftrace's corpus has `BEGIN,END { ... }`: one block that runs at both
    ends. gobt cannot add a second BEGIN or END, so the gate toggles there:
    closed before BEGIN, so the first run opens it and the second closes it."""
    script = (f"BEGIN,END {{ printf(\"edge %d\\n\", @n); }}\n"
              f"goret:{busy}:main.f0001 {{ @n++; if (@n == 2000) {{ exit(); }} }}\n")
    proc = gobt("-e", script, "-c", busy, timeout=300)
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    edges = re.findall(r"^edge (\d+)$", proc.stdout, re.M)
    printed = re.findall(r"^@n: (\d+)$", proc.stdout, re.M)
    # BEGIN saw nothing yet; END saw what the map printed after it, and no
    # gobt map printed.
    assert edges[0] == "0" and len(edges) == 2 and printed == [edges[1]], proc.stdout
    assert int(edges[1]) >= 2000 and "@zz_gobt" not in proc.stdout, proc.stdout
