"""gobt -l / -lv: what can be probed in a Go binary, and where its values are.

    $ gobt -lv 'goret:./app:main.swap'
    goret:./app:main.swap  1 RET
        x     string  RAX,RBX
        y     string  RCX,RDI
        ~r0   string  RAX,RBX at return
        ~r1   string  RCX,RDI at return
"""

import os
import sys
import time

from .abi.assign import abi_shape, arg_width, assign, describe
from .binary.disasm import analyze, tail_call_target
from .errors import GobtError
from .binary.inlined import where
from .rewrite.inlined import copies, copy_params
from .rewrite.probes import Context, check_params_complete, functions, not_go_error
from .rewrite.uprobes import offset_covered
from .run.bpftrace import capable_fallback
from .rewrite.signature import subprogram_for
from .lang.script import attach_point
from .lang.source import Source
from .split import in_two

# A progress line appears once a listing has taken this long (seconds).
PROGRESS_AFTER = 1.0

# From this many functions on, -lv reads all of DWARF in one pass
# (dwarfindex.py) instead of searching it per function.
BULK_FUNCTIONS = 32


def list_probes(pattern, verbose, bpftrace, pid=None, out=print, bpftrace_chosen=False, bulk=None):
    """Print the probes a pattern expands to; (False, ctx) if it is not about a Go binary.

    bulk: read DWARF in one pass (True), per function (False), or choose
    by the number of functions (None)."""
    source = Source(pattern, "-l")
    ctx = Context(bpftrace, pid=pid, prefetch_dwarf=verbose)
    try:
        ap = attach_point(pattern, 0, source)
        binary = ctx.binary(ap.target, source.location(0, len(pattern)))
    except GobtError:
        if verbose or not pattern.startswith(("uprobe:", "u:")):
            raise
        return False, ctx  # bpftrace's to answer: a library name, a file that is no ELF
    if ap.is_uprobe and (binary.go_version is None or not (verbose or binary.stripped)):
        # Not Go, or plain -l on a binary whose .symtab bpftrace reads:
        # bpftrace lists its own uprobes. A stripped Go binary's functions
        # are in pclntab alone, which only gobt reads.
        return False, ctx
    if ap.is_gobt:
        not_go_error(ap, binary, source.location(0, len(pattern)))
    _, fns = functions(ap, source, ctx, warn_inlined=False, allow_inlined=True)
    if verbose and binary.has_dwarf:
        binary.dwarf.bulk = len(fns) >= BULK_FUNCTIONS if bulk is None else bulk
    in_copies = copies(ap, binary)
    provider = ap.provider if ap.provider in ("goret", "goentry", "gotrace") else "uprobe"
    if verbose:
        abi = "register ABI" if binary.register_abi else "stack ABI"
        out(f"# {ap.target}: {binary.go_version or 'Go version unknown'}, {binary.arch}, {abi}")
        if binary.debug_file.separate:
            out(f"# DWARF from {binary.dwarf_file.path} ({binary.debug_file.how})")
        elif not binary.has_dwarf:
            for line in _way_forward(binary):
                out(f"#{line[1:]}")
    progress = Progress(len(fns))
    out = progress.around(out)

    def rows(fn):
        return _rows(binary, fn, ap, provider, source, verbose, bpftrace, bpftrace_chosen)

    if verbose and binary.has_dwarf and binary.dwarf.bulk:
        try:
            binary.dwarf.index()  # before the split: the two halves share it
        except GobtError:
            pass  # each function's rows say what is wrong with the DWARF
    try:
        for done, lines in in_two(fns, rows, binary.cache):
            progress.update(done)
            for line in lines:
                out(line)
    except GobtError as e:
        # A declaration the binary refutes: the function's row, then why.
        for line in getattr(e, "rows_before", ()):
            out(line)
        raise
    finally:
        progress.clear()
    n = len(in_copies)
    if not fns and in_copies:
        why = {"goret": "goret cannot fire in them (no RET)", "goentry": "goentry fires at each"}.get(
            provider, f"a uprobe finds no function (as in bpftrace); goentry:{ap.target}:{ap.func} fires at each")
        out(f"{provider}:{ap.target}:{ap.func}  no body of its own: inlined at {n} call site{'s' if n != 1 else ''}, "
            f"{why}")
    elif verbose and provider == "uprobe" and in_copies:
        # bpftrace's meaning: the body only. goentry: is the probe for every call.
        out(f"    uprobe fires at the body only, as in bpftrace; goentry:{ap.target}:{ap.func} fires at the "
            f"{n} inlined cop{'ies' if n != 1 else 'y'} too:")
    if verbose and provider not in ("goret", "gotrace"):
        for site in in_copies:
            out(f"    inlined in {where(binary, site)}  {copy_params(binary, site)}")
    return True, ctx


def _rows(binary, fn, ap, provider, source, verbose, bt, bpftrace_chosen):
    """The lines -l or -lv prints for one function."""
    try:
        found = analyze(binary, fn)
    except GobtError:
        return [f"{provider}:{ap.target}:{fn.name}  not probed: cannot be disassembled whole"]
    n = len(found.ret_offsets)
    if found.ret_offsets:
        note = f"{n} RET{'s' if n != 1 else ''}"
    elif found.tail_calls:
        note = f"no RET: tail call to {tail_call_target(binary, found)}"
    else:
        note = "no RET: never returns"
    note += _reach(binary, fn, found, provider, bt, bpftrace_chosen)
    if verbose:
        inlined = binary.inlined_call_sites(fn)
        if inlined:
            note += f", inlined at {inlined} call site{'s' if inlined > 1 else ''}"
    lines = [f"{provider}:{ap.target}:{fn.name}  {note}"]
    if verbose:
        try:
            lines += ["    " + line for line in _params(binary, fn, ap, provider, source)]
            if provider == "gotrace":
                from .rewrite.gotrace import describe

                lines.append("    each call prints: " + describe(binary, fn, ap, source))
        except GobtError as e:
            e.rows_before = lines
            raise
    return lines


class Progress:
    """"N/M functions" on stderr, rewritten in place, for a listing that
    takes a while: only when stderr is a terminal, and only once the work
    has taken PROGRESS_AFTER seconds (GOBT_PROGRESS_AFTER overrides it, for
    the tests). Rows on the same terminal are written around it."""

    def __init__(self, total, stream=None):
        self.total = total
        self.stream = stream or sys.stderr
        self.shown = False
        try:
            self.enabled = total > 1 and self.stream.isatty()
            after = float(os.environ.get("GOBT_PROGRESS_AFTER", PROGRESS_AFTER))
        except (AttributeError, ValueError, OSError):
            self.enabled, after = False, PROGRESS_AFTER
        self._next = time.monotonic() + after
        self._done = 0
        try:
            self._rows_on_terminal = sys.stdout.isatty()
        except (AttributeError, ValueError, OSError):
            self._rows_on_terminal = False

    def update(self, done):
        self._done = done
        if not self.enabled:
            return
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + 0.1  # redrawn ten times a second at most
        self._draw()

    def _draw(self):
        self.stream.write(f"\r\x1b[Kgobt: {self._done}/{self.total} functions "
                          f"({100 * self._done // self.total}%)")
        self.stream.flush()
        self.shown = True

    def clear(self):
        if self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.shown = False

    def around(self, out):
        """out, clearing the line first and drawing it again after, when
        rows go to the terminal the line is on."""
        def write(line):
            if self.shown and self._rows_on_terminal:
                self.clear()
                out(line)
                sys.stdout.flush()
                self._draw()
            else:
                out(line)
        return write


def _reach(binary, fn, code, provider, bt, bpftrace_chosen):
    """A mark when the bpftrace at hand cannot attach where this probe goes."""
    if bt.attach_form != "file_offset":
        return ""
    if provider in ("goret", "gotrace"):
        offsets = code.ret_offsets
    elif provider == "goentry":
        offsets = [code.entry_offset]
    else:
        # By name at the entry, where bpftrace can read names.
        offsets = [0] if binary.stripped else []
    if not any(offset_covered(binary, binary.file_offset(fn.start + off)) for off in offsets):
        return ""
    fallback = None if bpftrace_chosen else capable_fallback(bt.path)
    if fallback:
        return f"  [bpftrace {bt.version_text} cannot reach it: gobt runs {fallback}]"
    return f"  [unreachable: bpftrace {bt.version_text} without bfd; see CAVEATS in gobt(1)]"


def _params(binary, fn, ap, provider, source):
    if ap.signature is not None:
        # As the probe declares them, checked as a probe would check them.
        return _param_rows(binary, fn, subprogram_for(binary, fn, ap.signature, source))
    rows = binary.cache.get("lv", fn.name)
    if rows is None:
        rows = _param_rows(binary, fn)
        binary.cache.put("lv", fn.name, rows)
    if rows and rows[0].startswith("(") and "has no DWARF" in rows[0]:
        rows = rows + _how_to_declare(binary, fn, provider, ap.target)
    return rows


def _how_to_declare(binary, fn, provider, target):
    """What the binary says of fn's args without DWARF, and how to declare them.

    pclntab's _func records the args size; no example signature is shown,
    as one not made of the function's own types is refused by that very size."""
    recorded = binary.args_size(fn)
    receiver = ""
    if "(*" in fn.name and "[" not in fn.name:
        pkg = fn.name.rsplit(".(", 1)[0]
        receiver = f" (its receiver first: r *{pkg}.{fn.name.split('(*', 1)[1].split(')', 1)[0]})"
    shapes = "a word each for int, pointer, map, chan and func; 2 for a string or interface; 3 for a slice"
    if recorded is None:
        return [f"(the runtime records no args size for {fn.name}: declare its signature{receiver}, "
                f"e.g. {provider}:{target}:{fn.name}(n int) error)"]
    words = recorded // 8
    if binary.register_abi:
        held = (f"{words} word{'s' if words != 1 else ''} of params (register ABI: a spill slot per "
                "register param, params past the registers, results past them; results in registers take none)")
    else:
        held = f"{words} word{'s' if words != 1 else ''} of params and results (stack ABI: every one of them)"
    return [f"(the runtime records {recorded} bytes of args for {fn.name}: {held})",
            f"(to read params by name, declare a signature of these words{receiver} ({shapes}): "
            f"{provider}:{target}:{fn.name}(...) ...)"]


def _param_rows(binary, fn, sub=None):
    if sub is None:
        if not binary.has_dwarf:
            return _no_dwarf_rows(binary)
        try:
            sub = binary.dwarf.subprogram(fn)
        except GobtError as e:
            return [f"({e.message})"]
    try:
        predicted, wheres = _layout(binary, sub)
        check_params_complete(binary, fn, sub, predicted=predicted)
    except GobtError as e:
        return [f"({e.message})"]
    rows = []
    for p, where in zip(sub.params, wheres):
        name = p.name if not p.is_result or p.name == f"~r{p.index}" else f"{p.name} (~r{p.index})"
        rows.append((name, p.type.name, where))
    if not rows:
        return ["(no parameters or results)"]
    w1 = max(len(r[0]) for r in rows)
    w2 = max(len(r[1]) for r in rows)
    return [f"{a:<{w1}}  {b:<{w2}}  {c}" for a, b, c in rows]


def _layout(binary, sub):
    """(args size, where each param is) of a function: the ABI places
    values by their shapes alone (size, alignment, register pieces), and a
    whole-binary listing meets the same lists of shapes again and again
    (cmd/go: 16k functions, 4k such lists)."""
    key = (sub.abi0, tuple((p.is_result, abi_shape(p.type)) for p in sub.params))
    memo = binary.__dict__.setdefault("_lv_layouts", {})
    found = memo.get(key)
    if found is None:
        locations = assign(sub, binary.arch, binary.go_version_tuple)
        wheres = []
        for p in sub.params:
            loc = locations[p.is_result, p.index]
            where = describe(loc, binary.arch)
            if loc.in_registers and any(leaf.is_float for leaf in loc.leaves):
                where += " (unreadable)"
            elif p.type.kind in ("float", "complex"):
                where += " (no float in bpftrace)"
            if p.is_result:
                where += " at return"
            wheres.append(where)
        found = memo[key] = (arg_width(sub, binary.arch, binary.go_version_tuple), wheres)
    return found


def _way_forward(binary):
    from .binary.debugfile import way_forward

    return [f"  {binary.display_path} has no DWARF: goarg cannot name params or results"] + way_forward(binary)


def _no_dwarf_rows(binary):
    """What a binary without DWARF still offers at a function."""
    rows = [f"({binary.display_path} has no DWARF: goarg cannot name params or results)"]
    abi = binary.register_abi
    if abi is None:
        rows.append("retval  refused: on the stack ABI the first result's slot follows params of unknown size")
    else:
        rows.append(f"retval  {abi.int_names[0]} at return, as int64: the first result word if the first "
                    "result is an integer, pointer or the like (its type is unknown without DWARF: "
                    "a float, or no result, reads whatever the register holds)")
    return rows
