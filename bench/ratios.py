"""Issue 16's ratios, each measured side by side in one run:

- a whole-binary `-lv` on cmd/go against a cold one-function `--emit` on
  cmd/go (the same program as the emit table's cmd/go row), run
  alternately, cold (--no-cache, parse tables and bpftrace facts kept), with
  gobt's own peak RSS for the listing and a check that a piped listing
  prints no progress line;
- a cold `--emit` against bpftrace's own start-up on the program it
  emitted (exec to "Attaching"), taken from the emit table's cmd/go row of
  this run;
- the time from Ctrl-C to the results, taken from this run's Ctrl-C
  table (attach.py): the slowest gobt row, whatever the probe count.
"""

import tempfile

from common import Run, check, gobt_env, log, median
from startup import own_rss_kb

TARGETS = {"lv_vs_emit": 10.0, "lv_rss_mb": 250, "emit_vs_bpftrace": 0.15, "results_after_exit_s": 1.0}


def _cpu(run):
    return run.utime + run.stime


def bench_ratios(gobt, python, targets, runs, tmp, emit_rows, quick=False):
    cg = targets["cmd/go"]
    emit_args = ["--no-cache", "--emit", "-e", f"goret:{cg}:runtime.mallocgc {{ @bytes = hist(goarg(size)); }}"]
    lv_args = ["--no-cache", "-lv", f"uprobe:{cg}:*"]
    home = tempfile.mkdtemp(prefix="ratios-", dir=tmp)
    env = gobt_env(home)
    log(f"whole-binary -lv on cmd/go vs a cold one-function --emit, alternately ({runs} + {runs} runs)")
    # One of each first: bytecode, parse tables and bpftrace facts kept, the
    # binary in the page cache; then only gobt's per-binary work is cold.
    # (--quick: the emit's warm-up brings enough of the binary in.)
    check(Run([gobt, *emit_args], env=env, timeout=300), "gobt --emit (warm-up)")
    if not quick:
        check(Run([gobt, *lv_args], env=env, timeout=600), "gobt -lv (warm-up)")
    emits, lvs = [], []
    for _ in range(runs):
        emits.append(check(Run([gobt, *emit_args], env=env, timeout=300), "gobt --emit (cold)"))
        lvs.append(check(Run([gobt, *lv_args], env=env, timeout=600), "gobt -lv (cold)"))
    # With the bpftrace facts kept, a cold -lv starts no child: wait4's peak
    # RSS is gobt's own; --quick takes it from the runs above.
    lv_rss = max(r.maxrss_kb for r in lvs) if quick else own_rss_kb(python, lv_args, env, tmp)
    out = {
        "emit_args": emit_args, "lv_args": lv_args,
        "emit_s": [r.wall for r in emits], "lv_s": [r.wall for r in lvs],
        "emit_cpu_s": [_cpu(r) for r in emits], "lv_cpu_s": [_cpu(r) for r in lvs],
        "emit_median_s": median(r.wall for r in emits), "lv_median_s": median(r.wall for r in lvs),
        "emit_cpu_median_s": median(_cpu(r) for r in emits), "lv_cpu_median_s": median(_cpu(r) for r in lvs),
        "lv_own_rss_kb": lv_rss,
        "lv_rows": lvs[0].text("out").count("\n") + 1,
        # Piped, as here: no progress line may reach stderr.
        "lv_progress_when_piped": any("\r" in t or " functions (" in t for r in lvs for _, s, t in r.lines
                                      if s == "err"),
    }
    out["ratio_lv_vs_emit"] = out["lv_median_s"] / out["emit_median_s"]
    out["ratio_lv_vs_emit_cpu"] = out["lv_cpu_median_s"] / out["emit_cpu_median_s"]
    row = next((r for r in emit_rows if r["target"] == "cmd/go" and r["args"][0] == "--emit"
                and not r.get("bpftrace_label")), None)
    if row:
        out["emit_vs_bpftrace"] = {"gobt_cold_s": row["cold_median_s"],
                                   "bpftrace_to_attaching_s": row["bpftrace_to_attaching_s"],
                                   "ratio": row["ratio_cold_vs_bpftrace_start"]}
    return out


def report_ratios(r, fmt_s, fmt_r, table, after_exit=()):
    """The section's lines (after_exit: the Ctrl-C table's rows)."""
    lines = ["## Issue 16's ratios (side by side in this run)"]
    rows = []
    lv = f"{fmt_s(r['lv_median_s'])} ({r['lv_rows']:,} rows)"
    rows.append(["whole-binary -lv on cmd/go / cold one-function --emit",
                 f"{lv} / {fmt_s(r['emit_median_s'])}",
                 f"{fmt_r(r['ratio_lv_vs_emit'])} (CPU {fmt_r(r['ratio_lv_vs_emit_cpu'])})",
                 f"<= {TARGETS['lv_vs_emit']:.0f}x", _met(r["ratio_lv_vs_emit"] <= TARGETS["lv_vs_emit"])])
    rss = r.get("lv_own_rss_kb")
    rows.append(["whole-binary -lv: gobt's peak RSS", "-" if rss is None else f"{rss / 1024:.0f} MB", "-",
                 f"<= {TARGETS['lv_rss_mb']} MB", "-" if rss is None else _met(rss / 1024 <= TARGETS["lv_rss_mb"])])
    e = r.get("emit_vs_bpftrace")
    if e:
        rows.append(["cold one-function --emit / bpftrace exec -> \"Attaching\" (cmd/go)",
                     f"{fmt_s(e['gobt_cold_s'])} / {fmt_s(e['bpftrace_to_attaching_s'])}", fmt_r(e["ratio"]),
                     f"<= {TARGETS['emit_vs_bpftrace']:.2f}x",
                     "-" if e["ratio"] is None else _met(e["ratio"] <= TARGETS["emit_vs_bpftrace"])])
    ours = [a for a in after_exit if a["tool"] == "gobt"]
    if ours:
        worst = max(ours, key=lambda a: a["results_s"])
        theirs = [a["results_s"] for a in after_exit if a["tool"] == "bpftrace" and a["n"] == worst["n"]
                  and a["bpftrace"] == worst["bpftrace"]]
        plain = f" (bpftrace alone: {fmt_s(theirs[0])})" if theirs else ""
        rows.append([f"results after Ctrl-C, slowest of {len(ours)} gobt runs (up to "
                     f"{max(a['n'] for a in ours)} probes)", f"{fmt_s(worst['results_s'])}{plain}", "-",
                     f"<= {TARGETS['results_after_exit_s']:.0f} s", _met(worst["results_s"] <= TARGETS["results_after_exit_s"])])
    lines.append(table(["ratio", "measured", "ratio", "goal", "met?"], rows, align=["<", ">", ">", ">", "<"]))
    lines.append("Wall times are medians of alternating cold runs (--no-cache; parser tables and bpftrace facts kept); "
                 "CPU is user+sys of the same runs, steadier on a busy machine. "
                 f"A piped -lv printed a progress line: {'YES (a bug)' if r['lv_progress_when_piped'] else 'no'}.")
    return lines


def _met(ok):
    return "yes" if ok else "NO"
