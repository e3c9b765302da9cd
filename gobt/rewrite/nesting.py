"""gotrace's indent: how many traced calls of the goroutine are open.

The count lives in gobt's time map under a probe id no probe has, keyed by
the goroutine's g. Each traced entry reads it, carries it to its return
(as a param is carried) and adds one; the return puts back the count it
carried rather than subtract, so a call that never returned (a panic's)
is forgotten at its caller's return. A line shows the count as its
indent, two spaces a level.
"""

from .gate import TIME_MAP

NEST = "__gobt_nest"  # the word gotrace writes where a line's indent goes
CELL = f"{TIME_MAP}[-2, -2, $__gobt_g, (uint64)0]"
CARRIED = "$__gobt_n"  # the count the entry found, carried to the return
AT_ENTRY = f"{CARRIED} = {CELL}; {CELL} = {CARRIED} + (uint64)1;"
# Nesting deeper than this indents as deep as this.
LEVELS = 8
VAR = "$__gobt_i"


def at_return(level):
    """The return's statement: the count back to what its entry found."""
    return f"if ({level} == 0) {{ delete({CELL}); }} else {{ {CELL} = {level}; }}"


def shown(level, strings_on_stack):
    """The indent's expression in the line's printf.

    bpftrace 0.23: literals in a ternary (a string variable there took a
    str() buffer's room, and a type name's read beside it no longer fit:
    "invalid access to map value"). 0.17: a variable set in ifs (the
    ternary, nested, 0.17 compiles into a program the verifier refuses:
    "R5 !read_ok"); before_block sets it."""
    if strings_on_stack:
        return VAR
    out = '"' + "  " * LEVELS + '"'
    for n in reversed(range(LEVELS)):
        out = f'({level} == {n} ? "{"  " * n}" : {out})'
    return out


def before_block(level, strings_on_stack):
    """Statements at the block's start: 0.17's indent variable."""
    if not strings_on_stack:
        return []
    out = [f'{VAR} = "";']
    for n in range(1, LEVELS + 1):
        out.append(f'if ({level} {"==" if n < LEVELS else ">="} {n}) {{ {VAR} = "{"  " * n}"; }}')
    return out
