"""Attach and detach time against the number of probes (10/100/1000)."""

import os
import re

from common import BIG_PKG, Run, check, gobt_env, log, median, memoized_bpftrace, uprobe_count


def attach_form(program):
    if re.search(r"\buprobe:[^:\s]+:0x[0-9a-fA-F]+", program):
        return "file offset + --unsafe"
    if re.search(r'"\+(?:0x[0-9a-fA-F]+|\d+)', program):
        return '"sym"+offset'
    return "?"


def bench_attach(gobt, bpftrace, name, big, sizes, repeats, tmp, memo, multi=False):
    """Attach and detach time against the probe count, on one bpftrace: the
    form gobt emits for it (goret: a probe per RET), plain entry uprobes by
    name, and with multi, one wildcard (uprobe_multi, one link for all)."""
    out = []
    for n in sizes:
        digits = {10: "00", 100: "0", 1000: ""}[n]
        pattern = f"{BIG_PKG}.Fn{digits}*"
        emitted = check(Run([gobt, "--bpftrace", bpftrace, "--emit", "-e", f"goret:{big}:{pattern} {{ @n = count(); }}"],
                            env=gobt_env(os.path.join(tmp, "attach-cache"))), "gobt --emit")
        goret = emitted.text("out")
        names = [f"{BIG_PKG}.Fn{i:03d}" for i in range(n)]
        sym = ", ".join(f'uprobe:{big}:"{s}"' for s in names) + " { @n = count(); }"
        forms = [(f"gobt goret: {attach_form(goret)}", goret), ("uprobe:BIN:\"sym\" (entry)", sym)]
        if multi:
            forms.append((f"uprobe:BIN:{BIG_PKG}.Fn{digits}* (entry, one wildcard)",
                          f"uprobe:{big}:{pattern} {{ @n = count(); }}"))
        for form, program in forms:
            reps = repeats if n <= 10 else 1
            log(f"attach/detach on {name}: {form}, {n} functions ({reps} run(s))")
            label = f"attach-{n}-{len(out)}"
            rs = [memoized_bpftrace(memo, bpftrace, program, tmp, label) for _ in range(reps)]
            row = {"bpftrace": name, "form": form, "n": n, "probes": uprobe_count(program), "runs": rs,
                   "attached": rs[0]["probes"]}
            for key in ("to_attaching_s", "attach_s", "to_ready_s", "detach_s", "to_end_s", "maxrss_kb"):
                row[key] = median(r[key] for r in rs)
            count = row["attached"] or row["probes"]
            row["attach_ms_per_probe"] = 1000 * row["attach_s"] / count
            row["detach_ms_per_probe"] = 1000 * row["detach_s"] / count
            out.append(row)
    return out
