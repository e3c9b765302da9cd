"""An error bpftrace finds in a goret block points at the user's column, on
every supported bpftrace. bpftrace 0.23 counts each quoted piece of an
attach point one column too many for the rest of its line (0.17 does not),
and gobt's goret is made of quoted "sym"+offset attach points there."""

import re

import pytest

from conftest import gobt, no_traceback

SCRIPTS = [
    'goret:{b}:main.add {{ printf("%d\\n", @x); }}',
    'goret:{b}:"main.add", uprobe:"{b}":"main.add" {{ printf("%d\\n", @x); }}',
    'BEGIN {{ }} goret:{b}:main.add /@x == 1/ {{ @y = 1; }}',
]


@pytest.mark.parametrize("script", SCRIPTS, ids=["goret", "quoted", "predicate"])
def test_an_error_in_a_goret_probe_points_at_the_users_column(script, go_build, bpf):
    binary = go_build("go1.19", "tests/programs/inlined")
    text = script.format(b=binary)
    proc = gobt("-e", text)
    no_traceback(proc)
    assert proc.returncode != 0
    m = re.search(r"^stdin:1:(\d+)-(\d+): ERROR: Undefined map: @x$", proc.stderr, re.M)
    assert m, proc.stderr
    column = text.index("@x") + 1
    # bpftrace puts a predicate's first token at its '/' (0.17 and 0.23
    # alike), but in a goret probe that token is gobt's gate (@zz_gobt_t[...] &&
    # (...)), so the user's @x gets its own column.
    assert int(m.group(1)) == column, proc.stderr
    lines = proc.stderr.splitlines()
    at = lines.index(m.group(0))
    assert lines[at + 1] == text
    assert lines[at + 2] == " " * (int(m.group(1)) - 1) + "~" * (int(m.group(2)) - int(m.group(1)))
