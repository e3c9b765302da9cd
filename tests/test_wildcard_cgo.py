"""goret:BIN:* over a whole cgo binary: Go's own cmd/go, as a Go
distribution builds it (cgo: net's C resolver, runtime/cgo).

A cgo binary's .symtab also holds C functions and C objects' local symbols
(net(.text) starts where the Go function _cgo_..._C2func_getaddrinfo does).
A Go wildcard matches Go functions only, the ones .gopclntab names, and a
function no probe can go in is skipped with one line, never failing the
rest. The check here is independent of gobt's analysis: each probe is
proven on the bytes (proof.py), and every .gopclntab function is decoded
with capstone directly, so that each of its RETs must be among the probes.
"""

import bisect
import re

import pytest

from conftest import BUILD_DIR, gobt, need
from toolchains import build_package

# The attach points gobt writes for a RET: by name (and offset), or by address.
_PROBE = re.compile(r'uprobe:[^:]+:(?:"((?:[^"\\]|\\.)*)"(?:\+(\d+))?|0x([0-9a-f]+)|([^\s,"{]+))')


# Once per run: --emit only, and the 0.17 pass runs 0.23 for cmd/go anyway
# (0.17 cannot reach its far text), so both passes would check the same.
@pytest.mark.bpftrace_independent
@pytest.mark.parametrize("chain", ["go1.15", "go1.19", "newest"])
def test_goret_star_places_every_ret_of_cmd_go(chain, toolchains, tmp_path, monkeypatch):
    need(chain in toolchains, f"Go toolchain {chain} is missing (run scripts/setup)")
    path = build_package(toolchains[chain], "cmd/go", BUILD_DIR, cgo=True)
    (tmp_path / "cmd-go").symlink_to(path)
    proc = gobt("--emit", "-e", "goret:./cmd-go:* { @c = count(); }", cwd=tmp_path, timeout=600)
    assert "Traceback (most recent" not in proc.stderr, proc.stderr  # (runtime.Traceback* are probes)
    assert proc.returncode == 0, proc.stderr
    skipped_lines = [line for line in proc.stderr.splitlines() if "get no probe" in line]
    assert len(skipped_lines) == 1, proc.stderr  # one line however many
    assert "gobt -l 'goret:./cmd-go:*'" in skipped_lines[0]
    m = re.search(r"warning: (\d+) of the (\d+) functions matching", skipped_lines[0])
    skipped, matched = int(m.group(1)), int(m.group(2))
    unreadable = re.search(r"(\d+) cannot be disassembled whole", skipped_lines[0])

    from gobt import cache
    from gobt.binary.gobinary import GoBinary
    from gobt.binary.pclntab import bounds, entries
    from gobt.binary.proof import _decode, prove, same_function
    from gobt.binary.symtab import Function

    monkeypatch.setattr(cache, "_disabled", True)  # prove() decodes the bytes itself, trusting no cache
    binary = GoBinary(path)
    table = binary.pclntab
    starts = entries(table.data, table.text_start)
    names = {}
    for start in starts:
        found = bounds(table.data, table.text_start, start, starts)
        names[start] = found

    probes = {}  # function start -> RET offsets with a probe
    for quoted, offset, address, unquoted in _PROBE.findall(proc.stdout):
        name = quoted or unquoted
        if address:
            address = int(address, 16)
            start = starts[bisect.bisect_right(starts, address) - 1]
        else:
            fn = binary.symbols.lookup(name)
            assert fn is not None, name
            start, address = fn.start, fn.start + int(offset or 0)
        probes.setdefault(start, set()).add(address - start)
    count = sum(len(v) for v in probes.values())
    assert count == len(_PROBE.findall(proc.stdout))  # no probe twice
    assert len(probes) + skipped == matched

    # Each .gopclntab function decoded by proof.py from its start (not by
    # gobt's disasm.analyze, which placed the probes): each RET needs its
    # probe, and each probe is proven on the bytes.
    symbols = {}
    for symbol in binary.symbols.all_functions():
        symbols.setdefault(symbol.start, []).append(symbol)
    missing = []
    for start, found in names.items():
        if found is None or found[2].startswith(("_cgo_", "x_cgo_", "go:")):
            continue  # cgo's glue: wildcards leave it out (name it to probe it)
        _start, end, name = found
        symbol = next((f for f in symbols.get(start, ()) if same_function(name, f.name)), None)
        if symbol is None:
            # C assembly without a .size (crosscall_amd64): .symtab gives
            # it no extent, so it is no function a wildcard lists.
            continue
        fn = Function(name, start, min(end, symbol.end) - start)
        code = binary.bytes_at(binary.file_offset(start), fn.size)
        _starts, rets = _decode(binary.arch, code, start)
        if rets != probes.get(start, set()):
            missing.append((name, sorted(rets), sorted(probes.get(start, ()))))
            continue
        for offset in rets:
            prove(binary, fn, offset, ret=True)  # raises Stale if the bytes say otherwise
        probes.pop(start, None)
    # Only the functions gobt said it could not disassemble whole may lack probes.
    assert len(missing) <= (int(unreadable.group(1)) if unreadable else 0), missing[:5]
    assert all(not found for _name, _rets, found in missing), missing  # none half-probed
    assert not probes  # every probe is at a function's RET

