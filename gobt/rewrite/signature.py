"""Rewrite: a declared Go signature into the Subprogram the ABI assigns.

lang/signature.py reads `main.tick(n int, label string) (int, string)`;
here it becomes the same dwarf.Subprogram of Params that DWARF would have
given, with types that answer what abi/assign.py and goarg.py ask of a
DWARF type (kind, size, align, fields, elem), so every reader downstream
is unchanged. Then it is checked against what the binary itself says:
its DWARF when it has some (count, names, kinds and sizes must agree), and
always the args size the runtime records for the function.
"""

from .. import record

from ..abi.assign import arg_width
from ..binary.dwarf import Field, Param, Subprogram
from ..binary.symbols import is_wildcard
from ..errors import GobtError, warn
from ..lang.signature import BASIC_TYPES


OPAQUE = "declared by name only: its fields are in DWARF"


class DeclaredType:
    """A type built from its declaration, shaped like dwarf.GoType."""

    def __init__(self, name, kind, size, signed=False, fields=(), elem=None, length=0, align=None):
        self.name = name
        self.kind = kind
        self.size = size
        self.signed = signed
        self.fields = list(fields)
        self.elem = elem
        self.length = length
        self._align = align

    def __repr__(self):
        return f"DeclaredType({self.name}, {self.kind}, {self.size})"

    def field(self, name):
        for f in self.fields:
            if f.name == name:
                return f
        return None

    @property
    def align(self):
        if self._align is not None:
            return self._align
        if self.kind == "array":
            return self.elem.align if self.elem else 1
        if self.kind == "complex":
            return max(1, self.size // 2)
        if self.kind in ("string", "slice", "interface"):
            return 8
        return max(1, min(self.size, 8))


def _basic(name):
    kind, size, signed = BASIC_TYPES[name]
    return DeclaredType(name, kind, size, signed)


def _pointer(elem, name=None):
    return DeclaredType(name or "*" + elem.name, "pointer", 8, elem=elem)


def _word(name, kind="unsafe.Pointer"):
    return DeclaredType(name, kind, 8)


def _interface(name, empty):
    # The runtime's eface (any) and iface (with methods), as DWARF names their words.
    first = "_type" if empty else "tab"
    return DeclaredType(name, "interface", 16, fields=[Field(first, 0, _word("uintptr", "uintptr")),
                                                         Field("data", 8, _word("unsafe.Pointer"))])


def declared_type(t):
    """A DeclaredType from a lang TypeExpr."""
    form = t.form
    if form == "name":
        if t.text == "string":
            return DeclaredType("string", "string", 16, fields=[Field("str", 0, _pointer(_basic("uint8"))),
                                                                Field("len", 8, _basic("int"))])
        if t.text in ("error", "any"):
            return _interface(t.text, t.text == "any")
        if t.text in BASIC_TYPES:
            return _basic(t.text)
        # A named type behind a pointer: its address is all gobt knows. The
        # kind is what goarg's messages show for s.field: say why.
        return DeclaredType(t.text, OPAQUE, 0)
    if form == "pointer":
        return _pointer(declared_type(t.elem), t.text)
    if form == "slice":
        elem = declared_type(t.elem)
        return DeclaredType(t.text, "slice", 24, elem=elem, fields=[
            Field("array", 0, _pointer(elem)), Field("len", 8, _basic("int")), Field("cap", 16, _basic("int"))])
    if form == "array":
        elem = declared_type(t.elem)
        return DeclaredType(t.text, "array", elem.size * t.length, elem=elem, length=t.length)
    if form in ("map", "chan", "func"):
        return DeclaredType(t.text, form, 8)
    if form == "interface":
        return _interface(t.text, t.text == "interface {}")
    raise GobtError(f"gobt cannot place a {t.text} without DWARF")  # lang refuses these first


def declared_subprogram(name, sig):
    """The Subprogram a signature declares for the function `name`.

    A param left unnamed (or _) is ~pN by its position, a result ~rN,
    as Go's compiler names them.
    """
    params = []
    for i, p in enumerate(sig.params):
        params.append(Param(p.name or f"~p{i}", declared_type(p.type), False, i))
    for i, p in enumerate(sig.results):
        params.append(Param(p.name or f"~r{i}", declared_type(p.type), True, i))
    return Subprogram(name, params)


def _has_dwarf(binary):
    return binary.has_dwarf


def _unnamed(name):
    return not name or name.startswith("~") or name == "_"


def _shape(p):
    t = p.type
    return f"{t.name} ({t.kind}, {t.size} bytes)"


def _same_kind(a, b):
    addresses = {"pointer", "unsafe.Pointer"}
    return a == b or (a in addresses and b in addresses)


def declared_for(ap, binary, fns, source):
    """The Subprogram an attach point's signature declares for the one function it names."""
    if ap.signature is None:
        return None
    if not fns and not is_wildcard(ap.func):
        raise GobtError(f"'{ap.func}' has no body of its own (it is inlined wherever it is called): "
                        "a declared signature describes a function's body; goarg at its inlined copies reads "
                        "what DWARF locates there", source.location(ap.span.start + ap.func_offset, len(ap.func)))
    if is_wildcard(ap.func) or len(fns) != 1:
        names = ", ".join(f.name for f in fns[:3]) + (" ..." if len(fns) > 3 else "")
        raise GobtError(f"a declared signature is for one function; '{ap.func}' matches {len(fns)} ({names})",
                        source.location(ap.span.start + ap.func_offset, len(ap.func)))
    return subprogram_for(binary, fns[0], ap.signature, source)


def declared_key(declared):
    """What a read's cache key adds for a declared Subprogram (none for DWARF's)."""
    if declared is None:
        return ""
    return "|" + "|".join(f"{p.name}:{p.type.name}:{int(p.is_result)}" for p in declared.params)


def subprogram_for(binary, fn, sig, source):
    """fn's Subprogram as the signature declares it, checked against the binary."""
    declared = declared_subprogram(fn.name, sig)
    loc = source.location(sig.offset, len(sig.text))
    _check_receiver(fn, sig, source)
    if _has_dwarf(binary):
        try:
            described = binary.dwarf.subprogram(fn)
        except GobtError:
            described = None  # DWARF without this function (assembly): as if stripped
        if described is not None:
            return _agree_with_dwarf(described, declared, sig, source)
    recorded = binary.args_size(fn)
    predicted = arg_width(declared, binary.arch, binary.go_version_tuple)
    if recorded is None:
        warn(f"{binary.display_path} records no args size for {fn.name}: gobt cannot check "
             "the declared signature against it", loc)
    elif recorded != predicted:
        abi = "register ABI: stack args and results, and a spill slot per register arg" \
            if binary.register_abi else "stack ABI: every param and result"
        raise GobtError(
            f"the signature declares {predicted} bytes of arguments for {fn.name}, the Go runtime "
            f"records {recorded} ({abi})", loc,
            ["  check the params and results against the function's source: "
             "their number, their types, the receiver first"])
    return declared


def _check_receiver(fn, sig, source):
    """A method takes its receiver first; main.(*S).M's is a pointer."""
    if "(*" not in fn.name or "[" in fn.name:
        return
    first = sig.params[0] if sig.params else None
    if first is None or first.type.form != "pointer":
        at = first or sig
        offset = at.offset if first is None else first.type.offset
        width = (len(sig.text) if first is None else first.type.width)
        receiver = fn.name[fn.name.index("(*") + 2 : fn.name.index(")", fn.name.index("(*"))]
        raise GobtError(f"{fn.name} is a method: declare its receiver first, a pointer", source.location(offset, width),
                        [f"  e.g. {fn.name}(r *{fn.name.rsplit('.(', 1)[0]}.{receiver}, ...)"])


def _agree_with_dwarf(dwarf_sub, declared, sig, source):
    """DWARF's Subprogram when the declaration agrees with it; names the
    declaration gives where DWARF has none (an unnamed result, ~r0) are kept."""
    renamed = {}
    for is_result, role, written in ((False, "param", sig.params), (True, "result", sig.results)):
        have = [p for p in dwarf_sub.params if p.is_result == is_result and p.name != ".dict"]
        said = [p for p in declared.params if p.is_result == is_result]
        loc = source.location(sig.offset, len(sig.text))
        if len(have) != len(said):
            listed = ", ".join(f"{p.name} {p.type.name}" for p in have) or "none"
            raise GobtError(
                f"the signature declares {len(said)} {role}{'s' if len(said) != 1 else ''} for "
                f"{dwarf_sub.name}, its DWARF has {len(have)} ({listed})", loc,
                ["  fix the declaration, or leave it out: with DWARF gobt reads the signature itself"])
        for dw, decl, w in zip(have, said, written):
            if _unnamed(dw.name) and not _unnamed(decl.name):
                renamed[id(dw)] = decl.name
            at = source.location(w.offset, w.width)
            if not _unnamed(dw.name) and not _unnamed(decl.name) and dw.name != decl.name:
                raise GobtError(f"{role} {decl.index} of {dwarf_sub.name} is '{dw.name}' in its DWARF, "
                                f"declared '{decl.name}'", at)
            if not _same_kind(dw.type.kind, decl.type.kind) or dw.type.size != decl.type.size:
                tloc = source.location(w.type.offset, w.type.width)
                raise GobtError(f"{role} '{decl.name}' of {dwarf_sub.name} is {_shape(dw)} in its DWARF, "
                                f"declared {_shape(decl)}", tloc)
    if not renamed:
        return dwarf_sub
    params = [record.replace(p, name=renamed.get(id(p), p.name)) for p in dwarf_sub.params]
    return record.replace(dwarf_sub, params=params)


def check_params_complete(binary, fn, sub, loc=None, predicted=None):
    """Refuse to guess when DWARF does not describe every arg.

    DWARF leaves out some params that still take registers or stack (a blank
    `_` before Go 1.22); every later param would then be read from the wrong
    place. The runtime's own record of the args size tells.
    """
    recorded = binary.args_size(fn)
    if predicted is None:
        predicted = arg_width(sub, binary.arch, binary.go_version_tuple)
    if recorded is not None and recorded != predicted:
        raise GobtError(
            f"gobt cannot place the params of {fn.name}: DWARF describes {predicted} bytes of "
            f"arguments, the runtime records {recorded}",
            loc,
            ["  DWARF leaves out some params (a blank _ before Go 1.22); name them, or read "
             "registers with reg() as -lv shows"],
        )
