"""Functions with no RET: tail-call wrappers are named, with their target."""

import re
import subprocess

import pytest

from conftest import gobt, no_traceback

PROGRAM = "tests/programs/wrappers"


def objdump_tail_target(binary, func):
    out = subprocess.run(["objdump", "-d", "--no-show-raw-insn", binary], capture_output=True, text=True).stdout
    body = out.split(f"<{func}>:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    real = [line for line in body if "int3" not in line and line.strip()]
    m = re.search(r"\tjmp\s+[0-9a-f]+ <([^>+]+)>", real[-1])
    assert m, real[-1]
    assert not any("\tret" in line for line in body)
    return m.group(1)


@pytest.mark.parametrize("go", ["go1.19", "newest"])  # 1.20-1.23 end the wrapper in a RET
def test_tail_call_wrapper_is_named_with_its_target(go, go_build, bpf):
    binary = go_build(go, PROGRAM)
    target = objdump_tail_target(binary, "main.(*Outer).Value")
    listing = gobt("-l", f"goret:{binary}:main.*")
    assert listing.returncode == 0, listing.stderr
    assert f"main.(*Outer).Value  no RET: tail call to {target}" in listing.stdout
    assert re.search(r"main\.\(\*Inner\)\.Value  1 RET$", listing.stdout, re.M)

    proc = gobt("-e", f"goret:{binary}:main.*Value {{ @[probe] = count(); }}", "-c", binary)
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    warnings = [l for l in proc.stderr.splitlines() if ": warning: " in l]
    assert warnings == [f"gobt: -e:1:1: warning: main.(*Outer).Value has no RET: it ends in a tail call "
                        f"(JMP to {target}); goret never fires for it"]
    # (*Inner).Value returns twice: called directly, and through the wrapper's JMP.
    counts = [int(c) for c in re.findall(r"^@\[.*\]: (\d+)$", proc.stdout, re.M)]
    assert sorted(counts) == [2], proc.stdout


def test_exact_function_without_ret_is_an_error(go_build):
    binary = go_build("go1.19", PROGRAM)
    proc = gobt("--emit", "-e", f"goret:{binary}:main.(*Outer).Value {{ exit(); }}")
    no_traceback(proc)
    assert proc.returncode == 1
    assert "warning: main.(*Outer).Value has no RET" in proc.stderr
    assert "matches no function with a RET instruction" in proc.stderr
