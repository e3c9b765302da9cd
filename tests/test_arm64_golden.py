"""gobt --emit on arm64 builds, checked against the arm64 binaries' own DWARF.

arm64 binaries cannot run here, so gobt's arm64 output is checked without
running it: three programs are cross-built with the newest Go for
GOARCH=arm64 (the ABI matrix of tests/abigen.py, tests/programs/multiret,
and a program made here to push args onto the arm64 stack, where 16
integer registers leave the matrix almost no stack args), gobt --emit
turns a script of goarg reads into a bpftrace program, and every register
or stack slot that program reads at a function's entry is compared with
where the binary's DWARF location lists put that piece of that param at
the entry PC: the independent oracle of tests/test_dwarf_oracle.py.

No golden text is kept under tests/golden/: the emitted program names the
cached binary's path and, for return probes, addresses that change with
every toolchain release; what matters, which register or slot each read
uses, is checked against the DWARF instead, so a correct change of
spelling in gobt's output needs no golden update and a wrong register
fails whatever the spelling.

Return probes: bpftrace 0.17 without bfd (Debian 12's) attaches an offset
inside a function only as uprobe:BIN:0xFILEOFFSET, and only where no
symbol covers that number. arm64 Go binaries load their text at 0x10000
with file offset 0, so each such number is inside some other function and
gobt refuses, with one line saying so. With a bpftrace that can attach
"sym"+OFF (bfd, or >= 0.22), every goret probe must sit on a RET.
"""

import os
import re

import capstone
import pytest
from elftools.dwarf.dwarf_expr import DWARFExprParser

import abigen
import test_dwarf_oracle as oracle
from conftest import ROOT, gobt, need, no_traceback, write_program
from toolchains import TRIXIE_BPFTRACE
from gobt.binary.gobinary import GoBinary

# -- a program whose args spill to the arm64 stack ---------------------------

_INTS15 = [(f"p{i}", "int", str(i + 1)) for i in range(15)]
_INTS14 = _INTS15[:14]

# name -> (receiver or None, params [(name, type, value)], reads [(goarg path, Go expr, fmt)])
STACK_FNS = {
    "Ints17": (None, [(f"p{i}", "int", str(100 + i)) for i in range(17)],
               [("p0", "p0", "d"), ("p15", "p15", "d"), ("p16", "p16", "d")]),
    "StrAfter15": (None, _INTS15 + [("s", "string", '"on-the-stack"')],
                   [("s", "s", "s"), ("s.len", "len(s)", "d"), ("p14", "p14", "d")]),
    "StrThenInt": (None, _INTS15 + [("s", "string", '"stack-str"'), ("k", "int", "-15")],
                   [("s", "s", "s"), ("k", "k", "d")]),
    "TwoStrings": (None, _INTS15 + [("s", "string", '"first"'), ("t", "string", '"second"'), ("k", "int8", "-8")],
                   [("s", "s", "s"), ("t", "t", "s"), ("t.len", "len(t)", "d"), ("k", "k", "d")]),
    "Arr3": (None, [("a", "[3]int32", "[3]int32{-1, -2, -3}"), ("x", "int", "33")],
             [("a[0]", "a[0]", "d"), ("a[2]", "a[2]", "d"), ("x", "x", "d")]),
    "PairAfter14": (None, _INTS14 + [("q", "Pair", 'Pair{A: -77, B: "pair-b"}')],
                    [("q.A", "q.A", "d"), ("q.B", "q.B", "s"), ("p13", "p13", "d")]),
    "Big2.Sum": (("b", "Big2", 'Big2{X: [2]int64{5, 6}, Y: -7}'), [("k", "int", "9")],
                 [("b.X[1]", "b.X[1]", "d"), ("b.Y", "b.Y", "d"), ("k", "k", "d")]),
}


def stack_program_source():
    lines = ["package main", "", 'import "fmt"', "",
             "type Pair struct {\n\tA int64\n\tB string\n}", "",
             "type Big2 struct {\n\tX [2]int64\n\tY int32\n}", ""]
    calls = []
    for name, (recv, params, reads) in STACK_FNS.items():
        fn = name.split(".")[-1]
        recv_decl = f"({recv[0]} {recv[1]}) " if recv else ""
        verbs = " ".join(f"{path}=%{'s' if f == 's' else 'd'}" for path, _, f in reads)
        args = ", ".join(go for _, go, _ in reads)
        lines += ["//go:noinline",
                  f"func {recv_decl}{fn}({', '.join(f'{n} {t}' for n, t, _ in params)}) {{",
                  f'\tfmt.Printf("P E {name} {verbs}\\n", {args})',
                  "}", ""]
        callee = f"{recv[2]}.{fn}" if recv else fn
        calls.append(f"\t{callee}({', '.join(v for _, _, v in params)})")
    lines += ["func main() {"] + calls + ["}"]
    return "\n".join(lines) + "\n"


def stack_program_script(binary):
    out = []
    for name, (_recv, _params, reads) in STACK_FNS.items():
        verbs = " ".join(f"{path}=%{'s' if f == 's' else 'ld'}" for path, _, f in reads)
        args = "".join(f", goarg({path})" for path, _, _ in reads)
        out.append(f'uprobe:{binary}:main.{name} {{ printf("B E {name} {verbs}\\n"{args}); }}')
    return "\n".join(out) + "\n"


def multiret_script(binary):
    return (f'uprobe:{binary}:main.classify {{ printf("B E classify n=%ld\\n", goarg(n)); }}\n'
            f'uprobe:{binary}:main.work {{ printf("B E work n=%ld\\n", goarg(n)); }}\n')


def multiret_goret_script(binary):
    return (f'goret:{binary}:main.classify {{ printf("B R classify ~r0=%ld\\n", retval); }}\n'
            f'goret:{binary}:main.work {{ printf("B R work ~r0=%ld n=%ld\\n", retval, goarg(n)); }}\n')


def _entry_only(script):
    return "".join(line + "\n" for line in script.splitlines() if line.startswith("uprobe:"))


@pytest.fixture(scope="module")
def arm64_programs(go_build, matrix_src):
    """name -> (arm64 binary, gobt script of entry reads)."""
    stack_src = write_program("arm64stack", {"main.go": stack_program_source(),
                                             "go.mod": "module arm64stack\n\ngo 1.21\n"})
    multiret_src = os.path.join(ROOT, "tests", "programs", "multiret")
    out = {}
    for name, src, script in (("abimatrix", matrix_src, lambda b: _entry_only(abigen.gobt_script(b))),
                              ("multiret", multiret_src, multiret_script),
                              ("arm64stack", stack_src, stack_program_script)):
        binary = go_build("newest", src, goarch="arm64", tag="-arm64")
        out[name] = (binary, script(binary))
    return out


# -- reading what gobt emitted ------------------------------------------------


def _split_args(text):
    """Top-level comma-separated parts of text (no commas inside () or strings)."""
    parts, depth, cur, quoted = [], 0, "", False
    i = 0
    while i < len(text):
        c = text[i]
        if quoted:
            cur += c
            if c == "\\":
                cur += text[i + 1]
                i += 1
            elif c == '"':
                quoted = False
        elif c == '"':
            quoted, cur = True, cur + c
        elif c in "([":
            depth, cur = depth + 1, cur + c
        elif c in ")]":
            depth, cur = depth - 1, cur + c
        elif c == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += c
        i += 1
    if cur.strip():
        parts.append(cur.strip())
    return parts


def _probes(program):
    """[(attach points, body)] of a bpftrace program, bodies matched by brace depth."""
    out = []
    pos = 0
    # (a predicate, e.g. gobt's gate, is not an attach point)
    head = re.compile(r"((?:uprobe|uretprobe):[^{]*?)(?:\s+/[^/{}]*/)?\s*\{")
    while True:
        m = head.search(program, pos)
        if not m:
            return out
        depth, i, quoted = 1, m.end(), False
        while depth:
            c = program[i]
            if quoted:
                if c == "\\":
                    i += 1
                elif c == '"':
                    quoted = False
            elif c == '"':
                quoted = True
            elif c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
            i += 1
        points = [p.strip() for p in _split_args(m.group(1))]
        out.append((points, program[m.end():i - 1]))
        pos = i


def _printf_reads(body):
    """[(goarg path, bpftrace expression)] of a body's printf("B E NAME path=%x ...", exprs)."""
    m = re.search(r'printf\((.*)\);?\s*$', body.strip(), re.S)
    assert m, body
    args = _split_args(m.group(1))
    fmt = args[0]
    paths = re.findall(r"(\S+)=%\w+", fmt)
    assert len(paths) == len(args) - 1, (fmt, args)
    return list(zip(paths, args[1:]))


def _roots(expr):
    """The entry state an expression reads: ("reg", "rN") and ("sp", offset) of stack loads."""
    roots = set()
    for m in re.finditer(r'reg\("(\w+)"\)((?:\s*\+\s*\d+)*)', expr):
        if m.group(1) == "sp":
            roots.add(("sp", sum(int(x) for x in re.findall(r"\d+", m.group(2)))))
        else:
            roots.add(("reg", m.group(1)))
    return roots


def _path_steps(path):
    m = re.match(r"\.?[~\w]+", path)
    steps = [("field", f) if f else ("index", int(i)) for f, i in re.findall(r"\.(\w+)|\[(\d+)\]", path[m.end():])]
    return m.group(0), steps


def _direct_offsets(t, steps, fmt):
    """Byte offsets within the param that a read takes from the entry state itself.

    The walk stops at the first pointer, slice element or string byte: what
    lies beyond is memory, reached through the word at that offset.
    """
    off = 0
    for kind, value in steps:
        if t.kind in ("pointer", "unsafe.Pointer"):
            return {off}
        if kind == "field":
            f = t.field(value)
            assert f is not None, (t, value)
            off, t = off + f.offset, f.type
        elif t.kind == "array":
            off, t = off + value * t.elem.size, t.elem
        else:  # slice or string element: through the data pointer
            return {off}
    if t.kind == "string" and fmt == "s":
        return {off, off + 8}
    return {off}


def _place_at(pieces, offset):
    """Where the DWARF piece list puts byte `offset` of the value (registers: a piece starting there)."""
    for off, size, place in pieces:
        if off is None:
            return None
        if place[0] == "reg" and off == offset:
            return place
        if place[0] == "sp" and off <= offset < off + size:
            return ("sp", place[1] + offset - off)
    return None


class Arm64Dwarf:
    """The entry locations of the params of an arm64 binary's functions, from its DWARF alone."""

    def __init__(self, path):
        self.binary = GoBinary(path)
        assert self.binary.arch == "arm64"
        self.reader = self.binary.dwarf
        # All of DWARF, location lists included: not gobt's own reader.
        info = self.binary.elf.get_dwarf_info(relocate_dwarf_sections=False)
        self.loclists = info.location_lists()
        self.subprograms = {}  # low_pc -> (die, cu_low, parser)
        for cu in info.iter_CUs():
            top = cu.get_top_DIE()
            cu_low = top.attributes["DW_AT_low_pc"].value if "DW_AT_low_pc" in top.attributes else 0
            if not any(d.tag == "DW_TAG_subprogram" and oracle._attr_str(d, "DW_AT_name").startswith("main.")
                       for d in top.iter_children()):
                continue  # only package main's CU is needed
            parser = DWARFExprParser(cu.structs)
            for die in top.iter_children():
                if die.tag == "DW_TAG_subprogram" and "DW_AT_low_pc" in die.attributes:
                    self.subprograms[die.attributes["DW_AT_low_pc"].value] = (die, cu_low, parser)

    def entry_pieces(self, symbol, param_name):
        """(GoType, pieces at the entry PC) of a param of the function `symbol`, or None."""
        fn = self.binary.symbols.lookup(symbol)
        assert fn is not None, symbol
        die, cu_low, parser = self.subprograms[fn.start]
        params, _ = oracle._dwarf_params(self.reader, die)
        for p in params:
            if p.name == param_name and not p.is_result:
                found = oracle._entry_expr(self.loclists, p.die, fn.start, cu_low) if p.die else None
                if found is None:
                    return p.type, None
                pieces, reading = oracle._pieces(parser, found[1], p.type, "arm64")
                return p.type, (pieces if reading != "damaged" else None)
        raise AssertionError(f"{symbol} has no param {param_name} in its DWARF")


FMT_OF = {"%s": "s"}


def _emit(script_text, tmp_path, name, env=None):
    script = tmp_path / f"{name}.gbt"
    script.write_text(script_text)
    proc = gobt("--emit", str(script), env=env)
    no_traceback(proc)
    return proc


@pytest.mark.parametrize("name", ["abimatrix", "multiret", "arm64stack"])
def test_arm64_entry_reads_agree_with_dwarf(name, arm64_programs, tmp_path):
    binary, script = arm64_programs[name]
    proc = _emit(script, tmp_path, name)
    assert proc.returncode == 0, proc.stderr
    dwarf = Arm64Dwarf(binary)
    checked, unchecked, wrong = 0, [], []
    probes = _probes(proc.stdout)
    assert len(probes) == script.count("uprobe:"), proc.stdout
    for points, body in probes:
        assert len(points) == 1, points
        m = re.fullmatch(r'uprobe:(.*?):("?)(.+)\2', points[0])
        assert m and m.group(1) == binary, points[0]
        symbol = m.group(3)
        fmt = re.search(r'printf\("((?:[^"\\]|\\.)*)"', body).group(1)
        for path, expr in _printf_reads(body):
            verb = re.search(re.escape(path) + r"=(%\w+)", fmt).group(1)
            head, steps = _path_steps(path)
            t, pieces = dwarf.entry_pieces(symbol, head)
            if pieces is None:
                unchecked.append(f"{symbol} {path}: no location at entry")
                continue
            want = {_place_at(pieces, off) for off in _direct_offsets(t, steps, FMT_OF.get(verb, "d"))}
            if None in want:
                unchecked.append(f"{symbol} {path}: DWARF leaves a piece empty")
                continue
            got = _roots(expr)
            checked += 1
            if got != want:
                wrong.append(f"{symbol} {path}: gobt reads {sorted(got)} in `{expr}`, DWARF says {sorted(want)}")
    print(f"\narm64 {name}: {checked} reads checked against DWARF, {len(unchecked)} unchecked")
    assert not wrong, "\n".join(wrong)
    assert checked >= 0.9 * (checked + len(unchecked)), unchecked
    if name == "arm64stack":
        # The point of this program: reads from the stack, at arm64's SP+8 and on.
        stack_reads = sum(bool(re.search(r'reg\("sp"\)', body)) for _, body in probes)
        assert stack_reads >= 6, proc.stdout


def test_arm64_stack_program_puts_args_on_the_stack(arm64_programs):
    """The checks above must include stack args on arm64, not only registers (DWARF says where)."""
    binary, _ = arm64_programs["arm64stack"]
    dwarf = Arm64Dwarf(binary)
    on_stack = []
    for name, (recv, params, _) in STACK_FNS.items():
        for pname, _t, _v in ([recv] if recv else []) + params:
            _, pieces = dwarf.entry_pieces(f"main.{name}", pname)
            if pieces and all(place[0] == "sp" for _, _, place in pieces):
                on_stack.append(f"{name}.{pname}")
    assert len(on_stack) >= 7, on_stack


# -- return probes ----------------------------------------------------------------


def _ret_check(binary_path, program, numbers_are_addresses=False):
    """Every goret attach point in an emitted program is a RET instruction of that binary.

    A bare number is a file offset for a bpftrace without bfd (< 0.22), and
    an address for one that maps it back to a symbol.
    """
    binary = GoBinary(binary_path)
    if binary.arch == "arm64":
        # capstone 6 renamed ARM64 to AARCH64 (and renumbered the others)
        md = capstone.Cs(getattr(capstone, "CS_ARCH_AARCH64", getattr(capstone, "CS_ARCH_ARM64", None)),
                         capstone.CS_MODE_ARM)
    else:
        md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    seen = 0
    for points, _body in _probes(program):
        for point in points:
            m = re.fullmatch(r'uprobe:(.*?):(?:0x([0-9a-f]+)|"?(.+?)"?\+(0x[0-9a-f]+|\d+))', point)
            if not m:
                continue  # an entry probe, by symbol
            if m.group(2):
                number = int(m.group(2), 16)
                off = binary.file_offset(number) if numbers_are_addresses else number
            else:
                fn = binary.symbols.lookup(m.group(3))
                off = binary.file_offset(fn.start + int(m.group(4), 0))
            with open(binary_path, "rb") as f:
                f.seek(off)
                code = f.read(16)
            insn = next(md.disasm(code, 0), None)
            assert insn is not None and insn.mnemonic == "ret", (point, insn and insn.mnemonic)
            seen += 1
    return seen


def test_goret_points_are_rets_amd64(go_build, tmp_path):
    """The RET check itself, on an amd64 build, where this bpftrace attaches at offsets."""
    binary = go_build("newest", os.path.join(ROOT, "tests", "programs", "multiret"))
    proc = _emit(multiret_goret_script(binary), tmp_path, "multiret-amd64")
    assert proc.returncode == 0, proc.stderr
    assert _ret_check(binary, proc.stdout) >= 7  # classify has six returns, work one


def test_arm64_goret(arm64_programs, tmp_path):
    from gobt.run.bpftrace import find_bpftrace, probe_bpftrace

    try:
        bpftrace = probe_bpftrace(find_bpftrace())
    except Exception as e:  # noqa: BLE001
        need(False, f"no usable bpftrace: {e}")
    binary, _ = arm64_programs["multiret"]
    # Without gobt's own capable bpftrace: on 0.17 gobt would run that one.
    proc = _emit(multiret_goret_script(binary), tmp_path, "multiret-arm64", env={"GOBT_CAPABLE_BPFTRACE": ""})
    if bpftrace.attach_form == "sym_offset":
        assert proc.returncode == 0, proc.stderr
        assert _ret_check(binary, proc.stdout, numbers_are_addresses=True) >= 7
        matrix, _ = arm64_programs["abimatrix"]
        proc = _emit(abigen.gobt_script(matrix), tmp_path, "matrix-arm64")
        assert proc.returncode == 0, proc.stderr
        assert _ret_check(matrix, proc.stdout, numbers_are_addresses=True) >= len(
            [f for f in abigen.functions() if f.ret])
    else:
        # bpftrace < 0.22 without bfd: no way to attach inside an arm64 Go
        # function; gobt must say so in one clear error, not emit a program.
        assert proc.returncode != 0 and proc.stdout == "", proc.stdout
        assert "cannot attach inside main." in proc.stderr, proc.stderr
        assert "bfd" in proc.stderr and "0.22" in proc.stderr, proc.stderr
        # With it, gobt emits that bpftrace's "sym"+offset form, each a RET.
        if os.access(TRIXIE_BPFTRACE, os.X_OK):
            proc = _emit(multiret_goret_script(binary), tmp_path, "multiret-arm64-capable")
            assert proc.returncode == 0 and "using bpftrace 0.23" in proc.stderr, proc.stderr
            assert _ret_check(binary, proc.stdout, numbers_are_addresses=True) >= 7
