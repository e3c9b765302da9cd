"""One goerr/gotype value in BPF: the statements that read an interface's
dynamic type and name, and for an error the pieces of its Error() text.

_Render holds what govalue.py needs of one value read: its statements at
the start of the probe's block ({v}t, {v}d: the interface's words; {v}np,
{v}nl: its type's name; {v}p, {v}l: the one-string text), and the printf
branches that spell the whole text, one per error type (errortypes.py,
neterrors.py). Names and texts are read from the program's memory at run
time; which type is which is known by the descriptors' addresses.
"""

import re
from functools import cached_property

from ..binary.gotypes import GoTypes, errno_table, error_methods, t_name
from ..binary.inlined import is_position_independent
from . import errortypes
from .errnotext import ERRNO_TEXTS
from .neterrors import UNSPELLED, NetErrors
from .printf import string_size
from .textmatch import condition

# bpftrace 0.17 keeps str()s and printf arguments on the 512-byte BPF stack:
# measured with --emit-elf on Go 1.27, PIE, a goret carrying a param, a map
# keyed by goerr and a printf of it, the composite types' printfs load with
# 11 strings of 64 bytes in all, and not with 15. Beyond, a type's printf is
# the one-string form (errortypes.COMPOSITE lists the commonest first). A
# printf holding another string (a carried goarg string copies into every
# branch) loads with none of them: it gets the one-string form only.
STACK_STRINGS = 11

# The longest type name read (bytes): a longer one shows as unread (?0x...).
MAX_NAME = 1023
BIAS = "$__gobt_b"
# A type whose name BPF could not read: its static address, a stand-in.
UNREAD = "?0x%lx"


class Render:
    """What one goerr/gotype use computes."""

    def __init__(self, index, binary, first, data, eface, nul, type_only, rich=False):
        self.binary = binary
        self.types = GoTypes.of(binary)
        self.v = f"$__gobt_e{index}_"
        self.first, self.data, self.eface = first, data, eface
        self.nul = nul
        self.type_only = type_only
        self.pie = is_position_independent(binary)
        self.rich = rich  # strings off the BPF stack (0.23): room for the net errors' printfs
        self.key = False  # goerr used as a map key element: its type name too ({v}kp)
        self.compared = False  # compared with a literal: {v}w is set
        self.type_key = False  # gotype used as a map key element ({v}gp)
        self.nil_as_v = False

    @cached_property
    def net(self):
        return NetErrors(self)

    def addr(self, static):
        return f"(0x{static:x} + {BIAS})" if self.pie else f"0x{static:x}"

    def str(self, p, n):
        return f"str({p}, {n} + 1)" if self.nul else f"str({p}, {n})"

    def name(self, p, n, key=False):
        """A type name's str(), its length masked where the verifier sees it.

        0.23: _name bounds it already, in a test that bpftrace's str() loses
        sight of (a printf of a name then failed to load, "size=32768").
        0.17, whose strings are on the BPF stack: a printf's str() is held
        to the string size by bpftrace, a map key's is not ("invalid write
        to stack"): a key's length is clamped to key_mask() first."""
        if self.rich:
            return self.str(p, f"({n} & {MAX_NAME})")
        return self.str(p, f"({n} & {key_mask()})") if key else self.str(p, n)

    def clamp(self, n):
        """0.17: a key's name length, cut at key_mask() (see name())."""
        return [] if self.rich else [f"if ({n} > {key_mask()}) {{ {n} = {key_mask()}; }}"]

    def single(self):
        v = self.v
        return self.str(f"{v}p", f"{v}l")

    # -- statements -------------------------------------------------------------

    def statements(self):
        v = self.v
        # bpftrace 0.17 gives every variable its own 8 bytes of the 512-byte
        # stack, which the printfs of the whole text need: few variables.
        out = [f"{v}t = (uint64){self.first};", f"{v}d = (uint64){self.data};"]
        if not self.eface:
            out.append(f"if ({v}t != 0) {{ {v}t = {_word(f'{v}t + 8')}; }}")
        if self.type_only:
            return out + self._name(v, f"{v}t") + self._nil_as_v() + self._key_name()
        composite = self.composite()
        if composite:
            out += _select([f"{v}it", f"{v}id"], [(f"{v}t == {t}", [_word(f"{v}d + {off['Err']}"),
                                                                  _word(f"{v}d + {off['Err'] + 8}")])
                                                for t, _, off in composite])
            out.append(f"if ({v}it != 0) {{ {v}it = {_word(f'{v}it + 8')}; }}")
            out += self._name(v, f"{v}it", f"{v}i")
            out += self.net.inner_statements()
        out += self._name(v, f"{v}t") + self._nil_as_v()
        errno = self.errno()
        if errno:
            cases = [(f"{v}t == {errno}", [_word(f"{v}d")])]
            if composite:
                cases.append((f"{v}it == {errno}", [_word(f"{v}id")]))
                cases += self.net.errno_cases(errno)
            out += _select([f"{v}en"], cases)
            out += [f"{v}ep = (uint64)0; {v}el = (uint64)0;"]
            table = errno_table(self.binary, ERRNO_TEXTS)
            if table:
                # Go's own table, read where syscall.Errno.Error() reads it
                # (130 ifs of constants would overflow 0.17's BPF stack).
                at, count = table
                entry = f"{self.addr(at)} + {v}en * 16"
                out.append(f"if ({v}en > 0 && {v}en < {count}) {{ {v}ep = {_word(entry)}; "
                           f"{v}el = {_word(entry + ' + 8')}; }}")
        if composite:
            out += _select([f"{v}ip", f"{v}il"], self._one_piece(f"{v}it", f"{v}id"), [f"{v}inp", f"{v}inl"])
        inner = [(f"{v}t == {t}", [f"{v}ip", f"{v}il"]) for t, _, _ in composite]
        out += _select([f"{v}p", f"{v}l"], self._one_piece(f"{v}t", f"{v}d") + self.net.top_pieces() + inner,
                       [f"{v}np", f"{v}nl"])
        out += self._key_name() + self._own_statements()
        return out + self.net.address_statements()

    def _key_name(self):
        """The type's name in a map key: gotype's ({v}gp, {v}gl), nil's "";
        goerr's ({v}kp, {v}kl) as %T spells it, <nil> for nil. ? for a name
        BPF could not read, and pointers to those bytes in the binary (a
        string variable would cost 0.17's BPF stack what a printf's string does)."""
        v = self.v
        nil, unknown = (self.types.bytes_address(t) for t in (errortypes.NIL_TEXT, "?"))
        out = []
        for wanted, to, nil_too in ((self.type_key, f"{v}g", False), (self.key, f"{v}k", True)):
            if not wanted:
                continue
            out.append(f"{to}p = {v}np; {to}l = {v}nl;")
            if nil_too and nil:
                out.append(f"if ({v}t == 0) {{ {to}p = {self.addr(nil)}; {to}l = {len(errortypes.NIL_TEXT)}; }}")
            if unknown:
                out.append(f"if ({v}t != 0 && {v}nl == 0) {{ {to}p = {self.addr(unknown)}; {to}l = 1; }}")
            out += self.clamp(f"{to}l")
        return out

    def _nil_as_v(self):
        """The name's string reads <nil> for nil where %v's is wanted (the
        read-only data's own bytes of it; without them, "")."""
        nil = self.types.bytes_address(errortypes.NIL_TEXT) if self.nil_as_v else None
        if not nil:
            return []
        v = self.v
        return [f"if ({v}t == 0) {{ {v}np = {self.addr(nil)}; {v}nl = {len(errortypes.NIL_TEXT)}; }}"]

    def _name(self, v, t, to=None):
        """The dynamic type's name: {to}np, {to}nl (length 0 for nil)."""
        lay = self.types.layout
        base, _ = self.types.bounds
        out = [f"{v}n = {self.addr(base)} + (uint64)*(int32 *)uptr({t} + {lay['str']});",
               f"{v}x = (uint64)((*(uint8 *)uptr({t} + {lay['tflag']}) >> 1) & 1);"]
        if self.types.varint_names:
            out += [f"{v}h = (uint64)*(uint8 *)uptr({v}n + 1);",
                    f"{v}np = {v}n + (uint64)2 + {v}x;",
                    f"{v}nl = {v}h;",
                    f"if ({v}h >= 128) {{ {v}np = {v}np + 1; "
                    f"{v}nl = ({v}h & 127) + ((uint64)*(uint8 *)uptr({v}n + 2) << 7); }}"]
        else:
            out += [f"{v}h = ((uint64)*(uint8 *)uptr({v}n + 1) << 8) + (uint64)*(uint8 *)uptr({v}n + 2);",
                    f"{v}np = {v}n + (uint64)3 + {v}x;",
                    f"{v}nl = {v}h;"]
        # An unreadable name reads as length 0 (then the star is not there to
        # skip), and so does one longer than MAX_NAME: bounded in the same
        # test, where the verifier sees it (a varint length is up to 32767,
        # and a str() of that fails to load on 0.23; a test of its own
        # doubled the paths the verifier walks, past its million).
        out.append(f"if ({v}nl > {v}x && {v}nl <= {MAX_NAME}) {{ {v}nl = {v}nl - {v}x; }} else {{ {v}nl = 0; }} "
                   f"if ({t} == 0) {{ {v}nl = 0; }}")
        if to is not None:
            out.append(f"{to}np = {v}np; {to}nl = {v}nl;")
        return out

    def _one_piece(self, t, d):
        """(condition, [pointer, length]) of the one-string text of the error (t, d)."""
        nil = self.types.bytes_address(errortypes.NIL_TEXT)
        cases = [(f"{t} == 0", [self.addr(nil), str(len(errortypes.NIL_TEXT))] if nil else ["0", "0"])]
        for addr, _, off in self.whole():
            field = next(iter(off.values()))
            cases.append((f"{t} == {addr}", [_word(f"{d} + {field}"), _word(f"{d} + {field + 8}")]))
        errno = self.errno()
        if errno:
            cases.append((f"{t} == {errno} && {self.v}el != 0", [f"{self.v}ep", f"{self.v}el"]))
        for name, text in errortypes.CONSTANT:
            a, at = self.types.type_address(name), self.types.bytes_address(text)
            if a and at:
                cases.append((f"{t} == {self.addr(a)}", [self.addr(at), str(len(text.encode()))]))
        return cases

    # -- the types this binary has --------------------------------------------------

    def whole(self):
        """(address expr, pieces, offsets) of the one-string error types present."""
        return self._present(errortypes.WHOLE)

    def composite(self):
        """Their Err's text follows their fields': the inner error read ({v}it, {v}id)."""
        found = self._present(errortypes.COMPOSITE)
        if self.net.op:
            found.append((self.net.op[0], None, self.net.op[1]))
        return found

    def _present(self, rows):
        out = []
        for go_name, dwarf_name, pieces, table in rows:
            a = self.types.type_address(go_name)
            if a:
                off = self.types.struct_offsets(dwarf_name, list(table), table)
                out.append((self.addr(a), pieces, off))
        return out

    @cached_property
    def own(self):
        """(static address, field offset, field name) of the other error
        types whose first string field printf shows, as DWARF names it:
        those of the first errortypes.OWN_NAMES field names, so many printfs."""
        b = self.binary
        if not b.has_dwarf:
            return []
        cached = b.cache.get("gotypes", "own_fields")
        if cached is None:
            cached = self._own_fields()
            b.cache.put("gotypes", "own_fields", cached)
        return [tuple(row) for row in cached]

    def _own_fields(self):
        b = self.binary
        rows, spelled, names = [], {}, []
        for dwarf_name, pointer in sorted(error_methods(b), key=lambda r: errortypes.own_rank(r[0])):
            if len(rows) > errortypes.OWN_TYPES:
                break  # (one more: a name two packages share is dropped below)
            name = ("*" if pointer else "") + t_name(dwarf_name)
            if name in errortypes.SPELLED:
                continue
            spelled.setdefault(name, set()).add(dwarf_name)
            t = b.dwarf.type_named(dwarf_name)
            field = next((f for f in t.fields if f.type is not None and f.type.kind == "string"), None) if t else None
            if field is None or field.offset >= 1 << 16 or not re.fullmatch(r"\w+", field.name):
                continue
            if field.name not in names and len(names) == errortypes.OWN_NAMES:
                continue
            a = self.types.type_address(name)
            if a:
                names += [field.name] if field.name not in names else []
                rows.append((name, a, field.offset, field.name))
        # Two packages of one name may both have the type: %T cannot tell them apart, nor can gobt.
        return [list(row[1:]) for row in rows if len(spelled[row[0]]) == 1][: errortypes.OWN_TYPES]

    @cached_property
    def _own_names(self):
        return list(dict.fromkeys(field for _, _, field in self.own))

    @cached_property
    def _own_conditions(self):
        return {cond for cond, _, _ in self._own_branches()}

    @cached_property
    def _own_shown(self):
        """Whether a printf can show a field: on 0.23; on 0.17 where the
        standard library's printfs leave room for one (else the fields'
        statements would only lengthen every compile)."""
        if not self.own:
            return False
        return self.rich or self._composite_branches(STACK_STRINGS)[1] >= 2

    def _own_statements(self):
        """{v}f: the type's field: the index of its name (from 1) << 16 | its
        offset; 0 where none shows. One word: each variable takes 8 bytes
        of the BPF stack, which 0.23 too runs short of here. A nil pointer
        in the interface keeps the type's name alone."""
        if not self._own_shown:
            return []
        v = self.v
        index = {name: k for k, name in enumerate(self._own_names, 1)}
        return _select([f"{v}f"], [(f"{v}t == {self.addr(a)} && {v}d != 0", [f"(uint64)0x{index[field] << 16 | off:x}"])
                                   for a, off, field in self.own])

    def _own_branches(self):
        """The printfs of the field: the type's name as its descriptor
        spells it, the field's name, its value. The field's name is in the
        program text, not read from the binary's bytes (those failed where
        the program had not yet touched their page): 0.23, one printf, the
        name a ternary of literals (each printf takes its own room on the
        BPF stack); 0.17, a printf for each name, each within the budget
        of strings a printf's branches share."""
        if not self._own_shown:
            return []
        v = self.v
        at = f"{v}d + ({v}f & 0xffff)"
        args = [self.name(f"{v}np", f"{v}nl"), self.str(_word(at), _word(f"{at} + 8"))]
        names = self._own_names
        if self.rich:
            # The longest last: 0.23 sizes the ternary's string by its else
            # ("invalid access to map value" where a then is longer).
            by_length = sorted(enumerate(names, 1), key=lambda kn: len(kn[1]))
            field = f'"{by_length[-1][1]}"'
            for k, name in reversed(by_length[:-1]):
                field = f'(({v}f >> 16) == {k} ? "{name}" : {field})'
            return [(f"{v}f != 0 && {v}nl != 0", '%s{%s:\\"%s\\"}', [args[0], field, args[1]])]
        return [(f"({v}f >> 16) == {k} && {v}nl != 0", f'%s{{{name}:\\"%s\\"}}', args)
                for k, name in enumerate(names, 1)]

    def errno(self):
        a = self.types.type_address(errortypes.ERRNO)
        return self.addr(a) if a else None

    def branches(self, budget=None):
        """(condition, format piece, args) for a printf of the whole text;
        the last has no condition (the one-string form). With a budget, the
        composite types' printfs hold at most that many strings in all,
        and the fields' printfs the rest."""
        v = self.v
        out, budget = self._composite_branches(budget)
        out += self.net.branches(self.rich)
        for branch in self._own_branches():
            if budget is not None:
                if budget < 2:
                    break
                budget -= 2
            out.append(branch)
        errno = self.errno()
        if errno:
            out.append((f"{v}t == {errno} && {v}el == 0", "errno %lu", [f"{v}en"]))
        out.append(self.unreadable(f"{v}p == {v}np && {v}l == 0"))
        out.append((None, "%s", [self.single()]))
        return out

    def _composite_branches(self, budget):
        """The composite types' printfs, and the budget they leave."""
        v = self.v
        out = []
        for addr, pieces, off in self.composite():
            if pieces is None:
                continue  # spelled by neterrors
            strings = sum(kind != "text" for kind, _ in pieces)
            if budget is not None:
                if strings > budget:
                    break
                budget -= strings
            fmt, args = [], []
            for kind, value in pieces:
                if kind == "text":
                    fmt.append(_escape(value))
                elif kind == "err":
                    fmt.append("%s")
                    args.append(self.str(f"{v}ip", f"{v}il"))
                else:
                    fmt.append('\\"%s\\"' if kind == "quoted" else "%s")
                    o = off[value]
                    args.append(self.str(f"*(uint64 *)uptr({v}d + {o})", f"*(uint64 *)uptr({v}d + {o + 8})"))
            out.append((f"{v}t == {addr}", "".join(fmt), args))
        return out, budget

    def which_branch(self):
        """Statements setting {v}w to the index of the branch that prints
        (branches()), for comparisons: once, before any of them. After it
        the verifier knows {v}w in each of its paths, so a comparison adds
        a path or two, where each repeating the chain would multiply them."""
        if self.compared:
            return []
        self.compared = True
        v = self.v
        chain = None
        for k, (cond, _, _) in reversed(list(enumerate(self.branches()))):
            # Typed literals: 0.23 types 0 and 1 unlike each other.
            set_w = f"{v}w = (uint64){k};"
            chain = set_w if cond is None else f"if ({cond}) {{ {set_w} }} else {{ {chain} }}"
        return [f"{v}w = (uint64)0;", chain]

    def decided(self, branches):
        """Branches (some of branches()) whose conditions are {v}w where
        which_branch() set it: each then costs the verifier one path."""
        if not self.compared:
            return branches
        index = {cond: k for k, (cond, _, _) in enumerate(self.branches()) if cond is not None}
        return [(cond if cond is None else f"{self.v}w == (uint64){index[cond]}", fmt, args)
                for cond, fmt, args in branches]

    def comparison(self, text, keep, where):
        """An expression true where the whole text (as printf prints it,
        branches()) is `text`: in place, so no variable of it stays live
        beside the others' (live ones multiply the verifier's paths)."""
        v = self.v
        inner = self.str(f"{v}ip", f"{v}il")
        alternatives = []
        for k, (cond, fmt, args) in enumerate(self.branches()):
            if fmt == UNREAD or " " + UNSPELLED in fmt or cond in self._own_conditions:
                continue  # a stand-in (an unread name, an address not spelled, a field): not Go's text
            holds = condition(fmt, args, text, keep, where)
            if holds == "0":
                continue
            # A type's name stands in for a text gobt does not spell (the
            # program's own error types): it equals no text.
            if inner in args:
                holds += f" && {v}ip != {v}inp"
            if cond is None:
                holds += f" && ({v}t == 0 || {v}p != {v}np)"
                if self.net.dns and not self.rich:
                    holds += f" && {v}t != {self.net.dns[0]}"  # its Err alone, not its text
            alternatives.append(f"({v}w == (uint64){k} && ({holds}))")
        return " || ".join(alternatives) if alternatives else "(0 != 0)"

    def unreadable(self, also):
        """The branch for a type whose name could not be read: on a page the
        program has not touched yet, which BPF cannot fault in. Its static
        address, where a name would have been wrong."""
        v = self.v
        static = f"{v}t - {BIAS}" if self.pie else f"{v}t"
        return (f"{v}t != 0 && {v}nl == 0 && {also}", UNREAD, [static])

    def type_branches(self, nil_as_v=False):
        v = self.v
        nil = [(f"{v}t == 0", errortypes.NIL_TEXT, [])] if nil_as_v else []
        return nil + [self.unreadable("1"), (None, "%s", [self.name(f"{v}np", f"{v}nl")])]


def key_mask():
    """The longest name a map key holds on bpftrace 0.17: 2**k - 1 bytes,
    within its string size (a mask the verifier can follow)."""
    size = max(2, string_size())
    return (1 << (size - 1).bit_length() - 1) - 1 if size & (size - 1) else size - 1


def _select(names, cases, defaults=None):
    """Statements setting the variables `names` by the first case whose
    condition holds, else to `defaults` (0): flat ifs, never nested ternaries
    (a chain of 130 crashes bpftrace 0.23's parser)."""
    out = [f"{n} = {d};" for n, d in zip(names, defaults or ["(uint64)0"] * len(names))]
    for cond, values in reversed(cases):
        sets = " ".join(f"{n} = {val};" for n, val in zip(names, values))
        out.append(f"if ({cond}) {{ {sets} }}")
    return out


def _word(addr):
    return f"*(uint64 *)uptr({addr})"


def _escape(text):
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")
