"""Rewrite: probes at a function's inlined copies, and goarg inside them.

An inlined copy has no entry of its own: its params live wherever the
caller's code left them, which DWARF says per address (a location list
entry of the copy's DW_TAG_formal_parameter). gobt reads what DWARF
locates at the copy's entry, when that is a register or an SP-relative
slot, and refuses otherwise. As each copy keeps a param somewhere else, a
probe covering several copies picks the read by the address it fired at.
"""

from ..abi.assign import Leaf, Location
from ..binary.disasm import is_instruction_boundary
from ..binary.inlined import DWARF_REGS, finder_of, inlined_sites, is_position_independent, where
from ..binary.symbols import is_wildcard
from ..binary.symtab import Function
from ..errors import GobtError
from .goarg import GoargResolver

# The register holding the address a uprobe fired at.
IP = {"amd64": "ip", "arm64": "pc"}


def copies(ap, binary):
    """The inlined copies an attach point's exact Go name covers."""
    if is_wildcard(ap.func) or ap.probe_offset or binary.go_version is None:
        return []
    return inlined_sites(binary, ap.func)


def site_address(site):
    """Where a probe Site fires: a copy's entry, a body's entry or a RET."""
    if site.inlined is not None:
        return site.inlined.address
    return site.function.start + (site.code.entry_offset if site.code and site.at == "entry" else 0)


def caller_of(site):
    return Function(site.caller, site.caller_start, site.caller_size)


def at_copies(ctx, ap, binary, loc, sites_out, site_type, uprobe_at):
    """One uprobe at the entry of each inlined copy of ap's function, inside
    its caller; a site_type (probes.Site) for each added to sites_out."""
    sites = copies(ap, binary)
    target = ctx.attach_target(ap)
    sites_out += [site_type(binary, target, caller_of(s), "inline", inlined=s) for s in sites]
    attach = []
    ctx.probe_count += len(sites)
    for site in sites:
        caller = caller_of(site)
        if not is_instruction_boundary(binary, caller, site.offset):
            raise GobtError(
                f"DWARF puts the entry of {site.name} inlined at {where(binary, site)} inside an "
                "instruction; gobt places no probe there", loc)
        attach.append(uprobe_at(target, binary, caller, site.offset, ctx, loc))
    return attach


def resolve_site(site, path, where_in_path, is_retval, bpftrace, resolve):
    """(expression, Go kind, read at entry for a return site) at any Site."""
    if site.at == "inline":
        return (*resolve_in_copy(site.binary, site.inlined, path, where_in_path, bpftrace), False)
    return resolve(site, path, where_in_path, is_retval, bpftrace)


def only_inlined_error(name, sites, loc):
    n = len(sites)
    return GobtError(
        f"{name} is inlined at {n} call site{'s' if n != 1 else ''} and has no body of its own; "
        "goentry: fires at each, goret cannot (an inlined copy has no RET)",
        loc,
        ["  build with -gcflags=all=-l to keep a body to return from"],
    )


def resolve_in_copy(binary, site, path, where_in_path, bpftrace):
    """(expression, Go kind) reading PATH at an inlined copy's entry (cached)."""
    nul = bpftrace.str_size_counts_nul
    key = f"{site.name}|inline@{site.die}|{path}|{int(nul)}"
    row = binary.cache.get("read", key)
    if row is not None:
        return tuple(row)
    finder = finder_of(binary)
    die = finder.die(site.die)
    abstract = die.get_DIE_from_attribute("DW_AT_abstract_origin")
    sub = binary.dwarf._describe(abstract, Function(site.name, 0, 0))
    resolver = GoargResolver(sub, {}, "entry", binary.register_abi, nul)
    param = resolver.head(path, where_in_path)
    name_loc = where_in_path(0, len(param.name))
    here = f"the copy of {site.name} inlined at {where(binary, site)}"
    if param.is_result:
        raise GobtError(f"'{param.name}' is a result of {site.name}: {here} has no RET to read it at",
                        name_loc, ["  a goret: on the function's own body reads it where it is not inlined"])
    ops = None
    for child in die.iter_children():
        origin = child.attributes.get("DW_AT_abstract_origin")
        if origin is not None and origin.value == param.die.offset:
            ops = finder.location_at(child, site.address)
            break
    loc = _location(ops, param.type, binary.arch)
    if isinstance(loc, str):
        raise GobtError(f"goarg({param.name}) cannot be read at {here}: {loc}", name_loc,
                        ["  read it where the function is not inlined (goret:, or build with "
                         "-gcflags=all=-l), or read registers with reg()"])
    resolver.locations = {(False, param.index): loc}
    expr, kind = resolver.expression(path, where_in_path)
    binary.cache.put("read", key, [expr, kind])
    return expr, kind


def copy_params(binary, site):
    """What -lv shows of a copy's params: where DWARF has each at its entry."""
    try:
        finder = finder_of(binary)
        die = finder.die(site.die)
        sub = binary.dwarf._describe(die.get_DIE_from_attribute("DW_AT_abstract_origin"),
                                     Function(site.name, 0, 0))
        concrete = {c.attributes["DW_AT_abstract_origin"].value: c for c in die.iter_children()
                    if "DW_AT_abstract_origin" in c.attributes}
        shown = []
        for p in sub.args:
            child = concrete.get(p.die.offset)
            loc = _location(finder.location_at(child, site.address) if child is not None else None,
                            p.type, binary.arch)
            shown.append(f"{p.name} {'-' if isinstance(loc, str) else _describe(loc)}")
        return ", ".join(shown)
    except GobtError as e:
        return f"({e.message})"


def _describe(loc):
    """RAX,RBX or [SP+8], as -lv spells a body's locations."""
    if loc.in_registers:
        return ",".join(leaf.reg.upper() if leaf.is_float or leaf.reg[0] == "r" else "R" + leaf.reg.upper()
                        for leaf in loc.leaves)
    return f"[SP+{loc.stack}]"


def _location(ops, type_, arch):
    """A Location for DWARF ops, or why there is none."""
    if not ops:
        return "DWARF gives it no location there (the compiler did not keep it)"
    regs = DWARF_REGS.get(arch, ())
    floats = 17 if arch == "amd64" else 64  # first SSE (amd64) / V (arm64) register number

    def register(op):
        name = op.op_name
        if name.startswith("DW_OP_reg") and name != "DW_OP_regx":
            n = int(name[len("DW_OP_reg"):])
        elif name == "DW_OP_regx":
            n = op.args[0]
        else:
            return None
        if n < len(regs):
            return regs[n], False
        if floats <= n < floats + 32:
            return f"{'X' if arch == 'amd64' else 'F'}{n - floats}", True
        return f"register {n}", None

    if len(ops) == 1:
        reg = register(ops[0])
        if reg is not None:
            if reg[1] is None or type_.size > 8:
                return f"DWARF puts it in {reg[0]}, which gobt cannot read as a {type_.name}"
            return Location(leaves=(Leaf(0, type_.size, reg[0], reg[1]),))
        op = ops[0]
        sp = "DW_OP_breg7" if arch == "amd64" else "DW_OP_breg31"
        if op.op_name == sp:
            return Location(stack=op.args[0])
        if op.op_name == "DW_OP_fbreg":
            return (f"it is in the caller's frame (frame base {op.args[0]:+d}), which gobt cannot place "
                    "from inside the caller")
        return f"DWARF locates it as {op.op_name}, which gobt cannot translate"
    # Pieces: each a register, together the whole value.
    leaves = []
    offset = 0
    for i in range(0, len(ops), 2):
        piece = ops[i + 1] if i + 1 < len(ops) else None
        reg = register(ops[i])
        if piece is None or piece.op_name != "DW_OP_piece" or reg is None or reg[1] is None:
            return "DWARF gives only part of it a register there"
        leaves.append(Leaf(offset, piece.args[0], reg[0], reg[1]))
        offset += piece.args[0]
    if offset != type_.size:
        return "DWARF locates only part of it there"
    return Location(leaves=tuple(leaves))


def by_address(binary, reads, loc):
    """One expression for a probe whose sites read a value differently:
    chosen by the address the probe fired at. reads: [(address, expr)].

    Each read is multiplied by its test of the address, and the products
    summed (exactly one test holds): bpftrace 0.17 compiles `c ? reg(a) :
    reg(b)` into a read through a computed context pointer, which the
    kernel's verifier rejects.
    """
    if is_position_independent(binary):
        raise GobtError(
            "goarg reads a different place at each inlined copy, which gobt tells apart by address; "
            f"{binary.display_path} is position-independent, so the addresses are known only at run time",
            loc)
    distinct = {}
    for address, expr in reads:
        distinct.setdefault(expr, []).append(address)
    ip = f'reg("{IP[binary.arch]}")'
    tests = [" || ".join(f"{ip} == 0x{a:x}" for a in addresses) for addresses in distinct.values()]
    strings = [_str_parts(e) for e in distinct]
    if all(strings):
        ptr = " + ".join(f"{_one_if(t, p)} * {p}" for t, (p, _) in zip(tests, strings))
        length = " + ".join(f"{_one_if(t, n)} * ({n})" for t, (_, n) in zip(tests, strings))
        return f"str({ptr}, {length})"
    if any(strings):
        raise GobtError("goarg reads a string at some inlined copies only", loc)
    return "(" + " + ".join(f"{_one_if(t, e)} * {e}" for t, e in zip(tests, distinct)) + ")"


def _one_if(test, expr):
    """1 where test holds, else 0, of the read's signedness (bpftrace warns
    of arithmetic on mixed signs). Not a cast of the test itself: bpftrace
    0.23 sign-extends a true comparison to -1."""
    if expr.lstrip("*(").startswith("int"):
        return f"({test} ? 1 : 0)"
    return f"({test} ? (uint64)1 : (uint64)0)"


def _str_parts(expr):
    """(pointer, length) of the str(PTR, LEN) goarg makes for a string, or None."""
    if not expr.startswith("str(") or not expr.endswith(")"):
        return None
    inner = expr[4:-1]
    depth = 0
    for i, c in enumerate(inner):
        depth += c == "("
        depth -= c == ")"
        if c == "," and depth == 0:
            return inner[:i], inner[i + 1 :].strip()
    return None
