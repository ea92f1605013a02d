"""UI languages: gettext catalogues (`web/locale/<lang>/LC_MESSAGES/messages.po`, compiled in memory the first
time a language is used, so no binary .mo files are committed), the choice of language from a cookie or
Accept-Language, and locale-aware dates and numbers (Babel/CLDR). English is the source language.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cache
from importlib.resources import files
from typing import Literal

from babel import Locale, dates, numbers
from babel.core import negotiate_locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

from shuken.localisable import translate

LANGUAGES = {"en": "English", "ja": "日本語"}
DEFAULT_LANGUAGE = "en"


@cache
def translations(language: str) -> NullTranslations:
    if language == DEFAULT_LANGUAGE:
        return NullTranslations()
    source = files("shuken.web").joinpath("locale", language, "LC_MESSAGES", "messages.po")
    with source.open("rb") as po:
        catalog = read_po(po, locale=language)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled)


def _accept_language(header: str) -> list[str]:
    """Language tags of an Accept-Language header, best first (q=0 excluded)."""
    weighted = []
    for position, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag and quality > 0:
            weighted.append((-quality, position, tag.strip().replace("_", "-")))
    return [tag for _q, _p, tag in sorted(weighted)]


def choose_language(cookie: str | None, accept_language: str | None) -> str:
    """The user's explicit choice (cookie) wins; then the browser's preferences; then English."""
    if cookie in LANGUAGES:
        return cookie
    preferred = _accept_language(accept_language or "")
    chosen = negotiate_locale(preferred, list(LANGUAGES), sep="-") or negotiate_locale(
        [tag.split("-")[0] for tag in preferred], list(LANGUAGES), sep="-")
    return chosen or DEFAULT_LANGUAGE


@dataclass(frozen=True)
class Localiser:
    """What a template needs for one language: gettext and CLDR formatting."""

    language: str

    @property
    def locale(self) -> Locale:
        return Locale.parse(self.language)

    def gettext(self, message: str, **values) -> str:
        text = translations(self.language).gettext(message)
        return text % values if values else text

    def text(self, message: str) -> str:
        """A service's message (`shuken.localisable.tr`) in this language; other text unchanged."""
        return translate(message, translations(self.language).gettext)

    def ngettext(self, singular: str, plural: str, count: int, **values) -> str:
        text = translations(self.language).ngettext(singular, plural, count)
        return text % {"num": count, **values}

    def datetime(self, value: datetime | str | None,
                 length: Literal["full", "long", "medium", "short"] = "medium") -> str:
        if value is None:
            return ""
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        # Shown in UTC, and labelled so: unlabelled, a reader in Tokyo would take it for local time, 9 hours off.
        # The locale's date, then its long time, which ends in the zone ("9:05:00 UTC"), joined its way.
        moment = value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
        time = dates.format_time(moment, "long", tzinfo=timezone.utc, locale=self.locale)
        # Babel annotates the pattern as a DateTimePattern but returns CLDR's str; str() is right for either.
        return (str(dates.get_datetime_format(length, locale=self.locale)).replace("'", "")
                .replace("{0}", time).replace("{1}", dates.format_date(moment, length, locale=self.locale)))

    def number(self, value: int | float | None) -> str:
        return "" if value is None else numbers.format_decimal(value, locale=self.locale)

    def size(self, count: int | None) -> str:
        """Bytes in KB/MB with the locale's digits and separators."""
        if count is None:
            return ""
        for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
            if count >= scale:
                return f"{numbers.format_decimal(round(count / scale, 1), locale=self.locale)} {unit}"
        return f"{numbers.format_decimal(count, locale=self.locale)} B"
