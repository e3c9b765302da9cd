"""The gobt command: bpftrace's command line, with Go-aware probes.

This module only wires the stages together (parse -> resolve -> rewrite ->
emit -> exec); each stage lives in its own module.
"""

import os
import sys

import click

from . import __version__, cache
from .bpftrace import DEFAULT_MAX_PROBES, DETACH_WARNING_PROBES, UNSAFE_BUILTINS, exec_bpftrace, find_bpftrace, probe_bpftrace, program_fd
from .cmdline import parse_argv
from .errors import GobtError, note
from .script import may_need_gobt, needs_gobt_outside_comments, parse
from .source import Source

def _gobt_lists(pattern, verbose):
    # goret:/goentry: are gobt's; for uprobe: only -lv, whose param list
    # bpftrace would give by the C convention. Plain -l stays bpftrace's.
    return pattern.startswith(("goret:", "goentry:")) or (verbose and pattern.startswith(("uprobe:", "u:")))

GOBT_HELP = """\
gobt {version}: bpftrace for Go programs.

USAGE:
    gobt [bpftrace options] FILE [args...]
    gobt [bpftrace options] -e 'PROGRAM'

gobt adds to bpftrace's language:
    goret:BIN:FUNC      at every return of a Go function (a uprobe per RET, no uretprobe)
    goentry:BIN:FUNC    once per call, after the stack-growth check
    uprobe:BIN:FUNC     Go symbols such as main.(*T).M need no quotes
    goarg(PATH)         a param or result by name: goarg(r.URL.Path), goarg(~r0)
    retval              the first result, in goret
    goid                the goroutine's id
    goelapsed           ns since this call's entry, in goret

gobt's own options (every other option is bpftrace's):
    --emit              print the bpftrace program gobt generates, and exit
    --bpftrace PATH     the bpftrace to run (also $GOBT_BPFTRACE)
    --no-cache          do not read or write what gobt learned about binaries

See gobt(1). bpftrace's own help follows.
"""


def main():
    # bpftrace's getopt-style arguments (clusters like -kk, values glued to
    # flags, options after the script, `--`) are parsed by cmdline.py, from
    # sys.argv as it is: a command-line framework would take `--` away.
    try:
        sys.exit(run(sys.argv[1:]))
    except GobtError as e:
        click.echo(e.render(), err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as e:  # a bug in gobt, not the user's mistake
        if os.environ.get("GOBT_DEBUG"):
            raise
        click.echo(
            f"gobt: internal error: {type(e).__name__}: {e}\n"
            "  this is a bug in gobt; rerun with GOBT_DEBUG=1 for the traceback and report it",
            err=True,
        )
        sys.exit(70)


def run(argv):
    inv = parse_argv(argv)
    if inv.no_cache:
        cache.disable()
    bpftrace = find_bpftrace(inv.bpftrace)

    if inv.help:
        click.echo(GOBT_HELP.format(version=__version__))
        exec_bpftrace([bpftrace, "--help"])
    if inv.version:
        click.echo(f"gobt v{__version__}")

    if inv.list_mode and inv.positional and _gobt_lists(inv.positional[0], inv.verbose):
        from .listing import list_probes

        listed, ctx = list_probes(inv.positional[0], inv.verbose, probe_bpftrace(bpftrace), pid=inv.pid,
                                  out=click.echo)
        ctx.save_caches()
        if listed:
            return 0

    source = _program_source(inv)
    script = None
    if source is not None and may_need_gobt(source.text):
        try:
            script = parse(source)
        except GobtError:
            # gobt's grammar is coarser than bpftrace's: a script that only
            # mentions goret or goid in a comment is bpftrace's to judge.
            if needs_gobt_outside_comments(source.text):
                raise
    if script is None or not script.needs_rewrite:
        # Nothing for gobt to do: bpftrace sees exactly what it would have.
        if inv.emit and source is not None:
            sys.stdout.write(source.text)
            return 0
        if inv.script_path == "-":
            # gobt has read bpftrace's stdin: hand the same bytes over.
            fd = program_fd(source.text, "stdin")
            os.dup2(fd, 0)
        exec_bpftrace([bpftrace, *_without_gobt_options(argv)])

    # Only now the modules that read binaries: a plain bpftrace script
    # never pays for them.
    from .rewrite import Context, rewrite

    found = probe_bpftrace(bpftrace)
    ctx = Context(found, pid=inv.pid)
    program = rewrite(script, ctx)
    ctx.save_caches()

    if inv.emit:
        sys.stdout.write(program)
        return 0

    args = list(inv.passthrough)
    if ctx.needs_unsafe and not inv.unsafe:
        unsafe_used = sorted(script.words & UNSAFE_BUILTINS)
        if unsafe_used:
            raise GobtError(
                f"the probes need --unsafe ({ctx.needs_unsafe}), and the script calls "
                f"{', '.join(unsafe_used)}(); gobt will not enable those for you",
                hints=["  pass --unsafe yourself if you mean it"],
            )
        note(f"adding --unsafe: {ctx.needs_unsafe} (bpftrace's 'instruction boundary' warnings are "
             "expected: gobt checked each offset)")
        args.append("--unsafe")
    check_probe_count(ctx.probe_count, found)

    if inv.program_text is not None and len(program) < 100_000:
        args += ["-e", program]
    else:
        # Too big for an argument (E2BIG near 128 KB), or a file: a memfd.
        fd = program_fd(program, source.filename)
        args.append(f"/proc/self/fd/{fd}")
    # `--` keeps positional params that look like options (-5) params.
    exec_bpftrace([bpftrace, *args, *(["--", *inv.positional] if inv.positional else [])])


def check_probe_count(count, found):
    """Stop before bpftrace refuses, and say what many probes will cost."""
    try:
        limit = int(os.environ.get("BPFTRACE_MAX_PROBES", DEFAULT_MAX_PROBES))
    except ValueError:
        limit = DEFAULT_MAX_PROBES
    if count > limit:
        raise GobtError(
            f"the script expands to {count} probes; bpftrace allows {limit}",
            hints=[f"  allow them with BPFTRACE_MAX_PROBES={count} (each costs ~0.1 s to detach on "
                   f"bpftrace {found.version_text}), or narrow the pattern"],
        )
    if count >= DETACH_WARNING_PROBES and not found.fast_detach:
        note(f"{count} probes: bpftrace {found.version_text} detaches about 10 a second, "
             f"so expect ~{max(1, round(count * 0.11))} s between Ctrl-C and the output")


def _program_source(inv):
    if inv.program_text is not None:
        return Source(inv.program_text, "-e")
    if inv.list_mode or inv.script_path is None:
        return None
    if inv.script_path == "-":
        return Source(sys.stdin.read(), "stdin")
    try:
        with open(inv.script_path, encoding="utf-8", errors="surrogateescape") as f:
            return Source(f.read(), inv.script_path)
    except FileNotFoundError:
        raise GobtError(f"{inv.script_path}: no such file") from None
    except IsADirectoryError:
        raise GobtError(f"{inv.script_path}: is a directory") from None
    except PermissionError:
        raise GobtError(f"{inv.script_path}: permission denied") from None


def _without_gobt_options(argv):
    from .cmdline import GOBT_FLAGS, GOBT_VALUE_OPTIONS

    out = []
    skip = False
    for i, arg in enumerate(argv):
        if skip:
            skip = False
            continue
        if arg == "--":
            out.extend(argv[i:])
            break
        name = arg.partition("=")[0]
        if name in GOBT_FLAGS:
            continue
        if name in GOBT_VALUE_OPTIONS:
            skip = "=" not in arg
            continue
        out.append(arg)
    return out
