"""gotrace:BIN:PATTERN over a program nobody here wrote: gofmt.

gofmt -l DIR calls main.processFile(filename, info, in, r) error once per
Go file; it prints the files that need formatting on stdout and each
error's text on stderr. gotrace's lines must hold the same file names and,
for each error, the text gofmt prints (or, for scanner.ErrorList, whose
Error() goerr does not spell, its type).
"""

import os
import re

from conftest import BUILD_DIR, ON_TRIXIE, gobt, need, no_traceback, write_program
from toolchains import build_package

LINE = re.compile(r'^(\d+)> main\.processFile\(filename="([^"]*)", info=(\S*), in=(\S*), r=0x([0-9a-f]+)\) '
                  r"=> \((.*)\) (\d+)\.(\d{3})us$", re.M)


def test_gotrace_gofmt(toolchains, bpf, tmp_path):
    need("newest" in toolchains, "no Go toolchain (run scripts/setup)")
    gofmt = build_package(toolchains["newest"], "cmd/gofmt", BUILD_DIR)
    d = tmp_path / "d"
    d.mkdir()
    (d / "good.go").write_text("package a\n\nfunc A() {}\n")
    (d / "bad.go").write_text("package a\nfunc   B( ) { }\n")
    (d / "broken.go").write_text("package a\nfunc (\n")
    os.symlink("/nonexistent/x.go", d / "dangling.go")
    long_name = "a_file_name_longer_than_the_string_size_of_bpftrace_0_17.go"
    (d / long_name).write_text("package a\n")
    # bpftrace 0.17 keeps each string of a printf on the 512-byte BPF stack:
    # four strings and an error's pieces fit at 32 bytes each (gobt says so).
    env = {} if ON_TRIXIE else {"BPFTRACE_STRLEN": "32"}
    proc = gobt("-e", f"gotrace:{gofmt}:main.processFile", "-c", f"{gofmt} -l d", cwd=tmp_path, env=env)
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    assert ("do not indent nested calls" in proc.stderr) == (not ON_TRIXIE), proc.stderr
    assert re.findall(r"^d/.*$", proc.stdout, re.M) == ["d/bad.go"]  # gofmt -l: the file to reformat
    rows = {m.group(2): m for m in LINE.finditer(proc.stdout)}
    # A string cut at bpftrace 0.17's string size ends in "…" (0.23 keeps up to 1 KiB of it).
    shown_long = "d/" + long_name if ON_TRIXIE else ("d/" + long_name)[:31] + "…"
    assert set(rows) == {"d/good.go", "d/bad.go", "d/broken.go", "d/dangling.go", shown_long}, proc.stdout
    for m in rows.values():
        # in is a nil io.Reader: <nil>, as %v prints it.
        assert m.group(3) == "*os.fileStat" and m.group(4) == "<nil>" and int(m.group(1)) > 0, m.group(0)
    assert rows["d/good.go"].group(6) == rows["d/bad.go"].group(6) == "<nil>"
    # The error gofmt itself prints for the dangling link, word for word.
    printed = [line for line in proc.stderr.splitlines() + proc.stdout.splitlines() if line.startswith("open ")]
    assert printed == ["open d/dangling.go: no such file or directory"], proc.stderr
    shown = rows["d/dangling.go"].group(6)
    if ON_TRIXIE:
        assert shown == printed[0]
    else:
        # 0.17: beside other strings, a *fs.PathError shows goerr's one-string form.
        assert shown == "no such file or directory" and printed[0].endswith(": " + shown)
    assert rows["d/broken.go"].group(6) == "scanner.ErrorList"
    assert "d/broken.go:2:8: expected ')', found 'EOF'" in proc.stderr + proc.stdout


def test_lv_shows_each_line(toolchains):
    need("newest" in toolchains, "no Go toolchain (run scripts/setup)")
    gofmt = build_package(toolchains["newest"], "cmd/gofmt", BUILD_DIR)
    proc = gobt("-lv", f"gotrace:{gofmt}:main.processFile")
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    assert ('each call prints: {goid}> main.processFile(filename="{goarg(filename)}", info={gotype(info)}, '
            "in={gotype(in)}, r=0x{goarg(r)}) => ({goerr(~r0)}) {goelapsed / 1000}.{goelapsed % 1000}us"
            in proc.stdout), proc.stdout


def test_nested_calls_are_indented(toolchains, bpf, tmp_path):
    """gofmt's main.processFile calls main.parse: traced together, parse's
    line (printed first, at its return) is indented under its caller's, for
    each file on its own goroutine; the caller's line is not indented."""
    need("newest" in toolchains, "no Go toolchain (run scripts/setup)")
    gofmt = build_package(toolchains["newest"], "cmd/gofmt", BUILD_DIR)
    d = tmp_path / "d"
    d.mkdir()
    for name in ("a", "b", "c"):
        (d / f"{name}.go").write_text(f"package a\nfunc   {name.upper()}( ) {{ }}\n")
    # On 0.17 the indent is a string on the 512-byte BPF stack too: at 32
    # bytes a string it does not fit beside processFile's (gobt says so).
    env = {} if ON_TRIXIE else {"BPFTRACE_STRLEN": "24"}
    # 0.17 prints through a buffer per CPU, read in turn, so lines written on
    # two CPUs may come out swapped (man gobt says so): the order is checked
    # there on one CPU. 0.23 prints through one ring, in order, on any CPU.
    command = f"{gofmt} -l d" if ON_TRIXIE else f"/usr/bin/taskset -c 0 {gofmt} -l d"
    proc = gobt("-e", f"gotrace:{gofmt}:main.p*", "-c", command, cwd=tmp_path, env=env)
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    lines = re.findall(r'^( *)(\d+)> (main\.\w+)\((?:fset=\S+ )?.*?filename="([^"]*)"', proc.stdout, re.M)
    parsed = {(g, f) for ind, g, fn, f in lines if fn == "main.parse"}
    processed = {(g, f) for ind, g, fn, f in lines if fn == "main.processFile"}
    assert processed == parsed and len(parsed) == 3, proc.stdout
    for indent, g, fn, f in lines:
        assert indent == ("  " if fn == "main.parse" else ""), (indent, fn, proc.stdout)
    order = [(fn, g) for _, g, fn, _ in lines]
    for fn, g in order:
        if fn == "main.processFile":
            assert order.index(("main.parse", g)) < order.index((fn, g)), proc.stdout


WIDE = """package main

import (
	"errors"
	"fmt"
)

//go:noinline
func many(a, b, c, d, e string) (string, error) { return a + b + c + d + e, errors.New("x " + a) }

//go:noinline
func leaf(n int) int { return n * 2 }

//go:noinline
func mid(n int, s string) (int, error) {
	r, err := many(s, s, s, s, s)
	return leaf(n) + len(r), err
}

func main() {
	for i := 0; i < 2; i++ {
		v, err := mid(i, "ab")
		fmt.Println(v, err)
	}
}
"""


def test_a_wildcard_keeps_the_lines_that_fit(go_build, bpf):
    """On 0.17 a function whose line does not fit the BPF stack (five
    strings and an error) gets none, and says so; the others keep theirs.
    0.23, whose strings are off the stack, gives every function its line."""
    src = write_program("gotracewide", {"main.go": WIDE, "go.mod": "module wide\n\ngo 1.20\n"})
    binary = go_build("newest", src, gcflags="-l")
    proc = gobt("--no-cache", "-e", f"gotrace:{binary}:main.*", "-c", binary)
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    traced = set(re.findall(r"^ *\d+> (main\.\w+)\(", proc.stdout, re.M))
    said = "main.many gets no line" in proc.stderr
    if ON_TRIXIE:
        assert traced == {"main.main", "main.mid", "main.leaf", "main.many"} and not said, proc.stdout
    else:
        assert traced == {"main.main", "main.mid", "main.leaf"} and said, (proc.stdout, proc.stderr)
    assert re.search(r'main\.mid\(n=1, s="ab"\) => \(12, x ab\)', proc.stdout), proc.stdout


def test_types_are_named_as_go_prints_them(toolchains):
    """A struct or slice shows by its type as %T spells it: the package's
    name, not DWARF's import path (gofmt's main.format takes a
    go/printer.Config)."""
    need("newest" in toolchains, "no Go toolchain (run scripts/setup)")
    gofmt = build_package(toolchains["newest"], "cmd/gofmt", BUILD_DIR)
    proc = gobt("-lv", f"gotrace:{gofmt}:main.format")
    no_traceback(proc)
    (line,) = [x for x in proc.stdout.splitlines() if "each call prints:" in x]
    assert "cfg=printer.Config)" in line and "go/printer" not in line, line
