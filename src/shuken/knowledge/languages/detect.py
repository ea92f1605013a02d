"""Language detection for chunks and queries: writing system first, a statistical model only where a
script is shared by several languages.

* kana (hiragana/katakana) → ja. Japanese prose is about half kana, so 5 % of the Han and kana letters
  (or any kana in a short text) decides; a Japanese name quoted in Chinese stays below that;
* Han without kana → zh. A short all-kanji Japanese text (a heading, a query such as 東京都庁) cannot be
  told apart from Chinese; `analyze_query` therefore searches kanji-only queries with both tokenisers;
* Arabic script → ar, unless letters that Arabic does not use (پ چ ژ گ ک ی ے ٹ ڈ ڑ ں ۀ) appear: then
  py3langid decides between ar, fa and ur;
* Devanagari → hi; Hangul → ko; Greek → el; Hebrew → he; Thai → th; Cyrillic → py3langid among
  languages written in Cyrillic;
* Latin → py3langid restricted to widespread Latin-script languages. Below about six words (typical
  queries) it only chooses between English and French, the Latin-script languages Shuken has tokenisers
  for, and falls back to English when nothing decides.

When several scripts are mixed, the one with most letters wins, a Han or kana character counting as
three letters (one CJK character carries about as much as a short word) and a Latin letter as 0.4 (Latin
names and acronyms are common inside text in other scripts, the reverse is rare): "MacBook Proを買った"
is Japanese, "DECnet क्या है" Hindi. Text without letters is "und". Only the first 2,000 characters are examined.
"""

from __future__ import annotations

import re
import threading
import unicodedata

from shuken.knowledge.languages._common import HAN, HANGUL, KANA

SAMPLE = 2000
CJK_WEIGHT = 3
KANA_SHARE = 0.05  # JSQuAD: lowest share in a paragraph 0.056, median 0.55; XQuAD zh: 0
LATIN_LANGUAGES = ("en", "fr", "de", "es", "it", "pt", "nl", "sv", "da", "no", "pl", "cs", "ro", "tr", "id", "fi", "hu",
                   "vi")
SHORT_LATIN_LANGUAGES = ("en", "fr")
CYRILLIC_LANGUAGES = ("ru", "uk", "bg", "sr", "mk", "be", "kk")
ARABIC_SCRIPT_LANGUAGES = ("ar", "fa", "ur")
SHORT_WORDS = 6
FRENCH_MARGIN = 3.0  # log-probability lead French needs over English in a short text
LANGID_SAMPLE = 1000
LATIN_WEIGHT = 0.4  # Latin names and acronyms are common inside text in other scripts, not the reverse

_SCRIPTS: list[tuple[str, re.Pattern[str]]] = [
    ("kana", re.compile(f"[{KANA}]")),
    ("han", re.compile(f"[{HAN}]")),
    ("arabic", re.compile(r"[\u0620-\u064a\u066e-\u06d3\u06fa-\u06ff\u0750-\u077f\u08a0-\u08ff\ufb50-\ufdff\ufe70-\ufefc]")),  # noqa: E501
    ("devanagari", re.compile(r"[\u0900-\u0963\u0971-\u097f\ua8e0-\ua8ff]")),
    ("hangul", re.compile(f"[{HANGUL}]")),
    ("cyrillic", re.compile(r"[\u0400-\u04ff\u0500-\u052f]")),
    ("greek", re.compile(r"[\u0370-\u03ff\u1f00-\u1fff]")),
    ("hebrew", re.compile(r"[\u05d0-\u05ea\u05f0-\u05f2]")),
    ("thai", re.compile(r"[\u0e01-\u0e5b]")),
    # last: ties go to the other script
    ("latin", re.compile(r"[A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u1e00-\u1eff]")),
]
_SCRIPT_LANGUAGE = {"devanagari": "hi", "hangul": "ko", "greek": "el", "hebrew": "he", "thai": "th"}
_NON_ARABIC_LETTERS = re.compile(r"[\u067e\u0686\u0698\u06af\u06a9\u06cc\u06d2\u0679\u0688\u0691\u06ba\u06c0]")
_WORDS = re.compile(r"[^\W\d_]+")

_lock = threading.Lock()
_identifiers: dict[tuple[str, ...], object] = {}
_base_identifier = None


def _identifier(languages: tuple[str, ...]):
    """py3langid restricted to `languages`, built once per restriction; classifying only reads it."""
    identifier = _identifiers.get(languages)
    if identifier is None:
        global _base_identifier
        with _lock:
            identifier = _identifiers.get(languages)
            if identifier is None:
                import copy

                from py3langid.langid import MODEL_FILE, LanguageIdentifier

                if _base_identifier is None:
                    _base_identifier = LanguageIdentifier.from_model_file(MODEL_FILE)
                identifier = copy.copy(_base_identifier)
                identifier.set_languages(list(languages))
                _identifiers[languages] = identifier
    return identifier


def _classify(text: str, languages: tuple[str, ...]) -> str:
    return _identifier(languages).classify(text[:LANGID_SAMPLE])[0]


def _short_latin(text: str) -> str:
    """English unless the model clearly prefers French: a single word such as "server", "data" or
    "Paris" is written the same in both and scores about equal, and English is the likelier query."""
    scores = dict(_identifier(SHORT_LATIN_LANGUAGES).rank(text))
    return "fr" if scores["fr"] - scores["en"] > FRENCH_MARGIN else "en"


def script_counts(text: str) -> dict[str, int]:
    return {name: len(pattern.findall(text)) for name, pattern in _SCRIPTS}


def detect_language(text: str) -> str:
    """ja, zh, ar, hi, en, fr, another ISO 639-1 code, or "und" when the text has no letters."""
    sample = unicodedata.normalize("NFKC", text[:SAMPLE])
    counts = script_counts(sample)
    weights: dict[str, float] = dict(counts)
    weights["latin"] *= LATIN_WEIGHT
    weights["kana"] *= CJK_WEIGHT
    weights["han"] *= CJK_WEIGHT
    cjk = weights["kana"] + weights["han"]
    best = max(weights, key=weights.__getitem__)
    if cjk >= weights[best]:
        if cjk == 0:
            return "und"
        # Chinese text may quote a Japanese name; Japanese prose is far above this share of kana.
        kana_share = counts["kana"] / (counts["kana"] + counts["han"])
        return "ja" if kana_share >= KANA_SHARE or (counts["kana"] and counts["han"] < 20) else "zh"
    if best == "latin":
        words = len(_WORDS.findall(sample))
        return _short_latin(sample) if words < SHORT_WORDS else _classify(sample, LATIN_LANGUAGES)
    if best == "arabic":
        if _NON_ARABIC_LETTERS.search(sample):
            return _classify(sample, ARABIC_SCRIPT_LANGUAGES)
        return "ar"
    if best == "cyrillic":
        return _classify(sample, CYRILLIC_LANGUAGES)
    return _SCRIPT_LANGUAGE[best]
