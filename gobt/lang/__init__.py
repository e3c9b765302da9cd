"""Parse: the user's script, as text and as a tree.

A script's bytes and their file:line:column (source), the one-regex test of
whether a script needs gobt at all (precheck), and the Lark parse of
bpftrace's language with gobt's constructs into probes and uses (script).
Nothing here reads a binary or knows how a construct is rewritten.
"""
