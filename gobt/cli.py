"""The gobt command: bpftrace's command line, with Go-aware probes.

This module only wires the stages together (parse -> resolve -> rewrite ->
emit -> exec); each stage lives in its own module.
"""

import os
import sys

from . import __version__
from . import cache
from . import errors
from .run.bpftrace import (DETACH_BACKGROUND_NOTE_PROBES, DETACH_SECONDS_PER_PROBE, DETACH_WARNING_PROBES,
                           UNSAFE_BUILTINS, argv0, capable_fallback, chosen_explicitly, exec_bpftrace, find_bpftrace,
                           probe_bpftrace, program_fd, start_probe, unreachable_hints)
from .cmdline import parse_argv
from .errors import DecoderUnusable, GobtError, UnreachableOffset, note, once, warn
from .lang.precheck import as_bpftrace_sees_it, has_gobt_words, may_need_gobt
from .lang.source import Source

def _gobt_lists(pattern):
    # goret:/goentry: are gobt's; for uprobe: -lv, whose param list
    # bpftrace would give by the C convention, and -l on a stripped Go
    # binary, where bpftrace finds no names (listing.list_probes decides).
    return pattern.startswith(("goret:", "goentry:", "gotrace:", "uprobe:", "u:"))

GOBT_HELP = """\
gobt {version}: bpftrace for Go programs (bpftrace's own help is above).

gobt adds to bpftrace's language:
    goret:BIN:FUNC      at every return of a Go function (a uprobe per RET, no uretprobe)
    goentry:BIN:FUNC    once per call, after the stack-growth check
    gotrace:BIN:FUNC    one line per call at its return: params, results, duration
    uprobe:BIN:FUNC     Go symbols such as main.(*T).M need no quotes
    goarg(PATH)         a param or result by name: goarg(r.URL.Path), goarg(~r0)
    goerr(PATH)         an error as its Error() text (an interface: its type's name)
    gotype(PATH)        an interface's dynamic type, as %T prints it
    retval              the first result, in goret
    goid                the goroutine's id
    goelapsed           ns since this call's entry, in goret

gobt's own options (every other option is bpftrace's):
    --emit              print the bpftrace program gobt generates, and exit
    --bpftrace PATH     the bpftrace to run (also $GOBT_BPFTRACE)
    --no-cache          do not read or write what gobt learned about binaries

See gobt(1)."""


def main():
    # bpftrace's getopt-style arguments (clusters like -kk, values glued to
    # flags, options after the script, `--`) are parsed by cmdline.py, from
    # sys.argv as it is: a command-line framework would take `--` away.
    try:
        _stop_on_sigint()
        code = run(sys.argv[1:])
        # A reader gone (`| head`) shows here, where it ends by SIGPIPE
        # below, not in the interpreter's last flush (exit status 120).
        sys.stdout.flush()
        sys.exit(code)
    except BpftraceSaid as e:
        sys.stderr.write(e.text)
        sys.exit(e.status)
    except (GobtError, DecoderUnusable) as e:
        _echo_error(e.render())
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        # `gobt -l ... | head`: end as bpftrace does, by SIGPIPE, quietly.
        import signal

        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGPIPE)
    except Exception as e:  # a bug in gobt, not the user's mistake
        if os.environ.get("GOBT_DEBUG"):
            raise
        _echo_error(
            f"gobt: internal error: {type(e).__name__}: {e}\n"
            "  this is a bug in gobt; rerun with GOBT_DEBUG=1 for the traceback and report it"
        )
        sys.exit(70)


class BpftraceSaid(Exception):
    """bpftrace's own messages about the user's script, printed as they are."""

    def __init__(self, text, status):
        super().__init__(text)
        self.text, self.status = text, status


def _stop_on_sigint():
    """SIGINT ends gobt even where its parent ignores it, as it ends
    bpftrace, which sets its own handler whatever it inherits. A shell
    script runs `cmd &` with SIGINT ignored, and Python then leaves it
    ignored: a `kill -INT` sent before bpftrace started was lost, and the
    run went on (seen in a test run started that way). _signal, which the
    interpreter has loaded already: importing signal, its enums, took long
    enough for a Ctrl-C to land in it."""
    import _signal

    if _signal.getsignal(_signal.SIGINT) == _signal.SIG_IGN:
        _signal.signal(_signal.SIGINT, _signal.default_int_handler)


def _echo_error(text):
    # click only here, on the way out: the warm path must not pay its import.
    # It colours "error" on a terminal and strips the colour elsewhere.
    import click

    head, sep, rest = text.partition("error:")
    click.echo(head + click.style("error:", fg="red", bold=True) + rest if sep else text, err=True)


def run(argv):
    inv = parse_argv(argv)
    if inv.no_cache:
        cache.disable()
    bpftrace = find_bpftrace(inv.bpftrace)

    if inv.bad:  # bpftrace's own message and status for its own arguments
        return _pass_through(inv, argv, None, bpftrace)
    if inv.help or inv.version:
        # bpftrace's answer first, on its streams (0.17 prints -h on stderr,
        # 0.23 on stdout); gobt's own after it, on stderr, so that stdout
        # is bpftrace's alone (scripts read the version from its first line).
        import subprocess

        code = subprocess.run([argv0(bpftrace), *_without_gobt_options(argv)], executable=bpftrace).returncode
        print(GOBT_HELP.format(version=__version__) if inv.help else f"gobt v{__version__}", file=sys.stderr)
        return code

    if inv.list_mode and inv.positional and _gobt_lists(inv.positional[0]):
        if _list(inv, bpftrace):
            return 0

    source = _program_source(inv)
    if source is None or not may_need_gobt(source.text):
        return _pass_through(inv, argv, source, bpftrace)

    from .programcache import ProgramCache

    cache_entry = ProgramCache(source, bpftrace, inv.pid, chosen_explicitly(inv.bpftrace))
    done = cache_entry.load()
    if done is not None:
        done.say_again()
    else:
        done = _rewrite(inv, source, bpftrace, cache_entry)
        if done is None:
            return _pass_through(inv, argv, source, bpftrace)
    program = done.program

    if inv.emit:
        errors.flush_once()
        write_stdout(program)
        return 0

    args = list(inv.passthrough)
    said = []
    if done.needs_unsafe and not inv.unsafe:
        if done.unsafe_used:
            raise GobtError(
                f"the probes need --unsafe ({done.needs_unsafe}), and the script calls "
                f"{', '.join(done.unsafe_used)}(); gobt will not enable those for you",
                hints=["  pass --unsafe yourself if you mean it"],
            )
        said.append(f"adding --unsafe: {done.needs_unsafe}")
        args.append("--unsafe")
    if done.proven:
        # bpftrace 0.17 warns once per such probe (36 lines for one script);
        # the supervisor drops those lines, this one says why.
        n = len(done.proven)
        said.append(f"gobt checked that {'each of the ' + str(n) + ' offsets' if n > 1 else 'the offset'} "
                    "is an instruction boundary, so bpftrace's warning that it could not is not shown")
    elif said:
        said[-1] += " (bpftrace's 'instruction boundary' warnings are expected: gobt checked each offset)"
    if said:
        # What this bpftrace needs for these binaries: said once per binary
        # and bpftrace (errors.once; GOBT_NOTES=all says it every time).
        binaries = sorted({os.path.realpath(path) for path, _ in done.proven})
        once("gobt: " + "; ".join(said), key=f"unsafe {done.bpftrace_version} {binaries or said}")
    errors.flush_once()
    check_probe_count(done)

    fds = []
    if inv.program_text is not None and len(program) < 100_000:
        args += ["-e", program]
        name = "stdin"  # as bpftrace calls an -e program, rewritten or not
    else:
        # Too big for an argument (E2BIG near 128 KB), or a file: a memfd.
        fds.append(program_fd(program, source.filename))
        name = f"/proc/self/fd/{fds[0]}"
        args.append(name)
    # `--` keeps positional params that look like options (-5) params.
    # done.bpftrace: gobt's own capable bpftrace, when the program needed it.
    argv = [done.bpftrace or bpftrace, *args, *(["--", *inv.positional] if inv.positional else [])]
    display = "stdin" if source.filename == "-e" else source.filename
    from .rewrite.spanmap import SpanMap
    from .run.messages import MessageFilter, shifts_after_quotes

    supervise(argv, MessageFilter(name, display, program, source.text, SpanMap(done.spans), done.proven,
                                  quoted_shift=shifts_after_quotes(done.bpftrace_version)), fds,
              _probes_to_keep(done))


def _probes_to_keep(done):
    # A kept probe's program runs until the background detach reaches it
    # (run/keeper.py): harmless for maps nobody reads once END closed the
    # gate (rewrite/gate.py); a program without one (gobt changed nothing)
    # must change no map after END either, and signal() would reach out.
    from .rewrite.gate import GATE

    return 0 if "signal" in done.unsafe_used or GATE not in done.program else done.probe_count


def supervise(argv, line_filter, fds, keep_probes=0):
    """bpftrace as a child, its messages in the user's terms; gobt ends as it
    does, leaving the detach of many uprobes to a background process."""
    from .run.supervise import Supervisor, exit_like

    child = Supervisor(argv, line_filter, fds, argv0(argv[0]), keep_probes)
    try:
        child.start()
    except OSError as e:
        raise GobtError(f"cannot run {argv[0]}: {e.strerror}") from None
    status = child.wait()
    if child.background:
        import time

        pid, count, started, lifted = child.background
        seconds = count * DETACH_SECONDS_PER_PROBE - (time.monotonic() - started)
        if count >= DETACH_BACKGROUND_NOTE_PROBES or seconds > 1:
            # The kernel's part takes its time; what the program feels, the
            # breakpoints, is gone already where gobt could lift them.
            gone = ("; their breakpoints are out of the program already" if lifted >= count else
                    f"; {lifted} of their breakpoints are out of the program already" if lifted else "")
            note(f"{count} probes are still detaching in the background (pid {pid}, about {max(1, round(seconds))} s){gone}")
    exit_like(status)


def _list(inv, bpftrace):
    """-l/-lv on a Go binary; False when bpftrace should list instead.

    A listing is kept like a rewritten program (programcache.py, with the
    pattern as the script): a repeat -lv prints it again without reading
    the binary.
    """
    from . import errors
    from .programcache import ProgramCache, Rewritten

    pattern = inv.positional[0]
    cache_entry = ProgramCache(Source(pattern, "-lv" if inv.verbose else "-l"), bpftrace, inv.pid,
                               chosen_explicitly(inv.bpftrace))
    done = cache_entry.load()
    if done is not None:
        done.say_again()
        write_stdout(done.program)
        return True
    from .listing import list_probes

    lines = []

    def out(line):
        print(line)
        lines.append(line + "\n")

    first_message = len(errors.printed)
    found = probe_bpftrace(bpftrace)
    listed, ctx = list_probes(pattern, inv.verbose, found, pid=inv.pid, out=out,
                              bpftrace_chosen=chosen_explicitly(inv.bpftrace))
    ctx.save_caches()
    if listed:
        cache_entry.store(Rewritten("".join(lines), "", 0, [], errors.printed[first_message:], found.version_text,
                                    found.max_probes), ctx.binaries_read(), [])
    return listed


def _pass_through(inv, argv, source, bpftrace):
    """Nothing for gobt to do: bpftrace sees exactly what it would have."""
    if inv.emit and source is not None:
        write_stdout(source.text)
        return 0
    if inv.script_path == "-":
        # gobt has read bpftrace's stdin: hand the same bytes over.
        fd = program_fd(source.text, "stdin")
        os.dup2(fd, 0)
    exec_bpftrace([bpftrace, *_without_gobt_options(argv)])


def _rewrite(inv, source, bpftrace, cache_entry):
    """parse -> resolve -> rewrite, the cold path: a Rewritten, or None when
    the script turns out to need nothing of gobt."""
    from . import errors
    from .programcache import Rewritten
    from .lang.script import parse

    from .binary import early

    early.start(source.text)  # first: the DWARF is what a cold rewrite waits for
    bpftrace_facts = start_probe(bpftrace)
    try:
        script = parse(source)
    except GobtError:
        # gobt's grammar is coarser than bpftrace's: a script without a
        # gobt construct (one may be named in a comment) is bpftrace's to
        # judge; a mixed one gets bpftrace's own message where it has one.
        bpftrace_facts.cancel()
        if not has_gobt_words(source.text):
            return None
        from .run.syntax import bpftrace_syntax_errors

        said = bpftrace_syntax_errors(bpftrace, as_bpftrace_sees_it(source.text), source.text,
                                      "stdin" if source.filename == "-e" else source.filename)
        if said is not None:
            raise BpftraceSaid(said, 1)
        raise
    if script is None or not script.needs_rewrite:
        bpftrace_facts.cancel()
        return None

    # Only now the modules that read binaries: a plain bpftrace script
    # never pays for them.
    from .rewrite.gotrace import expand as expand_gotrace
    from .rewrite.printf import string_size
    from .rewrite.probes import Context, rewrite

    first_message = len(errors.printed)
    found = bpftrace_facts()
    try:
        with errors.held(dropped_on=UnreachableOffset):  # a second rewrite says them again
            other = not chosen_explicitly(inv.bpftrace) and capable_fallback(found.path) is not None
            parsed = script
            ctx = Context(found, pid=inv.pid, other_bpftrace_can=other)
            script = expand_gotrace(parsed, ctx)
            program = rewrite(script, ctx)
    except UnreachableOffset as e:
        found = _capable_instead(inv, found, e)
        ctx = Context(found, pid=inv.pid)
        script = expand_gotrace(parsed, ctx)
        program = rewrite(script, ctx)
    if program == source.text and not ctx.needs_unsafe:
        return None  # nothing of gobt's after all (a uprobe on a Go name): bpftrace's, as it is
    if ctx.string_reads and found.strings_on_stack:
        # gotrace's lines on 0.17's 512-byte stack: each nested call's indent
        # is a string of it, each … after a cut string a length carried to
        # the return. Where they do not fit, the lines go without the indent,
        # then without the marks, then a wildcard's lines that still do not
        # fit go (each said): a line without them is worth more than none.
        def again(drop_indent=False, drop_marks=False, skipped=None):
            new = Context(found, pid=inv.pid)
            new.indented = None if drop_indent or ctx.indented is None else False
            new.cut_marks = None if drop_marks or ctx.cut_marks is None else False
            new.gotrace_skip = ctx.gotrace_skip | ({skipped} if skipped else set())
            expanded = expand_gotrace(parsed, new)
            return new, expanded, rewrite(expanded, new)

        while True:
            try:
                # Which BPFTRACE_STRLEN would fit is sought (a compile or four)
                # only for the last form, the one whose refusal the user sees.
                _check_stack(ctx, program, found.path, inv.unsafe,
                             fits_sought=not (ctx.indented or ctx.cut_marks), script=script)
                break
            except GobtError:
                if ctx.indented:
                    note(f"gotrace's lines do not indent nested calls: on bpftrace {found.version_text} the "
                         "indent would not fit the 512 bytes of BPF stack beside these lines' strings "
                         f"(a smaller BPFTRACE_STRLEN than {string_size()} makes room)")
                    ctx, script, program = again(drop_indent=True)
                elif ctx.cut_marks:
                    ctx, script, program = again(drop_marks=True)
                else:
                    skipped = _gotrace_skip(ctx, script)
                    if skipped is None:
                        raise
                    ctx, script, program = again(skipped=skipped)
    ctx.save_caches()
    done = Rewritten(program, ctx.needs_unsafe, ctx.probe_count, sorted(script.words & UNSAFE_BUILTINS),
                     errors.printed[first_message:], found.version_text, found.max_probes, found.path,
                     ctx.spans.segments, sorted(ctx.proven))
    cache_entry.store(done, ctx.binaries_read(), ctx.proofs_made())
    return done


def _capable_instead(inv, found, unreachable):
    """The bpftrace to use when `found` cannot attach a proved offset:
    gobt's own 0.23, unless the user chose the bpftrace."""
    fallback = None if chosen_explicitly(inv.bpftrace) else capable_fallback(found.path)
    if fallback is None:
        hints = unreachable.hints + unreachable_hints()
        if chosen_explicitly(inv.bpftrace):
            hints.insert(len(unreachable.hints), f"  (gobt keeps the bpftrace you chose: {found.path})")
        raise GobtError(unreachable.message, unreachable.location, hints)
    capable = probe_bpftrace(fallback)
    note(f"using bpftrace {capable.version_text} ({fallback}): bpftrace {found.version_text} ({found.capabilities}) "
         "cannot attach inside big binaries' text")
    return capable


# A gotrace wildcard leaves out at most this many functions whose lines do
# not fit bpftrace 0.17's stack (each is found by a compile of its own).
GOTRACE_SKIPS = 8


def _skippable(ctx, script):
    """(function, place) of the gotrace wildcard's line bpftrace refused for
    its stack (ctx.refused), while fewer than GOTRACE_SKIPS are left out."""
    from .rewrite.gotrace import wildcard_function

    probe = ctx.refused
    if probe is None or len(ctx.gotrace_skip) >= GOTRACE_SKIPS:
        return None
    return wildcard_function(ctx, script.probes[probe])


def _gotrace_skip(ctx, script):
    """The function of a gotrace wildcard whose line bpftrace refused for its
    stack, said and to be left out; else None."""
    found = _skippable(ctx, script)
    if found is None:
        return None
    fn, where = found
    warn(f"gotrace: {fn} gets no line: its strings do not fit the 512 bytes of BPF stack of bpftrace "
         f"{ctx.bpftrace.version_text} (a smaller BPFTRACE_STRLEN, or bpftrace 0.23, gives it one)", where)
    return fn


def _check_stack(ctx, program, bpftrace, unsafe, fits_sought=True, script=None):
    """Refuse at the user's line a program bpftrace would refuse for its BPF
    stack, at a bare file offset; with the largest BPFTRACE_STRLEN that fits
    (if sought: each try is a compile)."""
    from .rewrite.printf import refused_probe, stack_error, string_size
    from .run.bpftrace import over_stack_limit

    unsafe = unsafe or bool(ctx.needs_unsafe)
    name = over_stack_limit(bpftrace, program, unsafe)
    if name is None:
        return
    ctx.refused = refused_probe(ctx, name)
    if script is not None and _skippable(ctx, script):
        fits_sought = False  # that function's line will go instead
    strlen = string_size()
    fits, lo, hi = None, 1, (strlen // 8 - (strlen % 8 == 0)) if fits_sought else 0  # multiples of 8 below
    while lo <= hi:
        mid = (lo + hi) // 2
        if over_stack_limit(bpftrace, program, unsafe, strlen=8 * mid) is None:
            fits, lo = 8 * mid, mid + 1
        else:
            hi = mid - 1
    raise stack_error(ctx, name, strlen, fits)


def check_probe_count(done):
    """Stop before bpftrace refuses, and say what many probes will cost."""
    from .rewrite.gate import GATE

    # bpftrace counts BEGIN and END against its limit too: a program with
    # the gate has one of each (the user's or gobt's), which done.probe_count
    # (the uprobes gobt made, which the keeper holds) leaves out.
    count = done.probe_count + (2 if GATE in done.program else 0)
    try:
        limit = int(os.environ.get("BPFTRACE_MAX_PROBES", done.max_probes))
    except ValueError:
        limit = done.max_probes
    if count > limit:
        cost = f" (each costs ~{DETACH_SECONDS_PER_PROBE} s to detach)"
        raise GobtError(
            f"the script expands to {count} probes; bpftrace {done.bpftrace_version} allows {limit}",
            hints=[f"  allow them with BPFTRACE_MAX_PROBES={count}{cost}, or narrow the pattern"],
        )
    if count >= DETACH_WARNING_PROBES and not _detach_in_background(done):
        note(f"{count} probes: bpftrace detaches uprobes at offsets one at a time, about 10 a second, "
             f"so expect ~{max(1, round(count * DETACH_SECONDS_PER_PROBE))} s between Ctrl-C and the output")


def _detach_in_background(done):
    if not _probes_to_keep(done):
        return False
    from .run.keeper import supported

    return supported()


def _program_source(inv):
    if inv.program_text is not None:
        return Source(inv.program_text, "-e")
    if inv.list_mode or inv.script_path is None:
        return None
    if inv.script_path == "-":
        return Source(decode(sys.stdin.buffer.read()), "stdin")
    try:
        # newline="": CRLF stays CRLF, so --emit and bpftrace get the bytes
        # the user wrote.
        with open(inv.script_path, encoding="utf-8", errors="surrogateescape", newline="") as f:
            return Source(f.read(), inv.script_path)
    except OSError:
        return None  # missing, a directory, unreadable: bpftrace says so, as it says it


def decode(data):
    # surrogateescape: bytes that are not UTF-8 (a Latin-1 comment) survive
    # the round trip to --emit and to bpftrace unchanged.
    return data.decode("utf-8", "surrogateescape")


def write_stdout(text):
    """The program's bytes exactly (no newline translation, any bytes)."""
    sys.stdout.flush()
    sys.stdout.buffer.write(text.encode("utf-8", "surrogateescape"))
    sys.stdout.buffer.flush()


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
