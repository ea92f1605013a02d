"""Language-aware text analysis: language detection and per-language keyword tokenisers.

Tokenisers are plugins (`shuken.tokenizers` entry points, one module per language): a new language
is one module and one line in pyproject.toml. Every tokeniser returns normalised index terms (the
same function is applied to documents and queries), already free of punctuation and stop words.
"""

from __future__ import annotations

from functools import cache
from typing import ClassVar, Protocol

from shuken import plugins

FALLBACK_LANGUAGE = "und"  # undetermined: handled by the generic Unicode word tokeniser


class Tokenizer(Protocol):
    languages: ClassVar[tuple[str, ...]]  # ISO 639-1 codes this tokeniser serves, e.g. ("ja",)

    def terms(self, text: str) -> list[str]:
        """Normalised index terms, in order. Must be deterministic and thread-safe."""
        ...


def tokenizer_classes() -> dict[str, type]:
    """Language code → tokeniser class, from every installed `shuken.tokenizers` plugin."""
    return plugins.by_attribute(plugins.TOKENIZERS, "languages")


@cache
def tokenizer_for(language: str) -> Tokenizer:
    """The tokeniser for a language code; unknown languages get the generic Unicode tokeniser."""
    classes = tokenizer_classes()
    cls = classes.get(language) or classes[FALLBACK_LANGUAGE]
    return cls()


def supported_languages() -> list[str]:
    return sorted(code for code in tokenizer_classes() if code != FALLBACK_LANGUAGE)


def index_terms(text: str, language: str) -> list[str]:
    """Index terms of a document chunk whose language is known (detected once per chunk)."""
    return tokenizer_for(language).terms(text)


SHORT_HAN_QUERY = 8  # characters; longer Han-only queries are analysed as Chinese only


def analyze_query(text: str) -> list[str]:
    """Search terms of a query: its language's terms, plus those of every language it may be in.

    The language of the documents is unknown at query time, and a short query is often ambiguous:

    * Han without kana, short (東京都庁, 人工知能): a kanji-only Japanese query cannot be told from Chinese,
      so the Japanese and Chinese tokenisers' terms are both used. A longer Han-only query is Chinese
      (Japanese sentences carry kana): running it through the Japanese analyser too would add function
      words and odd splits (公司 → コンス) that cost precision and make the keyword query ~4× slower;
    * Han or kana inside text in another script ("what does 日本語 mean"): the Japanese (and, without
      kana, Chinese) terms are added;
    * a short Latin-script query detected as English or French (one word such as "server" or "Paris" is
      both): the other language's stems are added.

    Terms are de-duplicated, first occurrence first; they are OR-ed by the caller, so the extra terms
    only add candidate matches.
    """
    from shuken.knowledge.languages.detect import SHORT_LATIN_LANGUAGES, SHORT_WORDS, detect_language, script_counts

    language = detect_language(text)
    languages = [language]
    if language not in ("ja", "zh"):
        counts = script_counts(text[:2000])
        if counts["kana"]:
            languages.append("ja")
        elif counts["han"]:
            languages += ["ja", "zh"]
        elif language in SHORT_LATIN_LANGUAGES and len(text.split()) < SHORT_WORDS:
            languages += [other for other in SHORT_LATIN_LANGUAGES if other != language]
    elif language == "zh" and len(text.strip()) <= SHORT_HAN_QUERY:
        languages = ["ja", "zh"]
    terms: dict[str, None] = {}
    for code in languages:
        terms.update(dict.fromkeys(tokenizer_for(code).terms(text)))
    return list(terms)
