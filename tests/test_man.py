"""man/gobt.1 renders cleanly and documents everything the code accepts."""

import glob
import os
import re
import shutil
import subprocess

import pytest

from conftest import need
from gobt import cmdline
from gobt.lang import script
from toolchains import ROOT

# Reads binaries or text only: the same on every bpftrace (scripts/test runs it once).
pytestmark = pytest.mark.bpftrace_independent

MAN = os.path.join(ROOT, "man", "gobt.1")


def rendered():
    proc = subprocess.run(["groff", "-man", "-Tutf8", "-ww", MAN], capture_output=True, text=True,
                          env={**os.environ, "LC_ALL": "C.UTF-8"})
    return proc


def test_renders_without_warnings():
    assert shutil.which("groff"), "groff is needed (scripts/setup installs groff-base)"
    proc = rendered()
    assert proc.returncode == 0
    assert proc.stderr == "", proc.stderr
    proc = subprocess.run(["man", "--warnings", "-l", MAN], capture_output=True, text=True,
                          env={**os.environ, "MANPAGER": "cat", "MANWIDTH": "80"})
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "ENVIRONMENT", "EXIT STATUS",
                    "EXAMPLES", "CAVEATS", "SEE ALSO"):
        assert re.search(rf"^{section}$", proc.stdout, re.M), section


def text():
    # Plain text, with roff's hyphen escapes and bold/italic gone.
    return re.sub(r".\x08", "", rendered().stdout).replace("\u2010", "-").replace("\u2212", "-")


def code_words():
    """Everything a user can type that gobt itself handles, taken from the code."""
    words = set(script.GOBT_PROVIDERS) | set(script.HELPER_WORDS)
    words |= cmdline.GOBT_FLAGS | cmdline.GOBT_VALUE_OPTIONS
    env = set()
    for path in glob.glob(os.path.join(ROOT, "gobt", "*.py")):
        source = open(path).read()
        env |= set(re.findall(r'os\.environ(?:\.get\(|\[)"([A-Z_]+)"', source))
        env |= set(re.findall(r'"(BPFTRACE_[A-Z_]+)" not in os\.environ', source))
    assert env, "found no environment variables in the code"
    return words | env


@pytest.mark.parametrize("word", sorted(code_words()))
def test_everything_the_code_accepts_is_documented(word):
    assert word in text(), f"{word} is accepted by gobt but not in man/gobt.1"


def test_installed_where_man_finds_it():
    need(os.path.exists("/usr/local/share/man/man1/gobt.1"), "scripts/setup has not installed the man page")
    proc = subprocess.run(["man", "-w", "gobt"], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("gobt.1"), proc.stderr
