"""gobt finds the program and its own options in bpftrace's command line."""

import pytest

from gobt.cmdline import parse_argv
from gobt.errors import GobtError

# Reads binaries or text only: the same on every bpftrace (scripts/test runs it once).
pytestmark = pytest.mark.bpftrace_independent


def test_script_then_options_then_args():
    inv = parse_argv(["script.gbt", "-p", "42", "a1", "--unsafe", "a2"])
    assert inv.script_path == "script.gbt"
    assert inv.positional == ["a1", "a2"]
    assert inv.pid == 42 and inv.unsafe
    assert inv.passthrough == ["-p", "42", "--unsafe"]


def test_glued_values_and_clusters():
    inv = parse_argv(["-qkk", "-p42", "-oout.txt", "--include=x.h", "-e", "BEGIN{}"])
    assert inv.pid == 42
    assert inv.program_text == "BEGIN{}"
    assert inv.passthrough == ["-qkk", "-p", "42", "-o", "out.txt", "--include", "x.h"]


def test_value_after_flag_cluster():
    inv = parse_argv(["-qe", "BEGIN{}", "x"])
    assert inv.program_text == "BEGIN{}" and inv.positional == ["x"]
    assert inv.passthrough == ["-q"]


def test_gobt_options_are_removed():
    inv = parse_argv(["--emit", "--bpftrace", "/opt/bt", "--no-cache", "s.gbt"])
    assert inv.emit and inv.no_cache and inv.bpftrace == "/opt/bt"
    assert inv.passthrough == [] and inv.script_path == "s.gbt"


def test_double_dash_ends_options():
    inv = parse_argv(["s.gbt", "--", "-p", "x"])
    assert inv.pid is None and inv.positional == ["-p", "x"]


def test_list_mode_takes_search():
    inv = parse_argv(["-l", "goret:./app:main.*"])
    assert inv.list_mode and inv.script_path is None
    assert inv.positional == ["goret:./app:main.*"]


def test_missing_value_is_left_to_bpftrace():
    # bpftrace's getopt says so, with its status (tests/test_cli_twin.py).
    assert parse_argv(["-p"]).bad
    assert parse_argv(["-p", "abc", "-e", "BEGIN {}"]).bad
    with pytest.raises(GobtError, match="needs a value"):
        parse_argv(["--bpftrace"])  # gobt's own option


def test_last_e_wins():
    assert parse_argv(["-e", "BEGIN { 1 }", "-e", "BEGIN { 2 }"]).program_text == "BEGIN { 2 }"


def test_newer_bpftrace_long_options():
    inv = parse_argv(["--pid", "42", "s.gbt", "--x=1"])
    assert inv.pid == 42 and inv.script_path == "s.gbt"
    assert inv.passthrough == ["--pid", "42"] and inv.positional == ["--x=1"]
    inv = parse_argv(["--list", "--verbose", "goret:./a:main.*"])
    assert inv.list_mode and inv.verbose and inv.positional == ["goret:./a:main.*"]


def test_debug_stage_is_taken_only_when_it_is_one():
    inv = parse_argv(["-d", "all", "-e", "BEGIN{}"])
    assert inv.passthrough == ["-d", "all"] and inv.program_text == "BEGIN{}"
    inv = parse_argv(["-d", "s.bt"])  # bpftrace 0.17: -d is a flag
    assert inv.passthrough == ["-d"] and inv.script_path == "s.bt"
