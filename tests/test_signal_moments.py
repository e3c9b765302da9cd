"""Ctrl-C or SIGTERM at any moment of a many-probe run (tests/manyfuncs.py,
busy, traced with -p): while gobt parses and rewrites, as bpftrace starts,
while it attaches, once it runs, and a second Ctrl-C during the exit.

What must hold at every moment, on real bpftrace:
- gobt and bpftrace have ended within END_WITHIN seconds of the later of
  the signal and the end of the attach (the attach is timed once, in the
  first run, which is signalled when it has finished);
- the traced program lives on, and once gobt is gone nothing stays
  attached to it, but for the detach gobt announced it leaves running in
  the background, and that ends with nothing attached either;
- a run signalled once it was tracing prints its maps and exits 0.

The probe count is GOBT_SIGNAL_PROBES (30 by default, the CI's small form;
scripts/test-exit-full runs it with 1,000), and the hand-off's
GOBT_HAND_OFF_PROBES (50; the full form 1,000 and 2,000). Each run waits out the kernel's
detach of the one before it, which takes ~0.1 s a probe.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest

import conftest
import manyfuncs
from conftest import need, write_program
from test_detach import _attached_to
from test_exit_signals import alive, bpftrace_of, breakpoints, detach_allowance, gone_within

GOBT = getattr(conftest, "GOBT_CMD", [sys.executable, "-m", "gobt"])
PROBES = int(os.environ.get("GOBT_SIGNAL_PROBES", "30"))
READY = "gobt-test-ready"
END_WITHIN = 2.0
# The attach is timed in one run and another may take longer on a loaded
# machine: the bound on an early signal allows for that.
ATTACH_SLACK = 1.5

# (moment, signal, to whom): "group" is the whole process group, as a
# terminal's Ctrl-C or `kill -INT -PGID` sends it; "gobt" is gobt alone,
# as `kill PID` or a service manager sends it. "ready" comes first: it
# times the attach for the moments inside it.
MOMENTS = [
    ("ready", signal.SIGINT, "group"),
    ("parse", signal.SIGINT, "group"),
    ("rewrite", signal.SIGTERM, "gobt"),
    ("bpftrace started", signal.SIGINT, "group"),
    ("attaching", signal.SIGINT, "group"),
    ("attach 1/3", signal.SIGTERM, "gobt"),
    ("attach 2/3", signal.SIGINT, "group"),
    ("running", signal.SIGTERM, "gobt"),
    ("running, twice", signal.SIGINT, "group"),
    ("exiting", signal.SIGINT, "group"),
]


@pytest.fixture(scope="module")
def many_bin(go_build):
    return go_build("newest", write_program("manyfuncs", manyfuncs.files()))


@pytest.fixture
def target(many_bin, bpf, tmp_path):
    """The busy program, from a copy of its own (what stays attached is told
    by the file); at the end, once no uprobe of the test is left on it, gone."""
    binary = str(tmp_path / "many")
    shutil.copy(many_bin, binary)
    proc = subprocess.Popen([binary], stdout=subprocess.PIPE)
    assert proc.stdout.readline() == b"ready\n"
    yield binary, proc
    _settled(binary)
    proc.kill()
    proc.wait()


@pytest.fixture(scope="module")
def timing():
    return {}


class Run:
    """gobt on the target, its stdout and stderr read line by line with the
    time each line came, counted from the start."""

    def __init__(self, pid, probes, sigint_ignored=False):
        script = f'{probes} {{ @n = count(); }} BEGIN {{ printf("{READY}\\n"); }}'
        env = {**os.environ, "BPFTRACE_MAX_PROBES": "4200"}
        self.t0 = time.monotonic()
        # sigint_ignored: as a shell script starts `gobt ... &`.
        ignore = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if sigint_ignored else None
        self.proc = subprocess.Popen([*GOBT, "-p", str(pid), "-e", script], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, start_new_session=True, env=env, preexec_fn=ignore)
        self.lines = []
        self.seen = threading.Condition()
        self.readers = [threading.Thread(target=self._read, args=(f, name), daemon=True)
                        for f, name in ((self.proc.stdout, "out"), (self.proc.stderr, "err"))]
        for r in self.readers:
            r.start()
        self.bpftrace = None

    def now(self):
        return time.monotonic() - self.t0

    def _read(self, f, name):
        for line in f:
            with self.seen:
                self.lines.append((self.now(), name, line.decode(errors="replace").rstrip("\n")))
                self.seen.notify_all()
        with self.seen:
            self.lines.append((self.now(), name, None))
            self.seen.notify_all()

    def wait_for(self, text, timeout=600):
        """The time `text` began a line, once it has."""
        deadline = time.monotonic() + timeout
        with self.seen:
            while True:
                for t, _, line in self.lines:
                    if line is not None and line.startswith(text):
                        return t
                if sum(1 for _, _, line in self.lines if line is None) == 2:
                    raise AssertionError(f"gobt ended before {text!r}: {self.text()}")
                if not self.seen.wait(max(0.0, deadline - time.monotonic())):
                    raise AssertionError(f"no {text!r} after {timeout} s: {self.text()}")

    def find_bpftrace(self, timeout=120):
        """The time bpftrace was seen started."""
        self.bpftrace = bpftrace_of(self.proc, timeout)
        return self.now()

    def send(self, sig, to):
        if to == "group":
            os.killpg(self.proc.pid, sig)
        else:
            self.proc.send_signal(sig)
        return self.now()

    def ended(self, timeout=900):
        code = self.proc.wait(timeout)
        at = self.now()
        for r in self.readers:
            r.join(timeout)
        return code, at

    def kill(self):
        for pid in (self.proc.pid, self.bpftrace):
            if pid is not None:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.proc.wait()

    def text(self):
        return "\n".join(f"{t:7.3f} {name} {line}" for t, name, line in self.lines if line is not None)


def _settled(binary):
    """Wait until no uprobe of an earlier run is on the binary: the kernel
    detaches one at a time, under one lock for all."""
    assert gone_within(lambda: not _attached_to(binary), detach_allowance(PROBES * 2)), _attached_to(binary)


@pytest.mark.parametrize("moment,sig,to", MOMENTS, ids=[m for m, _, _ in MOMENTS])
def test_a_signal_at_any_moment_ends_gobt_and_leaves_nothing_attached(moment, sig, to, target, timing):
    binary, target = target
    probes, count = manyfuncs.attach_points(binary, PROBES)
    run = Run(target.pid, probes)
    try:
        # The moments inside the attach are placed by the 'ready' run's timing:
        # without it this run cannot be what it claims (a failure, never a skip, in CI).
        need(moment == "ready" or "attach" in timing, "the attach was not timed: the 'ready' moment did not run")
        sent = []
        if moment in ("parse", "rewrite"):
            # Between gobt's start and bpftrace's: a quarter of the way it is
            # parsing (or importing), half-way reading the binary and
            # rewriting. (Python itself cannot be told: a SIGINT in the
            # milliseconds between the interpreter's start and its running
            # of the launcher's first line ends it with its traceback.)
            time.sleep(timing["bpftrace"] * (0.25 if moment == "parse" else 0.5))
            sent.append(run.send(sig, to))
        elif moment == "bpftrace started":
            run.find_bpftrace()
            sent.append(run.send(sig, to))
        elif moment in ("attaching", "attach 1/3", "attach 2/3"):
            attaching = run.wait_for("Attaching")
            share = {"attaching": 0, "attach 1/3": 1 / 3, "attach 2/3": 2 / 3}[moment]
            time.sleep(max(0.0, attaching + share * timing["attach"] - run.now()))
            sent.append(run.send(sig, to))
        else:  # ready, running, running twice, exiting
            if moment == "ready":
                timing["bpftrace"] = run.find_bpftrace()
            ready = run.wait_for(READY)
            if moment == "ready":
                timing["ready"] = ready
                timing["attach"] = ready - run.wait_for("Attaching")
            else:
                time.sleep(1.0)
            sent.append(run.send(sig, to))
            if moment == "running, twice":
                time.sleep(0.2)
                sent.append(run.send(sig, to))
            elif moment == "exiting":
                run.wait_for("@n: ")  # bpftrace has printed its maps and is on its way out
                sent.append(run.send(sig, to))
        if run.bpftrace is None:
            try:
                run.find_bpftrace(timeout=0.05)
            except (AssertionError, OSError):
                pass  # signalled before it started: there is none
        code, ended = run.ended()
        # What may be left once gobt has gone: the background detach it announced.
        err = [line for _, name, line in run.lines if name == "err" and line]
        announced = [int(m.group(1)) for m in (re.search(r"detaching in the background \(pid (\d+)", line)
                                                 for line in err) if m]

        attach_end = timing.get("ready", sent[0]) * ATTACH_SLACK
        assert ended <= max(sent[0], attach_end) + END_WITHIN, (
            f"gobt ended {ended - sent[0]:.2f} s after the signal at {sent[0]:.2f} s "
            f"(the attach ends by ~{attach_end:.2f} s)\n{run.text()}")
        assert run.bpftrace is None or not alive(run.bpftrace), f"bpftrace outlived gobt\n{run.text()}"
        assert target.poll() is None, "the traced program died"
        if moment in ("ready", "running", "running, twice", "exiting"):
            # A Ctrl-C after the maps were printed may end gobt by SIGINT, as it
            # would end bpftrace alone; before that, the run ends as asked.
            assert code == 0 or (moment == "exiting" and code == -signal.SIGINT), run.text()
            assert any(line == f"@n: " or line.startswith("@n: ") for _, name, line in run.lines
                       if name == "out" and line), run.text()
        assert "Traceback" not in run.text() and "internal error" not in run.text(), run.text()

        if announced:
            assert len(announced) == 1, run.text()
            assert gone_within(lambda: not alive(announced[0]), detach_allowance(count)), (
                f"the background detach (pid {announced[0]}) did not end\n{run.text()}")
            assert gone_within(lambda: not _attached_to(binary), 5), _attached_to(binary)
        else:
            # Nothing announced: at most a detach that gobt did not think
            # worth a note (under ~1 s: a few probes kept as bpftrace
            # began to detach) may stay, briefly.
            assert gone_within(lambda: not _attached_to(binary), 5), f"{_attached_to(binary)}\n{run.text()}"
        assert gone_within(lambda: breakpoints(target.pid, binary) == 0, 5), (
            f"{breakpoints(target.pid, binary)} breakpoints left in the program\n{run.text()}")
    finally:
        run.kill()


def test_sigint_ends_gobt_started_with_it_ignored(target, timing):
    """A shell script's `gobt ... &` starts with SIGINT ignored, which
    bpftrace overrides (it sets its own handler): so does gobt, or a Ctrl-C
    (kill -INT) that came before bpftrace started was lost, and the run
    went on with nothing to stop it."""
    binary, target = target
    need("bpftrace" in timing, "the attach was not timed: the 'ready' moment did not run")
    probes, _ = manyfuncs.attach_points(binary, PROBES)
    run = Run(target.pid, probes, sigint_ignored=True)
    try:
        time.sleep(timing["bpftrace"] * 0.25)  # gobt parsing, bpftrace not started
        sent = run.send(signal.SIGINT, "group")
        try:
            code, ended = run.ended(timeout=60)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"gobt still runs 60 s after the SIGINT\n{run.text()}") from None
        assert ended - sent <= END_WITHIN and code != 0, (ended - sent, code, run.text())
        assert "Traceback" not in run.text() and "internal error" not in run.text(), run.text()
        assert gone_within(lambda: not _attached_to(binary), 5), f"{_attached_to(binary)}\n{run.text()}"
    finally:
        run.kill()


HAND_OFF = [int(n) for n in os.environ.get("GOBT_HAND_OFF_PROBES", "50").split(",")]


@pytest.mark.parametrize("probes", HAND_OFF)
def test_the_results_come_at_once_and_the_detach_goes_on_in_the_background(probes, target):
    # Ctrl-C once all probes are attached: the maps within END_WITHIN
    # seconds however many probes there are (up to bpftrace's limit; the
    # full form runs 1,000 and 2,000), as gobt keeps bpftrace's uprobes
    # and hands them to a background process that detaches them.
    binary, target = target
    points, count = manyfuncs.attach_points(binary, probes)
    run = Run(target.pid, points)
    try:
        run.wait_for(READY)
        run.find_bpftrace()
        time.sleep(0.5)
        sent = run.send(signal.SIGINT, "group")
        code, ended = run.ended()
        maps = [t for t, name, line in run.lines if name == "out" and line and line.startswith("@n: ")]
        assert code == 0 and maps, run.text()
        assert maps[0] - sent <= END_WITHIN and ended - sent <= END_WITHIN, (
            f"maps {maps[0] - sent:.2f} s and exit {ended - sent:.2f} s after the Ctrl-C\n{run.text()}")
        assert not alive(run.bpftrace), f"bpftrace outlived gobt\n{run.text()}"
        if os.uname().machine == "x86_64":
            # The background still holds the probes (the kernel takes ~0.1 s
            # each to remove them), but their breakpoints are out of the
            # program by the time gobt has ended: it runs untraced again.
            assert breakpoints(target.pid, binary) == 0, run.text()
            assert "their breakpoints are out of the program already" in run.text(), run.text()
        said = (re.search(r"(\d+) probes are still detaching in the background \(pid (\d+)", line or "")
                for _, _, line in run.lines)
        announced = [int(m.group(2)) for m in said if m and int(m.group(1)) == count]
        assert announced, f"no background detach of {count} probes announced\n{run.text()}"
        assert gone_within(lambda: not alive(announced[0]), detach_allowance(count)), run.text()
        assert not _attached_to(binary), _attached_to(binary)
        assert gone_within(lambda: breakpoints(target.pid, binary) == 0, 5)
        assert target.poll() is None, "the traced program died"
    finally:
        run.kill()
