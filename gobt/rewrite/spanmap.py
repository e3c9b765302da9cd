"""Where each piece of the rewritten program came from in the user's script.

bpftrace reports errors at line:column of the program it was given. The
rewrite keeps lines (probes.py), but not columns: `retval` became
`(int64)reg("ax")`. A SpanMap takes a span of the program back to the span
of the user's text it came from, so that the message can show the user's
own line with the caret under what they wrote.
"""

import bisect


class SpanMap:
    """Segments (out_start, out_end, user_start, user_end, copied) covering the program.

    A copied segment has equal lengths and maps offset by offset; an edit's
    segment maps as a whole to the span it replaced (an insertion, to the
    point where it was inserted).
    """

    def __init__(self, segments):
        self.segments = [tuple(s) for s in segments]
        self._starts = [s[0] for s in self.segments]

    @classmethod
    def from_edits(cls, text, edits, tail="", base=0):
        """The map of what probes._apply(text, edits, base) + tail produces.

        An edit's `pieces` are segments of its own text (offsets from its
        start) that came from elsewhere in the script: the user's
        predicate, moved into the block.
        """
        segments = []
        out = 0
        pos = base
        end = base + len(text)

        def add(length, user_start, user_end, copied):
            nonlocal out
            if length:
                segments.append((out, out + length, user_start, user_end, copied))
                out += length

        for edit in sorted(edits, key=lambda e: (e.start, e.end)):
            add(edit.start - pos, pos, edit.start, True)
            done = 0
            for o_start, o_end, u_start, u_end, copied in getattr(edit, "pieces", ()):
                add(o_start - done, edit.start, edit.end, False)
                add(o_end - o_start, u_start, u_end, copied)
                done = o_end
            add(len(edit.text) - done, edit.start, edit.end, False)
            pos = edit.end
        add(end - pos, pos, end, True)
        add(len(tail), end, end, False)
        return cls(segments)

    def shifted(self, by):
        """The same map for the text placed `by` characters further on."""
        return SpanMap([(a + by, b + by, c, d, e) for a, b, c, d, e in self.segments])

    def to_user(self, start, end):
        """The user's span for the program's [start, end), or None."""
        first = self._segment(start)
        last = self._segment(max(start, end - 1))
        if first is None or last is None:
            return None
        user_start = self._point(first, start, is_end=False)
        user_end = self._point(last, max(start, end - 1), is_end=True)
        return user_start, max(user_end, user_start)

    def _segment(self, offset):
        i = bisect.bisect_right(self._starts, offset) - 1
        if i < 0 or offset >= self.segments[i][1]:
            return None
        return self.segments[i]

    @staticmethod
    def _point(seg, offset, is_end):
        out_start, _, user_start, user_end, copied = seg
        if copied:
            return user_start + (offset - out_start) + (1 if is_end else 0)
        return user_end if is_end else user_start
