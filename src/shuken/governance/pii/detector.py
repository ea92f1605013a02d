"""PiiDetector: runs the recognisers a text needs (by requested types and language) and returns one
non-overlapping, sorted list of PiiEntity."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import replace

from shuken.governance.pii import dates, identifiers, names_en, names_ja, phones
from shuken.governance.pii.entities import ENTITY_TYPES, PiiEntity, fold, merge_adjacent, resolve_overlaps

NAME_TYPES = frozenset({"PERSON", "LOCATION"})
_JAPANESE = re.compile(r"[\u3041-\u3096\u30a1-\u30fa\u4e00-\u9fff]")
_OTHER_SCRIPTS = (
    ("ko", re.compile(r"[\uac00-\ud7a3]")),
    ("hi", re.compile(r"[\u0900-\u097f]")),
    ("ar", re.compile(r"[\u0600-\u06ff]")),
    ("ru", re.compile(r"[\u0400-\u04ff]")),
)
LATIN_LANGUAGES = frozenset({"en", "fr", "de", "es", "it", "pt", "nl", "sv", "da", "no", "fi", "pl", "cs", "ro"})


def guess_language(text: str) -> str:
    """Cheap script test: any kana or kanji → "ja" (Shuken's CJK users are Japanese), Hangul → "ko",
    Devanagari → "hi", Arabic → "ar", Cyrillic → "ru", anything else "en"."""
    if _JAPANESE.search(text):
        return "ja"
    for language, pattern in _OTHER_SCRIPTS:
        if pattern.search(text):
            return language
    return "en"


class PiiDetector:
    """Finds PII in text. `entity_types` restricts the types reported (default: all of ENTITY_TYPES);
    `names=False` skips the model-based PERSON/LOCATION recognisers (GiNZA, spaCy English), which cost
    milliseconds per sentence, while still reporting Japanese postal addresses found by pattern."""

    def __init__(self, entity_types: Iterable[str] | None = None, names: bool = True) -> None:
        types = tuple(ENTITY_TYPES if entity_types is None else entity_types)
        unknown = sorted(set(types) - set(ENTITY_TYPES))
        if unknown:
            raise ValueError(f"unknown PII entity types: {', '.join(unknown)}")
        self.entity_types = frozenset(types)
        self.names = names

    def detect(self, text: str, language: str | None = None) -> list[PiiEntity]:
        if not text:
            return []
        language = (language or guess_language(text)).lower().split("-")[0]
        folded = fold(text)
        wanted = self.entity_types
        found: list[PiiEntity] = []
        if "EMAIL_ADDRESS" in wanted and "@" in folded:
            found += identifiers.find_emails(folded)
        if "CREDIT_CARD" in wanted:
            found += identifiers.find_cards(folded)
        if "IBAN_CODE" in wanted:
            found += identifiers.find_ibans(folded)
        if wanted & {"JP_MY_NUMBER", "IN_AADHAAR"}:
            found += identifiers.find_national_ids(folded, language)
        if "IP_ADDRESS" in wanted:
            found += identifiers.find_ip_addresses(folded)
        if "PHONE_NUMBER" in wanted:
            found += phones.find_phones(folded, language)
        if "DATE_OF_BIRTH" in wanted:
            found += dates.find_birth_dates(folded)
        if "LOCATION" in wanted and language == "ja":
            found += names_ja.find_addresses(folded)
        if self.names and wanted & NAME_TYPES:
            if language == "ja":
                found += names_ja.find_names(text, folded)
            elif language in LATIN_LANGUAGES:
                found += names_en.find_names(text)
        entities = resolve_overlaps(entity for entity in found if entity.type in wanted)
        # recognisers read the folded text; the reported text is always the original's
        entities = [e if e.text == text[e.start : e.end] else replace(e, text=text[e.start : e.end]) for e in entities]
        return merge_adjacent(entities, text)
