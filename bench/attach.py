"""Attach and detach time against the number of probes (10/100/1000), and
how soon the results come after Ctrl-C (69/100/1000), gobt against bpftrace."""

import fcntl
import os
import re
import select
import subprocess
import tempfile
import termios
import time

from common import (BIG_PKG, READY, Run, bpftrace_asleep, check, die, gobt_env, log, median, memoized_bpftrace,
                    output_until, uprobe_count)


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


def bench_results_after_exit(gobt, bpftrace, name, big, sizes, tmp):
    """How soon the maps come after Ctrl-C (^C at a terminal, as a user
    stops a run), gobt against bpftrace on the program gobt emits.

    bpftrace prints its maps only after it has detached every probe, each
    ~0.1 s; gobt keeps the probes open past bpftrace's exit and detaches
    them in a background process (gobt/run/keeper.py), waited for here
    before the next run."""
    out = []
    for n in sizes:
        names = [f"{BIG_PKG}.Fn{i:03d}" for i in range(n)]
        script = ",".join(f"goret:{big}:{s}" for s in names) + " { @n = count(); }\n"
        script += f'BEGIN {{ printf("{READY}\\n"); }}\n'
        path = os.path.join(tmp, f"after-exit-{n}.bt")
        with open(path, "w") as f:
            f.write(script)
        env = {**gobt_env(os.path.join(tmp, "after-exit-cache")), "BPFTRACE_MAX_PROBES": str(n + 32)}
        emitted = check(Run([gobt, "--bpftrace", bpftrace, "--emit", path], env=env), "gobt --emit").text("out")
        plain = os.path.join(tmp, f"after-exit-{n}-emitted.bt")
        with open(plain, "w") as f:
            f.write(emitted + "\n")
        unsafe = ["--unsafe"] if re.search(r"\buprobe:[^:\s]+:0x[0-9a-fA-F]+", emitted) else []
        for tool, argv in (("gobt", [gobt, "--bpftrace", bpftrace, path]), ("bpftrace", [bpftrace, *unsafe, plain])):
            log(f"results after Ctrl-C on {name}: {tool}, {n} probes")
            row = {"bpftrace": name, "tool": tool, "n": n, **_ctrl_c_run(argv, env)}
            out.append(row)
    return out


def _ctrl_c_run(argv, env, timeout=1200):
    """Start argv on a terminal of its own, wait until every probe is
    attached (READY) and bpftrace sleeps, type ^C: seconds to the map's
    line and to the process's end; for gobt, the background detach's pid
    and its own duration."""
    master, slave = os.openpty()

    def own_terminal():
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)

    # stderr to a file: bpftrace 0.17 warns once per offset probe, and a
    # pipe nobody reads until the end would stop it before it attaches.
    errors = tempfile.TemporaryFile()
    proc = subprocess.Popen(argv, env=env, stdin=slave, stdout=subprocess.PIPE, stderr=errors,
                            start_new_session=True, preexec_fn=own_terminal, pass_fds=(slave,))
    os.close(slave)
    try:
        output_until(proc.stdout, READY.encode(), timeout)
        bpftrace_asleep(proc)
        t0 = time.perf_counter()
        os.write(master, b"\x03")
        seen = output_until(proc.stdout, b"@n:", timeout)
        results = time.perf_counter() - t0
        proc.communicate(timeout=timeout)
        end = time.perf_counter() - t0
        errors.seek(0)
        err = errors.read()
    except BaseException:
        proc.kill()
        proc.communicate()
        raise
    finally:
        os.close(master)
    if proc.returncode != 0 or b"@n:" not in seen:
        die(f"{argv[0]} failed (exit {proc.returncode}):\n{err.decode(errors='replace')[-2000:]}")
    row = {"results_s": results, "end_s": end}
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
        row["background_s"] = time.perf_counter() - t0
    return row
