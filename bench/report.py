"""The printed tables: one section per scenario, from the results dict."""


def fmt_s(x):
    if x is None:
        return "-"
    return f"{x * 1000:.0f} ms" if x < 10 else f"{x:.1f} s"


def _mb(kb):
    return "-" if kb is None else f"{kb / 1024:.0f}"


def fmt_r(x):
    if x is None:
        return "-"
    return f"{x:.2f}x" if x >= 0.1 else f"{x:.3f}x"


def table(headers, rows, align=None):
    cols = list(zip(*([headers] + rows))) if rows else [[h] for h in headers]
    widths = [max(len(str(c)) for c in col) for col in cols]
    align = align or ["<"] + [">"] * (len(headers) - 1)
    lines = ["| " + " | ".join(f"{str(h):{a}{w}}" for h, w, a in zip(headers, widths, align)) + " |",
             "|" + "|".join(("-" * (w + 1) + ":" if a == ">" else "-" * (w + 2)) for w, a in zip(widths, align)) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(f"{str(c):{a}{w}}" for c, w, a in zip(row, widths, align)) + " |")
    return "\n".join(lines)


def report(res):
    out = []
    f = res["facts"]
    out.append(f"# gobt benchmark, {f['date_utc']}")
    out.append(f"{f['bpftrace']['version']} (bfd: {f['bpftrace']['info'].get('bfd', '?')}), "
               f"Linux {f['kernel']}, {f['os']}, {f['cpus']} x {f['cpu']}, {f['memory']}")
    out.append(f"gobt {f['gobt']['commit']}{' (+ local changes)' if f['gobt']['gobt_dir_modified'] else ''} "
               f"on {f['gobt']['python_version']}; Go: "
               + ", ".join(f"{k}={v}" for k, v in f["go"].items()))
    if f.get("gobt_source_start") != f.get("gobt_source_end"):
        out.append(f"WARNING: gobt's sources changed during this run (commit {f['gobt']['commit']} -> "
                   f"{f['gobt'].get('commit_end')}): the rows mix two versions; run again")
    la0, la1 = f.get("loadavg_start"), f.get("loadavg_end")
    if la0 and la1:
        busy = max(la0[0], la1[0]) > 0.5 * (f["cpus"] or 1)
        out.append(f"load average at start {la0[0]:.2f}, at end {la1[0]:.2f}"
                   + (" -- the machine was busy: expect noise" if busy else ""))
    out.append(f"`bpftrace --info` (run by a cold gobt): {fmt_s(f['bpftrace']['info_wall_s'])}, "
               f"{f['bpftrace']['info_maxrss_kb'] / 1024:.0f} MB RSS")
    py = f.get("python_start_s") or {}
    if py:
        launched = (f"; {fmt_s(py.get('as_launched'))} as gobt's launcher starts it ({py['launcher_flags']})"
                    if py.get("launcher_flags") else "")
        out.append(f"gobt's python starts in {fmt_s(py.get('site'))} (`python -c pass`; "
                   f"{fmt_s(py.get('no_site'))} with -S, without the site-packages .pth hooks{launched}): "
                   "a floor under every gobt time below")
    if f.get("second_bpftrace"):
        sb = f["second_bpftrace"]
        out.append(f"second bpftrace: {sb['version']} (bfd: {sb['info'].get('bfd', '?')}, uprobe_multi: "
                   f"{sb['info'].get('uprobe_multi', '?')}), {sb['path']}")
    out.append("")
    out.append("## Targets (built with " + next(iter(res["targets"].values()))["toolchain"] + ")")
    rows = []
    for name, t in res["targets"].items():
        g = t["groups"]
        mb = lambda b: f"{b / 1e6:.1f}"  # noqa: E731
        rows.append([name, mb(t["file_bytes"]), f"{t['functions']:,}" + (
            f" ({t['generated_functions']:,} gen.)" if "generated_functions" in t else ""),
            mb(g["text"]), mb(g["pclntab"]), mb(g["dwarf"]), mb(g["rodata"]), mb(g["symtab"]), mb(g["data"] + g["other"])])
    out.append(table(["target", "MB", "functions", "text", "pclntab", "DWARF (zlib)", "rodata", "symtab", "data+other"], rows))
    big = res["targets"]["bigprog"]
    out.append(f"bigprog's rodata holds {big['generator']['asset_bytes'] / 1e6:.1f} MB of //go:embed'ed generated "
               "records (bulk); the rest is code, its metadata and DWARF.")
    out.append("")

    out.append("## gobt's own time (median wall) vs bpftrace's start-up")
    out.append("first: --no-cache and an empty XDG_CACHE_HOME (lark turns gobt's grammar into parse tables, and gobt runs `bpftrace --info`); "
               "cold: --no-cache, a binary gobt has not read (parse tables and bpftrace facts kept); "
               "warm: the caches filled.")
    out.append("bpftrace columns: the emitted program run by bpftrace with BEGIN { exit(); }: exec -> \"Attaching\", "
               "-> all attached, -> end (incl. detach). For -lv: `bpftrace -lv` on the same probe.")
    rows = []
    installed = f["bpftrace"]["info"].get("version") or f["bpftrace"]["version"]
    for r in res["emit"]:
        rows.append([r["target"], r["scenario"], r.get("bpftrace_label") or installed,
                     "-" if r["uprobes"] is None else r["uprobes"],
                     fmt_s(r.get("first_median_s")), fmt_s(r["cold_median_s"]), fmt_s(r["warm_median_s"]),
                     f"{_mb(r['cold_own_rss_kb'])}/{_mb(r['warm_own_rss_kb'])}",
                     fmt_s(r.get("bpftrace_to_attaching_s")), fmt_s(r.get("bpftrace_to_ready_s")),
                     fmt_s(r.get("bpftrace_to_end_s")),
                     fmt_r(r["ratio_cold_vs_bpftrace_start"]), fmt_r(r["ratio_warm_vs_bpftrace_start"]),
                     fmt_r(r["ratio_cold_vs_bpftrace_end"])])
    out.append(table(["target", "scenario", "bpftrace", "probes", "gobt first", "gobt cold", "gobt warm",
                      "RSS MB c/w", "bt ->Attaching", "bt ->attached", "bt ->end", "cold/Attaching",
                      "warm/Attaching", "cold/end"], rows, align=["<", "<", "<"] + [">"] * 11))
    inproc = [r["warm_in_process_median_s"] for r in res["emit"] if r.get("warm_in_process_median_s") is not None]
    if inproc:
        out.append(f"a warm run's own work, inside the process from importing gobt to exit: "
                   f"{fmt_s(min(inproc))} to {fmt_s(max(inproc))}; the rest of \"gobt warm\" is python's start-up "
                   "(a warm run reuses the whole rewritten program)")
    out.append("(For -lv rows the ratios are against `bpftrace -lv`'s whole run. RSS: gobt's own process, "
               "cold/warm; a cold gobt also runs `bpftrace --info`, see above.)")
    out.append("")

    if res.get("ratios"):
        from ratios import report_ratios

        out.extend(report_ratios(res["ratios"], fmt_s, fmt_r, table, res.get("after_exit") or []))
        out.append("")

    out.append("## Attach and detach vs number of probes (bigprog: N functions, one RET each)")
    rows = []
    for r in res["attach"]:
        rows.append([r.get("bpftrace", installed), r["form"], r["n"], r["attached"] or r["probes"],
                     fmt_s(r["to_attaching_s"]), fmt_s(r["attach_s"]),
                     f"{r['attach_ms_per_probe']:.2f}", fmt_s(r["detach_s"]), f"{r['detach_ms_per_probe']:.0f}",
                     fmt_s(r["to_end_s"]), f"{r['maxrss_kb'] / 1024:.0f}"])
    out.append(table(["bpftrace", "form", "functions", "probes", "->Attaching", "attach", "ms/probe", "detach",
                      "ms/probe", "total", "bpftrace RSS MB"], rows, align=["<", "<"] + [">"] * 9))
    out.append("attach = \"Attaching N probes\" -> BEGIN's output (all attached); detach = exit() -> process end. "
               "probes: as bpftrace counts them, BEGIN included.")
    out.append("")

    if res.get("after_exit"):
        out.append("## Results after Ctrl-C (bigprog: N functions, one RET each; ^C at a terminal)")
        rows = []
        for r in res["after_exit"]:
            rows.append([r["bpftrace"], r["tool"], r["n"], fmt_s(r["results_s"]), fmt_s(r["end_s"]),
                         r.get("kept", "-"), fmt_s(r["background_s"]) if "background_s" in r else "-"])
        out.append(table(["bpftrace", "run by", "probes", "->maps", "->prompt", "kept", "->detached"], rows,
                         align=["<", "<"] + [">"] * 5))
        out.append("->maps: ^C to the map's line; ->prompt: to the command's end. gobt keeps the uprobes open "
                   "past bpftrace's exit (kept) and a background process detaches them (->detached: until it "
                   "is gone).")
        out.append("")

    ov = res["overhead"]
    out.append(f"## Per-call overhead ({res['params']['calls']:,} calls of main.step in bench/programs/loop, "
               "time measured inside Go)")
    rows = [[r["variant"], f"{r['ns_per_call']:.1f}", f"{r['overhead_ns']:.0f}",
             "-" if r["hits"] is None else f"{r['hits']:,}"] for r in ov]
    out.append(table(["probe", "ns/call", "overhead ns/call", "hits"], rows))
    out.append("goret + goelapsed takes two uprobe hits per call (entry and RET); the tid-keyed pair one uprobe "
               "hit plus the uretprobe return.")
    out.append("All of the above ran with GODEBUG=asyncpreemptoff=1. With Go's defaults a uretprobe can crash even "
               "this loop, whose stack never grows (a race: Go's preemption signal landing in the kernel's "
               "uretprobe trampoline):")
    rows = [[s["variant"], s["calls"], f"{s['crashed']} of {s['of']}", s["crash"] or "-"] for s in res["safety"]]
    out.append(table(["probe, Go's default GODEBUG", "calls", "runs crashed", "first crash line"], rows,
                     align=["<", ">", ">", "<"]))
    out.append("")

    prof = res.get("profile")
    if prof and "by_cumtime" in prof:
        shown = " ".join(prof["args"])
        for name, t in res["targets"].items():
            shown = shown.replace(t["path"], name)
        out.append(f"## Where a cold gobt spends its time: gobt --no-cache {shown}")
        out.append(f"cProfile run: {fmt_s(prof['wall_s'])} wall; importing gobt.cli: "
                   f"{prof['import_total_us'] / 1000:.0f} ms (-X importtime)")
        rows = [[p["where"][:70], p["ncalls"], f"{p['tottime']:.3f}", f"{p['cumtime']:.3f}"] for p in prof["by_cumtime"]]
        out.append(table(["function (by cumulative time; click and import frames left out)", "calls", "tottime s",
                          "cumtime s"], rows))
        rows = [[p["where"][:70], p["ncalls"], f"{p['tottime']:.3f}", f"{p['cumtime']:.3f}"] for p in prof["by_tottime"][:10]]
        out.append(table(["function (by own time)", "calls", "tottime s", "cumtime s"], rows))
        rows = [[m["module"], f"{m['cumulative_us'] / 1000:.1f}"] for m in prof["top_imports"]]
        out.append(table(["import", "ms"], rows))
        out.append("")
    out.append(f"total benchmark time: {res['total_s']:.0f} s")
    return "\n".join(out)
