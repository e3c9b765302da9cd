"""uprobe: keeps bpftrace's meaning on a Go function: its body, not its
inlined copies (goentry: fires at those), and the script's bytes as written.

tests/programs/inlined calls main.add twice: once inlined into main.main,
once through its body (from f). bpftrace counts the body's call only; so
must gobt, with the same program text and without --unsafe. The one place
gobt steps in is a stripped binary, where bpftrace finds no symbol by the
name: gobt gives it the entry address, with one note.
"""

import re

import pytest

from conftest import gobt, no_traceback

PROGRAM = "tests/programs/inlined"
SCRIPT = "uprobe:{}:main.add {{ @calls = count(); }}"


def calls(stdout):
    found = re.findall(r"^@calls: (\d+)$", stdout, re.M)
    assert len(found) == 1, stdout
    return int(found[0])


@pytest.mark.parametrize("go", ["go1.19", "newest"])
def test_a_uprobe_on_a_go_name_is_bpftraces_own(go, go_build, bpf):
    import subprocess

    binary = go_build(go, PROGRAM)
    script = SCRIPT.format(binary)
    emitted = gobt("--emit", "-e", script)
    assert emitted.returncode == 0, emitted.stderr
    assert emitted.stdout == script and emitted.stderr == ""

    plain = subprocess.run([bpf, "-e", script, "-c", binary], capture_output=True, text=True, timeout=120)
    assert plain.returncode == 0, plain.stderr
    proc = gobt("-e", script, "-c", binary)
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    assert calls(proc.stdout) == calls(plain.stdout) == 1  # the body's call, not the inlined one
    assert proc.stdout == plain.stdout
    assert "gobt" not in proc.stderr  # no --unsafe, no note: bpftrace's run as it is


def test_listing_points_a_uprobe_at_goentry_for_the_copies(go_build):
    binary = go_build("go1.19", PROGRAM)
    proc = gobt("-lv", f"uprobe:{binary}:main.add")
    assert proc.returncode == 0, proc.stderr
    assert f"uprobe fires at the body only, as in bpftrace; goentry:{binary}:main.add fires at the 1 inlined copy" \
        in proc.stdout


@pytest.mark.parametrize("go", ["go1.19", "newest"])
def test_in_a_stripped_binary_gobt_gives_bpftrace_the_entry_address(go, go_build, bpf):
    binary = go_build(go, PROGRAM, ldflags="-s -w", tag="-stripped")
    script = SCRIPT.format(binary)
    proc = gobt("-e", script, "-c", binary)
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    notes = [line for line in proc.stderr.splitlines() if "has no symbol table" in line]
    assert notes == [f"gobt: uprobe:{binary}:main.add: the binary has no symbol table, so bpftrace cannot find "
                     "main.add by name; gobt gives it the entry address from the Go function table (.gopclntab)"]
    assert calls(proc.stdout) == 1  # the body, as an unstripped build under bpftrace
