"""gobt's command line is bpftrace's: each case bpftrace answers itself
(help, version, bad options, missing files, -e twice, ...) gives the same
stdout, stderr and exit status under gobt as under bpftrace."""

import os
import shutil
import subprocess

import pytest

from conftest import gobt, no_traceback

PROGRAM = 'BEGIN { printf("%s\\n", "one"); exit(); }'
LAST = 'BEGIN { printf("%s\\n", "two"); exit(); }'


def bpftrace(bpf, args, cwd):
    # Started as a shell starts it: getopt's messages begin with argv[0].
    name = os.path.basename(bpf)
    argv0 = name if shutil.which(name) == bpf else bpf
    return subprocess.run([argv0, *args], executable=bpf, capture_output=True, text=True, timeout=60, cwd=cwd)


CASES = {
    "no arguments": [],
    "-e without a program": ["-e"],
    "-p without a pid": ["-e", PROGRAM, "-p"],
    "-p not a number": ["-p", "abc", "-e", PROGRAM],
    "unknown long option": ["--frobnicate", "-e", PROGRAM],
    "unknown short option": ["-Z", "-e", PROGRAM],
    "missing script": ["no-such-script.bt"],
    "missing script, --emit": ["--emit", "no-such-script.bt"],
    "script is a directory": ["adir"],
    "unreadable script": ["unreadable.bt"],
    "-e twice: the last runs": ["-e", PROGRAM, "-e", LAST],
    "-e and a param": ["-e", PROGRAM, "param"],
}
GOBT_ONLY = {"--emit"}


@pytest.fixture
def workdir(tmp_path):
    (tmp_path / "adir").mkdir()
    unreadable = tmp_path / "unreadable.bt"
    unreadable.write_text(PROGRAM)
    unreadable.chmod(0)
    return tmp_path


@pytest.mark.parametrize("case", CASES)
def test_same_answer_as_bpftrace(case, bpf, workdir):
    args = CASES[case]
    if case == "unreadable script" and os.geteuid() == 0:
        # root reads anything; an unreadable file needs another user
        ours = gobt_as_nobody(args, workdir)
        theirs = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", bpf, *args],
                                capture_output=True, text=True, cwd=workdir, timeout=60)
    else:
        ours = gobt(*args, cwd=workdir)
        theirs = bpftrace(bpf, [a for a in args if a not in GOBT_ONLY], workdir)
    no_traceback(ours)
    assert (ours.stdout, ours.stderr, ours.returncode) == (theirs.stdout, theirs.stderr, theirs.returncode)


def gobt_as_nobody(args, cwd):
    import sys

    env = {**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(os.path.abspath(__file__)))}
    return subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                           sys.executable, "-m", "gobt", "--no-cache", *args],
                          capture_output=True, text=True, cwd=cwd, timeout=60, env=env)


@pytest.mark.parametrize("args", [["--version"], ["-V"], ["-h"], ["--help"], ["-V", "-e", PROGRAM]])
def test_help_and_version_are_bpftraces_first(args, bpf, tmp_path):
    ours = gobt(*args)
    theirs = bpftrace(bpf, args, tmp_path)
    no_traceback(ours)
    # stdout is bpftrace's alone (0.17 prints -h on stderr, 0.23 on stdout);
    # gobt's own lines come after bpftrace's on stderr.
    assert ours.returncode == theirs.returncode
    assert ours.stdout == theirs.stdout
    assert ours.stderr.startswith(theirs.stderr)
    extra = ours.stderr[len(theirs.stderr):]
    assert extra.startswith("gobt")
    if "-h" in args or "--help" in args:
        assert "goret:BIN:FUNC" in extra
