"""Generate "bigprog": a Go program with >= 20,000 functions and an >= 80 MB binary.

The program is the big-binary target of bench/run. Everything about it is
decided by this file, and the build is cached on a hash of this file's
content (see source_key), so editing the generator rebuilds it and nothing
else does.

Layout (module "bigprog"):

    pkgNN/fns_K.go     PACKAGES packages; each holds FNS functions FnIII
                       (//go:noinline, one return path each, a loop, a
                       switch and a call into the package's helpers), so
                       `bigprog/pkg07.Fn*` matches exactly FNS functions
                       (and Fn00* 10, Fn0* 100).
    pkgNN/multi.go     MULTI functions MrIII with several return paths.
    pkgNN/types.go     TYPES struct types with METHODS methods each.
    pkgNN/wide.go      WIDE functions with 8..12 params; pkg00 also holds
                       Wide20, with 20 params of mixed kinds (ints of every
                       width, strings, bools, pointers to a struct), so part
                       of them is in registers and part on the stack.
    main.go            reaches every function (through per-package tables
                       of func values, so the linker keeps them all) and
                       embeds assets.bin.
    assets.bin         ASSET_BYTES of generated CSV-like records, embedded
                       with //go:embed: the bulk that brings the binary to
                       80 MB (it lands in .rodata). The code alone gives a
                       few tens of MB of text, pclntab and DWARF.

Run directly to (re)generate into a directory:

    python3 bench/genbig.py OUTDIR
"""

import hashlib
import os
import random
import sys

PACKAGES = 40
FNS = 1000  # Fn000..Fn999 in each package
FILES_PER_PACKAGE = 10
MULTI = 40
TYPES = 10
METHODS = 4
WIDE = 8
ASSET_BYTES = 48 * 1024 * 1024

MODULE = "bigprog"
WILDCARD_PACKAGE = "pkg03"


def source_key():
    """Hash of this generator: the generated tree depends on nothing else."""
    with open(os.path.abspath(__file__), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:16]


def pkg_name(p):
    return f"pkg{p:02d}"


def _fn(rng, i):
    k = [rng.randrange(3, 1 << 20) for _ in range(10)]
    h = rng.randrange(4)
    cases = []
    for c in range(8):
        op = rng.choice(["+=", "-=", "^=", "|=", "*="])
        cases.append(f"\tcase {c}:\n\t\tx {op} {rng.randrange(3, 1 << 16)} + (x >> {c + 1})\n")
    c0 = rng.randrange(8)
    cases[c0] = f"\tcase {c0}:\n\t\tx += h{h}(x, {k[5]})\n"
    return (
        f"//go:noinline\n"
        f"func Fn{i:03d}(a, b int, s string) int {{\n"
        f"\tx := a*{k[0]} + (b ^ {k[1]})\n"
        f"\tfor j := 0; j < len(s); j++ {{\n"
        f"\t\tx = x*31 + int(s[j]) + {k[2]}\n"
        f"\t}}\n"
        f"\tswitch (x ^ {k[3]}) & 7 {{\n"
        + "".join(cases)
        + f"\t}}\n"
        f"\tif x > {k[4]} {{\n\t\tx -= b\n\t}} else {{\n\t\tx += a * {k[6]}\n\t}}\n"
        f"\tif s != \"\" && x&{k[7] & 0xff} == 0 {{\n\t\tx += h{(h + 1) % 4}(b, x)\n\t}}\n"
        f"\treturn x\n"
        f"}}\n\n"
    )


def _multi(rng, i):
    out = [f"//go:noinline\nfunc Mr{i:03d}(n int, s string) (int, error) {{\n"]
    for r in range(5):
        m = rng.choice([3, 5, 7, 11, 13, 17])
        out.append(
            f"\tif n%{m} == {r} {{\n\t\th{r % 4}(n, {rng.randrange(1, 1000)})\n"
            f"\t\treturn {rng.randrange(1, 1 << 30)}, nil\n\t}}\n"
        )
    out.append(f"\tif len(s) > {rng.randrange(2, 9)} {{\n\t\treturn 0, errBad\n\t}}\n")
    out.append(f"\treturn n * {rng.randrange(3, 99)}, nil\n}}\n\n")
    return "".join(out)


def _types(rng, p):
    out = [f"package {pkg_name(p)}\n\n"]
    for t in range(TYPES):
        out.append(f"type T{t} struct {{\n\tID   int\n\tName string\n\tVals []int\n\tNext *T{t}\n}}\n\n")
        for m in range(METHODS):
            recv = "*" if m % 2 == 0 else ""
            out.append(
                f"//go:noinline\nfunc (t {recv}T{t}) M{m}(k int) int {{\n"
                f"\ts := t.ID * {rng.randrange(3, 999)}\n"
                f"\tfor _, v := range t.Vals {{\n\t\ts += v ^ k\n\t}}\n"
                f"\tif t.Next != nil {{\n\t\ts += t.Next.ID\n\t}}\n"
                f"\treturn s + len(t.Name)\n}}\n\n"
            )
    out.append("// Methods keeps every method reachable.\nfunc Methods(k int) int {\n\ts := 0\n")
    for t in range(TYPES):
        out.append(f"\tt{t} := &T{t}{{ID: k, Name: \"t{t}\", Vals: []int{{k, {t}}}}}\n")
        for m in range(METHODS):
            out.append(f"\ts += t{t}.M{m}(k)\n")
    out.append("\treturn s\n}\n")
    return "".join(out)


def _wide(rng, p):
    out = [f"package {pkg_name(p)}\n\n"]
    kinds = ["int", "string", "bool", "int32", "uint8", "int64", "uint16", "uintptr", "*T0"]
    calls = []
    for w in range(WIDE):
        n = 8 + w % 5
        params = [(f"q{j}", kinds[(j + w) % len(kinds)]) for j in range(n)]
        body = []
        args = []
        for name, kind in params:
            if kind == "string":
                body.append(f"\tr += len({name})\n")
                args.append(f'"w{w}"')
            elif kind == "bool":
                body.append(f"\tif {name} {{\n\t\tr++\n\t}}\n")
                args.append("k > 0")
            elif kind == "*T0":
                body.append(f"\tif {name} != nil {{\n\t\tr += {name}.ID\n\t}}\n")
                args.append("&T0{ID: k}")
            else:
                body.append(f"\tr += int({name}) * {rng.randrange(2, 99)}\n")
                args.append(f"{kind}(k)")
        sig = ", ".join(f"{a} {t}" for a, t in params)
        out.append(f"//go:noinline\nfunc Wide{w}({sig}) int {{\n\tr := 0\n" + "".join(body) + "\treturn r\n}\n\n")
        calls.append(f"\ts += Wide{w}({', '.join(args)})\n")
    if p == 0:
        out.append(WIDE20)
        calls.append(
            '\tv, _ := Wide20(k, "p1", true, int32(k), 8, &Config{Name: "cfg", Level: k}, int64(k), "p7", 9, 10, 11, '
            'false, 12, "p13", -14, 15, 16, &Config{Name: "other", Level: 17}, 18, 19)\n\ts += v\n'
        )
    out.append("// Wides keeps every wide function reachable.\nfunc Wides(k int) int {\n\ts := 0\n" + "".join(calls) + "\treturn s\n}\n")
    return "".join(out)


WIDE20 = """// Config is what Wide20's pointer params point at.
type Config struct {
	Name  string
	Level int
	Tags  []string
}

// Wide20 has 20 params of mixed kinds: the first ones take registers, the
// rest go on the stack (the register ABI has 9 integer registers).
//
//go:noinline
func Wide20(p0 int, p1 string, p2 bool, p3 int32, p4 uint8, p5 *Config, p6 int64, p7 string,
	p8 uint16, p9 int, p10 uintptr, p11 bool, p12 int, p13 string, p14 int8, p15 uint32,
	p16 int, p17 *Config, p18 uint64, p19 int) (int, error) {
	r := p0 + len(p1) + int(p3) + int(p4) + int(p6) + len(p7) + int(p8) + p9 + int(p10)
	r += p12 + len(p13) + int(p14) + int(p15) + p16 + int(p18) + p19
	if p2 {
		r++
	}
	if p11 {
		r--
	}
	if p5 != nil {
		r += p5.Level + len(p5.Name)
	}
	if p17 != nil {
		r += p17.Level
	}
	if r < 0 {
		return 0, errBad
	}
	return r, nil
}

"""


def _package(root, p):
    rng = random.Random(f"bigprog-{p}")
    d = os.path.join(root, pkg_name(p))
    os.makedirs(d, exist_ok=True)
    per_file = FNS // FILES_PER_PACKAGE
    for f in range(FILES_PER_PACKAGE):
        parts = [f"package {pkg_name(p)}\n\n"]
        for i in range(f * per_file, (f + 1) * per_file):
            parts.append(_fn(rng, i))
        with open(os.path.join(d, f"fns_{f}.go"), "w") as fh:
            fh.write("".join(parts))
    helpers = [f'package {pkg_name(p)}\n\nimport "errors"\n\nvar errBad = errors.New("bad {p}")\n\nvar sink int\n\n']
    for h in range(4):
        helpers.append(
            f"//go:noinline\nfunc h{h}(a, b int) int {{\n\tsink += a ^ b\n\treturn sink*{rng.randrange(3, 99)} + {h}\n}}\n\n"
        )
    helpers.append("// Table holds every FnIII, so the linker keeps them all.\nvar Table = [...]func(int, int, string) int{\n")
    helpers.extend(f"\tFn{i:03d},\n" for i in range(FNS))
    helpers.append("}\n\n// Multis holds every MrIII.\nvar Multis = [...]func(int, string) (int, error){\n")
    helpers.extend(f"\tMr{i:03d},\n" for i in range(MULTI))
    helpers.append("}\n")
    with open(os.path.join(d, "tables.go"), "w") as fh:
        fh.write("".join(helpers))
    with open(os.path.join(d, "multi.go"), "w") as fh:
        fh.write(f"package {pkg_name(p)}\n\n" + "".join(_multi(rng, i) for i in range(MULTI)))
    with open(os.path.join(d, "types.go"), "w") as fh:
        fh.write(_types(rng, p))
    with open(os.path.join(d, "wide.go"), "w") as fh:
        fh.write(_wide(rng, p))


MAIN = """// bigprog is generated by bench/genbig.py: a big Go binary for gobt's benchmark.
// Usage: bigprog [N]: calls N functions of every package (default 1), prints a sum.
package main

import (
	_ "embed"
	"fmt"
	"os"
	"strconv"
{imports}
)

// assets is the bulk of the binary: generated records, embedded as a string
// (so it lands in .rodata, as embedded assets do in real programs).
//
//go:embed assets.bin
var assets string

func main() {{
	n := 1
	if len(os.Args) > 1 {{
		n, _ = strconv.Atoi(os.Args[1])
	}}
	s := len(assets) + int(assets[len(assets)/2])
{calls}
	fmt.Println("sum", s)
}}
"""


def _main(root):
    imports = "".join(f'\t"{MODULE}/{pkg_name(p)}"\n' for p in range(PACKAGES))
    calls = []
    for p in range(PACKAGES):
        q = pkg_name(p)
        calls.append(
            f"\tfor i := 0; i < n && i < len({q}.Table); i++ {{\n\t\ts += {q}.Table[i](i, s, \"x\")\n\t}}\n"
            f"\tfor i := 0; i < n && i < len({q}.Multis); i++ {{\n\t\tv, _ := {q}.Multis[i](i, \"abc\")\n\t\ts += v\n\t}}\n"
            f"\ts += {q}.Methods(n) + {q}.Wides(n)\n"
        )
    with open(os.path.join(root, "main.go"), "w") as fh:
        fh.write(MAIN.format(imports=imports.rstrip("\n"), calls="".join(calls).rstrip("\n")))
    with open(os.path.join(root, "go.mod"), "w") as fh:
        fh.write(f"module {MODULE}\n\ngo 1.21\n")


def _assets(root):
    """ASSET_BYTES of CSV-like records (varied, so not a trivial run of bytes)."""
    rng = random.Random("bigprog-assets")
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet"]
    with open(os.path.join(root, "assets.bin"), "w") as fh:
        written = 0
        row = 0
        while written < ASSET_BYTES:
            lines = []
            for _ in range(4096):
                lines.append(
                    f"{row},{rng.choice(words)}-{rng.randrange(1 << 30):x},{rng.random():.9f},"
                    f"{rng.choice(words)}/{rng.choice(words)},{rng.randrange(1 << 62)}\n"
                )
                row += 1
            chunk = "".join(lines)
            chunk = chunk[: ASSET_BYTES - written]
            fh.write(chunk)
            written += len(chunk)


def generate(root):
    """Write the whole program under root (idempotent; marks completion)."""
    marker = os.path.join(root, ".complete")
    if os.path.exists(marker):
        return root
    os.makedirs(root, exist_ok=True)
    for p in range(PACKAGES):
        _package(root, p)
    _main(root)
    _assets(root)
    with open(marker, "w") as fh:
        fh.write(source_key() + "\n")
    return root


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: genbig.py OUTDIR")
    print(generate(sys.argv[1]))
