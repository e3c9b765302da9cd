"""What a function takes and returns, as gobt describes it: Params in the
ABI's order, whichever reader (DWARF or a signature in the probe) found them,
with the generic dictionary put where the ABI passes it."""

import re
from ..record import dataclass, field


class _Word:
    """A pointer-sized word no DWARF entry describes (the generic dictionary)."""

    name = "uintptr"
    kind = "uintptr"
    size = 8
    align = 8
    signed = False
    fields = []
    elem = None
    length = 0


WORD = _Word()


def _is_method(symbol):
    """pkg.(*T).M or pkg.T.M, as opposed to pkg.F."""
    plain = re.sub(r"\[.*\]", "", symbol)  # type arguments may hold '/' and '.'
    rest = plain[plain.rfind("/") + 1 :]
    rest = rest[rest.find(".") + 1 :]
    return "." in rest.replace("(*", "").replace(")", "")


_CLOSURE = re.compile(r"(?:^|\.)(?:func|gowrap|deferwrap)\d+|-range\d+")


def _is_shape_instance(symbol):
    """A generic function's or method's shape instance, which takes a dictionary.

    Its closures (F[...].func1, F[...]-range1) share the shape in their
    names but get the dictionary through their closure context instead.
    """
    if "[go.shape." not in symbol:
        return False
    if symbol.startswith(("type:.", "type..")):
        # The compiler's own helpers for a shape type (type:.eq.T[go.shape...]:
        # func(p, q *T) bool) take no dictionary (cmd/go 1.23: 8 such).
        return False
    return not _CLOSURE.search(symbol[symbol.rfind("]") + 1 :])


def _place_dictionary(params, symbol, go_version):
    """Put a shape instance's dictionary arg where the ABI passes it.

    DWARF names it only from Go 1.27 (and then, in out-of-line copies of
    inlinable functions, after the results); before, gobt adds it. It is
    the first arg, except after a method's receiver since the unified IR
    frontend (Go 1.20; seen first on 1.19 and after the receiver on 1.21+).
    """
    if not _is_shape_instance(symbol):
        return params
    dicts = [p for p in params if p.name == ".dict"]
    if not dicts and go_version is not None and go_version >= (1, 27):
        return params  # DWARF would have named it: trust DWARF
    dictionary = dicts[0] if dicts else Param(".dict", WORD, False, 0, None)
    dictionary.is_result = False
    args = [p for p in params if not p.is_result and p is not dictionary]
    results = [p for p in params if p.is_result]
    after_receiver = _is_method(symbol) and go_version is not None and go_version >= (1, 20)
    args.insert(1 if after_receiver and args else 0, dictionary)
    for i, p in enumerate(args):
        p.index = i
    for i, p in enumerate(results):
        p.index = i
    return args + results


@dataclass
class Param:
    """A receiver, parameter or result, in declaration order."""

    name: str
    type: object  # a dwarf.GoType, or the declared type of signature.py
    is_result: bool
    index: int  # position among params, or among results
    die: object = field(repr=False, default=None)


@dataclass
class Subprogram:
    name: str
    params: list  # receiver and params, then results
    die: object = field(repr=False, default=None)

    @property
    def abi0(self):
        """Assembly functions and their wrappers take args on the stack."""
        return self.name.endswith(".abi0")

    @property
    def args(self):
        return [p for p in self.params if not p.is_result]

    @property
    def results(self):
        return [p for p in self.params if p.is_result]

    def find(self, name):
        # ~rN is the N-th result on every Go version, although Go 1.15/1.16
        # named unnamed results after the params (~r2, ~r3 for two params).
        m = re.fullmatch(r"~r(\d+)", name)
        if m:
            index = int(m.group(1))
            results = self.results
            return results[index] if index < len(results) else None
        for p in self.params:
            if p.name == name:
                return p
        return None
