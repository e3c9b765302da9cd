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
    # a Go function's name (pkg.Name), which in a stripped binary only gobt finds
    r"|\b(?:uprobe|u):[^\s{,:]+:\"?[\w/.\-]*\w\.[\w(]"
)


def may_need_gobt(text):
    return _MAY_NEED_GOBT.search(text) is not None


_COMMENTS_AND_STRINGS = re.compile(r'//[^\n]*|/\*.*?\*/|"(?:[^"\\\n]|\\.)*"', re.S)


_GOBT_WORDS = re.compile(r"\bgo(?:ret|entry|arg|id|elapsed)\b")


def has_gobt_words(text):
    """A gobt construct by name (goret, goentry, goarg, goid, goelapsed)
    outside comments and strings: a program without one is bpftrace's to
    judge, even where gobt's grammar rejects it."""
    return _GOBT_WORDS.search(_COMMENTS_AND_STRINGS.sub(" ", text)) is not None


# goret:/goentry: attach points, quoted pieces included, as bpftrace's
# lexer would take them (an unquoted piece stops at a space, ',' or '{'),
# and uprobes with an unquoted '(' after a name or a dot (main.(*T).M, a
# Go signature), which only gobt reads (not 0x$(nm ...), a shell's).
_GOBT_ATTACH_POINT = re.compile(
    r'\b(?:go(?:ret|entry):(?:"(?:[^"\\\n]|\\.)*"|[^\s,{}"])*'
    r'|(?:uprobe|u):(?:"(?:[^"\\\n]|\\.)*"|[^\s,{}"(])*[\w.]\((?:"(?:[^"\\\n]|\\.)*"|[^\s,{}"])*)'
)
# What follows an attach point whose '(' is still open: the rest of a
# signature's parameters, then its results, on the same line.
_SIGNATURE_REST = re.compile(r'[^\n{}]*?\)(?:[ \t]+(?:\([^\n{}]*\)|[^\s,{}(]+))?(?=[\s,{])')


def as_bpftrace_sees_it(text):
    """The text with each gobt attach point replaced by BEGIN, padded with
    spaces to the same length: every other byte, line and column stays
    where it was, so bpftrace's parser judges the rest of the program and
    its positions are the user's."""
    out, pos = [], 0
    for m in _GOBT_ATTACH_POINT.finditer(text):
        if m.start() < pos:
            continue
        end = m.end()
        head = m.group(0)
        if head.count("(") > head.count(")"):
            rest = _SIGNATURE_REST.match(text, end)
            if rest:
                end = rest.end()
        out.append(text[pos:m.start()])
        out.append("BEGIN".ljust(end - m.start()))
        pos = end
    out.append(text[pos:])
    return "".join(out)
