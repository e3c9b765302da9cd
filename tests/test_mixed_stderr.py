"""A mixed program's stderr is bpftrace's on the program gobt emits: the
same messages in the same order, with the same exit status. What may
differ: gobt's own notes (`gobt: ...`), and a message about a line gobt
rewrote, which names the user's line and puts the caret under the user's
text (on 0.23 too, whose columns after a quoted attach point are off by
one per quoted piece)."""

import re
import subprocess

import pytest

from gobt.run.messages import _memlock_is_moot

from conftest import gobt, no_traceback

CASES = {
    "semantic error before": 'BEGIN {{ printf("%s\\n", 5); }}\ngoret:{b}:main.add {{ @r = count(); }}\n',
    "warning and error after": 'goret:{b}:main.add {{ @r = count(); }}\n'
                               'kprobe:no_such_fn_gobt {{ @y = 1; }}\n\tBEGIN {{ @z = @undefined; }}\n',
    "error in the goret block": 'BEGIN {{ }}\ngoret:{b}:main.add {{ @r = count(); printf("%d\\n", @nomap); }}\n',
}


def messages(stderr):
    return [line for line in stderr.splitlines() if not line.startswith("gobt: ")]


@pytest.mark.parametrize("form", ["file", "-e"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.replace(" ", "-"))
def test_stderr_is_bpftraces_on_the_emitted_program(case, form, bpf, go_build, tmp_path):
    binary = go_build("go1.19", "tests/programs/inlined")
    text = CASES[case].format(b=binary)
    (tmp_path / "user.bt").write_text(text)
    args = ["user.bt"] if form == "file" else ["-e", text]
    emitted = gobt("--emit", *args, cwd=tmp_path)
    assert emitted.returncode == 0, emitted.stderr
    (tmp_path / "emitted.bt").write_text(emitted.stdout)
    # The bpftrace gobt runs: it says which when it is not this pass's own.
    switched = re.search(r"^gobt: using bpftrace \S+ \((\S+)\)", emitted.stderr, re.M)
    bpftrace = switched.group(1) if switched else bpf
    extra = ["--unsafe"] if "adding --unsafe" in emitted.stderr else []
    theirs = subprocess.run([bpftrace, *extra, *(["emitted.bt"] if form == "file" else ["-e", emitted.stdout])],
                            capture_output=True, text=True, timeout=60, cwd=tmp_path)
    ours = gobt(*args, cwd=tmp_path, timeout=60)
    no_traceback(ours)
    assert ours.returncode == theirs.returncode != 0
    name = "user.bt" if form == "file" else "stdin"
    # gobt leaves out bpftrace's moot RLIMIT_MEMLOCK line (run/messages.py).
    expected = [line.replace("emitted.bt:", "user.bt:", 1) for line in messages(theirs.stderr)
                if not (_memlock_is_moot() and "couldn't set RLIMIT_MEMLOCK" in line)]
    got = messages(ours.stderr)
    assert len(got) == len(expected), (got, expected)
    user_lines = text.split("\n")
    head = re.compile(rf"{re.escape(name)}:(\d+):(\d+)-(\d+): (.*)")
    mapped = 0
    for i, (g, e) in enumerate(zip(got, expected)):
        mg, me = head.match(g), head.match(e)
        if mg or me:
            # The same message about the same line; columns are the user's.
            assert mg and me and mg.group(1) == me.group(1) and mg.group(4) == me.group(4), (g, e)
            line, col1, col2 = map(int, mg.groups()[:3])
            assert got[i + 1] == user_lines[line - 1].replace("\t", "    ")
            lead = user_lines[line - 1][:col1 - 1].replace("\t", "    ")  # bpftrace shows a tab as 4 spaces
            assert got[i + 2] == " " * len(lead) + "~" * (col2 - col1)
            if got[i + 1] != expected[i + 1]:  # a rewritten line: the caret is under what the user wrote
                mapped += 1
                if "Undefined map" in mg.group(4):
                    word = re.search(r"@\w+", mg.group(4)).group(0)
                    assert user_lines[line - 1][col1 - 1:col2 - 1] == word, (g, user_lines[line - 1])
            continue
        if i >= 1 and head.match(got[i - 1]) or i >= 2 and head.match(got[i - 2]):
            continue  # a source or caret line, checked with its message
        assert g == e
    # A message about the goret block is mapped back to the user's line. (A
    # BEGIN or END line is mapped too: gobt's gate opens and closes there.)
    assert mapped or "goret block" not in case
