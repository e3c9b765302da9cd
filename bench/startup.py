"""gobt's own time to --emit and -lv (first, cold, warm; peak RSS), against
bpftrace's start-up on the program gobt emitted."""

import os
import tempfile

from common import (BIG_PKG, BIG_WIDE, Run, check, gobt_env, log, median, memoized_bpftrace, python_cmd,
                    uprobe_count)


def scenarios(targets):
    """(target, name, gobt args, kind); kind "emit" or "list"."""
    st, cg, big = targets["stacker"], targets["cmd/go"], targets["bigprog"]
    return [
        ("stacker", "one function", ["--emit", "-e", f"goret:{st}:main.stacker {{ @n = count(); }}"]),
        ("stacker", "-lv one function", ["-lv", f"uprobe:{st}:main.stacker"]),
        ("cmd/go", "one function, goarg", ["--emit", "-e",
            f"goret:{cg}:runtime.mallocgc {{ @bytes = hist(goarg(size)); }}"]),
        ("cmd/go", "-lv one function", ["-lv", f"uprobe:{cg}:runtime.mallocgc"]),
        ("bigprog", "one function", ["--emit", "-e", f"goret:{big}:{BIG_PKG}.Fn500 {{ @n = count(); }}"]),
        ("bigprog", "goarg, 20 params", ["--emit", "-e",
            f"goentry:{big}:{BIG_WIDE} {{ printf(\"%d %s %d %s %s %d %d\\n\", goarg(p0), goarg(p1), "
            f"goarg(p5.Level), goarg(p5.Name), goarg(p13), goarg(p17.Level), goarg(p19)); }}"]),
        ("bigprog", "wildcard, 1000 functions", ["--emit", "-e", f"goret:{big}:{BIG_PKG}.Fn* {{ @n = count(); }}"]),
        ("bigprog", "-lv one function", ["-lv", f"uprobe:{big}:{BIG_WIDE}"]),
    ]



# gobt's own peak RSS: wait4's ru_maxrss also covers the children a process
# reaped, and a cold gobt runs `bpftrace --info` (~70 MB), so one extra run
# of each kind reports RUSAGE_SELF from inside gobt's process.
RSS_WRAPPER = r"""
import atexit, os, resource, sys
out = os.environ.pop("BENCH_RSS_OUT")
atexit.register(lambda: open(out, "w").write(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)))
sys.argv[0] = "gobt"
from gobt.cli import main
main()
"""


# gobt's own share of a run, without the interpreter's start-up: the time
# from importing gobt.cli to its exit, taken inside the process.
INPROC_WRAPPER = r"""
import atexit, os, sys, time
out = os.environ.pop("BENCH_INPROC_OUT")
t0 = time.perf_counter()
atexit.register(lambda: open(out, "w").write(repr(time.perf_counter() - t0)))
sys.argv[0] = "gobt"
from gobt.cli import main
main()
"""


def own_seconds(python, args, env, tmp, runs):
    """Median in-process wall time of gobt (import + run), or None."""
    if not python:
        return None
    out = os.path.join(tmp, "inproc")
    times = []
    for _ in range(runs):
        r = Run(python_cmd(python, INPROC_WRAPPER, *args), env=dict(env, BENCH_INPROC_OUT=out), timeout=300)
        try:
            with open(out) as f:
                if r.rc == 0:
                    times.append(float(f.read()))
        except (OSError, ValueError):
            pass
        finally:
            if os.path.exists(out):
                os.unlink(out)
    return median(times) if times else None


def own_rss_kb(python, args, env, tmp):
    if not python:
        return None
    out = os.path.join(tmp, "rss")
    env = dict(env, BENCH_RSS_OUT=out)
    r = Run(python_cmd(python, RSS_WRAPPER, *args), env=env, timeout=300)
    try:
        with open(out) as f:
            return int(f.read()) if r.rc == 0 else None
    except (OSError, ValueError):
        return None
    finally:
        if os.path.exists(out):
            os.unlink(out)


def time_gobt(gobt, python, args, runs, tmp):
    """First-ever, cold and warm runs, each a new process.

    first: an empty XDG_CACHE_HOME and --no-cache: nothing gobt ever kept.
    cold: --no-cache with only what gobt keeps per installation (the
    parse tables, the bpftrace's capabilities): a first run on this
    binary. warm: every cache filled by one run first.
    """
    # One discarded run first: it compiles gobt's bytecode on the very first
    # scenario and brings the binary into the page cache, so that cold means
    # "gobt's cache is empty", not "the disk is cold".
    installed = tempfile.mkdtemp(prefix="cold-", dir=tmp)
    check(Run([gobt, "--no-cache", *args], env=gobt_env(installed), timeout=300), "gobt (warm-up)")
    first = []
    for i in range(runs):
        home = tempfile.mkdtemp(prefix="first-", dir=tmp)
        first.append(check(Run([gobt, "--no-cache", *args], env=gobt_env(home), timeout=300), "gobt (first)"))
    cold = [check(Run([gobt, "--no-cache", *args], env=gobt_env(installed), timeout=300), "gobt (cold)")
            for _ in range(runs)]
    cold_own = own_rss_kb(python, ["--no-cache", *args], gobt_env(installed), tmp)
    home = tempfile.mkdtemp(prefix="warm-", dir=tmp)
    fill = check(Run([gobt, *args], env=gobt_env(home), timeout=300), "gobt (filling the cache)")
    warm = [check(Run([gobt, *args], env=gobt_env(home), timeout=300), "gobt (warm)") for _ in range(runs)]
    warm_own = own_rss_kb(python, args, gobt_env(home), tmp)
    warm_inproc = own_seconds(python, args, gobt_env(home), tmp, runs)
    cache_bytes = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(home) for f in fs)
    return {
        "first": [r.raw() for r in first],
        "cold": [r.raw() for r in cold],
        "fill": fill.raw(),
        "warm": [r.raw() for r in warm],
        "first_median_s": median(r.wall for r in first),
        "cold_median_s": median(r.wall for r in cold),
        "warm_median_s": median(r.wall for r in warm),
        "cold_cpu_median_s": median(r.utime + r.stime for r in cold),
        "warm_cpu_median_s": median(r.utime + r.stime for r in warm),
        "first_maxrss_kb": max(r.maxrss_kb for r in first),  # includes reaped children (bpftrace --info)
        "cold_maxrss_kb": max(r.maxrss_kb for r in cold),
        "warm_maxrss_kb": max(r.maxrss_kb for r in warm),
        "cold_own_rss_kb": cold_own,  # RUSAGE_SELF: gobt's process alone
        "warm_own_rss_kb": warm_own,
        "warm_in_process_median_s": warm_inproc,  # gobt's share of a warm run, interpreter start-up excluded
        "cache_bytes": cache_bytes,
        "stderr": fill.text("err")[-2000:],
    }, fill.text("out")



def bench_emit(gobt, python, bpftrace, targets, runs, bpftrace_runs, tmp, memo, skip_big=False, label=None,
               emit_only=False):
    """gobt's time per scenario against the start-up of bpftrace on what it
    emitted. label names a bpftrace other than the installed one: gobt is
    then run with --bpftrace, as a user of that bpftrace would run it."""
    out = []
    for target, name, args in scenarios(targets):
        if emit_only and args[0] != "--emit":
            continue
        if label:
            args = ["--bpftrace", bpftrace, *args]
        mode = "--emit" if "--emit" in args else "-lv"
        log(f"gobt {mode} on {target}: {name} ({runs} cold + {runs} warm){f' for bpftrace {label}' if label else ''}")
        timing, program = time_gobt(gobt, python, args, runs, tmp)
        row = {"target": target, "scenario": name, "args": args, "bpftrace_label": label, **timing}
        if "--emit" in args:
            row["program_bytes"] = len(program)
            row["uprobes"] = uprobe_count(program)
            n = 1 if row["uprobes"] > 200 else bpftrace_runs
            if row["uprobes"] > 200 and skip_big:
                n = 0
            log(f"  bpftrace on the emitted program ({row['uprobes']} probes, {n} run(s))")
            bt = [memoized_bpftrace(memo, bpftrace, program, tmp, f"{target}-{name}".replace("/", "_").replace(" ", "_"))
                  for _ in range(n)]
        else:  # -lv: against bpftrace's own -lv on the same probe
            row["uprobes"] = None
            log(f"  bpftrace {' '.join(args)} ({bpftrace_runs} runs)")
            runs_ = [check(Run([bpftrace, *args], timeout=300), "bpftrace -lv") for _ in range(bpftrace_runs)]
            bt = [{**r.raw(), "to_end_s": r.wall} for r in runs_]
        row["bpftrace"] = bt
        for key in ("to_attaching_s", "to_ready_s", "to_end_s", "attach_s", "detach_s", "maxrss_kb"):
            row[f"bpftrace_{key}"] = median(r.get(key) for r in bt)
        base = row["bpftrace_to_attaching_s"] if "--emit" in args else row["bpftrace_to_end_s"]
        row["ratio_cold_vs_bpftrace_start"] = row["cold_median_s"] / base if base else None
        row["ratio_warm_vs_bpftrace_start"] = row["warm_median_s"] / base if base else None
        end = row["bpftrace_to_end_s"]
        row["ratio_cold_vs_bpftrace_end"] = row["cold_median_s"] / end if end else None
        row["ratio_warm_vs_bpftrace_end"] = row["warm_median_s"] / end if end else None
        out.append(row)
    return out
