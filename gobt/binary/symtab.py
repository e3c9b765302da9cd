"""Function symbols: what a Function is, and .symtab searched in its raw bytes."""

import bisect
import re
import struct
from ..record import dataclass
from functools import cached_property

from .symbols import is_wildcard, pattern_regex, wildcard_stars

STT_FUNC = 2


def _is_code(info, shndx, size):
    # Zero-size STT_FUNC symbols (runtime.text, runtime.etext) only mark
    # addresses; they hold no code to probe.
    return info & 0xF == STT_FUNC and shndx != 0 and size > 0

_ELF64_SYM = struct.Struct("<IBBHQQ")


@dataclass(frozen=True)
class Function:
    name: str
    start: int  # virtual address
    size: int

    @property
    def end(self):
        return self.start + self.size


class SymbolTable:
    """Function symbols of .symtab, searched in the raw bytes."""

    def __init__(self, symtab, strtab):
        self._symtab = symtab
        self._strtab = strtab
        self._at = None  # address -> (name offset, size), built on the first at()

    @cached_property
    def _code(self):
        """(st_name, value, size) of every code symbol, in .symtab's order:
        one pass over .symtab, however many lookups follow."""
        return [(st_name, value, size)
                for st_name, info, _other, shndx, value, size in _ELF64_SYM.iter_unpack(self._symtab)
                if _is_code(info, shndx, size)]

    def _entries_for(self, name_offsets):
        if len(name_offsets) <= 4 and "_code" not in self.__dict__:
            # An exact name: its entries found by their st_name's bytes
            # (the entry's first word), not by unpacking all of .symtab.
            symtab = self._symtab
            hits = []
            for offset in name_offsets:
                needle = struct.pack("<I", offset)
                pos = symtab.find(needle)
                while pos != -1:
                    if pos % _ELF64_SYM.size == 0:
                        hits.append(pos)
                    pos = symtab.find(needle, pos + 1)
            for pos in sorted(hits):  # in .symtab's order, as a scan finds them
                st_name, info, _other, shndx, value, size = _ELF64_SYM.unpack_from(symtab, pos)
                if _is_code(info, shndx, size):
                    yield st_name, value, size
            return
        for entry in self._code:
            if entry[0] in name_offsets:
                yield entry


    def _name_at(self, offset):
        end = self._strtab.index(b"\0", offset)
        return self._strtab[offset:end].decode("utf-8", "replace")

    def lookup(self, name):
        """The function called exactly `name`, or None."""
        # bytes.find, not the regex of _starts_of: the same offsets, without
        # a lookahead tried at each of .strtab's bytes.
        needle = name.encode() + b"\0"
        starts = set()
        pos = self._strtab.find(needle)
        while pos != -1:
            starts.add(pos)
            pos = self._strtab.find(needle, pos + 1)
        return next(iter(self._functions_at(starts)), None)

    def _starts_of(self, regex):
        """strtab offsets where a name matching regex starts and ends at a NUL.

        Not only after a NUL: GNU ld (external linking, cgo) merges names
        that are suffixes of others, so main.Foo may be the tail of
        xmain.Foo's bytes.
        """
        return {m.start() for m in re.finditer(b"(?=(?:" + regex + b")\0)", self._strtab)}

    def _starts_of_pattern(self, pattern):
        """_starts_of(the pattern's regex), trying the regex only where the
        pattern's literal head occurs (runtime.morestack*: a few places,
        not each of .strtab's bytes)."""
        regex = pattern_regex(pattern, any_char="[^\0]").encode()
        head = pattern[: min(wildcard_stars(pattern), default=len(pattern))]
        if not head:  # the head is literal text: only stars are wildcards
            return self._starts_of(regex)
        needle = head.encode()
        whole = re.compile(b"(?:" + regex + b")\0")
        data = self._strtab
        starts = set()
        pos = data.find(needle)
        while pos != -1:
            if whole.match(data, pos):
                starts.add(pos)
            pos = data.find(needle, pos + 1)
        return starts

    def _functions_at(self, offsets, every=False):
        # every: two functions of one name (a closure's name, local to two
        # objects) are two functions; else the first .symtab lists.
        seen = {}
        for st_name, value, size in self._entries_for(offsets):
            name = self._name_at(st_name)
            seen.setdefault((name, value) if every else name, Function(name, value, size))
        return sorted(seen.values(), key=lambda f: f.start)

    def shared(self, name):
        """Whether two functions are called exactly `name` (bpftrace cannot
        tell them apart by the name)."""
        self._asked = getattr(self, "_asked", 0) + 1
        if self._asked > 16:  # a wildcard's many: one pass over .symtab
            return name in self._shared_names
        needle = name.encode() + b"\0"
        starts = set()
        pos = self._strtab.find(needle)
        while pos != -1:
            starts.add(pos)
            pos = self._strtab.find(needle, pos + 1)
        return len(self._functions_at(starts, every=True)) > 1

    @cached_property
    def _shared_names(self):
        first, shared = {}, set()
        for st_name, value, _size in self._code:
            if first.setdefault(st_name, value) != value:
                shared.add(st_name)
        # Equal names may sit at two .strtab offsets: compare the text too.
        by_text = {}
        for st_name, value in first.items():
            by_text.setdefault(self._name_at(st_name), set()).add(value)
        return {name for name, starts in by_text.items() if len(starts) > 1} | {self._name_at(o) for o in shared}

    def match(self, pattern):
        """Functions matching a pattern (symbols.py): the exact name, or else
        every name its wildcards match."""
        fn = self.lookup(pattern)
        if fn is not None or not is_wildcard(pattern):
            return [fn] if fn else []
        if not pattern.strip("*"):
            # Every function: the regex would match at every byte of .strtab.
            seen = {}
            for fn in self.all_functions():
                seen.setdefault((fn.name, fn.start), fn)
            return sorted(seen.values(), key=lambda f: f.start)
        # Names hold no NUL, so a wildcard never runs across two names.
        return self._functions_at(self._starts_of_pattern(pattern), every=True)

    def glob(self, pattern):
        """Functions bpftrace's own matching finds: every '*' a wildcard."""
        regex = b"[^\0]*".join(re.escape(part.encode()) for part in pattern.split("*"))
        return self._functions_at(self._starts_of(regex), every=True)

    def address_of(self, name):
        """The value of the symbol called `name`, of any type, or None."""
        needle = b"\0" + name.encode() + b"\0"
        pos = self._strtab.find(needle)
        if pos == -1:
            return None
        # The entries whose st_name is that string, found by bytes: a
        # Python loop over cmd/go's 50k symbols costs ~8 ms.
        table = self._symtab
        key = struct.pack("<I", pos + 1)
        at = table.find(key)
        while at != -1:
            if at % _ELF64_SYM.size == 0:
                st_name, _info, _other, shndx, value, _size = _ELF64_SYM.unpack_from(table, at)
                if shndx != 0:
                    return value
            at = table.find(key, at + 1)
        return None

    def all_functions(self):
        return [Function(self._name_at(st_name), value, size) for st_name, value, size in self._code]

    def at(self, address):
        """The function that starts at `address`, or None."""
        if self._at is None:
            # The first symbol at each address, as a scan in .symtab's order finds it.
            self._at = {}
            for st_name, value, size in self._code:
                if value not in self._at:
                    self._at[value] = (st_name, size)
        found = self._at.get(address)
        return None if found is None else Function(self._name_at(found[0]), address, found[1])

    def lowest_function_address(self):
        return min((value for _n, value, _size in self._code), default=0) or 0

    def covering(self, address):
        """Any symbol (of any type) whose range holds `address`."""
        starts, reach = self._ranges
        i = bisect.bisect_right(starts, address) - 1
        if i < 0 or reach[i][0] <= address:
            return None
        end, st_name, value = reach[i]
        return self._name_at(st_name) or f"0x{value:x}"

    @cached_property
    def _ranges(self):
        # Sorted starts, and for each, the farthest-reaching symbol among
        # those starting at or before it: a wildcard checks every RET of
        # hundreds of functions, which must not rescan .symtab each time.
        rows = sorted(
            (value, value + max(size, 1), st_name)
            for st_name, _info, _other, shndx, value, size in _ELF64_SYM.iter_unpack(self._symtab)
            if shndx != 0
        )
        starts, reach, best = [], [], (0, 0, 0)
        for value, end, st_name in rows:
            if end > best[0]:
                best = (end, st_name, value)
            starts.append(value)
            reach.append(best)
        return starts, reach
