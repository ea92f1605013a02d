"""Turn a stream of token bytes into safe text deltas: whole UTF-8 characters, stop strings cut exactly.

Pure and engine-independent, so it is unit-tested without a model.
"""

from __future__ import annotations

import codecs


class TextStream:
    """Feed token bytes; get back the text that may be shown now.

    Text that could be the start of a stop string is held back until it is known not to be one,
    so a client never sees part of a stop sequence.
    """

    def __init__(self, stop: list[str] | None = None):
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._stops = [s for s in (stop or []) if s]
        self._text = ""
        self._emitted = 0
        self.stopped = False

    @property
    def text(self) -> str:
        return self._text[: self._emitted]

    def feed(self, piece: bytes) -> str:
        if self.stopped:
            return ""
        self._text += self._decoder.decode(piece)
        return self._release()

    def _release(self) -> str:
        if self._stops:
            longest = max(len(s) for s in self._stops)
            search_from = max(0, self._emitted - longest + 1)
            hits = [pos for s in self._stops if (pos := self._text.find(s, search_from)) != -1]
            if hits:
                cut = min(hits)
                out = self._text[self._emitted : cut]
                self._text = self._text[:cut]
                self._emitted = cut
                self.stopped = True
                return out
            hold = self._partial_stop_suffix()
        else:
            hold = 0
        end = len(self._text) - hold
        out = self._text[self._emitted : end]
        self._emitted = max(self._emitted, end)
        return out

    def _partial_stop_suffix(self) -> int:
        """Length of the longest tail of the text that is a proper prefix of some stop string."""
        best = 0
        for stop in self._stops:
            for size in range(min(len(stop) - 1, len(self._text) - self._emitted), best, -1):
                if stop.startswith(self._text[-size:]):
                    best = size
                    break
        return best

    def flush(self) -> str:
        """At the end of generation: release whatever was held back (it was not a stop string)."""
        if self.stopped:
            return ""
        # Bytes still pending here are the start of a character cut off by max_tokens: drop them rather
        # than end the answer with U+FFFD (invalid bytes mid-stream were already replaced as they came).
        self._decoder.reset()
        out = self._text[self._emitted :]
        self._emitted = len(self._text)
        return out
