"""Recognisers for structured identifiers with a format or checksum validator: e-mail, payment card (Luhn),
IBAN (mod-97), Japan's My Number, India's Aadhaar (Verhoeff), IPv4/IPv6 (`ipaddress`).

Each takes the width-folded text (same offsets as the original) and yields PiiEntity objects; a candidate
whose checksum fails is not reported at all."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator

from shuken.governance.pii.checksums import (
    IBAN_LENGTHS,
    aadhaar_valid,
    iban_valid,
    luhn_valid,
    my_number_valid,
)
from shuken.governance.pii.entities import PiiEntity

_EMAIL = re.compile(
    r"(?<![A-Za-z0-9_.%+\-@])"
    r"([A-Za-z0-9!#$%&'*+/=?^_`{|}~\-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24})"
    r"(?![A-Za-z0-9_\-@]|\.[A-Za-z0-9])"
)

# 13–19 digits, optionally grouped by single spaces or dashes; never part of a longer digit run.
_CARD = re.compile(r"(?<![A-Za-z0-9\-])(?<!\d )\d(?:[ \-]?\d){11,18}(?![A-Za-z0-9])(?![ \-]\d)")
# Within 25 characters after "card"/"cc", a 12-digit number (Maestro) or an unknown issuer prefix still counts.
_CARD_CUE = re.compile(r"\b(?:card|cc)\b|カード", re.IGNORECASE)
# Issuer prefixes in use (Visa 4, Mastercard 51–55 / 2221–2720, Amex 34/37, Discover 6, JCB 35 / 1800 /
# 2131, Diners 30/36/38/39, UnionPay 62/81, Maestro 50/56–69, Mir 2200–2204, RuPay 60/65/81/82/508).
_CARD_PREFIX = re.compile(r"^(?:4|5[0-9]|2[2-7]|3[0-9]|6|1800|2131|8[12])")

_IBAN_START = re.compile(r"(?<![A-Za-z0-9])([A-Z]{2}|[a-z]{2})(\d{2})(?=[ ]?[A-Za-z0-9])")

# 12 digits as one run or 4-4-4 with one separator kind; not inside a longer run of digits.
_TWELVE = re.compile(r"(?<![A-Za-z0-9\-])(?<!\d[ .])(\d{4})([ \-.]?)(\d{4})\2(\d{4})(?![A-Za-z0-9])(?![ \-.]\d)")

_IPV4 = re.compile(r"(?<![A-Za-z0-9_.])(?:\d{1,3}\.){3}\d{1,3}(?![A-Za-z0-9_]|\.\d)")
_IPV6 = re.compile(
    r"(?<![A-Za-z0-9_:.])(?=[0-9A-Fa-f:]*:[0-9A-Fa-f]*:)[0-9A-Fa-f:]{2,39}"  # hex groups, at least two colons
    r"(?:(?<=:)(?:\d{1,3}\.){3}\d{1,3})?"  # an embedded IPv4 tail (::ffff:10.0.0.1)
    r"(?:%[A-Za-z0-9_]+)?(?![A-Za-z0-9_:]|\.\d)"  # a zone id (fe80::1%eth0)
)

_MY_NUMBER_CUE = re.compile(r"マイナンバー|個人番号|my\s*number", re.IGNORECASE)
_AADHAAR_CUE = re.compile(r"aadhaa?r|uidai|आधार|ஆதார்|ఆధార్|আধার", re.IGNORECASE)


def find_emails(text: str) -> Iterator[PiiEntity]:
    for match in _EMAIL.finditer(text):
        value = match.group(1)
        local = value.rpartition("@")[0]
        if len(local) > 64 or len(value) > 254 or ".." in value:
            continue
        yield PiiEntity("EMAIL_ADDRESS", match.start(1), match.end(1), value, 0.95, True)


def find_cards(text: str) -> Iterator[PiiEntity]:
    for match in _CARD.finditer(text):
        raw = match.group()
        separators = {char for char in raw if not char.isdigit()}
        if len(separators) > 1:
            continue
        digits = raw.replace(" ", "").replace("-", "")
        if not luhn_valid(digits) or len(set(digits)) == 1:
            continue
        if len(digits) < 13 or not _CARD_PREFIX.match(digits):
            if not _CARD_CUE.search(text, max(0, match.start() - 25), match.start()):
                continue
        yield PiiEntity("CREDIT_CARD", match.start(), match.end(), raw, 1.0, True)


def find_ibans(text: str) -> Iterator[PiiEntity]:
    """Country code, check digits, then the country's number of letters and digits, in print groups of four
    (single spaces) or unbroken; the span ends exactly where the country's length is reached."""
    for match in _IBAN_START.finditer(text):
        length = IBAN_LENGTHS.get(match.group(1).upper())
        if length is None:
            continue
        upper = match.group(1).isupper()  # printed in one case: upper, or all lower as typed in chat
        chars = [match.group(1), match.group(2)]
        count, position, spaced = 4, match.end(), None
        while count < length and position < len(text):
            char = text[position]
            if char == " " and spaced is not False and position + 1 < len(text) and text[position + 1].isalnum():
                spaced = True
                position += 1
                continue
            if not (char.isascii() and (char.isdigit() or (char.isupper() if upper else char.islower()))):
                break
            if spaced is None and count % 4 == 0 and count > 4:
                spaced = False
            chars.append(char)
            count += 1
            position += 1
        if count != length or (position < len(text) and text[position].isalnum()):
            continue
        if iban_valid("".join(chars)):
            yield PiiEntity("IBAN_CODE", match.start(), position, text[match.start() : position], 1.0, True)


def find_national_ids(text: str, language: str) -> Iterator[PiiEntity]:
    """12-digit numbers: Japan's My Number and India's Aadhaar. A number valid for both goes to the one whose
    cue word ("マイナンバー", "Aadhaar", …) stands within 40 characters before it, else by the text's language."""
    for match in _TWELVE.finditer(text):
        digits = match.group(1) + match.group(3) + match.group(4)
        jp, india = my_number_valid(digits), aadhaar_valid(digits)
        if not (jp or india):
            continue
        if jp and india:
            before = text[max(0, match.start() - 40) : match.start()]
            if _AADHAAR_CUE.search(before):
                jp = False
            elif _MY_NUMBER_CUE.search(before) or language == "ja":
                india = False
            else:
                jp = False
        kind = "JP_MY_NUMBER" if jp else "IN_AADHAAR"
        yield PiiEntity(kind, match.start(), match.end(), match.group(), 0.95, True)


def find_ip_addresses(text: str) -> Iterator[PiiEntity]:
    for match in _IPV4.finditer(text):
        try:
            ipaddress.IPv4Address(match.group())
        except ValueError:
            continue
        yield PiiEntity("IP_ADDRESS", match.start(), match.end(), match.group(), 0.9, True)
    if ":" not in text:
        return
    for match in _IPV6.finditer(text):
        value = match.group()
        if "::" not in value and value.count(":") < 7 and "." not in value:
            continue
        try:
            ipaddress.IPv6Address(value)
        except ValueError:
            continue
        yield PiiEntity("IP_ADDRESS", match.start(), match.end(), value, 0.9, True)
