"""Word files (.docx) via python-docx: body paragraphs and tables in document order, headings from style
names ("Heading 2", "Title", "見出し 2") or outline levels, list paragraphs grouped, merged table cells once."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import ClassVar

from shuken.knowledge.parsing import BlockBuilder, DocumentParseError, ParsedDocument, empty_document, read_bytes
from shuken.localisable import tr

_HEADING_STYLE = re.compile(r"^(?:heading|見出し|titre|überschrift|标题|標題)\s*(\d)$", re.I)
_TITLE_STYLES = {"title", "表題", "标题", "titre"}
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # legacy .doc (and encrypted .docx) container


def _styles(paragraph):
    """The paragraph's style and the styles it is based on."""
    style = paragraph.style
    seen = 0
    while style is not None and seen < 20:
        yield style
        style = style.base_style
        seen += 1


def heading_level(paragraph) -> int:
    """1..9 for a heading paragraph, 0 otherwise: by style name, else by outline level (paragraph or style)."""
    from docx.oxml.ns import qn

    name = (paragraph.style.name or "").strip() if paragraph.style is not None else ""
    if name.lower() in _TITLE_STYLES:
        return 1
    found = _HEADING_STYLE.match(name)
    if found:
        return max(int(found.group(1)), 1)
    for element in [paragraph._p] + [style.element for style in _styles(paragraph)]:
        ppr = element.find(qn("w:pPr"))
        outline = ppr.find(qn("w:outlineLvl")) if ppr is not None else None
        if outline is not None:
            value = outline.get(qn("w:val"))
            return int(value) + 1 if value and value.isdigit() and int(value) < 9 else 0
    return 0


def _is_list_item(paragraph) -> bool:
    from docx.oxml.ns import qn

    for element in [paragraph._p] + [style.element for style in _styles(paragraph)]:
        ppr = element.find(qn("w:pPr"))
        if ppr is not None and ppr.find(qn("w:numPr")) is not None:
            return True
    return paragraph.style is not None and (paragraph.style.name or "").startswith("List")


def table_text(table) -> str:
    """Rows on lines, cells joined by " | "; a merged cell's text appears once (python-docx repeats a
    horizontally merged cell across the columns it spans, and a vertically merged one down its rows)."""
    rows: list[str] = []
    above: list = []
    for row in table.rows:
        cells = row.cells
        texts: list[str] = []
        previous = None
        for column, cell in enumerate(cells):
            if cell._tc is previous:
                continue
            previous = cell._tc
            merged_down = column < len(above) and above[column] is cell._tc
            texts.append("" if merged_down else " ".join(cell.text.split()))
        above = [cell._tc for cell in cells]
        if any(texts):
            rows.append(" | ".join(texts).rstrip())
    return "\n".join(rows)


class DocxParser:
    suffixes: ClassVar[tuple[str, ...]] = (".docx",)

    def parse(self, path: Path) -> ParsedDocument:
        data = read_bytes(path)
        if not data.strip():
            return empty_document(path)
        if data.startswith(_OLE_MAGIC):
            raise DocumentParseError(tr(
                "%(name)s: an old-format Word .doc (or a password-protected .docx), not a .docx; "
                "open it in Word or LibreOffice, save as .docx without a password, and upload again",
                name=path.name))
        try:
            return self._parse(data, path.name)
        except DocumentParseError:
            raise
        except Exception as exc:  # zip, XML and package errors all mean the same thing to the user
            raise DocumentParseError(tr("%(name)s: not a valid Word .docx file (%(type)s: %(error)s)", name=path.name,
                                        type=type(exc).__name__, error=str(exc))) from exc

    def _parse(self, data: bytes, name: str) -> ParsedDocument:
        from docx import Document
        from docx.table import Table

        document = Document(io.BytesIO(data))
        builder = BlockBuilder()
        title = (document.core_properties.title or "").strip() or None
        items: list[str] = []  # consecutive list paragraphs, emitted as one "list" block

        def flush() -> None:
            builder.add("list", "\n".join(items))
            items.clear()

        for item in document.iter_inner_content():
            if isinstance(item, Table):
                flush()
                builder.add("table", table_text(item))
                continue
            text = item.text.strip()
            if not text:
                continue
            if _is_list_item(item) and not heading_level(item):
                items.append(text)
                continue
            flush()
            level = heading_level(item)
            if level:
                builder.add("heading", text, level=level)
                # A heading by outline level may have no style at all (no default paragraph style defined).
                if title is None and item.style is not None and (item.style.name or "").lower() in _TITLE_STYLES:
                    title = text
            else:
                builder.add("paragraph", text)
        flush()
        return ParsedDocument(builder.blocks, title=title)
