"""Phone number recogniser: a cheap pattern finds digit groups, Google's `phonenumbers` metadata decides
whether they form a real number (international E.164 with "+" or "00", or national in a likely region).

National numbers are tried in the text language's regions first (ja → JP: 03-1234-5678, 090-1234-5678,
0120-123-456), then in the other regions Shuken serves (JP, US, GB, IN). A number valid only in a region the
language does not suggest needs separators or a cue word ("tel", "phone", "電話", …) nearby: unbroken digit
runs are too often order or account numbers."""

from __future__ import annotations

import re
from collections.abc import Iterator

import phonenumbers

from shuken.governance.pii.entities import PiiEntity

_CANDIDATE = re.compile(
    r"(?<![A-Za-z0-9_+\-./:])"
    r"(?:(?:\+|00)\s?\d{1,3}[ \-.]?(?:\(0\)[ \-.]?)?)?"
    r"(?:\(\d{1,5}\)[ \-.]?|\d{1,5}[ \-.]?)"
    r"(?:\d{1,6}[ \-.]){0,4}\d{2,10}"
    r"(?:[ ]?(?:x|ext\.?|内線)[ ]?\d{1,5})?"
    r"(?![A-Za-z0-9_]|[\-.:]\d)"
)
# Not a phone: a US social security number's 3-2-4 shape, other identifiers named just before, or a house
# number followed by a street name.
_SSN_SHAPE = re.compile(r"^\d{3}-\d{2}-\d{4}$")
_OTHER_ID = re.compile(
    r"ssn|social security|licen[cs]e|passport|account|order|invoice|tax id|zip|postal|postcode", re.IGNORECASE
)
_STREET_AFTER = re.compile(
    r"[ \t]+(?:[A-Z][\w'.]*[ \t]+){0,3}(?:St|Street|Ave|Avenue|Rd|Road|Rue|Lane|Blvd|Way|Drive|Apt)\b"
)
_CUE = re.compile(
    r"tel\b|phone|mobile|cell|fax|call|whats ?app|contact|office|home|work|電話|携帯|連絡先|ＴＥＬ|℡|ファックス|ﾌｧｯｸｽ|FAX",  # noqa: E501  (one alternation reads best whole)
    re.IGNORECASE,
)
LANGUAGE_REGIONS = {
    "ja": ("JP",), "en": ("US", "GB", "IN"), "hi": ("IN",), "de": ("DE", "AT", "CH"), "fr": ("FR", "BE", "CH"),
    "it": ("IT",), "es": ("ES",), "nl": ("NL", "BE"), "pt": ("PT", "BR"), "pl": ("PL",), "sv": ("SE",),
}  # fmt: skip
FALLBACK_REGIONS = ("JP", "US", "GB", "IN")


def _parse(candidate: str, region: str | None):
    try:
        number = phonenumbers.parse(candidate, region)
    except phonenumbers.NumberParseException:
        return None
    return number if phonenumbers.is_valid_number(number) else None


def _has_cue(text: str, start: int, end: int) -> bool:
    return bool(_CUE.search(text, max(0, start - 30), start) or _CUE.search(text, end, min(len(text), end + 12)))


def find_phones(text: str, language: str | None) -> Iterator[PiiEntity]:
    preferred = LANGUAGE_REGIONS.get(language or "", ())
    for match in _CANDIDATE.finditer(text):
        raw = match.group()
        digits = sum(char.isdigit() for char in raw)
        if not 7 <= digits <= 15:
            continue
        start, end = match.start(), match.end()
        if _SSN_SHAPE.match(raw) or _OTHER_ID.search(text, max(0, start - 30), start) or _STREET_AFTER.match(text, end):
            continue
        if raw.startswith(("+", "00")):
            international = "+" + raw[2:] if raw.startswith("00") else raw
            if _parse(international, None) is not None:
                yield PiiEntity("PHONE_NUMBER", start, end, raw, 0.9, True)
            elif _has_cue(text, start, end) and _possible(international, (None,)):
                yield PiiEntity("PHONE_NUMBER", start, end, raw, 0.5, False)
            continue
        separated = not raw.isdigit()
        if any(_parse(raw, region) for region in preferred):
            yield PiiEntity("PHONE_NUMBER", start, end, raw, 0.85 if separated else 0.7, True)
            continue
        cue = _has_cue(text, start, end)
        if (separated or cue) and any(_parse(raw, region) for region in FALLBACK_REGIONS if region not in preferred):
            yield PiiEntity("PHONE_NUMBER", start, end, raw, 0.6, True)
        elif cue and _possible(raw, preferred + FALLBACK_REGIONS):
            yield PiiEntity("PHONE_NUMBER", start, end, raw, 0.5, False)


def _possible(raw: str, regions) -> bool:
    """Next to a cue word, a number whose length is possible in a likely region is reported unvalidated."""
    for region in regions:
        try:
            if phonenumbers.is_possible_number(phonenumbers.parse(raw, region)):
                return True
        except phonenumbers.NumberParseException:
            continue
    return False
