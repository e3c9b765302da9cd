"""A script with no gobt constructs reaches bpftrace unchanged, byte for byte."""

import glob
import os
import re
import subprocess

import pytest

from conftest import gobt, no_traceback
from toolchains import HERE

DISTRO_TOOLS = sorted(glob.glob("/usr/sbin/*.bt"))
HARD_CASES = sorted(glob.glob(os.path.join(HERE, "scripts", "*.bt")))


def test_distro_tools_are_installed():
    # Debian's bpftrace package ships 38 tools; without them the round trip
    # below would test nothing.
    assert len(DISTRO_TOOLS) >= 38, DISTRO_TOOLS


@pytest.mark.parametrize("path", DISTRO_TOOLS + HARD_CASES, ids=os.path.basename)
def test_script_round_trips_byte_identical(path):
    with open(path, "rb") as f:
        original = f.read()
    proc = subprocess.run(
        ["python3", "-m", "gobt", "--emit", path], capture_output=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == original


@pytest.mark.parametrize("path", DISTRO_TOOLS + HARD_CASES, ids=os.path.basename)
def test_full_parse_finds_nothing_to_rewrite(path):
    # The cheap pre-check may let a script through to the parser; the
    # parser must then agree that there is nothing to do.
    from gobt.lang.script import parse
    from gobt.lang.source import Source

    with open(path) as f:
        script = parse(Source(f.read(), path))
    assert not script.needs_rewrite
    assert script.probes


def test_one_liner_round_trips():
    program = 'kprobe:do_nanosleep /comm == "x"/ { printf("%d\\n", pid); }'
    proc = gobt("--emit", "-e", program)
    assert proc.returncode == 0 and proc.stdout == program


def run_both(bpf, args, timeout=60):
    ours = gobt(*args, timeout=timeout)
    theirs = subprocess.run([bpf, *args], capture_output=True, text=True, timeout=timeout)
    no_traceback(ours)
    return ours, theirs


def test_plain_script_runs_as_under_bpftrace(bpf):
    script = os.path.join(HERE, "scripts", "go_words.bt")
    ours, theirs = run_both(bpf, [script])
    assert theirs.returncode == 0, theirs.stderr
    assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout)
    assert "1 2" in ours.stdout


def test_positional_params_and_options_pass_through(bpf):
    program = 'BEGIN { printf("%s-%d\\n", str($1), $2 + 1); exit(); }'
    ours, theirs = run_both(bpf, ["-q", "-e", program, "word", "41"])
    assert theirs.stdout.startswith("word-42\n")
    assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout)


def test_bpftrace_errors_are_bpftrace_own(bpf, tmp_path):
    bad = tmp_path / "bad.bt"
    bad.write_text("BEGIN { printf(\"x\\n\") \n  exit(); }\n")  # missing ';'
    ours, theirs = run_both(bpf, [str(bad)])
    assert theirs.returncode != 0
    assert (ours.returncode, ours.stderr) == (theirs.returncode, theirs.stderr)
    assert str(bad) in ours.stderr


def test_uprobe_on_go_binary_counts_like_bpftrace(bpf, go_build):
    binary = go_build("go1.19", "tests/programs/multiret")
    program = "uprobe:%s:main.classify { @calls = count(); }" % binary
    ours, theirs = run_both(bpf, ["-e", program, "-c", f"{binary} 500"])
    # A uprobe at a Go function's entry sits before its stack check: a call
    # that grows the stack runs the entry twice, under bpftrace alone too
    # (500 or 501 here, run to run). Past that, the two outputs are equal.
    same = re.compile(r"^@calls: 50[01]$", re.M)
    assert same.search(theirs.stdout) and same.search(ours.stdout), (ours.stdout, theirs.stdout)
    assert (ours.returncode, same.sub("", ours.stdout)) == (theirs.returncode, same.sub("", theirs.stdout))
    assert gobt("--emit", "-e", program).stdout == program  # bpftrace runs the very same program


@pytest.mark.parametrize("script", DISTRO_TOOLS[:3], ids=os.path.basename)
def test_plain_script_imports_no_heavy_library(script):
    # A script without gobt constructs must cost no more than Python and
    # click: no lark, pyelftools or capstone (python -X importtime). (A
    # script that merely mentions goret or goid, in a comment say, is parsed
    # to make sure: the cheap check errs on that side.)
    proc = subprocess.run(["python3", "-X", "importtime", "-m", "gobt", "--emit", script],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    imported = {line.split("|")[-1].strip().split(".")[0] for line in proc.stderr.splitlines() if "|" in line}
    assert "gobt" in imported
    assert not imported & {"lark", "elftools", "capstone"}, imported & {"lark", "elftools", "capstone"}


def test_double_dash_and_stdin_pass_through(bpf, go_build, tmp_path):
    script = tmp_path / "p.bt"
    script.write_text('BEGIN { printf("%s\\n", str($1)); exit(); }\n')
    ours, theirs = run_both(bpf, [str(script), "--", "-5"])
    assert theirs.stdout.startswith("Attaching 1 probe...\n-5\n")
    assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout)
    # The same through gobt's rewrite path, whose exec adds the `--` itself.
    binary = go_build("go1.19", "tests/programs/multiret")
    proc = gobt("-e", f'goret:{binary}:main.classify {{ printf("arg %s\\n", str($1)); exit(); }}',
                "-c", f"{binary} 3", "--", "-x")
    assert proc.returncode == 0, proc.stderr
    assert "arg -x" in proc.stdout
    # A script on stdin: gobt reads it and must hand bpftrace the same bytes.
    text = 'BEGIN { printf("from stdin\\n"); exit(); }'
    ours = gobt("-", input=text)
    assert ours.returncode == 0 and "from stdin" in ours.stdout, ours.stderr
