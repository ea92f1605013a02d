"""The PII value types (PiiEntity, ENTITY_TYPES) and the span helpers every recogniser shares: width folding
that keeps offsets, and resolution of overlapping detections."""

from __future__ import annotations

import re

from collections.abc import Iterable
from dataclasses import dataclass

ENTITY_TYPES = (
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "CREDIT_CARD",
    "IBAN_CODE",
    "JP_MY_NUMBER",
    "IN_AADHAAR",
    "IP_ADDRESS",
    "DATE_OF_BIRTH",
    "PERSON",
    "LOCATION",
)


@dataclass(frozen=True)
class PiiEntity:
    type: str  # one of ENTITY_TYPES
    start: int  # character offsets into the analysed text
    end: int
    text: str
    score: float  # 0..1
    validated: bool  # True when a checksum/format validator confirmed it


# One character in, one character out, so offsets in the folded text are offsets in the original:
# full-width ASCII (０-９, Ａ-Ｚ, ＠, －, …) → ASCII, the ideographic space → space, dash look-alikes → "-".
_FOLD = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)}
_FOLD[0x3000] = 0x20
for _dash in "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe63":
    _FOLD[ord(_dash)] = ord("-")
# The katakana long-vowel mark is typed for a dash in numbers (090ー1234ー5678), but only between digits.
_LONG_VOWEL_DASH = re.compile(r"(?<=\d)[\u30fc\uff70](?=\d)")


def fold(text: str) -> str:
    """Width-folded copy of `text` with exactly the same length (offsets stay valid)."""
    text = text.translate(_FOLD)
    if "\u30fc" in text or "\uff70" in text:
        text = _LONG_VOWEL_DASH.sub("-", text)
    return text


def _priority(entity: PiiEntity) -> tuple:
    return (entity.validated, entity.score, entity.end - entity.start, -entity.start)


def resolve_overlaps(entities: Iterable[PiiEntity]) -> list[PiiEntity]:
    """Non-overlapping entities sorted by start. Of overlapping detections the checksum-validated one wins,
    then the higher score, then the longer span; the loser is dropped whole (never trimmed)."""
    kept: list[PiiEntity] = []
    for entity in sorted(entities, key=_priority, reverse=True):
        if entity.end <= entity.start:
            continue
        if all(entity.end <= other.start or other.end <= entity.start for other in kept):
            kept.append(entity)
    kept.sort(key=lambda e: e.start)
    return kept


def merge_adjacent(entities: list[PiiEntity], text: str) -> list[PiiEntity]:
    """Joins sorted, non-overlapping LOCATION entities that touch (no character between), as a Japanese
    address split into prefecture, city and block number is one location."""
    out: list[PiiEntity] = []
    for entity in entities:
        last = out[-1] if out else None
        if last is not None and last.type == entity.type == "LOCATION" and last.end == entity.start:
            out[-1] = PiiEntity(
                last.type,
                last.start,
                entity.end,
                text[last.start : entity.end],
                max(last.score, entity.score),
                last.validated or entity.validated,
            )
        else:
            out.append(entity)
    return out
