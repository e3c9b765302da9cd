"""A script's text, and the mapping from offsets to file:line:column."""

import bisect

from ..errors import Location


class Source:
    def __init__(self, text, filename):
        self.text = text
        self.filename = filename
        self._line_starts = None

    def _starts(self):
        if self._line_starts is None:
            starts = [0]
            find = self.text.find
            pos = find("\n")
            while pos != -1:
                starts.append(pos + 1)
                pos = find("\n", pos + 1)
            self._line_starts = starts
        return self._line_starts

    def location(self, offset, width=1):
        starts = self._starts()
        index = bisect.bisect_right(starts, offset) - 1
        start = starts[index]
        end = self.text.find("\n", start)
        line = self.text[start:] if end == -1 else self.text[start:end]
        return Location(self.filename, index + 1, offset - start + 1, line, max(1, width))
