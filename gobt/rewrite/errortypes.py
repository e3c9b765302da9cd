"""The standard library's error types whose Error() goerr spells out: data.

Each row: the name %T prints, the struct's DWARF name, its Error() text as
pieces, and its field offsets when the binary has no DWARF. A piece is
("text", constant), ("str", field: a Go string), ("quoted", field: a Go
string as %q shows a plain one) or ("err", field: an error, whose own
text follows). The offsets are the same for every Go from 1.15 to 1.27
(tests/test_goerr.py checks them against each toolchain's DWARF).

Error() as the standard library writes it:
  errors.errorString  s
  fmt.wrapError       msg (fmt.Errorf's whole text, wrapped errors included)
  fmt.wrapErrors      msg (Go 1.20+)
  fs.PathError        Op + " " + Path + ": " + Err.Error()   (os.PathError in 1.15)
  os.SyscallError     Syscall + ": " + Err.Error()
  os.LinkError        Op + " " + Old + " " + New + ": " + Err.Error()
  strconv.NumError    "strconv." + Func + ": parsing " + Quote(Num) + ": " + Err.Error()
  url.Error           fmt.Sprintf("%s %q: %s", Op, URL, Err)
  syscall.Errno       the errno's text (errnotext.py), else "errno N"
  context.deadlineExceededError  "context deadline exceeded"
  poll.DeadlineExceededError     "i/o timeout"
  net.OpError, net.DNSError      neterrors.py
"""

# (%T name, DWARF name, pieces, offsets without DWARF)
WHOLE = [  # Error() is one Go string of the value
    ("*errors.errorString", "errors.errorString", [("str", "s")], {"s": 0}),
    ("*fmt.wrapError", "fmt.wrapError", [("str", "msg")], {"msg": 0}),
    ("*fmt.wrapErrors", "fmt.wrapErrors", [("str", "msg")], {"msg": 0}),
]
_PATH = [("str", "Op"), ("text", " "), ("str", "Path"), ("text", ": "), ("err", "Err")]
_PATH_AT = {"Op": 0, "Path": 16, "Err": 32}
COMPOSITE = [  # Error() joins fields and a wrapped error's text
    ("*fs.PathError", "io/fs.PathError", _PATH, _PATH_AT),
    ("*os.PathError", "os.PathError", _PATH, _PATH_AT),
    ("*os.SyscallError", "os.SyscallError", [("str", "Syscall"), ("text", ": "), ("err", "Err")],
     {"Syscall": 0, "Err": 16}),
    ("*strconv.NumError", "strconv.NumError",
     [("text", "strconv."), ("str", "Func"), ("text", ": parsing "), ("quoted", "Num"), ("text", ": "),
      ("err", "Err")],
     {"Func": 0, "Num": 16, "Err": 32}),
    ("*url.Error", "net/url.Error",
     [("str", "Op"), ("text", " "), ("quoted", "URL"), ("text", ": "), ("err", "Err")],
     {"Op": 0, "URL": 16, "Err": 32}),
    ("*os.LinkError", "os.LinkError",
     [("str", "Op"), ("text", " "), ("str", "Old"), ("text", " "), ("str", "New"), ("text", ": "), ("err", "Err")],
     {"Op": 0, "Old": 16, "New": 32, "Err": 48}),
]
ERRNO = "syscall.Errno"
CONSTANT = [("context.deadlineExceededError", "context deadline exceeded"),
            ("*poll.DeadlineExceededError", "i/o timeout")]  # os.ErrDeadlineExceeded
SYSCALL_ERROR = "*os.SyscallError"

# The net package's errors (neterrors.py spells them): (%T name, DWARF name, offsets without DWARF).
OP_ERROR = ("*net.OpError", "net.OpError", {"Op": 0, "Net": 16, "Source": 32, "Addr": 48, "Err": 64})
DNS_ERROR = ("*net.DNSError", "net.DNSError", {"Err": 0, "Name": 16, "Server": 32})
IP_ADDRS = [("*net.TCPAddr", "net.TCPAddr", {"IP": 0, "Port": 24, "Zone": 32}),
            ("*net.UDPAddr", "net.UDPAddr", {"IP": 0, "Port": 24, "Zone": 32})]
# Layouts that changed: (DWARF name, from Go version, offsets).
SINCE = [("net.DNSError", (1, 23), {"Err": 16, "Name": 32, "Server": 48})]  # UnwrapErr first


# The %T names above: each spelled by its row, never as one of the program's own.
SPELLED = ({row[0] for row in WHOLE + COMPOSITE} | {name for name, _ in CONSTANT}
           | {ERRNO, OP_ERROR[0], DNS_ERROR[0]} | {row[0] for row in IP_ADDRS})
# Other error types (the program's own, a library's) whose first string
# field printf shows beside the name, *main.caseError{name:"Dave"}: at most
# this many, each an if the verifier walks. Package main's first, then other
# modules' (an import path with a dot), the standard library's, and last the
# runtime's (its errors are panics, rarely a result).
OWN_TYPES = 16
OWN_NAMES = 8  # their field names: on 0.17 a printf each


def own_rank(dwarf_name):
    path = dwarf_name.rsplit(".", 1)[0]
    top = path.split("/")[0]
    rank = 0 if path == "main" else 1 if "." in top else 3 if top in ("runtime", "internal") else 2
    return rank, dwarf_name


def offsets_for(dwarf_name, table, go_version):
    """The offsets without DWARF of a type in the given Go version."""
    for name, since, later in SINCE:
        if name == dwarf_name and go_version is not None and go_version >= since:
            return later
    return table
NIL_TEXT = "<nil>"
