"""goerr's text of *net.OpError and *net.DNSError, as Go's net package spells it.

    OpError.Error:  Op [+ " " + Net] [+ " " + Source] [+ ("->" if Source else " ") + Addr] + ": " + Err.Error()
    DNSError.Error: "lookup " + Name [+ " on " + Server] + ": " + Err

(the same in Go 1.15 to 1.27; DNSError gained UnwrapErr before its fields
in 1.23: errortypes.offsets_for). An address is rendered where it is an
IPv4 *net.TCPAddr or *net.UDPAddr (4 bytes, or 16 of the v4-in-v6 form)
without a zone: "127.0.0.1:80", as Addr.String() spells it; any other
address shows as "?". The wrapped error is spelled when it is an *os.SyscallError of an
errno (dial's "connect: connection refused"), an *net.DNSError, or a type
whose text is one string (errortypes.WHOLE, errno, constants); any other
shows by its type name.

bpftrace cannot join strings, so each combination is a printf of its own:
an OpError on bpftrace 0.23 only, where strings are not on the BPF stack
(on 0.17 the composite types already fill it: an OpError shows its name
there, a DNSError its Err, the innermost message).
"""

from . import errortypes

# An address other than an IPv4 TCP/UDP one: a stand-in, not Go's text.
UNSPELLED = "?"


def _word(addr):
    return f"*(uint64 *)uptr({addr})"


def _byte(addr):
    return f"(uint64)*(uint8 *)uptr({addr})"


class NetErrors:
    """The net error types of one _Render's binary."""

    def __init__(self, render):
        self.r = render
        v = render.v
        t = render.types
        name, dwarf, table = errortypes.OP_ERROR
        a = t.type_address(name)
        self.op = (render.addr(a), t.struct_offsets(dwarf, list(table), table)) if a and render.rich else None
        name, dwarf, table = errortypes.DNS_ERROR
        a = t.type_address(name)
        table = errortypes.offsets_for(dwarf, table, render.binary.go_version_tuple)
        self.dns = (render.addr(a), t.struct_offsets(dwarf, list(table), table)) if a else None
        self.ip_types = []
        for name, dwarf, table in errortypes.IP_ADDRS:
            a = t.type_address(name)
            if a:
                self.ip_types.append((render.addr(a), t.struct_offsets(dwarf, list(table), table)))
        a = t.type_address(errortypes.SYSCALL_ERROR)
        self.syscall = render.addr(a) if a and self.op else None
        self.v = v

    # -- statements -------------------------------------------------------------

    def inner_statements(self):
        """{v}jt, {v}jd: the error an OpError's *os.SyscallError wraps (its
        type, data), for the errno select (errno_cases)."""
        if not self.syscall:
            return []
        v = self.v
        return [f"{v}jt = (uint64)0; {v}jd = (uint64)0;",
                f"if ({v}t == {self.op[0]} && {v}it == {self.syscall}) {{ {v}jt = {_word(f'{v}id + 16')}; "
                f"{v}jd = {_word(f'{v}id + 24')}; }}",
                f"if ({v}jt != 0) {{ {v}jt = {_word(f'{v}jt + 8')}; }}"]

    def errno_cases(self, errno):
        v = self.v
        return [(f"{v}jt == {errno}", [_word(f"{v}jd")])] if self.syscall else []

    def address_statements(self):
        """Each of the OpError's Source (s) and Addr (a): {v}sk 0 for nil, 1 for
        an IPv4 address at {v}sb, port {v}sp, 2 for any other."""
        if not self.op:
            return []
        v = self.v
        op, off = self.op
        out = [f"{v}sk = (uint64)0; {v}sb = (uint64)0; {v}sp = (uint64)0; "
               f"{v}ak = (uint64)0; {v}ab = (uint64)0; {v}ap = (uint64)0;"]
        for side, field in (("s", "Source"), ("a", "Addr")):
            o = off[field]
            k, b, p = f"{v}{side}k", f"{v}{side}b", f"{v}{side}p"
            inner = []
            for addr, ip in self.ip_types:
                length, bytes_at = _word(f"{v}w + {ip['IP'] + 8}"), _word(f"{v}w + {ip['IP']}")
                port, prefix = _word(f"{v}w + {ip['Port']}"), _word(f"{v}h")
                zone = _word(f"{v}w + {ip['Zone'] + 8}")
                # A zone (ip%zone:port) is left to "?": with one, the IP is not set as v4.
                inner.append(
                    f"if ({v}q == {addr}) {{ {v}n = {length}; {v}h = {bytes_at}; "
                    f"if ({zone} != 0) {{ {v}n = 0; }} "
                    f"if ({v}n == 4) {{ {k} = 1; {b} = {v}h; }} "
                    f"if ({v}n == 16 && {prefix} == 0 && *(uint32 *)uptr({v}h + 8) == 0xffff0000) "
                    f"{{ {k} = 1; {b} = {v}h + 12; }} "
                    f"{p} = {port}; }}")
            out.append(f"if ({v}t == {op}) {{ {v}q = {_word(f'{v}d + {o}')}; "
                       f"if ({v}q != 0) {{ {k} = 2; {v}w = {_word(f'{v}d + {o + 8}')}; {v}q = {_word(f'{v}q + 8')}; "
                       + " ".join(inner) + " } }")
        return out

    # -- the one-string form -------------------------------------------------------

    def top_pieces(self):
        """(condition, [pointer, length]) of the top-level one-string text."""
        v = self.v
        out = []
        if self.syscall:
            out.append((f"{v}t == {self.op[0]} && {v}jt == {self.r.errno()} && {v}el != 0", [f"{v}ep", f"{v}el"]))
        if self.dns:
            addr, off = self.dns
            if self.op:
                out.append((f"{v}t == {self.op[0]} && {v}it == {addr}", self._string(f"{v}id", off["Err"])))
            out.append((f"{v}t == {addr}", self._string(f"{v}d", off["Err"])))
        return out

    def _string(self, base, o):
        return [_word(f"{base} + {o}"), _word(f"{base} + {o + 8}")]

    def _str(self, base, o):
        return self.r.str(*self._string(base, o))

    # -- printf branches ------------------------------------------------------------

    def branches(self, rich):
        """(condition, format piece, args) of the net errors' whole text."""
        if not rich:
            return []
        v = self.v
        out = []
        if self.op:
            op, off = self.op
            head_fmt = "%s %s"
            head_args = [self._str(f"{v}d", off["Op"]), self._str(f"{v}d", off["Net"])]
            net_len = _word(f"{v}d + {off['Net'] + 8}")
            head = f"{v}t == {op} && {net_len} != 0"
            v4 = "%lu.%lu.%lu.%lu:%ld"

            def ip(side):
                b = f"{v}{side}b"
                return [_byte(f"{b} + {i}") for i in range(4)] + [f"(int64){v}{side}p"]

            addresses = [(f"{v}sk == 0 && {v}ak == 0", "", []),
                         (f"{v}sk == 0 && {v}ak == 1", " " + v4, ip("a")),
                         (f"{v}sk == 1 && {v}ak == 1", " " + v4 + "->" + v4, ip("s") + ip("a")),
                         (f"{v}sk == 1 && {v}ak == 0", " " + v4, ip("s")),
                         ("1", " " + UNSPELLED, [])]
            inners = []
            if self.syscall and self.r.errno():
                inners.append((f"{v}jt == {self.r.errno()} && {v}el != 0", ": %s: %s",
                               [self._str(f"{v}id", 0), self.r.str(f"{v}ep", f"{v}el")]))
            if self.dns:
                addr, doff = self.dns
                inners += self._dns(f"{v}it == {addr}", f"{v}id", doff, ": ")
            inners.append(("1", ": %s", [self.r.str(f"{v}ip", f"{v}il")]))
            for icond, ifmt, iargs in inners:
                for acond, afmt, aargs in addresses:
                    out.append((f"{head} && {acond} && {icond}", head_fmt + afmt + ifmt, head_args + aargs + iargs))
        if self.dns:
            addr, doff = self.dns
            out += self._dns(f"{v}t == {addr}", f"{v}d", doff, "")
        return out

    def _dns(self, cond, base, off, lead):
        server = _word(f"{base} + {off['Server'] + 8}")
        name, srv, err = (self._str(base, off[f]) for f in ("Name", "Server", "Err"))
        return [(f"{cond} && {server} != 0", lead + "lookup %s on %s: %s", [name, srv, err]),
                (cond, lead + "lookup %s: %s", [name, err])]
