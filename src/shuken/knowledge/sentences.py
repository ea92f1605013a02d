"""Sentence boundaries in every script Shuken indexes, as character spans.

`split_sentences(text)` returns (start, end) spans that partition the text: the first starts at 0, each
starts where the previous ended, the last ends at len(text). Whitespace after a sentence end belongs to
that sentence, so `text[start:end].strip()` is the sentence itself.

Sentence ends:

* Japanese/Chinese 。！？ (also ｡, ． not between digits, and ASCII ! ? right after a CJK character):
  an end whether or not a space follows; closing quotes and brackets after them (」』）】 …) stay with
  the sentence, and a quotation followed by hiragana is not an end: 「行こう！」と言った。 is one sentence;
* Hindi । and ॥, Arabic ؟ and Urdu ۔: always an end;
* . ! ? … (Latin, Arabic and Devanagari text alike): an end only when followed by whitespace or the end
  of the text (optionally after closing quotes/brackets, or « … » with a space), so 3.14 and
  example.com never split; not when the next word starts in lower case (e.g. the …, Yahoo! is …,
  wait... what). A single period is not an end after a known abbreviation (Dr. M. Mme. e.g. vs. Fig. …),
  an initial (J. R. R. Tolkien) or dotted initials (U.S.);
* a blank line.
"""

from __future__ import annotations

import re

_CLOSERS = "\"'”’»›」』）)]］】〕〉》｝}〗〙〛"
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f"
# One candidate: a run of terminators (with closers between/after them), or a blank line.
_CANDIDATE = re.compile(rf"(?:[。！？｡．!?.…؟۔।॥]+(?:[{re.escape(_CLOSERS)}]|[ \u00a0\u202f]*[»›])*)+|\n[ \t]*\n")
_ALWAYS = frozenset("。！？｡؟۔।॥")
_TRAILING_SPACE = re.compile(r"\s*")
_WORD_BEFORE = re.compile(r"(\S*)$")
_CJK_CHAR = re.compile(f"[{_CJK}]")
_HIRAGANA = re.compile("[\u3041-\u309f]")
_DOTTED = re.compile(r"^(?:[^\W\d_]\.)+[^\W\d_]$")  # U.S, e.g, a.m

ABBREVIATIONS = frozenset(
    """
    mr mrs ms dr prof sr jr st mt messrs rev hon gen col capt lt sgt gov sen rep pres
    m mm mme mmes mlle mlles me pr ste
    e.g i.e cf vs viz al fig figs no nos nr vol vols p pp ch sec art approx ca
    jan feb mar apr jun jul aug sep sept oct nov dec janv févr avr juil déc
    """.split()
)


def _is_end(text: str, start: int, end: int, after: int) -> bool:
    """Whether the candidate text[start:end] (followed by whitespace up to `after`) ends a sentence."""
    run = text[start:end]
    if run[-1] in _CLOSERS and after == end and end < len(text) and _HIRAGANA.match(text, end):
        return False  # a quotation inside the sentence: 「行こう！」と言った。
    if any(c in _ALWAYS for c in run):
        return True
    if run.startswith("\n"):  # blank line
        return True
    previous = text[start - 1] if start else ""
    if "．" in run or (("!" in run or "?" in run) and _CJK_CHAR.match(previous or " ")):
        # CJK context: full-width period (not between digits) or ASCII !/? right after a CJK character
        if "．" in run and previous.isdigit() and end < len(text) and text[end].isdigit():
            return False
        return True
    if after == end and end < len(text):  # Latin-style terminators need whitespace (or the end) after them
        return False
    if after < len(text) and text[after].islower():  # the sentence goes on: "e.g. the", "Yahoo! is"
        return False
    if "!" in run or "?" in run or ".." in run or "…" in run:
        return True
    # A single period (possibly with closers): not after an abbreviation or an initial.
    before = _WORD_BEFORE.search(text, 0, start)
    assert before is not None  # `(\S*)$` matches every string, the empty one included
    word = before.group(1).lstrip("\"'“‘«‹(（[［「『")
    if word.lower() in ABBREVIATIONS or _DOTTED.match(word):
        return False
    if word.isdigit() and (start == len(word) or text[start - len(word) - 1] == "\n"):
        return False  # a numbered list item: "1. Introduction"
    return not (len(word) == 1 and word.isalpha())


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Spans partitioning `text` into sentences (see the module documentation); [] for ''."""
    if not text:
        return []
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _CANDIDATE.finditer(text):
        end = match.end()
        trailing = _TRAILING_SPACE.match(text, end)
        assert trailing is not None  # `\s*` matches at every position
        after = trailing.end()
        if not _is_end(text, match.start(), end, after):
            continue
        if after > start and after < len(text):
            spans.append((start, after))
            start = after
    spans.append((start, len(text)))
    return spans
