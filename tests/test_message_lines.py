"""bpftrace's messages about a rewritten line, mapped to the user's, keep
their lines whole however bpftrace's stderr arrives.

bpftrace (0.17 and 0.23) writes a message a character at a time. On a busy
machine it can pause mid-line for longer than gobt waits before it shows a
partial line (run/supervise.py): the pause here is made on purpose, by
running the real bpftrace with its stderr paced (each line held back before
its newline), as a loaded machine does at random.
"""

import os
import re
import sys

import pytest

from conftest import gobt, no_traceback


@pytest.fixture(scope="module")
def matrix(go_build, matrix_src):
    return go_build("go1.19", matrix_src)

# Real bpftrace, stdout its own; its stderr written a line at a time, each
# line's newline a pause after the rest of it.
PACER = """\
import os, subprocess, sys, time
child = subprocess.Popen([{bpftrace!r}] + sys.argv[1:], stderr=subprocess.PIPE, close_fds=False)
while True:
    data = os.read(child.stderr.fileno(), 65536)
    if not data:
        break
    *lines, rest = data.split(b"\\n")
    for line in lines:
        os.write(2, line)
        time.sleep(0.2)
        os.write(2, b"\\n")
    os.write(2, rest)
sys.exit(child.wait())
"""

# Two warnings bpftrace gives about the user's own code, on a line gobt
# rewrote (the goret becomes uprobes, goelapsed a read of gobt's maps).
TWO_WARNINGS = ('goret:{bin}:main.main {{ $a = (uint64)1; $b = -1; if ($a < $b) {{ printf("x\\n"); }} '
                'if ($b > $a) {{ printf("y %d\\n", goelapsed); }} }}')


def test_two_mapped_warnings_each_end_their_lines(matrix, bpf, tmp_path):
    pacer = tmp_path / "bpftrace"
    pacer.write_text(f"#!{sys.executable}\n" + PACER.format(bpftrace=bpf))
    pacer.chmod(0o755)
    script = TWO_WARNINGS.format(bin=matrix)
    proc = gobt("-e", script, "-c", "/bin/true", env={"GOBT_BPFTRACE": str(pacer)})
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.split("\n")
    heads = [i for i, line in enumerate(lines) if "WARNING: comparison of integers of different signs" in line]
    assert len(heads) == 2, proc.stderr
    for i in heads:
        # The user's line and a caret under what they wrote, each whole.
        assert re.match(r"stdin:1:\d+-\d+: WARNING: ", lines[i]), proc.stderr
        assert lines[i + 1] == script, proc.stderr
        assert re.fullmatch(r" +~", lines[i + 2]), proc.stderr
        col = int(re.match(r"stdin:1:(\d+)", lines[i]).group(1))
        assert lines[i + 2].index("~") == col - 1 and script[col - 2 : col + 1] in (" < ", " > "), proc.stderr
    # Nothing of the rewritten program (its uprobes) shows.
    assert "uprobe:" not in proc.stderr, proc.stderr
    assert os.path.basename(matrix) in proc.stderr
