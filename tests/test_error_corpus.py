"""bpftrace's own messages for programs bpftrace rejects (tests/corpus/errors).

Each program runs under bpftrace and under gobt, from a file and with -e,
alone and with a goret probe mixed in on a first line of its own; gobt's
stderr must be bpftrace's, line for line (bpftrace's name for the program,
`stdin` for -e, its format, its carets), and its exit status too. Only
gobt's own notes (`gobt: ...`) may be added.
"""

import glob
import os
import subprocess

import pytest

from gobt.run.messages import _memlock_is_moot

from conftest import gobt, no_traceback
from toolchains import HERE

CASES = sorted(glob.glob(os.path.join(HERE, "corpus", "errors", "*.bt")))


def without_gobt_notes(stderr):
    return [line for line in stderr.splitlines() if not line.startswith("gobt: ")]


def as_gobt_passes_it(stderr):
    """bpftrace's stderr as gobt passes it on for a program it rewrote: the
    RLIMIT_MEMLOCK line left out on kernels that no longer count BPF memory
    there (run/messages.py)."""
    return [line for line in without_gobt_notes(stderr)
            if not (_memlock_is_moot() and "couldn't set RLIMIT_MEMLOCK" in line)]


@pytest.fixture(scope="module")
def go_binary(go_build):
    return go_build("go1.19", "tests/programs/inlined")


def test_error_corpus_is_there():
    assert len(CASES) >= 8


@pytest.mark.parametrize("mixed", [False, True], ids=["alone", "mixed"])
@pytest.mark.parametrize("form", ["file", "-e"])
@pytest.mark.parametrize("path", CASES, ids=os.path.basename)
def test_gobt_says_what_bpftrace_says(path, form, mixed, bpf, go_binary, tmp_path):
    with open(path) as f:
        text = f.read()
    if mixed:
        text = f"goret:{go_binary}:main.add {{ @r = count(); }}\n" + text
    if form == "file":
        (tmp_path / "prog.bt").write_text(text)
        args = ["prog.bt"]
    else:
        args = ["-e", text]
    theirs = subprocess.run([bpf, *args], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    ours = gobt(*args, timeout=60, cwd=tmp_path)
    no_traceback(ours)
    assert theirs.returncode != 0, theirs.stderr  # the corpus is of programs bpftrace rejects
    assert "error" in theirs.stderr.lower()
    expected = as_gobt_passes_it(theirs.stderr) if mixed else without_gobt_notes(theirs.stderr)
    assert without_gobt_notes(ours.stderr) == expected
    assert ours.returncode == theirs.returncode


@pytest.mark.parametrize("form", ["file", "-e"])
def test_a_signature_is_gobts_and_the_syntax_error_bpftraces(form, bpf, go_binary, tmp_path):
    # A declared signature is no bpftrace syntax: bpftrace judges the rest,
    # and its message is about the stray brace on line 2, as for BEGIN there.
    first = f"goret:{go_binary}:main.add(a int, b int) int {{ @r = count(); }}\n"
    rest = "}\nBEGIN { exit(); }\n"
    standin = "BEGIN".ljust(first.index(" {")) + first[first.index(" {"):]
    if form == "file":
        (tmp_path / "prog.bt").write_text(first + rest)
        (tmp_path / "standin").mkdir()
        (tmp_path / "standin" / "prog.bt").write_text(standin + rest)
        ours = gobt("prog.bt", cwd=tmp_path)
        theirs = subprocess.run([bpf, "prog.bt"], capture_output=True, text=True, cwd=tmp_path / "standin")
    else:
        ours = gobt("-e", first + rest)
        theirs = subprocess.run([bpf, "-e", standin + rest], capture_output=True, text=True)
    no_traceback(ours)
    assert ours.returncode == theirs.returncode == 1
    assert without_gobt_notes(ours.stderr) == as_gobt_passes_it(theirs.stderr)
    assert ":2:1-2: ERROR: syntax error" in ours.stderr
