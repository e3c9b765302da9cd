"""Generate the ABI matrix: a Go program, and the gobt script that mirrors it.

Every generated function prints what it received ("E name k=v ...") and its
caller prints what it returned ("R name k=v ..."). The gobt script prints
the same lines from goarg()/retval in uprobes at entry and goret probes. If
gobt reads every value right, the two sets of lines are equal.

A function is described by its params, results and the values read:
  Read(path, go_expr, fmt)   path is goarg's path; go_expr the Go expression
                             (in the callee for params, over r0, r1... in
                             the caller for results); fmt one of FORMATS.
"""

from dataclasses import dataclass, field

# fmt -> (Go verb, bpftrace verb, Go wrapper)
FORMATS = {
    "d": ("%d", "%ld", "{}"),
    "u": ("%d", "%lu", "{}"),
    "s": ("%s", "%s", "{}"),
    "x": ("%x", "%lx", "{}"),
    "b": ("%d", "%d", "b2i({})"),
    "nz": ("%d", "%d", "b2i({} != nil)"),
}


@dataclass
class Read:
    path: str
    go: str
    fmt: str


@dataclass
class Fn:
    name: str
    params: list  # [(name, go type, argument expression in main)]
    results: list  # [(name or "", go type, value expression in the callee)]
    entry: list = field(default_factory=list)  # Reads at entry
    ret: list = field(default_factory=list)  # Reads at return
    receiver: tuple | None = None  # (name, type, expression in main)
    use_retval: bool = False  # read the first result as `retval`


TYPES = """
type Inner struct {
	V    uint16
	Name string
}

type Node struct {
	A  int
	In *Inner
	S  string
}

type Flat struct {
	X int32
	Y string
	Z bool
}

type Big struct {
	F0, F1, F2, F3, F4, F5, F6, F7, F8, F9 int
}

type Holder struct {
	One  [1]int32
	Pair struct {
		L int8
		R uint64
	}
}

type T struct {
	A int
	B string
}

type myErr struct{}

func (myErr) Error() string { return "boom" }

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
"""

MAIN_PRELUDE = """
	inner := &Inner{V: 65000, Name: "inner-name"}
	node := &Node{A: -77, In: inner, S: "node-s"}
	tp := &T{A: 4242, B: "tee"}
	m := map[string]int{"k": 1}
	ch := make(chan int, 3)
	xs := []int{10, 20, 30, 40}
	var nilErr error
"""


def _int_fns():
    out = []
    cases = [
        ("int8", "-5", "int8(-6)", "d"), ("int16", "-300", "int16(-301)", "d"),
        ("int32", "-70000", "int32(-70001)", "d"), ("int64", "-5000000000000", "int64(-5000000000001)", "d"),
        ("int", "-123456789", "-123456790", "d"), ("uint8", "255", "uint8(254)", "u"),
        ("uint16", "65535", "uint16(65534)", "u"), ("uint32", "4294967295", "uint32(4294967294)", "u"),
        ("uint64", "18446744073709551615", "uint64(18446744073709551614)", "u"),
        ("uint", "3000000000", "uint(3000000001)", "u"), ("uintptr", "0xdeadbeef", "uintptr(0xfeedface)", "x"),
    ]
    for i, (t, arg, res, f) in enumerate(cases):
        out.append(Fn(f"Int{i:02d}_{t}", [("x", t, f"{t}({arg})")], [("", t, res)],
                      entry=[Read("x", "x", f)], ret=[Read("~r0", "r0", f)]))
    out.append(Fn("Bool", [("a", "bool", "true"), ("b", "bool", "false")], [("", "bool", "a && !b")],
                  entry=[Read("a", "a", "b"), Read("b", "b", "b")], ret=[Read("~r0", "r0", "b")], use_retval=True))
    # A narrow value in a register whose upper bits hold something else.
    out.append(Fn("NarrowAfterWide", [("w", "uint64", "uint64(0xffffffffffffffff)"), ("n", "int8", "int8(-2)")],
                  [("", "uint8", "uint8(w>>8)"), ("", "int16", "int16(n)*100")],
                  entry=[Read("w", "w", "u"), Read("n", "n", "d")], ret=[Read("~r0", "r0", "u"), Read("~r1", "r1", "d")]))
    return out


def _other_fns():
    fns = []
    add = fns.append
    add(Fn("Str", [("s", "string", '"hello"')], [("", "string", 's + "!"')],
           entry=[Read("s", "s", "s"), Read("s.len", "len(s)", "d")], ret=[Read("~r0", "r0", "s")], use_retval=True))
    add(Fn("Mixed", [("a", "int8", "-1"), ("s", "string", '"mix"'), ("b", "bool", "true"), ("c", "uint16", "7")],
           [("", "int32", "int32(a) * 10"), ("", "string", 's + "ed"')],
           entry=[Read("a", "a", "d"), Read("s", "s", "s"), Read("b", "b", "b"), Read("c", "c", "u")],
           ret=[Read("~r0", "r0", "d"), Read("~r1", "r1", "s")]))
    eight = [(n, "int", str(i + 1)) for i, n in enumerate("abcdefgh")]
    add(Fn("SpillString", eight + [("s", "string", '"spilled"'), ("i", "int", "9")], [("", "int", "a + i")],
           entry=[Read(n, n, "d") for n in "abcdefgh"] + [Read("s", "s", "s"), Read("i", "i", "d")],
           ret=[Read("~r0", "r0", "d")]))
    twelve = [(f"p{i}", "int", str(100 + i)) for i in range(12)]
    add(Fn("TwelveInts", twelve, [("", "int", "p0 + p11")],
           entry=[Read(f"p{i}", f"p{i}", "d") for i in range(12)], ret=[Read("~r0", "r0", "d")]))
    eleven = [("", "int", str(1000 + i)) for i in range(11)]
    add(Fn("ElevenResults", [("k", "int", "3")], eleven, entry=[Read("k", "k", "d")],
           ret=[Read(f"~r{i}", f"r{i}", "d") for i in range(11)]))
    add(Fn("ManyStringResults", [], [("", "string", f'"res{i}"') for i in range(6)],
           ret=[Read(f"~r{i}", f"r{i}", "s") for i in range(6)]))
    add(Fn("FlatStruct", [("p", "Flat", 'Flat{X: -9, Y: "flat", Z: true}')], [("", "Flat", "Flat{X: p.X + 1, Y: p.Y, Z: !p.Z}")],
           entry=[Read("p.X", "p.X", "d"), Read("p.Y", "p.Y", "s"), Read("p.Z", "p.Z", "b")],
           ret=[Read("~r0.X", "r0.X", "d"), Read("~r0.Y", "r0.Y", "s"), Read("~r0.Z", "r0.Z", "b")]))
    add(Fn("ArrayOne", [("a", "[1]int", "[1]int{-11}")], [("", "[1]string", '[1]string{"one"}')],
           entry=[Read("a[0]", "a[0]", "d")], ret=[Read("~r0[0]", "r0[0]", "s")]))
    add(Fn("ArrayTwo", [("a", "[2]int64", "[2]int64{-21, 22}"), ("z", "int", "5")], [("", "[2]string", '[2]string{"x", "yz"}')],
           entry=[Read("a[0]", "a[0]", "d"), Read("a[1]", "a[1]", "d"), Read("z", "z", "d")],
           ret=[Read("~r0[1]", "r0[1]", "s"), Read("~r0[0]", "r0[0]", "s")]))
    add(Fn("NestedPointers", [("n", "*Node", "node")], [("", "*Inner", "n.In")],
           entry=[Read("n.A", "n.A", "d"), Read("n.In.V", "n.In.V", "u"), Read("n.In.Name", "n.In.Name", "s"),
                  Read("n.S", "n.S", "s"), Read("n", "uintptr(unsafe.Pointer(n))", "x")],
           ret=[Read("~r0.Name", "r0.Name", "s"), Read("~r0.V", "r0.V", "u")]))
    add(Fn("(*T).PtrMethod", [("x", "int", "6")], [("", "int", "t.A + x")], receiver=("t", "*T", "tp"),
           entry=[Read("t.A", "t.A", "d"), Read("t.B", "t.B", "s"), Read("x", "x", "d")], ret=[Read("~r0", "r0", "d")]))
    add(Fn("T.ValMethod", [("x", "int8", "-3")], [("", "string", "t.B")], receiver=("t", "T", "(*tp)"),
           entry=[Read("t.A", "t.A", "d"), Read("t.B", "t.B", "s"), Read("x", "x", "d")], ret=[Read("~r0", "r0", "s")]))
    add(Fn("FloatsAndInts", [("a", "int", "1"), ("f", "float64", "2.5"), ("b", "int32", "-3"), ("g", "float32", "4.5"),
                             ("s", "string", '"after-floats"'), ("c", "complex128", "complex(1, 2)"), ("d", "uint8", "200")],
           [("", "float64", "f * 2"), ("", "int", "a + int(b)"), ("", "string", "s")],
           entry=[Read("a", "a", "d"), Read("b", "b", "d"), Read("s", "s", "s"), Read("d", "d", "u")],
           ret=[Read("~r1", "r1", "d"), Read("~r2", "r2", "s")]))
    add(Fn("NamedResults", [("x", "int", "40")], [("sum", "int", "x + 2"), ("msg", "string", '"named"')],
           entry=[Read("x", "x", "d")], ret=[Read("sum", "r0", "d"), Read("msg", "r1", "s"), Read("~r1", "r1", "s")]))
    add(Fn("Slices", [("xs", "[]int", "xs"), ("b", "[]byte", '[]byte("bytes!")')], [("", "[]int", "xs[1:3]")],
           entry=[Read("xs.len", "len(xs)", "d"), Read("xs.cap", "cap(xs)", "d"), Read("xs[2]", "xs[2]", "d"),
                  Read("b.len", "len(b)", "d"), Read("b[1]", "b[1]", "u")],
           ret=[Read("~r0.len", "len(r0)", "d"), Read("~r0.cap", "cap(r0)", "d"), Read("~r0[0]", "r0[0]", "d")]))
    add(Fn("Interfaces", [("e", "error", "myErr{}"), ("n", "error", "nilErr"), ("a", "interface{}", "42")],
           [("", "error", "n"), ("", "error", "e")],
           entry=[Read("e", "e", "nz"), Read("n", "n", "nz"), Read("a", "a", "nz")],
           ret=[Read("~r0", "r0", "nz"), Read("~r1", "r1", "nz")]))
    add(Fn("AddressKinds", [("m", "map[string]int", "m"), ("c", "chan int", "ch"), ("p", "*T", "tp")],
           [("", "uintptr", "uintptr(unsafe.Pointer(p))")],
           entry=[Read("m", "reflect.ValueOf(m).Pointer()", "x"), Read("c", "reflect.ValueOf(c).Pointer()", "x"),
                  Read("p", "uintptr(unsafe.Pointer(p))", "x")],
           ret=[Read("~r0", "r0", "x")]))
    add(Fn("BigStruct", [("k", "int", "1"), ("b", "Big", "Big{F0: 10, F5: 15, F9: 19}"), ("j", "int", "2")],
           [("", "Big", "Big{F9: b.F9 + 1, F1: 11}")],
           entry=[Read("k", "k", "d"), Read("b.F0", "b.F0", "d"), Read("b.F5", "b.F5", "d"), Read("b.F9", "b.F9", "d"),
                  Read("j", "j", "d")],
           ret=[Read("~r0.F9", "r0.F9", "d"), Read("~r0.F1", "r0.F1", "d")]))
    add(Fn("HolderFn", [("h", "Holder", "Holder{One: [1]int32{-8}}"), ("p", "*Holder", "&Holder{One: [1]int32{8}}")],
           [("", "int8", "h.Pair.L")],
           entry=[Read("h.One[0]", "h.One[0]", "d"), Read("p.One[0]", "p.One[0]", "d"), Read("p.Pair.R", "p.Pair.R", "u")],
           ret=[Read("~r0", "r0", "d")]))
    add(Fn("NoArgs", [], [("", "bool", "true"), ("", "int64", "-64")],
           ret=[Read("~r0", "r0", "b"), Read("~r1", "r1", "d")]))
    return fns


def _extra_mixes():
    # Register pressure at different points: each adds one more int before
    # a string, so the string lands in each register pair, then spills.
    out = []
    for n in range(1, 9):
        params = [(f"i{k}", "int32", str(-(k + 1))) for k in range(n)] + [("s", "string", f'"s{n}"'), ("t", "uint8", "250")]
        out.append(Fn(f"Pressure{n}", params, [("", "string", "s"), ("", "int32", f"i{n - 1}")],
                      entry=[Read(p[0], p[0], "d" if p[1] == "int32" else ("s" if p[1] == "string" else "u")) for p in params],
                      ret=[Read("~r0", "r0", "s"), Read("~r1", "r1", "d")]))
    return out


def functions():
    return _int_fns() + _other_fns() + _extra_mixes()


def _go_name(fn):
    return fn.name.split(".")[-1]


def _symbol(fn):
    return "main." + fn.name


def _line(kind, fn, reads, values):
    verbs = " ".join(f"{r.path}={FORMATS[r.fmt][0]}" for r in reads)
    args = "".join(", " + FORMATS[r.fmt][2].format(v) for r, v in zip(reads, values))
    return f'fmt.Printf("P {kind} {fn.name} {verbs}\\n"{args})'


def go_source():
    body = ["package main", "", "import (", '\t"fmt"', '\t"reflect"', '\t"unsafe"', ")", "",
            "var _ = reflect.ValueOf", "var _ = unsafe.Pointer(nil)", TYPES]
    calls = []
    for fn in functions():
        params = ", ".join(f"{n} {t}" for n, t, _ in fn.params)
        if fn.results and any(n for n, _, _ in fn.results):
            results = "(" + ", ".join(f"{n} {t}" for n, t, _ in fn.results) + ")"
        elif len(fn.results) == 1:
            results = fn.results[0][1]
        elif fn.results:
            results = "(" + ", ".join(t for _, t, _ in fn.results) + ")"
        else:
            results = ""
        recv = f"({fn.receiver[0]} {fn.receiver[1]}) " if fn.receiver else ""
        body.append("//go:noinline")
        body.append(f"func {recv}{_go_name(fn)}({params}) {results} {{")
        if fn.entry:
            body.append("\t" + _line("E", fn, fn.entry, [r.go for r in fn.entry]))
        if fn.results:
            body.append("\treturn " + ", ".join(v for _, _, v in fn.results))
        body.append("}\n")
        rnames = [f"r{i}" for i in range(len(fn.results))]
        callee = f"{fn.receiver[2]}.{_go_name(fn)}" if fn.receiver else _go_name(fn)
        call = f"{callee}({', '.join(a for _, _, a in fn.params)})"
        if rnames:
            calls.append(f"\t{{\n\t\t{', '.join(rnames)} := {call}")
            calls.append("\t\t" + _line("R", fn, fn.ret, [r.go for r in fn.ret]))
            calls.extend(f"\t\t_ = {r}" for r in rnames)
            calls.append("\t}")
        else:
            calls.append(f"\t{call}")
    body.append("func main() {" + MAIN_PRELUDE)
    body.extend(calls)
    body.append('\tfmt.Println("P done")')
    body.append("}")
    return "\n".join(body) + "\n"


def _bt_line(kind, fn, reads, retval=False):
    verbs = " ".join(f"{r.path}={FORMATS[r.fmt][1]}" for r in reads)
    exprs = []
    for i, r in enumerate(reads):
        e = "retval" if retval and i == 0 and r.path == "~r0" else f"goarg({r.path})"
        if r.fmt == "nz":
            e = f"({e} != 0)"
        exprs.append(e)
    args = "".join(", " + e for e in exprs)
    return f'printf("B {kind} {fn.name} {verbs}\\n"{args});'


def gobt_script(binary):
    out = ["// generated by tests/abigen.py: mirrors the Go program's own lines"]
    for fn in functions():
        if fn.entry:
            out.append(f"uprobe:{binary}:{_symbol(fn)} {{ {_bt_line('E', fn, fn.entry)} }}")
        if fn.ret:
            out.append(f"goret:{binary}:{_symbol(fn)} {{ {_bt_line('R', fn, fn.ret, fn.use_retval)} }}")
    return "\n".join(out) + "\n"

