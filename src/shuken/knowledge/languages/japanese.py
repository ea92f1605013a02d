"""Japanese: MeCab (fugashi) with UniDic-lite, indexing each word's normalised form.

UniDic's *lemma* (語彙素) unifies inflection (食べた/食べる), kana/kanji spelling (たべる/食べる,
こども/子ども/子供), old/new kanji (國/国) and loanword variants (サーバ/サーバー); it is written
"サーバー-server" for loanwords and "円-助数詞" for some homographs, so the part from the first "-" is cut.
For proper nouns the lemma is the katakana reading (東京 → トウキョウ), which merges unrelated names that
sound alike (伊藤/伊東 → イトウ, 加藤/河東 → カトウ) and stops a kanji name matching the Chinese
tokeniser's term for the same characters, so proper nouns keep their base spelling (orthBase): the
"hybrid" form. `bench/tokenize_speed.py --retrieval` compares the forms on JSQuAD: BM25 recall is the
same for all of them there (R@5 0.969–0.970), because its questions reuse the paragraphs' wording; against
Japanese paragraphs tokenised as Chinese (kanji-only text is detected as zh) hybrid beats lemma.

Dropped: particles (助詞), auxiliaries (助動詞), symbols and punctuation (補助記号, 記号, 空白) and a few
lemmas of light verbs, demonstratives and question words. Numbers are kept; Latin words are case-folded
and English-stemmed as in every tokeniser.

MeCab taggers are not thread-safe, so each thread gets its own; they share the memory-mapped dictionary,
so a tagger is cheap. The tagger prints only the fields needed (one line per word) instead of building a
Python object per word: about twice as fast as iterating fugashi's nodes for the same terms (about
230k against 110k terms/s on JSQuAD paragraphs, one core).
"""

from __future__ import annotations

import os
import re
import threading
from typing import ClassVar, Literal

from shuken.knowledge.languages._common import english_terms, finalize, normalize

NormalForm = Literal["lemma", "orthBase", "surface", "hybrid"]

DROPPED_POS = frozenset({"助詞", "助動詞", "補助記号", "記号", "空白", "BOS/EOS"})
# Function-like words that survive the part-of-speech filter (light verbs, formal nouns, demonstratives,
# question words), in both lemma and base spelling so the set fits every normal form.
STOP_WORDS = frozenset(
    """
    為る 居る 有る 成る 言う 此れ 其れ 彼れ 此の 其の 彼の 此処 其処 彼処
    事 物 為 様 何 何処 誰 何時 如何 何故 何れ 何の
    する いる ある なる いう これ それ あれ この その あの ここ そこ あそこ
    こと もの ため よう どこ いつ どう なぜ どれ どの
    どちら どんな
    """.split()
)

# Output exactly the fields we need: surface, pos1, pos2, lemma, orthBase (unknown words: surface, pos).
_FORMAT = (
    "-r {rc} -d {dicdir} -O '' "
    "-F '%m\\t%f[0]\\t%f[1]\\t%f[7]\\t%f[10]\\n' -U '%m\\t%f[0]\\t%f[1]\\t*\\t*\\n' -E '' -B ''"
)
_FULLWIDTH = re.compile(r"[\uff01-\uff5e\u3000]")
_ALNUM = re.compile(r"[a-z0-9]+")
# MeCab builds a lattice over its whole input: very long texts are fed in pieces cut at sentence ends.
_PIECE = 20_000
_PIECE_END = re.compile(r"[。．！？!?\n ]")

_lock = threading.Lock()
_dicdir: str | None = None


class _Taggers(threading.local):
    tagger = None


_taggers = _Taggers()


def _tagger():
    tagger = _taggers.tagger
    if tagger is None:
        global _dicdir
        with _lock:  # import and locate the dictionary once; MeCab maps it into memory shared by all taggers
            import fugashi

            if _dicdir is None:
                import unidic_lite

                _dicdir = unidic_lite.DICDIR
            rc = os.path.join(_dicdir, "mecabrc")  # unidic-lite ships an empty one; MeCab needs a file
            arguments = _FORMAT.format(rc=_quote(rc if os.path.exists(rc) else os.devnull), dicdir=_quote(_dicdir))
            tagger = _taggers.tagger = fugashi.GenericTagger(arguments)
    return tagger


def _quote(path: str) -> str:
    return "'" + path.replace("'", "'\\''") + "'"


def _pieces(text: str) -> list[str]:
    if len(text) <= _PIECE:
        return [text]
    pieces: list[str] = []
    while len(text) > _PIECE:
        cut = max((m.end() for m in _PIECE_END.finditer(text, _PIECE // 2, _PIECE)), default=_PIECE)
        pieces.append(text[:cut])
        text = text[cut:]
    pieces.append(text)
    return pieces


class JapaneseTokenizer:
    languages: ClassVar[tuple[str, ...]] = ("ja",)

    def __init__(self, form: NormalForm = "hybrid", stop_words: bool = True) -> None:
        self.form = form
        self._stop = STOP_WORDS if stop_words else frozenset()

    def terms(self, text: str) -> list[str]:
        text = normalize(text)
        parse = _tagger().parse
        lemma_for_common = self.form in ("lemma", "hybrid")
        lemma_for_proper = self.form == "lemma"
        surface_form = self.form == "surface"
        stop = self._stop
        terms: list[str] = []
        append = terms.append
        for piece in _pieces(text):
            for surface, pos1, pos2, lemma, orth_base in _nodes(parse(piece)):
                if pos1 in DROPPED_POS:
                    continue
                if surface.isascii():
                    terms.extend(english_terms(_ALNUM.findall(surface)))
                    continue
                if lemma_for_common if pos2 != "固有名詞" else lemma_for_proper:
                    term = lemma
                    cut = term.find("-")
                    if cut > 0:
                        term = term[:cut]
                elif surface_form:
                    term = surface
                else:
                    term = orth_base
                if not term or term == "*":
                    term = surface
                elif _FULLWIDTH.search(term):  # UniDic writes Latin letters in lemmas full-width: ＣＤ
                    term = normalize(term)
                if term not in stop:
                    append(term)
        return finalize(terms)


def _nodes(output: str):
    """(surface, pos1, pos2, lemma, orthBase) per word of the tagger's output: five tab-separated fields a line.

    Input whitespace and control characters were replaced by plain spaces, which MeCab skips, so no field
    contains a tab or newline and the output can be split in one go."""
    fields = output.replace("\n", "\t").split("\t")
    if fields and fields[-1] == "":
        fields.pop()
    if len(fields) % 5:  # fugashi strips trailing whitespace, so a last node with empty fields is short
        return [(line.split("\t") + ["", "", "", ""])[:5] for line in output.split("\n") if "\t" in line]
    it = iter(fields)
    return zip(it, it, it, it, it, strict=False)  # groups of five fields
