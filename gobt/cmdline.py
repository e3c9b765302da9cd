"""bpftrace's command line, as gobt must understand it.

gobt takes exactly bpftrace's arguments plus a few of its own, whose names
no bpftrace release uses. It has to find the program (a file or -e) and
-p/--unsafe among them; everything else is handed to bpftrace in order,
untouched. bpftrace parses with GNU getopt, which permutes: options may
follow the script file (`gobt script.gbt -p 42`), and `--` ends them.
"""

from .run.bpftrace import DEBUG_STAGES, LONG_ALIASES, VALUE_OPTIONS
from .errors import GobtError

GOBT_FLAGS = {"--emit", "--no-cache"}
# bpftrace's long flags (no value): anything else after the script is a
# named param of the script.
KNOWN_LONG_FLAGS = {"--unsafe", "--help", "--version", "--info", "--no-warnings", "--usdt-file-activation",
                    "--list", "--verbose", "--dry-run", "--quiet", "--warnings"}
GOBT_VALUE_OPTIONS = {"--bpftrace"}


class Invocation:
    """What gobt found among the arguments. (A plain class: dataclasses
    costs more to import than gobt's whole warm path.)"""

    def __init__(self):
        self.passthrough = []  # bpftrace's options, in order
        self.program_text = None  # from -e
        self.script_path = None
        self.positional = []  # script args, or -l's search
        self.pid = None
        self.unsafe = False
        self.list_mode = False
        self.verbose = False
        self.emit = False
        self.no_cache = False
        self.bpftrace = None
        self.help = False
        self.version = False
        # Arguments bpftrace will refuse (an option without its value, -p
        # abc): bpftrace says so, in its words and with its status.
        self.bad = False


def _pid(value, inv):
    try:
        return int(value)
    except (TypeError, ValueError):
        inv.bad = True
        return None


def _take_value(argv, i, inv, attached):
    if attached is not None:
        return attached, i
    if i + 1 >= len(argv):
        inv.bad = True
        return None, i
    return argv[i + 1], i + 1


def parse_argv(argv):
    inv = Invocation()
    plain = []  # non-option arguments, in order
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            plain.extend(argv[i + 1 :])
            break
        if arg.startswith("--"):
            name, eq, attached = arg.partition("=")
            attached = attached if eq else None
            if name in GOBT_FLAGS:
                setattr(inv, name[2:].replace("-", "_"), True)
            elif name in GOBT_VALUE_OPTIONS:
                inv.bpftrace, i = _take_value(argv, i, inv, attached)
                if inv.bpftrace is None:
                    raise GobtError(f"option {name} needs a value")
            elif name in VALUE_OPTIONS:
                value, i = _take_value(argv, i, inv, attached)
                if LONG_ALIASES.get(name) == "-p":
                    inv.pid = _pid(value, inv)
                inv.passthrough += [name, value]
            elif plain and name not in KNOWN_LONG_FLAGS:
                plain.append(arg)  # after the script: a named param (bpftrace 0.24's --x=1)
            else:
                if LONG_ALIASES.get(name) == "-l":
                    inv.list_mode = True
                elif LONG_ALIASES.get(name) == "-v":
                    inv.verbose = True
                if name == "--unsafe":
                    inv.unsafe = True
                elif name == "--help":
                    inv.help = True
                elif name == "--version":
                    inv.version = True
                inv.passthrough.append(arg)
        elif arg.startswith("-") and len(arg) > 1:
            i = _short_cluster(argv, i, inv)
        else:
            plain.append(arg)
        i += 1

    if inv.program_text is None and not inv.list_mode and plain:
        inv.script_path, inv.positional = plain[0], plain[1:]
    else:
        inv.positional = plain
    return inv


def _short_cluster(argv, i, inv):
    """One `-xyz` argument (getopt style); returns the index of its last word."""
    arg = argv[i]
    for j in range(1, len(arg)):
        opt = "-" + arg[j]
        if opt in VALUE_OPTIONS:
            flags = arg[1:j]
            attached = arg[j + 1 :] or None
            value, i = _take_value(argv, i, inv, attached)
            if flags:
                inv.passthrough.append("-" + flags)
            if opt == "-e":
                # bpftrace (0.17 and 0.23) runs the last -e it is given.
                if value is not None:
                    inv.program_text = value
                return i
            if opt == "-p":
                inv.pid = _pid(value, inv)
            inv.passthrough += [opt, value]
            return i
        flag = _SHORT_FLAGS.get(opt)
        if flag:
            setattr(inv, flag, True)
        if opt == "-d" and j == len(arg) - 1 and i + 1 < len(argv) and argv[i + 1] in DEBUG_STAGES:
            inv.passthrough += [arg, argv[i + 1]]
            return i + 1
    inv.passthrough.append(arg)
    return i


_SHORT_FLAGS = {"-l": "list_mode", "-v": "verbose", "-h": "help", "-V": "version"}
