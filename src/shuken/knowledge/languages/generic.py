"""Fallback tokeniser for languages without their own: Unicode words, case-folded, no stemming.

Runs of Han, kana or Hangul characters (scripts written without spaces between words, or with particles
glued to words) become overlapping character bigrams, as search engines do for CJK text they cannot
segment: "東京都庁" → 東京 京都 都庁, which still matches the query 東京.
"""

from __future__ import annotations

import re
from typing import ClassVar

from shuken.knowledge.languages._common import HAN, HANGUL, KANA, WORD, finalize, normalize

_CJK_RUN = re.compile(f"[{HAN}{KANA}{HANGUL}\u30fc]+")
_HAS_CJK = re.compile(f"[{HAN}{KANA}{HANGUL}]")


def bigrams(run: str) -> list[str]:
    if len(run) < 2:
        return [run]
    return [run[i : i + 2] for i in range(len(run) - 1)]


def word_terms(text: str) -> list[str]:
    """Words of already-normalised text; CJK runs inside a word become bigrams."""
    terms: list[str] = []
    for word in WORD.findall(text):
        if not _HAS_CJK.search(word):
            terms.append(word)
            continue
        position = 0
        for match in _CJK_RUN.finditer(word):
            if match.start() > position:
                terms.extend(WORD.findall(word[position : match.start()]))
            terms.extend(bigrams(match.group()))
            position = match.end()
        if position < len(word):
            terms.extend(WORD.findall(word[position:]))
    return terms


class GenericTokenizer:
    languages: ClassVar[tuple[str, ...]] = ("und",)

    def terms(self, text: str) -> list[str]:
        return finalize(word_terms(normalize(text)))

