"""Redaction: `redact` replaces detected spans with "[TYPE]"; `PiiStreamRedactor` does the same for a
streamed answer while holding back only the tail that an entity could still be growing into."""

from __future__ import annotations

import re
from collections.abc import Sequence

from shuken.governance.pii.detector import guess_language
from shuken.governance.pii.entities import PiiEntity

# Where an entity cannot continue: whitespace, sentence punctuation (also Japanese 。、！？) and brackets.
_BOUNDARY = re.compile(r"[\s。、！？!?,;)\]」』）]")
# A tail that may be the first part of a longer entity, even though it ends at a boundary: digit groups
# with separators (cards, phones, IBANs, My Numbers), a date being written, or capitalised words (a name).
_OPEN_TAIL = re.compile(
    r"(?:(?:\+|\b[A-Z]{2}\d{2})?[\d()][\d\s().\-/:]*"  # digits and separators
    r"|(?:\b[A-Z][\w'’.\-]*[ \t]+)+"  # Capitalised Words
    r"|\b[A-Za-z]{3,9}\.?[ \t]+\d{1,2}(?:st|nd|rd|th)?,?[ \t]*"  # "January 2, "
    r"|[\w.\-+]*@[\w.\-]*)$"
)
WINDOW = 64  # at most this many characters are held back beyond the last boundary
CONTEXT = 64  # already emitted characters re-read for cues ("born on", "電話") and language


def redact(text: str, entities: Sequence[PiiEntity]) -> str:
    """`text` with each entity's span replaced by "[TYPE]" (entities must not overlap)."""
    parts: list[str] = []
    position = 0
    for entity in sorted(entities, key=lambda e: e.start):
        if entity.start < position:
            raise ValueError("overlapping entities")
        parts.append(text[position : entity.start])
        parts.append(f"[{entity.type}]")
        position = entity.end
    parts.append(text[position:])
    return "".join(parts)


class PiiStreamRedactor:
    """Redacts a streamed answer: feed(delta) -> str of text safe to emit now; flush() -> the rest.
    Holds back only the unfinished tail (e.g. until whitespace/sentence punctuation incl. 。、！？ or a bounded
    window of ~64 chars) so an e-mail or card number split across deltas is still caught."""

    def __init__(self, detector, language: str | None = None) -> None:
        self._detector = detector
        self._language = language
        self._fixed_language = language is not None
        self._pending = ""  # received, not yet emitted
        self._context = ""  # the last CONTEXT characters emitted (raw), re-read for cues

    def feed(self, text: str) -> str:
        self._pending += text
        cut = self._safe_cut()
        if cut <= 0:
            return ""
        return self._emit(cut)

    def flush(self) -> str:
        if not self._pending:
            return ""
        return self._emit(len(self._pending), final=True)

    def _safe_cut(self) -> int:
        """How much of the pending text can be decided now: up to the last boundary, less an open tail
        (at most WINDOW characters are ever held back beyond what a boundary allows)."""
        pending = self._pending
        boundaries = list(_BOUNDARY.finditer(pending))
        last = boundaries[-1] if boundaries else None
        cut = last.end() if last else 0
        tail = _OPEN_TAIL.search(pending, max(0, cut - WINDOW), cut)
        if tail is not None and tail.end() == cut:
            cut = tail.start()
        return max(cut, len(pending) - WINDOW - 1, 0)

    def _emit(self, cut: int, final: bool = False) -> str:
        context = self._context
        window = context + self._pending
        if not self._fixed_language:
            self._language = _sticky_language(self._language, window)
        entities = self._detector.detect(window, self._language)
        offset = len(context)
        limit = offset + cut
        if not final:
            # an entity reaching past the cut is decided later, with its whole text
            for entity in entities:
                if entity.start < limit < entity.end and entity.start >= offset:
                    limit = entity.start
        chunk = window[offset:limit]
        inside = [
            PiiEntity(e.type, e.start - offset, e.end - offset, e.text, e.score, e.validated)
            for e in entities
            if e.start >= offset and e.end <= limit
        ]
        self._pending = window[limit:]
        self._context = (context + chunk)[-CONTEXT:]
        return redact(chunk, inside)


def _sticky_language(current: str | None, text: str) -> str | None:
    if current == "ja":
        return current
    if not any(char.isalpha() for char in text):
        return current
    return guess_language(text)
