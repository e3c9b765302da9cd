"""Emit and exec: what the installed bpftrace accepts, and handing over to it.

gobt proves every probe offset is an instruction boundary itself, so the
only question left is how to spell a probe at an offset so that *this*
bpftrace attaches it:

- built with bfd: `uprobe:BIN:"sym"+0xOFF`, which bpftrace checks again;
- without bfd, bpftrace >= 0.22: the same, with --unsafe;
- without bfd, older (Debian 12's 0.17): every "sym"+OFF is refused, but
  `uprobe:BIN:0xFILEOFFSET` attaches with --unsafe when no symbol covers
  that number.
"""

import json
import os
import re

from ..cache import cache_dir, read_sealed, write_atomic
from ..errors import GobtError
from ..paths import which

# bpftrace's options that take a value, across releases; the rest are flags.
# gobt must know them to find the program among the arguments.
VALUE_OPTIONS = {
    "-B", "-f", "-o", "-e", "-I", "-p", "-c",
    "--include", "--emit-elf", "--emit-llvm", "--no-feature", "--aot",
    "--test", "--usdt-file-activation-path", "--dry-run-file",
    "--pid", "--cmd", "--output", "--mode", "--debug", "--format",
}
# Long spellings that mean what a short option means to gobt too.
LONG_ALIASES = {"--pid": "-p", "--list": "-l", "--verbose": "-v"}
# -d takes a stage name in bpftrace >= 0.21 and nothing before: it takes the
# next word only when that word is a stage.
DEBUG_STAGES = {"all", "ast", "codegen", "codegen-opt", "dis", "libbpf", "verifier", "types", "parse"}
# bpftrace refuses more probes than this unless BPFTRACE_MAX_PROBES says so;
# 0.23 raised it to 1024.
DEFAULT_MAX_PROBES = 512
# Every bpftrace so far (0.17 to 0.24) detaches a uprobe at an offset on its
# own, and the kernel waits a grace period for each: ~0.11 s apiece on
# 0.17 and on 0.23 alike (bench/). Only a wildcard at function entries
# shares one uprobe_multi link, and bpftrace resolves those by symbol name,
# with no offsets. From this many probes on the user waits visibly at exit,
# and the maps are printed only after the wait.
# gobt keeps them open past bpftrace's exit where the kernel allows
# (keeper.py), so the output comes at once and the detach goes on in the
# background; it says so from this many probes on.
DETACH_WARNING_PROBES = 50
DETACH_SECONDS_PER_PROBE = 0.11
DETACH_BACKGROUND_NOTE_PROBES = 20

# bpftrace builtins that need --unsafe; gobt never adds --unsafe to a script
# that uses them unless the user asked for it.
UNSAFE_BUILTINS = {"system", "signal", "override"}


class Bpftrace:
    def __init__(self, path, version, bfd):
        self.path = path
        self.version = version  # (0, 17, 0)
        self.bfd = bfd

    @property
    def version_text(self):
        return ".".join(map(str, self.version))

    @property
    def capabilities(self):
        """What notes about this bpftrace say it is: as its --info says."""
        return "bfd" if self.bfd else "without bfd"

    @property
    def attach_form(self):
        return "sym_offset" if self.bfd or self.version >= (0, 22) else "file_offset"

    @property
    def str_size_counts_nul(self):
        # 0.23 fixed str(p, n) to count the terminating NUL in n.
        return self.version >= (0, 23)

    @property
    def max_probes(self):
        return 1024 if self.version >= (0, 23) else DEFAULT_MAX_PROBES

    @property
    def offset_needs_unsafe(self):
        return not self.bfd

    @property
    def strings_on_stack(self):
        # 0.17 keeps each str() and each printf's arguments on the 512-byte
        # BPF stack (BPFTRACE_STRLEN=72 and two strings in a goret: refused);
        # 0.23 keeps them in scratch maps (three strings of 1024 bytes in a
        # goret load). Versions between were not measured: they are checked.
        return self.version < (0, 23)


# Where scripts/setup installs Debian trixie's bpftrace 0.23 (bfd, with its
# own libraries and loader): gobt falls back to it, by itself, for probes the
# installed bpftrace cannot attach (offsets deep into a big binary's text on
# bpftrace < 0.22 without bfd, such as Debian 12's 0.17).
CAPABLE_BPFTRACE = "/usr/local/lib/gobt/bpftrace-0.23/bin/bpftrace"


def chosen_explicitly(explicit=None):
    """Whether the user named the bpftrace: then gobt never swaps it."""
    return bool(explicit or os.environ.get("GOBT_BPFTRACE"))


def capable_fallback(current):
    """gobt's own capable bpftrace, when it is installed and is not `current`."""
    path = os.environ.get("GOBT_CAPABLE_BPFTRACE", CAPABLE_BPFTRACE)
    if not path or not os.access(path, os.X_OK):
        return None
    try:
        if os.path.samefile(path, current):
            return None
    except OSError:
        return None
    return path


def unreachable_hints(fallback_path=CAPABLE_BPFTRACE):
    """What to do when no bpftrace at hand can attach at an offset."""
    return [
        f"  gobt uses its own bpftrace 0.23 for such probes when it is installed at {fallback_path}:",
        "  `sudo ./scripts/setup` in gobt's source tree installs it (no chroot; the host's bpftrace stays);",
        "  or point --bpftrace / GOBT_BPFTRACE at any bpftrace built with bfd, or 0.22+",
        "  meanwhile a plain `uprobe:BIN:FUNC` at the function's entry attaches by name, and goarg works there",
    ]


def find_bpftrace(explicit=None):
    path = explicit or os.environ.get("GOBT_BPFTRACE") or "bpftrace"
    resolved = which(path)
    if not resolved:
        raise GobtError(
            f"cannot find bpftrace ({path})",
            hints=["  install it (apt-get install bpftrace) or point --bpftrace / GOBT_BPFTRACE at it"],
        )
    return resolved


def probe_bpftrace(path):
    """Version and bfd of a bpftrace binary, cached by the binary's identity."""
    return start_probe(path)()


def start_probe(path):
    """probe_bpftrace(path), begun now and finished when the returned
    _Probe is called.

    A cold gobt has to run `bpftrace --info` (~50 ms: it loads LLVM and
    tries BPF features); started before the script is parsed, it runs while
    gobt imports its readers, instead of after.
    """
    st = os.stat(path)
    key = f"{os.path.realpath(path)}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"
    cache = cache_dir()
    cache_file = os.path.join(cache, "bpftrace-info.json") if cache else None
    text = read_sealed(cache_file) if cache_file else None
    if text is not None:
        try:
            entry = json.loads(text).get(key)
            if entry:
                return _Probe(path, found=Bpftrace(path, tuple(entry["version"]), entry["bfd"]))
        except (ValueError, KeyError, TypeError, AttributeError):
            pass
    import subprocess

    try:
        proc = subprocess.Popen([path, "--info"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                errors="replace")
    except OSError as e:
        raise GobtError(f"cannot run {path} --info: {e}") from None
    return _Probe(path, proc=proc, cache_file=cache_file, key=key)


class _Probe:
    def __init__(self, path, found=None, proc=None, cache_file=None, key=None):
        self.path = path
        self.found = found
        self.proc = proc
        self.cache_file = cache_file
        self.key = key

    def __call__(self):
        if self.found is None:
            self.found = self._finish()
        return self.found

    def cancel(self):
        """Not needed after all (the script is bpftrace's alone): stop it,
        so that no `bpftrace --info` outlives gobt's exec of bpftrace."""
        if self.proc is not None and self.found is None:
            self.proc.kill()
            self.proc.communicate()

    def _finish(self):
        import subprocess

        path = self.path
        try:
            info = self.proc.communicate(timeout=30)[0]
        except subprocess.TimeoutExpired:
            self.cancel()
            raise GobtError(f"{path} --info did not answer in 30 s") from None
        m = re.search(r"version:\s*v?(\d+)\.(\d+)\.(\d+)", info)
        if not m:
            out = subprocess.run([path, "--version"], capture_output=True, text=True, errors="replace")
            m = re.search(r"v?(\d+)\.(\d+)\.(\d+)", out.stdout + out.stderr)
        if not m:
            raise GobtError(f"cannot tell the version of {path} from --info or --version")
        version = tuple(int(x) for x in m.groups())
        bfd = re.search(r"\bbfd:\s*yes", info) is not None
        if self.cache_file:
            _store(self.cache_file, self.key, {"version": list(version), "bfd": bfd})
        return Bpftrace(path, version, bfd)


def _store(cache_file, key, value):
    try:
        data = json.loads(read_sealed(cache_file) or "{}")
        if not isinstance(data, dict):
            data = {}
    except ValueError:
        data = {}
    data[key] = value
    write_atomic(cache_file, data)


def program_fd(text, name):
    """A memfd holding the program, inherited by bpftrace across exec.

    No file is ever written, so nothing is left behind whatever happens to
    bpftrace; the fd's name shows the user's script in /proc.
    """
    fd = os.memfd_create((os.path.basename(name) or "gobt")[:200], 0)  # names over 249 bytes fail
    data = text.encode("utf-8", "surrogateescape")  # the user's bytes, as read
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def over_stack_limit(path, program, unsafe, strlen=None):
    """The name bpftrace gives a probe it refuses for its BPF stack, or None.

    `--emit-elf FILE` is bpftrace's dry run (0.17 and 0.23): it compiles
    the program as a run would and attaches nothing, in ~0.1 s. LLVM's BPF
    backend refuses a probe over 512 bytes of stack, naming its function
    ("in function uprobe:/app:535358 ...: Looks like the BPF stack limit of
    512 bytes is exceeded"). Any other failure is left for the real run to
    report: None.
    """
    import subprocess
    import tempfile

    env = dict(os.environ)
    if strlen is not None:
        env["BPFTRACE_STRLEN"] = str(strlen)
    fd = program_fd(program, "gobt-stack-check")
    try:
        with tempfile.TemporaryDirectory(prefix="gobt-") as tmp:
            argv = [path, *(["--unsafe"] if unsafe else []), "--emit-elf", os.path.join(tmp, "probes.elf"),
                    f"/proc/self/fd/{fd}"]
            try:
                # The program's bytes need not be UTF-8 (a script is taken as
                # bytes), and bpftrace's messages quote them.
                proc = subprocess.run(argv, capture_output=True, text=True, errors="surrogateescape",
                                      pass_fds=(fd,), env=env, timeout=60)
            except (OSError, subprocess.TimeoutExpired):
                return None
    finally:
        os.close(fd)
    m = re.search(r"in function (.*?) \S+ \(.*?\): Looks like the BPF stack limit", proc.stderr)
    if m:
        return m.group(1)
    return "" if "BPF stack limit" in proc.stderr else None


def argv0(path):
    """The name bpftrace is started under: `bpftrace` when PATH finds it so,
    as a shell would start it (getopt's messages begin with this name)."""
    name = os.path.basename(path)
    return name if which(name) == path else path



def exec_bpftrace(argv):
    import signal

    # Python ignores SIGPIPE (and SIGXFSZ), and an exec keeps what is
    # ignored: bpftrace must start as from a shell, so that `| head` ends it.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
    try:
        os.execv(argv[0], [argv0(argv[0]), *argv[1:]])
    except OSError as e:
        raise GobtError(f"cannot run {argv[0]}: {e.strerror}") from None
