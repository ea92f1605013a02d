"""Date-of-birth recogniser: a real calendar date (ISO, US/EU numeric, English month names, Japanese
1985年1月2日 and era dates such as 昭和60年1月2日 / S60.1.2) next to a birth cue ("DOB", "date of birth",
"born", "生年月日", "誕生日", "生まれ", and a few EU-language cues). A date without a cue is not a DOB."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date

from shuken.governance.pii.entities import PiiEntity

ERAS = {"明治": 1868, "大正": 1912, "昭和": 1926, "平成": 1989, "令和": 2019}
ERAS.update({"M": 1868, "T": 1912, "S": 1926, "H": 1989, "R": 2019})  # S60.1.2
ERA_YEARS = {1868: 45, 1912: 15, 1926: 64, 1989: 31, 2019: 99}  # last year number of each era (令和: open)
MONTHS = {
    name: number
    for number, names in enumerate(
        (("january", "jan"), ("february", "feb"), ("march", "mar"), ("april", "apr"), ("may",), ("june", "jun"),
         ("july", "jul"), ("august", "aug"), ("september", "sep", "sept"), ("october", "oct"),
         ("november", "nov"), ("december", "dec")),
        start=1,
    )
    for name in names
}  # fmt: skip
_MONTH = "|".join(sorted(MONTHS, key=len, reverse=True))

_DATES = re.compile(
    rf"(?P<era>明治|大正|昭和|平成|令和)\s?(?P<ey>元|\d{{1,2}})\s?年\s?(?P<em>\d{{1,2}})\s?月\s?(?P<ed>\d{{1,2}})\s?日"
    rf"|(?<![A-Za-z])(?P<era2>[MTSHR])(?P<ey2>\d{{1,2}})[.\-/](?P<em2>\d{{1,2}})[.\-/](?P<ed2>\d{{1,2}})(?![\d.])"
    rf"|(?<!\d)(?P<jy>\d{{4}})\s?年\s?(?P<jm>\d{{1,2}})\s?月\s?(?P<jd>\d{{1,2}})\s?日"
    rf"|(?<![\d.\-/])(?P<iy>\d{{4}})(?P<isep>[\-/.])(?P<im>\d{{1,2}})(?P=isep)(?P<id>\d{{1,2}})(?![\d])"
    # D/M/Y or M/D/Y; a two-digit year only with "/" or "." (1-7-14 is an address block number)
    rf"|(?<![\d.\-/])(?P<n1>\d{{1,2}})(?P<nsep>[\-/.])(?P<n2>\d{{1,2}})(?P=nsep)"
    rf"(?P<ny>\d{{4}}|(?<![\-])\d{{2}})(?![\d]|[.\-/]\d)"
    rf"|(?<![A-Za-z0-9])(?P<dd>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?(?P<dm>{_MONTH})\.?,?\s+(?P<dy>\d{{4}})(?!\d)"
    rf"|(?<![A-Za-z0-9])(?P<mm>{_MONTH})\.?\s+(?P<md>\d{{1,2}})(?:st|nd|rd|th)?,?\s+(?P<my>\d{{4}})(?!\d)",
    re.IGNORECASE,
)
_CUE_BEFORE = re.compile(
    r"(?:\bd\.?\s?o\.?\s?b\b\.?|date\s+of\s+birth|birth\s*date|birthday|\bborn\b(?:\s+on|\s+in)?|\bb\.\s?d\."
    r"|geburtsdatum|geboren(?:\s+am)?|date\s+de\s+naissance|\bnée?\s+le|fecha\s+de\s+nacimiento|nacid[oa]\s+el"
    r"|data\s+di\s+nascita|\bnat[oa]\s+il|geboortedatum|geboren\s+op|生年月日|誕生日|生まれ|出生日?)",
    re.IGNORECASE,
)
_CUE_AFTER = re.compile(r"\s?(?:生まれ|産まれ|生(?![活産命徒])|出生)")
CUE_WINDOW = 40


def _year(value: str) -> int:
    year = int(value)
    if len(value) == 2:
        year += 1900 if year > date.today().year % 100 else 2000
    return year


def _valid(year: int, month: int, day: int) -> bool:
    if not 1880 <= year <= date.today().year:
        return False
    try:
        return date(year, month, day) <= date.today()
    except ValueError:
        return False


def _is_date(match: re.Match) -> bool:
    g = match.groupdict()
    if g["era"] or g["era2"]:
        base = ERAS[g["era"] or g["era2"].upper()]
        raw = g["ey"] or g["ey2"]
        number = 1 if raw == "元" else int(raw)
        if not 1 <= number <= ERA_YEARS[base]:
            return False
        return _valid(base + number - 1, int(g["em"] or g["em2"]), int(g["ed"] or g["ed2"]))
    if g["jy"]:
        return _valid(int(g["jy"]), int(g["jm"]), int(g["jd"]))
    if g["iy"]:
        return _valid(int(g["iy"]), int(g["im"]), int(g["id"]))
    if g["ny"]:
        year, first, second = _year(g["ny"]), int(g["n1"]), int(g["n2"])
        return _valid(year, first, second) or _valid(year, second, first)
    if g["dm"]:
        return _valid(int(g["dy"]), MONTHS[g["dm"].lower()], int(g["dd"]))
    return _valid(int(g["my"]), MONTHS[g["mm"].lower()], int(g["md"]))


def find_birth_dates(text: str) -> Iterator[PiiEntity]:
    """Each cue before a date claims only the first valid date after it (in 生年月日：1985年1月2日、住所1-2-3
    the block number is not a second birth date); a cue after the date (1985年1月2日生まれ) always counts."""
    claimed: set[int] = set()
    for match in _DATES.finditer(text):
        if not _is_date(match):
            continue
        start, end = match.start(), match.end()
        window_start = max(0, start - CUE_WINDOW)
        paragraph = text.rfind("\n\n", window_start, start)
        cues = list(_CUE_BEFORE.finditer(text, paragraph + 2 if paragraph >= 0 else window_start, start))
        cue = cues[-1] if cues else None  # the nearest cue before the date
        if cue is not None and cue.start() not in claimed:
            claimed.add(cue.start())
        elif not _CUE_AFTER.match(text, end):
            continue
        yield PiiEntity("DATE_OF_BIRTH", start, end, match.group(), 0.85, True)
