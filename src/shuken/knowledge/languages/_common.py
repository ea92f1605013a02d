"""Pieces every tokeniser shares: Unicode normalisation, word matching, Latin words, thread-local stemmers.

Index terms are joined with single spaces and stored in an FTS5 table that splits on whitespace only, so
every tokeniser guarantees: no empty term, no term containing whitespace, same output for same input.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Callable, Iterable

import Stemmer

# Invisible format characters that glue or split words without meaning: soft hyphen, zero-width space /
# non-joiner / joiner, word joiner, BOM. NFKC keeps them, so they are deleted explicitly.
_INVISIBLE = re.compile("[\u00ad\u200b\u200c\u200d\u2060\ufeff]")
# Control characters (C0/C1) and any whitespace become one plain space: MeCab reads C strings (a NUL would
# truncate the text) and some whitespace (\r, \x85) is not whitespace to every segmenter.
_SPACES = re.compile(r"[\s\x00-\x1f\x7f-\x9f]+")


def normalize(text: str) -> str:
    """NFKC (full-width → half-width, compatibility forms → base), case-folded, invisible characters removed."""
    if not unicodedata.is_normalized("NFKC", text):
        text = unicodedata.normalize("NFKC", text)
    text = text.casefold()
    if not text.isascii() and _INVISIBLE.search(text):
        text = _INVISIBLE.sub("", text)
    return _SPACES.sub(" ", text)


def _combining_marks() -> str:
    """A regex character class body with every combining mark (Mn, Mc, Me) of planes 0–1.

    Python's `\\w` does not match combining marks, so `\\w+` alone cuts Devanagari, Thai, Arabic (with
    tashkeel) or decomposed Latin words apart at every vowel sign."""
    ranges: list[tuple[int, int]] = []
    for code in range(0x20000):
        if unicodedata.category(chr(code)) in ("Mn", "Mc", "Me"):
            if ranges and ranges[-1][1] == code - 1:
                ranges[-1] = (ranges[-1][0], code)
            else:
                ranges.append((code, code))
    return "".join(f"\\U{a:08x}-\\U{b:08x}" if a != b else f"\\U{a:08x}" for a, b in ranges)


MARKS = _combining_marks()
# A word: letters and digits (not underscore) plus combining marks, never starting with a mark.
WORD = re.compile(rf"[^\W_](?:[^\W_]|[{MARKS}])*")

# Scripts (after NFKC). Han includes the compatibility ideographs and extension A/B…; kana excludes the
# katakana middle dot U+30FB and prolonged-sound mark U+30FC, which Chinese text uses too.
HAN = "\u3005\u3007\u3021-\u3029\u3038-\u303b\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
KANA = "\u3041-\u3096\u309d-\u309f\u30a1-\u30fa\u30fd-\u30ff\u31f0-\u31ff\U0001b000-\U0001b16f"
HANGUL = "\u1100-\u11ff\u3130-\u318f\ua960-\ua97f\uac00-\ud7af\ud7b0-\ud7ff"

_ASCII_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
APOSTROPHES = str.maketrans({"\u2019": "'", "\u02bc": "'", "\u2018": "'", "\uff07": "'"})

ENGLISH_STOP_WORDS = frozenset(
    """
    a about above after again against all am an and any are as at be because been before being below between
    both but by can could did do does doing down during each few for from further had has have having he her
    here hers herself him himself his how i if in into is it its itself just me more most my myself no nor not
    of off on once only or other our ours ourselves out over own same she should so some such than that the
    their theirs them themselves then there these they this those through to too under until up very was we
    were what when where which while who whom whose why will with would you your yours yourself yourselves
    s t d ll m re ve don't doesn't didn't isn't aren't wasn't weren't can't won't it's that's there's i'm
    also et al
    """.split()
)


class _ThreadLocalStemmers(threading.local):
    """PyStemmer objects are not safe to share between threads: each thread gets its own (cheap)."""

    def __init__(self) -> None:
        self.by_algorithm: dict[str, Stemmer.Stemmer] = {}


_stemmers = _ThreadLocalStemmers()


def stemmer(algorithm: str) -> Callable[[list[str]], list[str]]:
    """`stemWords` of this thread's Snowball stemmer for the algorithm."""
    found = _stemmers.by_algorithm.get(algorithm)
    if found is None:
        found = _stemmers.by_algorithm[algorithm] = Stemmer.Stemmer(algorithm)
    return found.stemWords


def english_terms(words: Iterable[str]) -> list[str]:
    """Already-normalised (case-folded) ASCII words → English Snowball stems, stop words dropped.

    Used for English text and for Latin words inside Japanese, Chinese, Arabic or Hindi text, so that
    "Tokyo"/"tokyo" and "servers"/"server" match across languages."""
    kept = [w for w in words if w not in ENGLISH_STOP_WORDS]
    return stemmer("english")(kept) if kept else []


def ascii_words(text: str) -> list[str]:
    """Case-folded ASCII words and numbers of `text` (apostrophe contractions kept whole)."""
    return _ASCII_WORD.findall(text.translate(APOSTROPHES))


def finalize(terms: Iterable[str]) -> list[str]:
    """The safety net: no empty terms, no whitespace inside a term (split there instead)."""
    out: list[str] = []
    for term in terms:
        if not term:
            continue
        if term.isprintable() and " " not in term:
            out.append(term)
        else:
            out.extend(part for part in _SPACES.split(term) if part)
    return out


def script_terms(words: Iterable[str], stem: Callable[[list[str]], list[str]], is_native: Callable[[str], bool],
                 prepare: Callable[[str], str | None]) -> list[str]:
    """Terms of text in one script with a Snowball stemmer: runs of native words are stemmed together (one
    stemmer call per run), ASCII words become English terms, words of other scripts pass through as they are.
    `prepare` turns a native word into the word to stem, or None to drop it (a stop word)."""
    run: list[str] = []
    terms: list[str] = []

    def close_run() -> None:
        if run:
            terms.extend(stem(run))
            run.clear()

    for word in words:
        if word.isascii():
            close_run()
            terms.extend(english_terms(ascii_words(word)))
        elif is_native(word):
            prepared = prepare(word)
            if prepared is not None:
                run.append(prepared)
        else:
            close_run()
            terms.append(word)
    close_run()
    return finalize(terms)
