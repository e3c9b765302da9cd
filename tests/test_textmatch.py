"""textmatch: the ways a printf's format can print a literal, and the BPF
condition for it. The end-to-end check is test_goerr.py's
test_compared_with_its_text; these pin the splitting itself."""

import pytest

from gobt.errors import GobtError
from gobt.rewrite.textmatch import condition, splits, tokens, unquote


def test_tokens_read_bpftrace_escapes():
    assert tokens('\\"%s\\": %lu%%') == [("text", '"'), ("verb", "s"), ("text", '": '), ("verb", "u"),
                                         ("text", "%")]


def test_a_path_error_splits_where_its_constants_are():
    fmt = "%s %s: %s"
    assert splits(fmt, "open /x: no such file") == [[("s", "open"), ("s", "/x"), ("s", "no such file")]]
    # Two ": " and two " ": every way Go's text could have been made.
    assert len(splits(fmt, "a b: c: d")) == 3
    assert splits(fmt, "no separators") == []
    assert splits("errno %lu", "errno 200") == [[("u", "200")]]
    assert splits("errno %lu", "errno 020") == []  # printf never prints that


def test_condition_compares_length_and_every_byte():
    text = "x" * 70  # longer than bpftrace keeps of a string: compared whole
    cond = condition("%s", ["str($p, $l)"], text, 63)
    assert "($l) == (uint64)70" in cond
    assert cond.count("uptr($p + ") == 9  # 8 words, the last overlapping
    assert "uptr($p + 62)" in cond
    assert condition("%s", ["str($p, $l + 1)"], "EOF", 63).count("uptr(") == 2  # 2 bytes, then 1
    assert condition("lookup %s", ["str($p, $l)"], "open x", 63) == "0"


def test_too_many_ways_is_refused_not_cut():
    with pytest.raises(GobtError):
        condition("%s %s %s %s", ["str($a, $b)"] * 4, " ".join("abcdefghijkl"), 63)


def test_unquote():
    assert unquote('"a \\"b\\" \\\\ \\n"') == 'a "b" \\ \n'
