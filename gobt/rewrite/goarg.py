"""Rewrite goarg(PATH): a Go value, by name, into a bpftrace expression.

A PATH starts at a param or result and walks `.field` (through pointers,
which are dereferenced automatically) and `[N]`. While the walk stays
inside a register-assigned value it picks registers; once it leaves
registers (a pointer, a stack-assigned value) it builds a memory address.
The last step decides how to read: a cast register, a typed load, or
str(ptr, len) for strings. What cannot be read correctly is an error.
"""

import re
from ..record import dataclass

from ..abi.assign import assign
from ..binary.dwarf import ADDRESS_KINDS
from ..binary.gobinary import require_go
from ..errors import GobtError
from .signature import check_params_complete, declared_key

_HEAD = re.compile(r"\.?[A-Za-z_~][\w~]*")
_FIELD = re.compile(r"\.\s*([A-Za-z_]\w*)")
_INDEX = re.compile(r"\[\s*(\d+)\s*\]")
_SPACE = re.compile(r"\s*")

_NAVIGABLE = {"struct", "string", "slice", "interface"}


@dataclass
class _At:
    type: object  # GoType
    leaves: dict | None  # offset within the param -> Leaf, while in registers
    offset: int  # offset within the param (register case)
    addr: str | None  # address expression (memory case)


def parse_path(path, where):
    """[(kind, value, column)]: the head name, then ('field', name) / ('index', n)."""
    m = _HEAD.match(path)
    if not m:
        raise GobtError(
            "goarg needs a parameter or result name, e.g. goarg(req.Method) or goarg(~r0)", where(0, len(path) or 1)
        )
    steps = [("name", m.group(0), 0)]
    pos = m.end()
    while pos < len(path):
        pos = _SPACE.match(path, pos).end()
        if pos >= len(path):
            break
        for kind, regex in (("field", _FIELD), ("index", _INDEX)):
            m = regex.match(path, pos)
            if m:
                value = m.group(1) if kind == "field" else int(m.group(1))
                steps.append((kind, value, pos))
                pos = m.end()
                break
        else:
            raise GobtError(
                f"cannot read goarg path '{path}' from here: expected .FIELD or [N]", where(pos, len(path) - pos)
            )
    return steps


_CAST = re.compile(r"\((u?)int(8|16|32|64)\)reg\(|\*\((u?)int(8|16|32|64) \*\)")


def number_type(expr):
    """(signed, size in bytes) of the integer an expression from GoargResolver
    reads, or None (a string). Its shapes are _scalar's: a bare register is
    a uint64, else a cast of a register or a typed load comes first."""
    if expr.startswith("reg("):
        return (False, 8)
    m = _CAST.match(expr)
    if not m:
        return None
    unsigned, bits = (m.group(1), m.group(2)) if m.group(2) else (m.group(3), m.group(4))
    return (not unsigned, int(bits) // 8)


def carried_cast(exprs):
    """The cast that carries an integer read at a call's entry whole through
    gobt's time map (64-bit values, rewrite/probes.py) to the return: a
    signed one sign-extended, and read back signed with the same cast."""
    numbers = [number_type(e) for e in exprs]
    return "(int64)" if any(n and n[0] for n in numbers) else "(uint64)"


def _int_type(size, signed):
    bits = {1: 8, 2: 16, 4: 32, 8: 64}.get(size)
    if bits is None:
        return None
    return f"{'int' if signed else 'uint'}{bits}"


class GoargResolver:
    """Turns paths into expressions for one function at one place (entry or return)."""

    def __init__(self, subprogram, locations, at, register_abi, str_size_counts_nul=False):
        self.subprogram = subprogram
        self.locations = locations
        self.at = at  # "entry" or "return"
        self.register_abi = register_abi  # the ABI table, or None for the stack ABI
        # bpftrace >= 0.23 counts the NUL it adds in str()'s size.
        self.str_size_counts_nul = str_size_counts_nul

    def head(self, path, where):
        """The param or result a path starts at."""
        name = parse_path(path, where)[0][1]
        param = self.subprogram.find(name)
        if param is None:
            raise GobtError(
                f"{self.subprogram.name} has no parameter or result named '{name}'",
                where(0, len(name)),
                self._signature_hint(),
            )
        return param

    def expression(self, path, where):
        """The bpftrace expression reading PATH; (expression, Go kind)."""
        steps = parse_path(path, where)
        param = self.head(path, where)
        self._check_place(param, where(0, len(steps[0][1])))
        loc = self.locations[param.is_result, param.index]
        if loc.in_registers:
            leaves = {leaf.offset: leaf for leaf in loc.leaves}
            at = _At(param.type, leaves, 0, None)
        else:
            at = _At(param.type, None, 0, f'reg("sp") + {loc.stack}')
        shown = steps[0][1]
        for kind, value, col in steps[1:]:
            at = self._step(at, kind, value, shown, lambda w=len(str(value)) + 1, c=col: where(c, w))
            shown += f".{value}" if kind == "field" else f"[{value}]"
        return self._read(at, shown, where(0, len(path))), at.type.kind

    # -- where goarg is valid ------------------------------------------------

    def _check_place(self, param, loc):
        if self.at == "entry" and param.is_result:
            raise GobtError(
                f"'{param.name}' is a result of {self.subprogram.name}: it has a value only at return",
                loc,
                ["  read it in a goret: probe"],
            )
        if self.at == "return" and not param.is_result:
            raise GobtError(
                f"'{param.name}' is a parameter of {self.subprogram.name}: at a RET its register or "
                "stack slot may already hold something else",
                loc,
                ["  read it in a uprobe or goentry at the function's entry"],
            )

    def _signature_hint(self):
        rows = []
        for p in self.subprogram.params:
            role = "result" if p.is_result else "param"
            alias = f" (also ~r{p.index})" if p.is_result and p.name != f"~r{p.index}" else ""
            rows.append(f"    {role:6} {p.name}{alias}  {p.type.name}")
        return ["  it has:"] + rows if rows else ["  it has no parameters or results"]

    # -- walking ---------------------------------------------------------------

    def _deref(self, at, shown, loc):
        """Follow a pointer: the value pointed to is in memory."""
        pointer = self._scalar(at, shown, loc, type_name="uint64")
        return _At(at.type.elem, None, 0, pointer)

    def _step(self, at, kind, value, shown, where):
        loc = where()
        if kind == "field":
            while at.type.kind == "pointer":
                if at.type.elem is None:
                    raise GobtError(f"{shown} is an untyped pointer; it has no fields", loc)
                at = self._deref(at, shown, loc)
            if at.type.kind not in _NAVIGABLE:
                raise GobtError(f"{shown} is a {at.type.name} ({at.type.kind}); it has no field '{value}'", loc)
            f = at.type.field(value)
            if f is None:
                names = ", ".join(x.name for x in at.type.fields)
                raise GobtError(f"{shown} ({at.type.name}) has no field '{value}'", loc, [f"  its fields: {names}"])
            return self._offset(at, f.offset, f.type)
        # [N]
        while at.type.kind == "pointer" and at.type.elem is not None and at.type.elem.kind == "array":
            at = self._deref(at, shown, loc)
        if at.type.kind == "array":
            if value >= at.type.length:
                raise GobtError(f"index {value} is out of range for {shown} ({at.type.name})", loc)
            return self._offset(at, value * at.type.elem.size, at.type.elem)
        if at.type.kind == "slice":
            array = at.type.field("array")
            base = self._scalar(self._offset(at, array.offset, array.type), shown, loc, type_name="uint64")
            elem = at.type.elem
            return _At(elem, None, 0, f"{base} + {value * elem.size}" if value else base)
        raise GobtError(f"{shown} is a {at.type.name}; only arrays and slices take [N]", loc)

    def _offset(self, at, delta, new_type):
        if at.leaves is not None:
            return _At(new_type, at.leaves, at.offset + delta, None)
        return _At(new_type, None, 0, f"{at.addr} + {delta}" if delta else at.addr)

    # -- reading ---------------------------------------------------------------

    def _scalar(self, at, shown, loc, type_name=None):
        t = at.type
        if type_name is None:
            type_name = "uint8" if t.kind == "bool" else _int_type(t.size, t.signed)
        if at.leaves is not None:
            leaf = at.leaves.get(at.offset)
            if leaf is None:
                raise GobtError(f"internal: no register holds {shown} at offset {at.offset}", loc)
            if leaf.is_float:
                raise GobtError(
                    f"{shown} ({t.name}) is passed in {leaf.reg}: BPF cannot read SSE/FP registers", loc
                )
            reg = f'reg("{leaf.reg}")'
            # The ABI leaves a register's bits above the value unspecified.
            return reg if type_name == "uint64" else f"({type_name}){reg}"
        return f"*({type_name} *)({at.addr})"

    def _read(self, at, shown, loc):
        t = at.type
        kind = t.kind
        if kind in ("int", "uint", "bool") or kind in ADDRESS_KINDS:
            if _int_type(t.size, t.signed) is None and kind != "bool":
                raise GobtError(f"{shown} ({t.name}) has size {t.size}, which gobt cannot read as a number", loc)
            return self._scalar(at, shown, loc)
        if kind == "string":
            ptr = self._scalar(self._offset(at, 0, t.fields[0].type), shown, loc, type_name="uint64")
            length = self._scalar(self._offset(at, 8, t.fields[1].type), shown, loc, type_name="int64")
            return f"str({ptr}, {length} + 1)" if self.str_size_counts_nul else f"str({ptr}, {length})"
        if kind == "interface":
            return self._scalar(self._offset(at, 0, t.fields[0].type), shown, loc, type_name="uint64")
        if kind in ("float", "complex"):
            where = ""
            if at.leaves is not None and at.offset in at.leaves:
                where = f" in {at.leaves[at.offset].reg}: BPF cannot read SSE/FP registers, and"
            raise GobtError(
                f"{shown} is a {t.name}{where or ':'} bpftrace has no floating-point type",
                loc,
                ["  gobt will not print a float's bits as if they were an integer"],
            )
        hints = {
            "struct": "read one of its fields: " + ", ".join(f"{shown}.{f.name}" for f in t.fields[:6]),
            "slice": f"read {shown}.len, {shown}.cap, {shown}.array or {shown}[N]",
            "array": f"read an element, {shown}[N] with N < {t.length}",
        }
        hint = hints.get(kind, "")
        raise GobtError(f"{shown} is a {t.name} ({kind}); goarg reads single values", loc, [f"  {hint}"] if hint else [])


def retval_without_dwarf(binary, loc=None):
    """retval where no DWARF gives the function's results: the ABI's first
    result word, as a 64-bit integer.

    Without DWARF gobt cannot know the result's type, nor whether there is
    one: an integer, bool or pointer reads right (a narrower integer is
    sign-extended from the register as Go left it, which is right for
    int64/int and reads e.g. an int32 -1 as 4294967295); a string or slice
    gives its data pointer; a float, or no result at all, gives whatever
    the register holds. The stack ABI (before Go 1.17) puts the first result
    after the params, whose size only DWARF knows, so it is refused there.
    """
    abi = binary.register_abi
    if abi is None:
        raise GobtError(
            f"retval: {binary.display_path} has no DWARF and uses the stack ABI "
            f"({binary.go_version or 'Go before 1.17'}): its first result follows the params on "
            "the stack, and only DWARF says how many bytes of params there are",
            loc,
            ["  rebuild without -ldflags=-w, or read the slot yourself: *(int64 *)(reg(\"sp\") + N)"],
        )
    return f'(int64)reg("{abi.int_regs[0]}")'


def resolve(site, path, where, is_retval, bpftrace):
    """(expression, Go kind, read at entry for a return site), cached per binary."""
    require_go(site.binary, "goarg and retval read Go's calling convention")
    nul = bpftrace.str_size_counts_nul
    key = f"{site.function.name}|{site.at}|{path}|{int(nul)}{declared_key(site.declared)}"
    row = site.binary.cache.get("read", key)
    if row is not None:
        return tuple(row)
    if is_retval and site.declared is None and not site.binary.has_dwarf:
        return retval_without_dwarf(site.binary, where(0, 6)), "int", False
    sub = site.declared or site.binary.dwarf.subprogram(site.function)
    if is_retval and not sub.results:
        raise GobtError(f"retval: {sub.name} returns nothing", where(0, 6))
    check_params_complete(site.binary, site.function, sub, where(0, len(path)))
    locations = assign(sub, site.binary.arch, site.binary.go_version_tuple)
    resolver = GoargResolver(sub, locations, site.at, site.binary.register_abi, nul)
    at_entry = site.at == "return" and not resolver.head(path, where).is_result
    if at_entry:
        # A param at return: read at entry, carried to this return.
        resolver = GoargResolver(sub, locations, "entry", site.binary.register_abi, nul)
    expr, kind = resolver.expression(path, where)
    site.binary.cache.put("read", key, [expr, kind, at_entry])
    return expr, kind, at_entry
