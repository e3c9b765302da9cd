"""Inlined calls: gobt says how many a probe cannot see, and reads the rest right."""

import re

import pytest

from conftest import gobt, no_traceback


@pytest.mark.parametrize("go", ["go1.19", "newest"])
def test_inlined_sites_are_counted_and_the_out_of_line_call_is_read(go, go_build, bpf):
    binary = go_build(go, "tests/programs/inlined")
    proc = gobt("-e", f'goret:{binary}:main.add {{ printf("%d + %d = %d\\n", goarg(a), goarg(b), retval); }}',
                "-c", binary)
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"warning: main.add is inlined at 1 call site; no probe sees those calls", proc.stderr)
    # The program prints "3 8": add(1+2) was inlined, f(3, 5) was not.
    assert re.search(r"^3 8$", proc.stdout, re.M)
    assert re.findall(r"^\d+ \+ \d+ = \d+$", proc.stdout, re.M) == ["3 + 5 = 8"]


def test_listing_notes_inlining(go_build):
    binary = go_build("go1.19", "tests/programs/inlined")
    proc = gobt("-lv", f"uprobe:{binary}:main.add")
    assert proc.returncode == 0, proc.stderr
    assert "inlined at 1 call site" in proc.stdout
    assert "warning" not in proc.stderr
    assert re.search(r"^\s+a\s+int\s+RAX$", proc.stdout, re.M)
