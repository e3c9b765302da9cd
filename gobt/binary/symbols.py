"""Function-name patterns, as bpftrace users write them for Go.

A `*` is a wildcard, as in bpftrace, except where Go's own syntax puts a
star in a name: a pointer receiver or type argument, `(*T)`, `[*T]`,
`[K,*V]`. A name that exists exactly as written is always taken as that
one function, whatever stars it holds.
"""

import re

# A star right after one of these is part of a Go type, not a wildcard.
_TYPE_STAR_AFTER = "([,*"


def wildcard_stars(pattern):
    """Positions of the stars in pattern that are wildcards."""
    return [i for i, c in enumerate(pattern) if c == "*" and (i == 0 or pattern[i - 1] not in _TYPE_STAR_AFTER)]


def is_wildcard(pattern):
    return bool(wildcard_stars(pattern))


def pattern_regex(pattern, any_char="."):
    """Regex text for the pattern: literal text, and `any_char*` for each wildcard."""
    out = []
    pos = 0
    for i in wildcard_stars(pattern):
        out.append(re.escape(pattern[pos:i]))
        out.append(f"{any_char}*")
        pos = i + 1
    out.append(re.escape(pattern[pos:]))
    return "".join(out)
