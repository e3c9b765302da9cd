"""Inlined copies: goentry: fires at each, goarg reads what DWARF
locates there, goret says why it cannot, -lv lists them.

tests/programs/inlinedsites has no body for bump, note or mark: the
compiler inlines every call (some in loops, bump also inside twice). The
program counts its own calls and prints the n note gets; those are the
oracles.
"""

import collections
import re

import capstone
import pytest
from elftools.elf.elffile import ELFFile

from conftest import gobt, no_traceback

GOS = ["go1.15", "go1.19", "go1.23", "newest"]  # 1.15: the stack ABI
PROGRAM = "tests/programs/inlinedsites"


def own_counts(stdout):
    m = re.search(r"^bumps (\d+) notes (\d+) marks (\d+) ", stdout, re.M)
    assert m, stdout
    return dict(zip(("bump", "note", "mark"), map(int, m.groups())))


def probe_counts(stdout):
    return {k: int(v) for k, v in re.findall(r"^@(\w+): (\d+)$", stdout, re.M)}


@pytest.mark.parametrize("go", GOS)
def test_goentry_counts_every_inlined_call(go, go_build, bpf):
    binary = go_build(go, PROGRAM)
    script = " ".join(f"goentry:{binary}:main.{f} {{ @{f} = count(); }}" for f in ("bump", "note", "mark"))
    # Two args: four rounds of the loop.
    proc = gobt("-e", script, "-c", f"{binary} a b")
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    assert probe_counts(proc.stdout) == own_counts(proc.stdout)


@pytest.mark.parametrize("go", GOS)
def test_goarg_at_inlined_copies_reads_the_values_passed(go, go_build, bpf):
    # note's copies keep n in RAX or RBX: one probe, a read chosen by address.
    binary = go_build(go, PROGRAM)
    proc = gobt("-e", f'goentry:{binary}:main.note {{ printf("got %ld\\n", goarg(n)); }}', "-c", f"{binary} a")
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    got = collections.Counter(re.findall(r"^got (-?\d+)$", proc.stdout, re.M))
    passed = collections.Counter(re.findall(r"^n (-?\d+)$", proc.stdout, re.M))
    assert got == passed and sum(passed.values()) == own_counts(proc.stdout)["note"], proc.stdout


@pytest.mark.parametrize("go", GOS)
def test_goarg_where_dwarf_has_no_location_is_an_error_naming_the_copy(go, go_build):
    binary = go_build(go, PROGRAM)
    script = f"goentry:{binary}:main.mark {{\n  printf(\"%d\\n\", goarg(n));\n}}"
    proc = gobt("--emit", "-e", script)
    no_traceback(proc)
    assert proc.returncode != 0
    assert re.search(r"-e:2:\d+: error: goarg\(n\) cannot be read at the copy of main\.mark inlined at "
                     r"main\.main\+0x[0-9a-f]+ \(main\.go:62\): DWARF gives it no location there", proc.stderr), proc.stderr


@pytest.mark.parametrize("go", GOS)
def test_goret_on_a_function_with_only_inlined_copies_says_so(go, go_build):
    binary = go_build(go, PROGRAM)
    proc = gobt("--emit", "-e", f"goret:{binary}:main.bump {{ @ = count(); }}")
    no_traceback(proc)
    assert proc.returncode != 0
    assert ("main.bump is inlined at 4 call sites and has no body of its own; "
            "goentry: fires at each, goret cannot") in proc.stderr, proc.stderr
    assert "no function matches" not in proc.stderr


def instruction_starts(path, caller):
    """Offsets of the instructions of `caller`, decoded from its start."""
    with open(path, "rb") as f:
        elf = ELFFile(f)
        sym = elf.get_section_by_name(".symtab").get_symbol_by_name(caller)[0]
        text = elf.get_section_by_name(".text")
        start = sym["st_value"] - text["sh_addr"] + text["sh_offset"]
        f.seek(start)
        code = f.read(sym["st_size"])
    cs = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    return {address for address, *_ in cs.disasm_lite(code, 0)}


@pytest.mark.parametrize("go", GOS[1:])
def test_listing_shows_each_inlined_copy_at_an_instruction(go, go_build):
    binary = go_build(go, PROGRAM)
    proc = gobt("-lv", f"goentry:{binary}:main.note")
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"main\.note  no body of its own: inlined at 3 call sites, goentry fires at each$",
                     proc.stdout, re.M), proc.stdout
    rows = re.findall(r"^    inlined in (\S+)\+0x([0-9a-f]+) \(main\.go:(\d+)\)  n (\S+), label (\S+)$",
                      proc.stdout, re.M)
    assert sorted((line, n) for _, _, line, n, _ in rows) == [("59", "RAX"), ("61", "RBX"), ("65", "RAX")], proc.stdout
    for caller, offset, *_ in rows:
        assert int(offset, 16) in instruction_starts(binary, caller), (caller, offset)


@pytest.mark.parametrize("go", ["go1.19", "newest"])
def test_goentry_counts_the_body_and_the_inlined_copy(go, go_build, bpf):
    # tests/programs/inlined calls add once inlined, once through a func value.
    binary = go_build(go, "tests/programs/inlined")
    proc = gobt("-e", f"goentry:{binary}:main.add {{ @add = count(); }}", "-c", binary)
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"^3 8$", proc.stdout, re.M)
    assert probe_counts(proc.stdout) == {"add": 2}
    assert "inlined at" not in proc.stderr  # no warning: goentry sees both calls
