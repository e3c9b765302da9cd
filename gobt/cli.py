"""The gobt command: bpftrace's command line, with Go-aware probes.

This module only wires the stages together (parse -> resolve -> rewrite ->
emit -> exec); each stage lives in its own module.
"""

import os
import sys

import click

from . import __version__, cache
from .bpftrace import UNSAFE_BUILTINS, exec_bpftrace, find_bpftrace, probe_bpftrace, program_fd
from .cmdline import parse_argv
from .errors import GobtError, note
from .script import may_need_gobt, parse
from .source import Source

LISTABLE = ("goret:", "goentry:", "uprobe:", "u:")

GOBT_HELP = """\
gobt {version}: bpftrace for Go programs.

USAGE:
    gobt [bpftrace options] FILE [args...]
    gobt [bpftrace options] -e 'PROGRAM'

gobt adds to bpftrace's language:
    goret:BIN:FUNC      a probe at every return of a Go function (no uretprobe)
    uprobe:BIN:FUNC     Go symbols such as main.(*T).M need no quotes

gobt's own options (every other option is bpftrace's):
    --emit              print the bpftrace program gobt generates, and exit
    --bpftrace PATH     the bpftrace to run (also $GOBT_BPFTRACE)
    --no-cache          do not read or write what gobt learned about binaries

See gobt(1). bpftrace's own help follows.
"""


@click.command(
    context_settings=dict(ignore_unknown_options=True, allow_extra_args=True, help_option_names=[])
)
@click.argument("argv", nargs=-1, type=click.UNPROCESSED)
def command(argv):
    # bpftrace's getopt-style arguments (clusters like -kk, values glued to
    # flags, options after the script) are parsed by cmdline.py; click only
    # hands them over unprocessed.
    try:
        sys.exit(run(list(argv)))
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


def main():
    command(prog_name="gobt")


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

    if inv.list_mode and inv.positional and inv.positional[0].startswith(LISTABLE):
        from .listing import list_probes

        listed, ctx = list_probes(inv.positional[0], inv.verbose, probe_bpftrace(bpftrace), pid=inv.pid,
                                  out=click.echo)
        ctx.save_caches()
        if listed:
            return 0

    source = _program_source(inv)
    script = parse(source) if source is not None and may_need_gobt(source.text) else None
    if script is None or not script.needs_rewrite:
        # Nothing for gobt to do: bpftrace sees exactly what it would have.
        if inv.emit and source is not None:
            sys.stdout.write(source.text)
            return 0
        exec_bpftrace([bpftrace, *_without_gobt_options(argv)])

    # Only now the modules that read binaries: a plain bpftrace script
    # never pays for them.
    from .rewrite import DEFAULT_MAX_PROBES, Context, rewrite

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
    if ctx.probe_count > DEFAULT_MAX_PROBES and "BPFTRACE_MAX_PROBES" not in os.environ:
        os.environ["BPFTRACE_MAX_PROBES"] = str(ctx.probe_count + 16)

    if inv.program_text is not None and len(program) < 100_000:
        args += ["-e", program]
    else:
        # Too big for an argument (E2BIG near 128 KB), or a file: a memfd.
        fd = program_fd(program, source.filename)
        args.append(f"/proc/self/fd/{fd}")
    exec_bpftrace([bpftrace, *args, *inv.positional])


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
