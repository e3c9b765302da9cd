"""Function patterns: Go's own stars are not wildcards; exact names win."""

import pytest

from gobt.binary.gobinary import GoBinary
from gobt.binary.symbols import is_wildcard, pattern_regex

# Reads binaries or text only: the same on every bpftrace (scripts/test runs it once).
pytestmark = pytest.mark.bpftrace_independent


def test_go_type_stars_are_literal():
    assert not is_wildcard("main.(*T).M")
    assert not is_wildcard("pkg.Map[string,*pkg.V].Get")
    assert is_wildcard("main.*") and is_wildcard("main.(*T).*") and is_wildcard("*.Handle")
    assert pattern_regex("main.(*T).*") == r"main\.\(\*T\)\..*"


def test_patterns_on_a_real_binary(go_build, matrix_src):
    symbols = GoBinary(go_build("go1.19", matrix_src)).symbols
    assert [f.name for f in symbols.match("main.(*T).PtrMethod")] == ["main.(*T).PtrMethod"]
    assert {f.name for f in symbols.match("main.(*T).*")} == {"main.(*T).PtrMethod", "main.(*T).ValMethod"} & {
        f.name for f in symbols.all_functions()}
    assert {f.name for f in symbols.match("main.*Method")} >= {"main.(*T).PtrMethod", "main.T.ValMethod"}
    assert symbols.match("main.(*T).Nope") == []


def test_stripped_patterns_agree(go_build, matrix_src):
    full = GoBinary(go_build("go1.19", matrix_src)).symbols
    stripped = GoBinary(go_build("go1.19", matrix_src, ldflags="-s -w", tag="-stripped")).symbols
    for pattern in ("main.(*T).*", "main.Int0*", "main.*Results"):
        assert {f.name for f in full.match(pattern)} == {f.name for f in stripped.match(pattern)}, pattern
