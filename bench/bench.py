"""gobt's benchmark: "fast at every scale".

One run (as root) builds its own targets, then measures side by side:

  1. gobt's own time to --emit (and -lv), cold and warm, with peak RSS,
     on a small program, cmd/go and a generated 80 MB / 20,000+ function
     program;
  2. issue 16's ratios, side by side: a whole-binary -lv on cmd/go against
     a cold one-function --emit, and that --emit against bpftrace's start-up;
  3. bpftrace's own start-up on the program gobt emitted: exec to
     "Attaching N probes", to all probes attached, and to the end of a run
     that exits right away (BEGIN { exit(); }, so the end includes detach);
     gobt's time is reported as a ratio of these;
  4. attach and detach time against the number of probes (10/100/1000),
     for the attach form gobt emits on this bpftrace and for plain
     `uprobe:BIN:sym` as a baseline;
  5. how soon the results come after Ctrl-C (69/100/1000 probes), gobt
     (which detaches in the background) against bpftrace;
  6. per-call overhead, in ns, of each way to trace a function's return,
     measured inside a Go program that calls one function 10^6 times.

It prints a table and writes every raw number, with the machine's facts,
to bench/results/<timestamp>.json and bench/results/latest.json.

    sudo bench/run            # everything (~8 minutes; bpftrace 0.17's
                              # detach of 2 x 1000 probes is most of it)
    sudo bench/run --quick    # smoke run: fewer repeats, only 10-probe attach runs,
                              # results after Ctrl-C for 30 probes only
"""

import argparse
import contextlib
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from attach import bench_attach, bench_results_after_exit
from common import (RESULTS, ROOT, T0, TRIXIE_BPFTRACE, _loadavg, bpftrace_facts, build_targets, die, find_gobt,
                    find_toolchains, gobt_source_hash, log, machine_facts, second_bpftrace)
from percall import bench_overhead
from profiling import bench_profile
from ratios import bench_ratios
from report import report
from startup import bench_emit, scenarios


def main(argv=None):
    ap = argparse.ArgumentParser(prog="bench/run", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 2 repeats, 10^5 calls, only 10-probe attach runs (about 2 minutes once built)")
    ap.add_argument("--runs", type=int, help="repeats of each gobt timing (default 5; --quick 2)")
    ap.add_argument("--calls", type=int, help="calls in the overhead loop (default 10^6; --quick 10^5)")
    ap.add_argument("--gobt", help="the gobt to measure (default: gobt on PATH, or $GOBT)")
    ap.add_argument("--bpftrace", default=os.environ.get("GOBT_BPFTRACE") or "bpftrace",
                    help="the bpftrace to measure against (default: bpftrace on PATH, or $GOBT_BPFTRACE)")
    ap.add_argument("--second-bpftrace", default="trixie" if os.path.exists(TRIXIE_BPFTRACE) else "none",
                    help="a second bpftrace for the emit and attach/detach sections: a path, 'trixie' (Debian "
                         "trixie's 0.23 that scripts/setup installs; the default when it exists) or 'none'")
    ap.add_argument("--no-profile", action="store_true", help="skip the cProfile / importtime run")
    ap.add_argument("--build-only", action="store_true", help="build (and check) the targets, then stop")
    ap.add_argument("--only", choices=["probes-gone"],
                    help="run one section alone: probes-gone (Ctrl-C on a busy program: results, and how soon "
                         "its probes are gone), on both bpftraces")
    ap.add_argument("--sizes", help="with --only probes-gone: probe counts, e.g. 100,1000,2000")
    args = ap.parse_args(argv)

    if os.geteuid() != 0:
        die("run as root (sudo bench/run): bpftrace attaches real uprobes")
    bpftrace = shutil.which(args.bpftrace)
    if not bpftrace:
        die(f"cannot find bpftrace ({args.bpftrace}); run scripts/setup")
    gobt, gobt_python = find_gobt(args.gobt)
    runs = args.runs or (2 if args.quick else 5)
    calls = args.calls or (100_000 if args.quick else 1_000_000)
    sizes = [10] if args.quick else [10, 100, 1000]
    exit_sizes = [30] if args.quick else [69, 100, 1000]
    bpftrace_runs = 2 if args.quick else 3
    overhead_runs = 3 if args.quick else 5
    traced_runs = 1 if args.quick else 2

    toolchains = find_toolchains()
    if args.only:
        return only_probes_gone(args, gobt, bpftrace, toolchains)
    targets, target_facts = build_targets(toolchains)
    if args.build_only:
        print(json.dumps(target_facts, indent=1, default=str)[:4000])
        return 0
    facts = machine_facts(toolchains, gobt, gobt_python, bpftrace)
    log(f"measuring {gobt} against {facts['bpftrace']['version']}")

    started = time.monotonic()
    res = {"facts": facts, "targets": target_facts,
           "params": {"quick": args.quick, "runs": runs, "calls": calls, "sizes": sizes, "exit_sizes": exit_sizes,
                      "bpftrace_runs": bpftrace_runs, "overhead_runs": overhead_runs, "traced_runs": traced_runs}}
    memo = {}
    with tempfile.TemporaryDirectory(prefix="gobt-bench-") as tmp, contextlib.ExitStack() as stack:
        res["emit"] = bench_emit(gobt, gobt_python, bpftrace, targets, runs, bpftrace_runs, tmp, memo, skip_big=args.quick)
        res["ratios"] = bench_ratios(gobt, gobt_python, targets, runs, tmp, res["emit"], quick=args.quick)
        installed = facts["bpftrace"]["info"].get("version") or facts["bpftrace"]["version"]
        res["attach"] = bench_attach(gobt, bpftrace, installed, targets["bigprog"], sizes, bpftrace_runs, tmp, memo)
        res["after_exit"] = bench_results_after_exit(gobt, bpftrace, installed, targets["bigprog"], exit_sizes, tmp)
        second = second_bpftrace(args.second_bpftrace, stack, tmp)
        if second:
            facts["second_bpftrace"] = dict(zip(("version", "info"), bpftrace_facts(second)), path=args.second_bpftrace)
            label = facts["second_bpftrace"]["info"].get("version") or facts["second_bpftrace"]["version"]
            log(f"second bpftrace: {label} ({args.second_bpftrace})")
            res["emit"] += bench_emit(gobt, gobt_python, second, targets, runs, bpftrace_runs, tmp, memo,
                                      skip_big=args.quick, label=label, emit_only=True)
            res["attach"] += bench_attach(gobt, second, label, targets["bigprog"], sizes, bpftrace_runs, tmp, memo,
                                          multi=True)
            res["after_exit"] += bench_results_after_exit(gobt, second, label, targets["bigprog"], exit_sizes, tmp)
        res["overhead"], res["safety"] = bench_overhead(gobt, bpftrace, targets["loop"], calls, overhead_runs,
                                                        traced_runs, tmp)
        if not args.no_profile:
            log("profiling a cold gobt on the 1000-function wildcard")
            big_wild = next(s for s in scenarios(targets) if s[1].startswith("wildcard"))
            res["profile"] = bench_profile(gobt_python, big_wild[2], tmp)
    facts["loadavg_end"] = _loadavg()
    facts["gobt_source_end"] = gobt_source_hash()
    end_commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    facts["gobt"]["commit_end"] = end_commit.stdout.strip()
    res["total_s"] = time.monotonic() - T0
    res["measure_s"] = time.monotonic() - started

    text = report(res)
    print(text)
    os.makedirs(RESULTS, exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = os.path.join(RESULTS, f"{stamp}{'-quick' if args.quick else ''}.json")
    res["table"] = text
    for p in (path, os.path.join(RESULTS, "latest.json")):
        with open(p, "w") as f:
            json.dump(res, f, indent=1, default=str)
    print(f"\nwrote {os.path.relpath(path, ROOT)} and bench/results/latest.json", file=sys.stderr)
    return 0


def only_probes_gone(args, gobt, bpftrace, toolchains):
    from exitrate import bench_probes_gone, build_manyfuncs, report_probes_gone
    from report import fmt_s, table

    binary = build_manyfuncs(toolchains["newest"])
    sizes = [int(x) for x in (args.sizes or "100,1000").split(",")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="gobt-bench-") as tmp, contextlib.ExitStack() as stack:
        installed = bpftrace_facts(bpftrace)[0]
        rows += bench_probes_gone(gobt, bpftrace, installed, binary, [n for n in sizes if n <= 1000], tmp)
        second = second_bpftrace(args.second_bpftrace, stack, tmp)
        if second:
            rows += bench_probes_gone(gobt, second, bpftrace_facts(second)[0], binary, sizes, tmp)
    text = report_probes_gone(rows, fmt_s, table)
    print(text)
    os.makedirs(RESULTS, exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    with open(os.path.join(RESULTS, f"{stamp}-probes-gone.json"), "w") as f:
        json.dump({"probes_gone": rows, "gobt": gobt, "loadavg": _loadavg(), "table": text}, f, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
