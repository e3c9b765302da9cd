"""goerr(PATH) and gotype(PATH): an interface's value as the Go program
itself prints it.

tests/programs/goerrs makes one error of each type goerr spells out (and a
few it does not), returns each from main.check, passes it to main.report,
passes some other values to main.show(i, v interface{}), and prints
"E i <err.Error()>", "K i <the error's %T>" and "T i <%T>". gobt prints the same lines from its
probes; each must be the program's own, except where goerr documents
another value: a type it does not spell gives its name.
"""

import os
import re
import subprocess

import pytest

from conftest import ON_TRIXIE, gobt, need, no_traceback

PROGRAM = "tests/programs/goerrs"
GOS = ["go1.15", "go1.19", "go1.23", "newest"]
# main.go's made[]: the types goerr does not spell, by index.
NAMED_ONLY = {13: "*main.tooLongError"}
# With DWARF, printf shows such a type's first string field beside its name,
# where strings are off the BPF stack (0.23; on 0.17 the standard library's
# texts take this program's string budget first).
WITH_FIELD = {13: '*main.tooLongError{name:"maximilian"}'}
# *net.OpError is spelled where strings are off the BPF stack (0.23); on 0.17
# it shows its type name, and a *net.DNSError its Err (the innermost message).
OP_ERRORS = {14, 18, 19, 21}
DNS_ERROR = 20
UNIX_ADDR = 21  # an address other than an IPv4 TCP/UDP one shows as "?"
LINK_ERROR = 5  # *os.LinkError: past bpftrace 0.17's stack budget (ifacevalue.STACK_STRINGS)
LONG_PATH = 23  # a path longer than bpftrace's strings: printf cuts it

SCRIPT = """
goret:{bin}:main.check{check} {{ printf("e %d %s\\n", goarg(i), goerr(err)); @[goerr(err)] = count(); }}
goentry:{bin}:main.report{report} {{ printf("r %d %s\\n", goarg(i), goerr(e)); printf("q %d %s\\n", goarg(i), gotype(e)); }}
goentry:{bin}:main.show{show} {{ printf("t %d %s\\n", goarg(i), gotype(v)); @t[gotype(v)] = count(); }}
"""
SIGNATURES = {"check": "(i int) (err error)", "report": "(i int, e error) int", "show": "(i int, v any) int"}
# The same interfaces spelled out: error's method set, and the empty one.
SPELLED = {"check": "(i int) (err interface{ Error() string })",
           "report": "(i int, e interface { Error() string }) int", "show": "(i int, v interface{}) int"}


def run(binary, declared=False):
    sigs = declared or {k: "" for k in SIGNATURES}
    proc = gobt("-e", SCRIPT.format(bin=binary, **sigs), "-c", binary)
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    # The program's lines start with E and T, gobt's with e, r, q and t.
    seen = {}
    for line in lines:
        m = re.match(r"^([EKTetrq]) (\d+) ?(.*)$", line)
        if m:
            seen.setdefault((m.group(1), int(m.group(2))), []).append(m.group(3))
    # A goerr map key is two elements: the type as %T prints it, and one string.
    keys = {tuple(k.split(", ", 1)): int(n) for k, n in re.findall(r"^@\[(.*)\]: (\d+)$", proc.stdout, re.M)}
    # gotype as a key, after a printf of it (an order that once failed to load on 0.23).
    seen["@", "t"] = set(re.findall(r"^@t\[(.*)\]: \d+$", proc.stdout, re.M))
    return seen, keys


def expected_text(i, go, rich, dwarf=True):
    if i in NAMED_ONLY:
        return WITH_FIELD[i] if rich and dwarf else NAMED_ONLY[i]
    if not rich and i in OP_ERRORS:
        return "*net.OpError"
    if not rich and i == DNS_ERROR:
        return go.rsplit(": ", 1)[1]
    if i == UNIX_ADDR:
        return go.replace(" /tmp/s:", " ?:")
    return go


def check(seen, keys, may_cut_link=False, rich=ON_TRIXIE, dwarf=True):
    errors = sorted(i for kind, i in seen if kind == "E")
    assert len(errors) >= 23, seen
    for i in errors:
        (go,) = seen["E", i]
        (ours,) = seen["e", i]
        expected = expected_text(i, go, rich, dwarf)
        if i == LINK_ERROR and may_cut_link and ours == "no such file or directory":
            expected = ours  # the one-string form: the error it wraps
        if i == LONG_PATH:
            expected = ours if go.startswith(ours.rstrip(".")[:60]) else go  # cut at the string size
        assert ours == expected, (i, ours, go)
        # At entry, on a param: the same text, and the dynamic type's name.
        assert seen["r", i] == [ours], (i, seen["r", i])
        (rtype,) = seen["q", i]
        assert (rtype == "") == (go == "<nil>") and not rtype.startswith("?"), (i, rtype)
    for i in sorted(i for kind, i in seen if kind == "T"):
        (go,), (ours,) = seen["T", i], seen["t", i]
        assert ours == go, (i, ours, go)
    assert seen["@", "t"] == {seen["T", i][0] for kind, i in seen if kind == "T"}, seen["@", "t"]
    # As a map key: the dynamic type as Go's %T prints it, and one string:
    # the whole text of an error whose text is one string, else the
    # innermost message (the end of the text), else the type's name.
    assert sum(keys.values()) == len(errors), keys
    for i in errors:
        (go,), (gotype,) = seen["E", i], seen["K", i]
        texts = [text for t, text in keys if t == gotype]
        assert texts, (i, gotype, keys)
        assert any(text == go or go.endswith(": " + text) or text == gotype or text.startswith("*")
                   for text in texts), (i, go, texts)
    # ENOENT alone, in an *fs.PathError and in an *os.LinkError: three keys.
    enoent = {t for t, text in keys if text == "no such file or directory"}
    assert len(enoent) == 3 and "syscall.Errno" in enoent, keys
    for key in (("<nil>", "<nil>"), ("*os.SyscallError", "address already in use"), ("*errors.errorString", "plain error"), ("*fmt.wrapError", "wrapped: EOF"),
                ("*errors.errorString", "EOF"), ("*errors.errorString", "context canceled"),
                ("context.deadlineExceededError", "context deadline exceeded"),
                ("*strconv.NumError", "invalid syntax"), ("*main.tooLongError", "*main.tooLongError"),
                ("*poll.DeadlineExceededError", "i/o timeout")):
        assert key in keys, (key, keys)


@pytest.mark.parametrize("go", GOS)
def test_errors_read_as_go_prints_them(go, go_build, bpf):
    binary = go_build(go, PROGRAM, gcflags="-l")
    check(*run(binary), may_cut_link=not ON_TRIXIE)


def test_pie_stripped_cgo(go_build, bpf):
    """The newest Go: PIE under ASLR, stripped with a declared signature, cgo,
    and stripped PIE."""
    pie = go_build("newest", PROGRAM, gcflags="-l", buildmode="pie", tag="-pie")
    check(*run(pie), may_cut_link=not ON_TRIXIE)
    stripped = go_build("newest", PROGRAM, gcflags="-l", ldflags="-s -w", tag="-stripped")
    check(*run(stripped, declared=SIGNATURES), may_cut_link=not ON_TRIXIE, dwarf=False)
    check(*run(stripped, declared=SPELLED), may_cut_link=not ON_TRIXIE, dwarf=False)
    cgo = go_build("newest", PROGRAM, gcflags="-l", cgo=True, tag="-cgo")
    check(*run(cgo), may_cut_link=not ON_TRIXIE)
    # Stripped and PIE at once (as Debian builds): the type descriptors are
    # in .data.rel.ro, found through the module data's relocated words.
    both = go_build("newest", PROGRAM, gcflags="-l", buildmode="pie", ldflags="-s -w", tag="-pie-stripped")
    check(*run(both, declared=SIGNATURES), may_cut_link=not ON_TRIXIE, dwarf=False)


def _literal(text):
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@pytest.mark.parametrize("go, build", [("go1.15", ""), ("newest", ""), ("newest", "pie"), ("go1.19", "stripped")])
def test_compared_with_its_text(go, build, go_build, bpf):
    """goerr(e) == "..." holds where the text printf prints is that literal,
    whole: its type and each of its pieces, a path past bpftrace's string
    size included; the innermost message alone matches only the errno."""
    flags = {"pie": {"buildmode": "pie", "tag": "-pie"},
             "stripped": {"ldflags": "-s -w", "tag": "-stripped"}}.get(build, {})
    binary = go_build(go, PROGRAM, gcflags="-l", **flags)
    sigs = SIGNATURES if build == "stripped" else {k: "" for k in SIGNATURES}
    own = subprocess.run([binary], capture_output=True, text=True, check=True).stdout
    texts = {int(i): t for i, t in re.findall(r"^E (\d+) (.*)$", own, re.M)}
    assert len(texts[LONG_PATH]) > 80, texts
    shown = {i: expected_text(i, t, ON_TRIXIE, build != "stripped") for i, t in texts.items()}
    # Where printf shows a stand-in (a type's name, ? for an address, 0.17's
    # shorter forms of the net errors), the text is not gobt's to compare:
    # no literal matches, neither the stand-in nor Go's own text.
    unknown = set(NAMED_ONLY) | {UNIX_ADDR} | (set() if ON_TRIXIE else OP_ERRORS | {DNS_ERROR})
    literals = sorted(set(shown.values()) | {texts[i] for i in unknown}) + ["open /nonexistent/x", "no such file", ""]
    # At main.report's entry, on its param: 7 texts a probe, as a user
    # would compare a few (each is spelled along every error type's text).
    probes = []
    for first in range(0, len(literals), 7):
        body = " ".join(f'if (goerr(e) == {_literal(text)}) {{ printf("m %d {k}\\n", goarg(i)); }}'
                        for k, text in enumerate(literals[first:first + 7], first))
        probes.append(f"goentry:{binary}:main.report{sigs['report']} {{ {body} }}")
    # At main.check's return, on its result: != and print.
    probes.append(f'goret:{binary}:main.check{sigs["check"]} {{ if ({_literal(shown[3])} != goerr(err)) '
                  f'{{ printf("n %d\\n", goarg(i)); }} print(goerr(err)); }}')
    proc = gobt("-e", "\n".join(probes), "-c", binary)
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    matched = {}
    for i, k in re.findall(r"^m (\d+) (\d+)$", proc.stdout, re.M):
        matched.setdefault(int(i), set()).add(int(k))
    for i, text in shown.items():
        want = None if i in unknown else {literals.index(text)}
        assert matched.get(i) == want, (i, text, [literals[k] for k in matched.get(i, ())])
    differ = {int(i) for i in re.findall(r"^n (\d+)$", proc.stdout, re.M)}
    assert differ == set(shown) - {i for i in shown if shown[i] == shown[3]}, differ
    # print(goerr(e)): the whole text, as printf("%s\n") prints it.
    lines = set(proc.stdout.splitlines())
    printed = {i for i, text in shown.items() if text in lines} - {LONG_PATH}  # whole where strings hold it
    assert printed == set(shown) - {LONG_PATH} - ({LINK_ERROR} if not ON_TRIXIE else set()), printed


@pytest.mark.parametrize("go", ["go1.19", "go1.23", "newest"])
def test_types_from_the_module_data(go, go_build):
    """Where a stripped binary's type descriptors are: the module data's
    types and etypes (relocated words in a PIE) are what the symbols say."""
    from gobt.binary.gobinary import GoBinary
    from gobt.binary.pclnlocate import module_types

    for flags in ({}, {"buildmode": "pie", "tag": "-pie"}):
        binary = GoBinary(go_build(go, PROGRAM, gcflags="-l", **flags))
        symbols = binary.symbols_if_any
        assert module_types(binary) == (symbols.address_of("runtime.types"),
                                        symbols.address_of("runtime.etypes")), (go, flags)


def test_a_debian_package_names_its_types(bpf, tmp_path):
    """Debian's age (Go 1.19, stripped, PIE, RETs over two pages) with a
    declared signature: the reader's and the error's dynamic types, as age's
    source makes them, and the error's text age itself prints."""
    age = "/usr/bin/age"
    need(os.path.exists(age), "Debian's age is not installed (run scripts/setup)")
    subprocess.run(["age-keygen", "-o", str(tmp_path / "k1")], check=True, capture_output=True)
    subprocess.run(["age-keygen", "-o", str(tmp_path / "k2")], check=True, capture_output=True)
    recipient = re.search(r"age1\w+", (tmp_path / "k1").read_text()).group(0)
    subprocess.run([age, "-r", recipient, "-o", str(tmp_path / "m.age")], input=b"hello\n", check=True)
    reader = "interface{ Read(p []byte) (n int, err error) }"
    script = (f"goret:{age}:filippo.io/age.Decrypt(src {reader}, ids []any) (r {reader}, err error) "
              '{ printf("D %s %s %s\\n", gotype(src), gotype(r %v), goerr(err)); @[goerr(err)] = count(); '
              'if (goerr(err) == "<nil>") { printf("opened\\n"); } }')
    for key, opened in (("k2", False), ("k1", True)):
        proc = gobt("-e", script, "-c", f"{age} -d -i {tmp_path / key} {tmp_path / 'm.age'}")
        no_traceback(proc)
        assert proc.returncode == 0 and "WARNING" not in proc.stderr, proc.stderr
        (line,) = re.findall(r"^D (.*)$", proc.stdout, re.M)
        if opened:
            assert line == "*bufio.Reader *stream.Reader <nil>" and "hello" in proc.stdout, proc.stdout
            assert "@[<nil>, <nil>]: 1" in proc.stdout and "opened" in proc.stdout, proc.stdout
        else:
            assert "no identity matched any of the recipients" in proc.stderr  # age's own text
            # A type of age's own: goerr names it (its Error() is Go code).
            assert line == "*bufio.Reader <nil> *age.NoIdentityMatchError", proc.stdout
            assert "@[*age.NoIdentityMatchError, *age.NoIdentityMatchError]: 1" in proc.stdout, proc.stdout


@pytest.mark.parametrize("go", GOS)
def test_offsets_agree_with_dwarf(go, go_build):
    """The tables goerr uses without DWARF are what each toolchain's DWARF says."""
    from gobt.binary.gobinary import GoBinary
    from gobt.binary.gotypes import TYPE_LAYOUT, GoTypes, errno_table
    from gobt.rewrite import errortypes
    from gobt.rewrite.errnotext import ERRNO_TEXTS

    binary = GoBinary(go_build(go, PROGRAM, gcflags="-l"))
    types = GoTypes(binary)
    assert types.layout == TYPE_LAYOUT
    checked = 0
    for go_name, dwarf_name, _pieces, table in errortypes.WHOLE + errortypes.COMPOSITE:
        if types.type_address(go_name) is None:
            continue
        t = binary.dwarf.type_named(dwarf_name)
        assert t is not None, dwarf_name
        assert {f: t.field(f).offset for f in table} == table, dwarf_name
        checked += 1
    assert checked >= 7
    for _go_name, dwarf_name, table in [errortypes.OP_ERROR, errortypes.DNS_ERROR] + errortypes.IP_ADDRS:
        t = binary.dwarf.type_named(dwarf_name)
        table = errortypes.offsets_for(dwarf_name, table, binary.go_version_tuple)
        assert {f: t.field(f).offset for f in table} == table, dwarf_name
    stripped = GoBinary(go_build(go, PROGRAM, gcflags="-l", ldflags="-s -w", tag="-stripped"))
    assert errno_table(stripped, ERRNO_TEXTS)[1] >= 130
    for name in ("*errors.errorString", "syscall.Errno", "context.deadlineExceededError"):
        assert GoTypes(stripped).type_address(name), name


def test_refusals(go_build):
    binary = go_build("newest", PROGRAM, gcflags="-l")
    proc = gobt("--emit", "-e", f"goentry:{binary}:main.report {{ printf(\"%s\\n\", goerr(i)); }}")
    no_traceback(proc)
    assert proc.returncode == 1 and "needs an interface value" in proc.stderr, proc.stderr
    proc = gobt("--emit", "-e", f"goentry:{binary}:main.report /goerr(e) == \"x\"/ {{ exit(); }}")
    no_traceback(proc)
    assert proc.returncode == 1 and "in the probe's block" in proc.stderr, proc.stderr
    # A printf short of arguments: said once, with the user's counts (not
    # once for each printf goerr becomes, with theirs).
    proc = gobt("--emit", "-e", f"goentry:{binary}:main.report {{ printf(\"%s %s\\n\", goerr(e)); }}")
    assert proc.returncode == 1 and proc.stderr.count("(1 supplied, 2 expected)") == 1, proc.stderr
    # A map keyed by goerr (two keys) and by one key elsewhere: said at the
    # goerr, in the user's terms, before bpftrace speaks of string pairs.
    proc = gobt("--emit", "-e", f"goentry:{binary}:main.report {{ @m[goerr(e)] = count(); }}\n"
                                "END { @m[\"x\"] = count(); }")
    no_traceback(proc)
    assert proc.returncode == 1 and "-e:1:" in proc.stderr and "which as a key is two keys" in proc.stderr \
        and "at 2:7" in proc.stderr, proc.stderr
    proc = gobt("--emit", "-e", f"goentry:{binary}:main.report {{ @m[goerr(e), 1] = count(); @m[\"a\", \"b\", 2] = 1; }}")
    assert proc.returncode == 0, proc.stderr


FIELDS = """package main

// Error types of the program's own and of another module's path, each
// printed by reflect as "W i <%T>{<first string field>:<its %q>}" (or
// "W i <%T>" where goerr has no field to show), the truth gobt's is
// checked against: gobt finds the field in DWARF, reflect at run time.

import (
	"errors"
	"fmt"
	"reflect"

	"example.com/lib/v2/store"
)

type codeError struct {
	code int
	msg  string
	hint string
}

func (e *codeError) Error() string { return fmt.Sprint(e.code, e.msg) }

type valueError struct{ what string }

func (e valueError) Error() string { return "value: " + e.what }

type countError struct{ n int }

func (e *countError) Error() string { return fmt.Sprint(e.n) }

//go:noinline
func check(i int) error {
	var nilCode *codeError
	switch i {
	case 0:
		return &codeError{7, "disk full", "free some"}
	case 1:
		return valueError{"a value"}
	case 2:
		return &valueError{"its pointer"}
	case 3:
		return &countError{3}
	case 4:
		return nilCode // a nil pointer in a non-nil error
	case 5:
		return &store.NotFound{Key: "user:42"}
	}
	return errors.New("plain")
}

func shown(err error) string {
	v := reflect.ValueOf(err)
	t := fmt.Sprintf("%T", err)
	if v.Kind() == reflect.Ptr {
		if v.IsNil() {
			return t
		}
		v = v.Elem()
	}
	for k := 0; k < v.NumField(); k++ {
		if v.Field(k).Kind() == reflect.String {
			return fmt.Sprintf("%s{%s:%q}", t, v.Type().Field(k).Name, v.Field(k).String())
		}
	}
	return t
}

func main() {
	for i := 0; i < 7; i++ {
		err := check(i)
		if i == 6 {
			fmt.Printf("W %d %s\\n", i, err)
			continue
		}
		fmt.Printf("W %d %s\\n", i, shown(err))
	}
}
"""
STORE = """package store

type NotFound struct{ Key string }

func (e *NotFound) Error() string { return "not found: " + e.Key }
"""


@pytest.mark.parametrize("go", ["go1.15", "newest"])
def test_a_types_string_field(go, go_build, bpf):
    """An error type goerr does not spell shows, in printf, its name and
    first string field, as the program's own reflect finds them: a
    pointer's and a value's, another module's; a nil pointer in the
    interface and a type without a string field show the name alone."""
    from conftest import write_program

    src = write_program("goerrfields", {
        "main.go": FIELDS,
        "go.mod": "module goerrfields\n\ngo 1.15\n\nrequire example.com/lib/v2 v2.0.0\n\n"
                  "replace example.com/lib/v2 => ./lib\n",
    })
    os.makedirs(os.path.join(src, "lib", "store"), exist_ok=True)
    write_program("goerrfields/lib", {"go.mod": "module example.com/lib/v2\n\ngo 1.15\n"})
    write_program("goerrfields/lib/store", {"store.go": STORE})
    binary = go_build(go, src, gcflags="-l")
    proc = gobt("-e", f'goret:{binary}:main.check {{ printf("w %d %s\\n", goarg(i), goerr(~r0)); }}', "-c", binary)
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    truth = dict(re.findall(r"^W (\d) (.*)$", proc.stdout, re.M))
    ours = dict(re.findall(r"^w (\d) (.*)$", proc.stdout, re.M))
    assert len(truth) == 7 and "{" not in truth["3"] + truth["4"] and truth["5"].endswith('{Key:"user:42"}'), truth
    assert ours == truth, proc.stdout
