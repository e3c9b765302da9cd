"""Ctrl-C on a busy program: how soon the results come, and how soon the
traced program runs at its untraced speed again, that is, how long its
probes stay after the results (gobt detaches them in the background).

The target is tests/manyfuncs.py's program, run with `rate`: it calls its
2,000 one-RET functions round and round and prints its ns per call every
20 ms. gobt (or bpftrace, on the program gobt emits) traces it with -p,
100, 1,000 or 2,000 RET probes, all hit all the time; once every probe is
attached and bpftrace sleeps, ^C is typed at its terminal."""

import fcntl
import hashlib
import os
import re
import select
import statistics
import subprocess
import tempfile
import termios
import threading
import time

import manyfuncs
from textdiff import breakpoints as breakpoints_in
from common import BENCH_CACHE, READY, bpftrace_asleep, build, check, die, gobt_env, log, output_until, Run

PATTERNS = {100: "main.F00*", 1000: "main.F0*", 2000: "main.F*"}
BACK = 1.5  # "untraced again": ns per call within this factor of the untraced median
SPAN = 50  # rate lines (20 ms each, so 1 s) whose median says "slow": a probe still hit
BLIP = 5  # rate lines (100 ms) whose median says "slowed for a moment"


def build_manyfuncs(toolchain):
    files = manyfuncs.files()
    key = hashlib.sha256("".join(files.values()).encode()).hexdigest()[:12]
    src = os.path.join(BENCH_CACHE, "src", f"manyfuncs-{key}")
    os.makedirs(src, exist_ok=True)
    for name, text in files.items():
        with open(os.path.join(src, name), "w") as f:
            f.write(text)
    return build(toolchain, src, BENCH_CACHE)


class Target:
    """The program, running, and every rate line it printed, with the
    monotonic time it came."""

    def __init__(self, binary):
        self.proc = subprocess.Popen([binary, "rate"], stdout=subprocess.PIPE)
        self.lines = []
        if self.proc.stdout.readline() != b"ready\n":
            die(f"{binary} did not start")
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            m = re.match(rb"rate \d+ ([\d.]+)", line)
            if m:
                self.lines.append((time.monotonic(), float(m.group(1))))

    def ns_since(self, t):
        return [ns for when, ns in self.lines if when >= t]

    def stop(self):
        self.proc.kill()
        self.proc.wait()


class Watch:
    """From start() on, the seconds until the program's text holds no
    breakpoint (tests/textdiff.py's count, apart from gobt's own lifter),
    polled every 20 ms (a count reads the text, ~2 ms)."""

    def __init__(self, pid, binary, timeout):
        self.pid, self.binary, self.timeout = pid, binary, timeout
        self.gone_s = None

    def start(self, t0):
        def poll():
            while time.monotonic() - t0 < self.timeout:
                if breakpoints_in(self.pid, self.binary) == 0:
                    self.gone_s = time.monotonic() - t0
                    return
                time.sleep(0.02)
        self.thread = threading.Thread(target=poll, daemon=True)
        self.thread.start()


def bench_probes_gone(gobt, bpftrace, name, binary, sizes, tmp, bpftrace_sizes=(100,)):
    out = []
    for n in sizes:
        script = f'goret:{binary}:{PATTERNS[n]} {{ @n = count(); }}\nBEGIN {{ printf("{READY}\\n"); }}\n'
        path = os.path.join(tmp, f"gone-{n}.bt")
        with open(path, "w") as f:
            f.write(script)
        env = {**gobt_env(os.path.join(tmp, "gone-cache")), "BPFTRACE_MAX_PROBES": str(n + 32)}
        emitted = check(Run([gobt, "--bpftrace", bpftrace, "--emit", path], env=env), "gobt --emit").text("out")
        plain = os.path.join(tmp, f"gone-{n}-emitted.bt")
        with open(plain, "w") as f:
            f.write(emitted + "\n")
        unsafe = ["--unsafe"] if re.search(r"\buprobe:[^:\s]+:0x[0-9a-fA-F]+", emitted) else []
        runs = [("gobt", lambda pid: [gobt, "--bpftrace", bpftrace, "-p", str(pid), path])]
        if n in bpftrace_sizes:
            runs.append(("bpftrace", lambda pid: [bpftrace, *unsafe, "-p", str(pid), plain]))
        for tool, argv in runs:
            log(f"probes gone after Ctrl-C on {name}: {tool}, {n} probes")
            target = Target(binary)
            try:
                row = {"bpftrace": name, "tool": tool, "n": n, **_run(argv(target.proc.pid), env, target, binary)}
            finally:
                target.stop()
            out.append(row)
    return out


def _run(argv, env, target, binary, timeout=1200):
    time.sleep(1)
    untraced = statistics.median(target.ns_since(time.monotonic() - 0.8) or [0]) or None
    master, slave = os.openpty()

    def own_terminal():
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)

    errors = tempfile.TemporaryFile()
    proc = subprocess.Popen(argv, env=env, stdin=slave, stdout=subprocess.PIPE, stderr=errors,
                            start_new_session=True, preexec_fn=own_terminal, pass_fds=(slave,))
    os.close(slave)
    try:
        output_until(proc.stdout, READY.encode(), timeout)
        time.sleep(0.5)
        traced = statistics.median(target.ns_since(time.monotonic() - 0.4) or [0]) or None
        bpftrace_asleep(proc)
        inserted = breakpoints_in(target.proc.pid, binary)
        watch = Watch(target.proc.pid, binary, timeout)
        t0 = time.monotonic()
        watch.start(t0)
        os.write(master, b"\x03")
        output_until(proc.stdout, b"@n:", timeout)
        results = time.monotonic() - t0
        proc.communicate(timeout=timeout)
        end = time.monotonic() - t0
        errors.seek(0)
        err = errors.read()
    except BaseException:
        proc.kill()
        proc.communicate()
        raise
    finally:
        os.close(master)
    if proc.returncode != 0:
        die(f"{argv[0]} failed (exit {proc.returncode}):\n{err.decode(errors='replace')[-2000:]}")
    watch.thread.join()
    row = {"results_s": results, "end_s": end, "untraced_ns": untraced, "traced_ns": traced,
           "inserted": inserted, "out_s": watch.gone_s}
    gone = end
    m = re.search(rb"(\d+) probes are still detaching in the background \(pid (\d+)", err)
    if m:
        row["kept"] = int(m.group(1))
        try:
            pidfd = os.pidfd_open(int(m.group(2)))
        except ProcessLookupError:
            pidfd = None
        if pidfd is not None:
            select.select([pidfd], [], [], timeout)
            os.close(pidfd)
        gone = time.monotonic() - t0
        row["background_s"] = gone
    time.sleep(1)  # a few rate lines after the last probe went
    row["probes_gone_s"] = gone
    row["rate_back_s"] = _rate_back(target.lines, t0, untraced)
    # The program while the kernel still removes the probes: from 0.5 s
    # after the results to the end of the detach.
    during = [ns for when, ns in target.lines if t0 + results + 0.5 <= when <= t0 + gone]
    row["detaching_ns"] = statistics.median(during) if during else None
    row["blips"], row["spans"], row["worst_ns"] = _blips(during, untraced)
    return row


def _blips(during, untraced):
    """The 100 ms spans of the detach whose median is slower than BACK x
    untraced, of all its 100 ms spans, and the slowest span's median: the
    kernel's removal of probes that are no longer in the program (each
    takes the program's mmap lock and grace periods) slows it now and then
    for a moment, which the 1 s rule of rate back does not show."""
    spans = [statistics.median(during[i:i + BLIP]) for i in range(0, len(during) - BLIP + 1, BLIP)]
    slow = [ns for ns in spans if untraced and ns > BACK * untraced]
    return len(slow), len(spans), max(spans, default=None)


def _rate_back(lines, t0, untraced):
    """Seconds from ^C to the end of the last SPAN of rate lines (1 s) whose
    median is slower than BACK x untraced: a probe still hit slows every call,
    so every second. A moment's slowness while the kernel still removes
    probes is counted apart (_blips)."""
    after = [(when, ns) for when, ns in lines if when >= t0]
    back = 0.0
    for i in range(0, len(after) - SPAN + 1):
        span = after[i:i + SPAN]
        if untraced and statistics.median(ns for _, ns in span) > BACK * untraced:
            back = span[-1][0] - t0
    return back


def _fmt_blips(r):
    if not r.get("spans"):
        return "-"
    return f"{r['blips']} of {r['spans']}, slowest {r['worst_ns']:.0f}"


def report_probes_gone(rows, fmt_s, table):
    out = ["## Probes gone after Ctrl-C (tests/manyfuncs.py, busy, -p: N RET probes, all hit; ^C at a terminal)"]
    body = []
    for r in rows:
        body.append([r["bpftrace"], r["tool"], r["n"], f"{r['untraced_ns']:.0f}" if r["untraced_ns"] else "-",
                     f"{r['traced_ns']:.0f}" if r["traced_ns"] else "-", fmt_s(r["results_s"]), fmt_s(r["end_s"]),
                     r.get("kept", "-"), r.get("inserted", "-"), fmt_s(r["out_s"]) if r.get("out_s") is not None else "-",
                     fmt_s(r["probes_gone_s"]),
                     f"{r['detaching_ns']:.0f}" if r.get("detaching_ns") else "-", _fmt_blips(r),
                     fmt_s(r["rate_back_s"])])
    out.append(table(["bpftrace", "run by", "probes", "ns/call untraced", "traced", "->maps", "->prompt", "kept",
                      "breakpoints", "->out of the program", "->kernel done", "ns/call meanwhile", "slow 100 ms meanwhile", "->rate back"], body,
                    align=["<", "<"] + [">"] * 12))
    out.append(f"breakpoints: in the program's text before ^C (bytes 0xcc in memory, not in the file); ->out of the "
               f"program: ^C until it holds none; ->kernel done: to the end of the process that held the last probe "
               f"(gobt's background detach, or bpftrace), when the kernel has removed every probe; ns/call meanwhile: the median from 0.5 s after the maps to then; slow 100 ms meanwhile: of its 100 ms "
               f"spans, those whose median is slower than {BACK}x the untraced ns per call, and the slowest one's median; "
               f"->rate back: to the end of the last {SPAN * 20} ms whose median is slower than {BACK}x the untraced "
               f"ns per call.")
    return "\n".join(out)
