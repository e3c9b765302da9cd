"""Fixtures shared by gobt's tests.

End-to-end tests need root, a real bpftrace and real Go toolchains. On a
developer's machine without them they skip; in CI (GOBT_REQUIRE_E2E=1,
set by .ci/run) a missing requirement fails the test instead, so CI can
never pass by skipping the tests that matter.
"""

import os
import re
import select
import shutil
import subprocess
import sys
import time

import pytest

import abigen
from toolchains import CACHE, ROOT, TRIXIE_BPFTRACE, build, find_toolchains

REQUIRE_E2E = os.environ.get("GOBT_REQUIRE_E2E") == "1"
# The arm64 VM's tests run only when asked (scripts/test-arm64): building
# the VM takes 15-30 min once, and each bpftrace run in it tens of seconds.
collect_ignore = [] if os.environ.get("GOBT_ARM64VM") == "1" else ["test_arm64vm.py"]
BUILD_DIR = os.path.join(CACHE, "builds")


def need(condition, why):
    if condition:
        return
    if REQUIRE_E2E:
        pytest.fail(f"GOBT_REQUIRE_E2E=1 but {why}", pytrace=False)
    pytest.skip(why)


@pytest.fixture(scope="session")
def toolchains():
    return find_toolchains()


# GOBT_TEST_BPFTRACE=trixie runs the whole suite against Debian trixie's
# bpftrace 0.23 (bfd, uprobe_multi), which scripts/setup installs in a
# private prefix (toolchains.TRIXIE_BPFTRACE), instead of the host's.
ON_TRIXIE = os.environ.get("GOBT_TEST_BPFTRACE") == "trixie"
# A hand-written str(ptr, len) reads len - 1 bytes on bpftrace >= 0.23,
# which counts the NUL in the size (goarg takes care of it by itself).
def _counts_the_nul(bpftrace):
    """Is this bpftrace 0.23 or later (Debian 13's own, for a pass that runs
    the system's bpftrace without GOBT_TEST_BPFTRACE, as capstone-next does)."""
    try:
        said = subprocess.run([bpftrace, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    m = re.search(r"v(\d+)\.(\d+)", said)
    return bool(m) and (int(m.group(1)), int(m.group(2))) >= (0, 23)


STR_LEN_EXTRA = " + 1" if ON_TRIXIE or _counts_the_nul(shutil.which("bpftrace") or "bpftrace") else ""


@pytest.fixture(scope="session")
def bpf():
    """Real bpftrace with the rights to attach probes (gobt runs the same one)."""
    need(os.geteuid() == 0, "end-to-end tests need root")
    need(shutil.which("bpftrace") is not None, "bpftrace is not installed")
    tracing = "/sys/kernel/tracing"
    if os.path.isdir(tracing) and not os.listdir(tracing):
        subprocess.run(["mount", "-t", "tracefs", "nodev", tracing], check=False)
    if not ON_TRIXIE:
        return shutil.which("bpftrace")
    os.environ["GOBT_BPFTRACE"] = trixie_bpftrace()
    return os.environ["GOBT_BPFTRACE"]


@pytest.fixture(scope="session", autouse=True)
def _one_bpftrace_per_session(request):
    # Under GOBT_TEST_BPFTRACE=trixie every gobt a test runs must use 0.23,
    # also in the tests that never ask for `bpf` (emit-only ones), whatever
    # order they run in: the bpf fixture sets GOBT_BPFTRACE up front.
    if ON_TRIXIE:
        request.getfixturevalue("bpf")


@pytest.fixture(scope="session")
def go_build(toolchains):
    """go_build(name, program_dir, **flags) -> path of the built binary."""
    os.makedirs(BUILD_DIR, exist_ok=True)

    def _build(name, src, **kwargs):
        need(name in toolchains, f"Go toolchain {name} is missing (run scripts/setup)")
        src_dir = src if os.path.isabs(src) else os.path.join(ROOT, src)
        return build(toolchains[name], src_dir, BUILD_DIR, **kwargs)

    return _build


def write_program(name, files):
    """A generated Go program's directory under BUILD_DIR/src, rewritten only when it changes."""
    src = os.path.join(BUILD_DIR, "src", name)
    os.makedirs(src, exist_ok=True)
    for file, text in files.items():
        path = os.path.join(src, file)
        if not os.path.exists(path) or open(path).read() != text:
            with open(path, "w") as f:
                f.write(text)
    return src


@pytest.fixture(scope="session")
def matrix_src():
    """The ABI matrix program of tests/abigen.py."""
    return write_program("abimatrix", {"main.go": abigen.go_source(), "go.mod": "module abimatrix\n\ngo 1.15\n"})


# The gobt command the tests run: GOBT_TEST_GOBT if set (scripts/test sets
# the installed /usr/local/bin/gobt, so CI tests what `sudo ./scripts/setup`
# installed), else this interpreter's `-m gobt` (pytest run by hand).
GOBT_CMD = [os.environ["GOBT_TEST_GOBT"]] if os.environ.get("GOBT_TEST_GOBT") else [sys.executable, "-m", "gobt"]


def gobt(*args, timeout=120, input=None, env=None, cwd=None):
    """Run gobt as a user would, and return the CompletedProcess."""
    cmd = [*GOBT_CMD, *args]
    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, input=input,
        env={**os.environ, **(env or {})}, cwd=cwd,
    )


def no_traceback(proc):
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stdout, proc.stdout


@pytest.fixture(scope="session")
def newer_bpftrace(bpf):
    """Debian trixie's bpftrace (0.23: bfd, uprobe_multi), whatever the pass."""
    return trixie_bpftrace()


def trixie_bpftrace():
    """The launcher of trixie's bpftrace 0.23 that scripts/setup installs."""
    need(os.access(TRIXIE_BPFTRACE, os.X_OK), f"{TRIXIE_BPFTRACE} is missing (run scripts/setup)")
    return TRIXIE_BPFTRACE


def asleep_in_epoll(pid, timeout=10):
    """Wait until bpftrace (pid) sleeps in its poll loop.

    bpftrace 0.17 (BPFtrace::poll_perf_events) notices SIGINT/SIGTERM only
    as an EINTR of epoll_wait: one that lands while it is awake, between
    two 100 ms waits (likely on a loaded machine), is lost and it runs on.
    That is bpftrace's own, under gobt or not; the tests signal it asleep.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(f"/proc/{pid}/wchan") as f:
            if f.read() == "do_epoll_wait":
                return
        time.sleep(0.005)


def read_until(proc, text, timeout=300):
    """What proc wrote to its stdout pipe, up to and including text."""
    seen = b""
    deadline = time.monotonic() + timeout
    while text not in seen:
        ready, _, _ = select.select([proc.stdout], [], [], max(0, deadline - time.monotonic()))
        chunk = os.read(proc.stdout.fileno(), 65536) if ready else b""
        if not chunk:
            raise AssertionError(f"no {text!r} in {seen[-2000:]!r}")
        seen += chunk
    return seen
