"""Plain-text files (.txt): encoding detection and paragraphs; also the shared text helpers
(CJK-aware line joining, de-hyphenation, paragraph splitting) that the PDF and OCR parsers reuse."""

from __future__ import annotations

import codecs
import re
from pathlib import Path
from typing import ClassVar

from shuken.knowledge.parsing import BlockBuilder, DocumentParseError, ParsedDocument, read_bytes
from shuken.localisable import tr

# Scripts written without spaces between words: CJK punctuation, kana, ideographs, full/half-width forms.
CJK = "\u3000-\u303f\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef\U00020000-\U0003134f"
_CJK_CHAR = re.compile(f"[{CJK}]")
_CJK_GAP = re.compile(f"(?<=[{CJK}])[ \t]+(?=[{CJK}])")
_BLANK_LINE = re.compile(r"\n[ \t\f\v]*\n\s*")
_HYPHENATED = re.compile(r"[^\W\d_]-$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # C0 controls other than tab and newline

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),  # before UTF-16 LE: its BOM starts with the same two bytes
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def is_cjk(char: str) -> bool:
    return bool(_CJK_CHAR.match(char))


def collapse_cjk_spaces(text: str) -> str:
    """Drop the spaces that OCR and PDF extraction put between two CJK characters."""
    return _CJK_GAP.sub("", text)


def strip_controls(text: str) -> str:
    """Drop control characters (PDF fonts without a glyph map extract as NULs, for example)."""
    return _CONTROL.sub("", text)


def join_lines(lines: list[str], *, dehyphenate: bool = True) -> str:
    """Reflow layout lines into one paragraph: no space where CJK meets a line break, a space between
    Latin lines, and (if `dehyphenate`) a Latin word hyphenated across the break ("docu-" + "ment") made whole."""
    text = ""
    for line in (line.strip() for line in lines):
        if not line:
            continue
        if not text:
            text = line
        elif dehyphenate and _HYPHENATED.search(text) and line[0].islower():
            text = text[:-1] + line
        elif is_cjk(text[-1]) or is_cjk(line[0]):
            text += line
        else:
            text += " " + line
    return collapse_cjk_spaces(text)


def split_paragraphs(text: str) -> list[str]:
    """Paragraphs are separated by blank lines (lines holding only whitespace count as blank)."""
    return [part.strip("\n") for part in _BLANK_LINE.split(text.replace("\r\n", "\n").replace("\r", "\n"))
            if part.strip()]


def decode_text(data: bytes, name: str) -> tuple[str, str | None]:
    """Decode a text file: UTF-8 or a Unicode BOM, else the legacy encoding charset_normalizer finds
    (Shift_JIS/cp932 and EUC-JP Japanese files, cp1252 French, GB18030 Chinese, ...).
    Returns the text and a warning when the encoding was guessed."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding), None
            except UnicodeDecodeError as exc:
                raise DocumentParseError(tr("%(name)s: starts with a %(encoding)s byte-order mark but is not valid "
                                            "%(encoding)s (%(reason)s at byte %(position)s)", name=name,
                                            encoding=encoding, reason=exc.reason, position=exc.start)) from exc
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None:
        raise DocumentParseError(tr("%(name)s: not a text file, or in an unknown encoding; save it as UTF-8 and "
                                    "upload again", name=name))
    return str(best), f"{name}: not UTF-8; decoded as {best.encoding} (detected)"


class PlainTextParser:
    """One paragraph block per blank-line-separated paragraph; single newlines inside a paragraph are kept."""

    suffixes: ClassVar[tuple[str, ...]] = (".txt",)

    def parse(self, path: Path) -> ParsedDocument:
        data = read_bytes(path)
        text, warning = decode_text(data, path.name)
        if "\x00" in text:
            raise DocumentParseError(tr("%(name)s: contains NUL bytes, so it is binary, not text", name=path.name))
        builder = BlockBuilder()
        for paragraph in split_paragraphs(text):
            builder.add("paragraph", "\n".join(line.rstrip() for line in paragraph.split("\n")))
        return ParsedDocument(builder.blocks, warnings=[warning] if warning else [])
