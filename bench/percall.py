"""Per-call overhead of each way to trace a function's return, measured
inside a Go loop; and whether a uretprobe crashes it with Go's defaults."""

import os
import re
import tempfile

from common import Run, check, die, gobt_env, log, median


def bench_overhead(gobt, bpftrace, loop, calls, runs, traced_runs, tmp, safety_runs=5):
    fn = "main.step"
    variants = [
        ("uprobe at entry", [bpftrace], f"uprobe:{loop}:{fn} {{ @n = count(); }}"),
        ("uretprobe", [bpftrace], f"uretprobe:{loop}:{fn} {{ @n = count(); }}"),
        ("goret", [gobt], f"goret:{loop}:{fn} {{ @n = count(); }}"),
        ("goret + goelapsed", [gobt], f"goret:{loop}:{fn} {{ @h = hist(goelapsed); @n = count(); }}"),
        ("uprobe + uretprobe, tid-keyed", [bpftrace],
         f"uprobe:{loop}:{fn} {{ @s[tid] = nsecs; }} "
         f"uretprobe:{loop}:{fn} {{ @h = hist(nsecs - @s[tid]); delete(@s[tid]); @n = count(); }}"),
    ]
    # A uretprobe on a Go function crashes the program not only when the
    # stack grows: Go's async preemption (a signal every 10 ms of running)
    # can land while the thread is in the kernel's uretprobe trampoline, and
    # the program dies (SIGILL at 0x7fffffffe00d on this kernel). To measure
    # the uretprobe variants at all, every run here has async preemption
    # off; the "safety" runs below show what happens with Go's defaults.
    def env_for(tool, godebug=True):
        env = gobt_env(tempfile.mkdtemp(prefix="ovh-", dir=tmp)) if tool[0] == gobt else dict(os.environ)
        if godebug:
            env["GODEBUG"] = "asyncpreemptoff=1"
        else:
            env.pop("GODEBUG", None)
        return env

    log(f"overhead: untraced loop, {calls} calls x {runs}")
    base = []
    for _ in range(runs):
        r = check(Run([loop, str(calls)], env=env_for([loop])), "loop")
        base.append(_ns_per_call(r))
    untraced = median(base)
    rows = [{"variant": "no probe", "ns_per_call": untraced, "overhead_ns": 0.0, "hits": None,
             "runs_ns_per_call": base, "program": None}]
    for name, tool, program in variants:
        log(f"overhead: {name}, {calls} calls x {traced_runs}")
        per, hits, raws = [], [], []
        for _ in range(traced_runs):
            r = check(Run([*tool, "-e", program, "-c", f"{loop} {calls}"], env=env_for(tool), timeout=1200), name)
            per.append(_ns_per_call(r))
            m = re.search(r"^@n: (\d+)", r.text(), re.M)
            hits.append(int(m.group(1)) if m else None)
            raws.append(r.raw())
        ns = median(per)
        rows.append({"variant": name, "ns_per_call": ns, "overhead_ns": ns - untraced, "hits": hits[0],
                     "runs_ns_per_call": per, "program": program, "runs": raws})
        if hits[0] != calls:
            log(f"  warning: {name} counted {hits[0]} hits for {calls} calls")
    # The crash is a race (the signal must land in the trampoline): in
    # about a third of the runs here. So each is run several times.
    safety = []
    n = min(calls, 300_000)
    for name, tool, program in variants[1:3]:  # uretprobe, goret: with Go's default GODEBUG
        log(f"safety: {name} with async preemption on (Go's default), {n} calls x {safety_runs}")
        runs_ = []
        for _ in range(safety_runs):
            r = Run([*tool, "-e", program, "-c", f"{loop} {n}"], env=env_for(tool, godebug=False), timeout=1200)
            text = r.text() + "\n" + r.text("err")
            m = re.search(r"ns_per_call ([0-9.]+)", text)
            crash = re.search(r"^(SIGILL.*|SIGSEGV.*|fatal error.*|runtime: unexpected return pc.*|panic:.*)$",
                              text, re.M)
            runs_.append({"ok": bool(m) and not crash, "crash": crash.group(1) if crash else None, **r.raw()})
        crashes = [x["crash"] for x in runs_ if not x["ok"]]
        safety.append({"variant": name, "calls": n, "runs": runs_, "crashed": len(crashes), "of": len(runs_),
                       "crash": crashes[0] if crashes else None, "program": program})
    return rows, safety


def _ns_per_call(run):
    m = re.search(r"ns_per_call ([0-9.]+)", run.text())
    if not m:
        die(f"no ns_per_call in the output of {' '.join(run.argv)}:\n{run.text()[-2000:]}")
    return float(m.group(1))
