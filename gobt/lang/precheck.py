"""Does a script need gobt at all? Asked on every run, so it costs one regex.

A script that says no goes to bpftrace as it is, without importing lark or
reading any binary (cli.py), and this module imports nothing else of gobt's.
"""

import re

# It may say yes too often (a word in a comment); the full parse
# then finds nothing to rewrite and the text still comes out unchanged.
_MAY_NEED_GOBT = re.compile(
    r"\bgo(?:ret|entry|arg|id|elapsed|err|type|trace)\b"
    # an unquoted uprobe function bpftrace could not lex: a Go method
    r"|\b(?:uprobe|u):[^\s{,]*[^\s{,_\-./a-zA-Z0-9#*:\"+]"
    # a Go function's name (pkg.Name), which may have inlined copies
    r"|\b(?:uprobe|u):[^\s{,:]+:\"?[\w/.\-]*\w\.[\w(]"
)


def may_need_gobt(text):
    return _MAY_NEED_GOBT.search(text) is not None


_COMMENTS_AND_STRINGS = re.compile(r'//[^\n]*|/\*.*?\*/|"(?:[^"\\\n]|\\.)*"', re.S)


def needs_gobt_outside_comments(text):
    """may_need_gobt, on the code only (comments and strings blanked)."""
    return may_need_gobt(_COMMENTS_AND_STRINGS.sub(" ", text))
