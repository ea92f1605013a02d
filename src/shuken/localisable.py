"""Texts that people read in more than one language: services write them in English with `tr(...)`, and the web
UI shows them in the viewer's language from the gettext catalogue. The API and CLI show the English.

    raise NotFound(tr("No collection '%(name)s'.", name=name), code="collection_not_found")

`tr` marks the template for extraction (`make i18n`) and keeps the values apart from it, so a translation can
put them where its grammar needs them. A value that is itself a `tr` message is translated too, and `joined`
makes one text of several that each translate. Placeholders are gettext's python-format, `%(name)s`; a template
with values spells a literal percent sign `%%`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Self


class Message(str):
    """The English text (it is a `str`, so every existing use of a message keeps working), with the template
    and values it was made from."""

    template: str
    values: Mapping[str, object]

    def __new__(cls, template: str, values: Mapping[str, object]) -> Self:
        text = super().__new__(cls, template % dict(values) if values else template)
        text.template = template
        text.values = dict(values)
        return text

    def __reduce__(self):
        return Message, (self.template, self.values)


class Joined(Message):
    """Several texts read as one list (findings, say), each translated on its own."""

    parts: tuple[str, ...]

    def __new__(cls, parts: tuple[str, ...]) -> Self:
        text = super().__new__(cls, SEPARATOR.join(parts), {})
        text.parts = parts
        return text

    def __reduce__(self):
        return Joined, (self.parts,)


def tr(template: str, **values: object) -> Message:
    """An English text that the UI may translate; `values` fill its `%(name)s` placeholders."""
    return Message(template, values)


def joined(parts: Iterable[str]) -> Joined:
    """`parts` (messages or plain text) as one "; "-separated text that still translates part by part."""
    return Joined(tuple(parts))


# The separator between the parts of a `joined` text; the catalogue gives each language its own.
SEPARATOR = tr("; ")


def as_record(text: str) -> dict | str:
    """What to store of a text so that it can still be translated after a restart (JSON: template, values, and
    the parts of a `joined` text, nested messages included); plain text stays as it is."""
    if isinstance(text, Joined):
        return {"parts": [as_record(part) for part in text.parts]}
    if isinstance(text, Message):
        return {"template": text.template, "values": {name: as_record(value) if isinstance(value, str) else value
                                                        for name, value in text.values.items()}}
    return text


def from_record(record: object) -> str:
    """The text `as_record` stored; ValueError if the record is not one (a damaged or foreign value)."""
    if isinstance(record, str):
        return record
    if isinstance(record, dict) and isinstance(record.get("parts"), list):
        return Joined(tuple(from_record(part) for part in record["parts"]))
    if isinstance(record, dict) and isinstance(record.get("template"), str):
        values = record.get("values") or {}
        if not isinstance(values, dict):
            raise ValueError("a message record's values must be an object")
        try:
            return Message(record["template"], {name: from_record(value) if isinstance(value, (str, dict)) else value
                                                 for name, value in values.items()})
        except (KeyError, TypeError) as exc:
            raise ValueError(f"the record does not fill its template: {exc}") from None
    raise ValueError("not a message record")


def translate(text: str, gettext) -> str:
    """`text` in the language of `gettext`: a `Message` through the catalogue, with its values put back in;
    anything else (a library's error, say) as it is, since there is no template to look up."""
    if isinstance(text, Joined):
        return gettext(SEPARATOR).join(translate(part, gettext) for part in text.parts)
    if not isinstance(text, Message):
        return text
    translated = gettext(text.template)
    if not text.values:
        return translated
    values = {name: translate(value, gettext) if isinstance(value, Message) else value  # a message inside a message
              for name, value in text.values.items()}
    try:
        return translated % values
    except (KeyError, ValueError, TypeError):  # a broken translation must not hide the error it reports
        return str(text)
