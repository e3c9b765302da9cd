"""Every bpftrace program in tests/corpus stays as it is under gobt: alone,
and with gobt constructs mixed in (a goret probe, `@goid` as a map name),
every one of the program's lines comes out of --emit unchanged."""

import glob
import os
import re
import subprocess
import sys

import pytest

from conftest import no_traceback
from toolchains import HERE

CORPUS = os.path.join(HERE, "corpus")
V017 = sorted(glob.glob(os.path.join(CORPUS, "bpftrace-0.17", "*.bt")))
NEWER = sorted(glob.glob(os.path.join(CORPUS, "newer", "*.bt")))
ALL = V017 + NEWER


def ids(path):
    return os.path.relpath(path, CORPUS)


def args_of(text):
    for line in text.splitlines():
        if line.startswith("// args:"):
            return line.split(":", 1)[1].split()
    return []


def emit(path):
    proc = subprocess.run([sys.executable, "-m", "gobt", "--emit", path], capture_output=True, timeout=120)
    no_traceback(subprocess.CompletedProcess(proc.args, proc.returncode, proc.stdout.decode(errors="replace"),
                                             proc.stderr.decode(errors="replace")))
    return proc


def test_corpus_is_there():
    assert len(V017) >= 12 and len(NEWER) >= 4


@pytest.mark.host_bpftrace  # the folder is what bpftrace 0.17 accepts
@pytest.mark.parametrize("path", V017, ids=ids)
def test_bpftrace_017_accepts_it(path, bpf):
    # -d: parse, check and compile, then stop (no probe is attached).
    with open(path) as f:
        args = args_of(f.read())
    proc = subprocess.run([bpf, "-d", path, *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]


@pytest.mark.parametrize("path", ALL, ids=ids)
def test_alone_it_round_trips(path):
    proc = emit(path)
    assert proc.returncode == 0, proc.stderr
    with open(path, "rb") as f:
        assert proc.stdout == f.read()


@pytest.fixture(scope="module")
def ticker(go_build):
    return go_build("newest", "tests/programs/ticker")


# What the END gate (gobt/rewrite/gate.py) adds to a user's line, in place:
# a predicate, or a condition before the user's, on each uprobe; its
# opening in BEGIN and its closing in END (or both, in a BEGIN,END block).
_GATE = rb"@zz_gobt_t\[-1, -1, \(uint64\)0, \(uint64\)0\]"
_GATE_EDITS = [
    (re.compile(rb" if \(" + _GATE + rb"\) \{ delete\(" + _GATE + rb"\);( clear\(@zz_gobt_\w+\);)* \} "
                rb"else \{ " + _GATE + rb" = nsecs; \}"), rb""),
    (re.compile(rb"/" + _GATE + rb"/ "), rb""),
    (re.compile(rb"/" + _GATE + rb" && \((.*)\)/"), rb"/\1/"),
    (re.compile(rb" " + _GATE + rb" = nsecs;"), rb""),
    (re.compile(rb" delete\(" + _GATE + rb"\);( clear\(@zz_gobt_\w+\);)*"), rb""),
]


def _without_gate(line):
    for pattern, replacement in _GATE_EDITS:
        line = pattern.sub(replacement, line)
    return line


@pytest.mark.parametrize("path", ALL, ids=ids)
def test_with_a_goret_mixed_in_its_lines_are_unchanged(path, ticker, tmp_path):
    with open(path, "rb") as f:
        original = f.read()
    # gobt words: a goret with retval and goid, and a map named @goid.
    mixed = original + (f"\ngoret:{ticker}:main.tick {{ @goid[goid] = count(); @r = sum(retval); }}\n"
                        .encode())
    script = tmp_path / os.path.basename(path)
    script.write_bytes(mixed)
    proc = emit(str(script))
    assert proc.returncode == 0, proc.stderr
    out_lines = [_without_gate(line) for line in proc.stdout.split(b"\n")]
    for number, line in enumerate(original.split(b"\n"), 1):
        assert out_lines[number - 1] == line, f"line {number} changed"
    assert b"goret:" not in proc.stdout  # and the goret was rewritten
