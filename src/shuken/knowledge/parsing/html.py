"""HTML pages (.html, .htm): the main content found by trafilatura (navigation, footers and other
boilerplate dropped) as headings, paragraphs, lists and tables; tiny pages fall back to the body text."""

from __future__ import annotations

import codecs
import re
from pathlib import Path
from typing import ClassVar

from shuken.knowledge.parsing import BlockBuilder, DocumentParseError, ParsedDocument, empty_document, read_bytes
from shuken.localisable import tr
from shuken.knowledge.parsing.plain import decode_text

_BLOCK_TAGS = {"p", "h1", "h2", "h3", "h4", "h5", "h6", "li", "pre", "blockquote", "td", "th", "dt", "dd",
               "caption", "figcaption", "div", "section", "article", "main", "body", "address", "table", "tr",
               "ul", "ol", "dl"}
MIN_ARTICLE_CHARS = 250  # shorter extractions are re-done from the body with menus, header and footer cut
_DECLARED_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([\w.:-]+)""", re.I)
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")
_NOT_CONTENT = ("script", "style", "noscript", "template", "nav", "header", "footer", "aside", "form", "head")


def decode_html(data: bytes, name: str) -> str:
    """The page as text: by its <meta charset> if it declares a known one, else as a text file is decoded
    (UTF-8, a BOM, or the detected legacy encoding, e.g. an undeclared Shift_JIS page)."""
    declared = _DECLARED_CHARSET.search(data[:4096])
    if declared and not data.startswith((codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode(declared.group(1).decode("ascii"), errors="replace")
        except LookupError:  # an encoding name Python does not know
            pass
    return decode_text(data, name)[0]


def _squash(text: str) -> str:
    """Collapse whitespace runs to one space, keeping explicit line breaks."""
    return "\n".join(" ".join(line.split()) for line in text.split("\n")).strip()


def _text(element) -> str:
    return _squash("".join(element.itertext()))


def _walk(container, builder: BlockBuilder) -> None:
    """Blocks from trafilatura's XML (<head rend="h2">, <p>, <list><item>, <table><row><cell>, <quote>, <code>)."""
    for element in container:
        tag = element.tag
        if tag == "head":
            rend = element.get("rend", "h2")
            level = int(rend[1]) if len(rend) == 2 and rend[0] == "h" and rend[1].isdigit() else 2
            builder.add("heading", _text(element), level=level)
        elif tag == "list":
            builder.add("list", "\n".join(t for t in (_text(item) for item in element.findall("item")) if t))
        elif tag == "table":
            rows = (" | ".join(_text(cell) for cell in row.iter("cell")) for row in element.iter("row"))
            builder.add("table", "\n".join(row for row in rows if row.strip(" |")))
        elif tag in ("p", "quote", "code"):
            builder.add("paragraph", _text(element))
        elif len(element):
            _walk(element, builder)
        else:
            builder.add("paragraph", _text(element))


def _visible_text(tree, builder: BlockBuilder) -> None:
    """Fallback for pages trafilatura finds no article in: each block element's own inline text."""
    body = tree.find(".//body")
    body = body if body is not None else tree
    for element in list(body.iter(*_NOT_CONTENT)):
        if element is not body:
            element.drop_tree()
    for element in body.iter():
        if not isinstance(element.tag, str) or element.tag not in _BLOCK_TAGS:
            continue
        parts = [element.text or ""]
        for child in element:
            if isinstance(child.tag, str) and child.tag not in _BLOCK_TAGS:
                parts.append("\n" if child.tag == "br" else child.text_content())
            parts.append(child.tail or "")
        text = _squash("".join(parts))
        if element.tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
            builder.add("heading", text, level=int(element.tag[1]))
        else:
            builder.add("paragraph", text)


class HtmlParser:
    suffixes: ClassVar[tuple[str, ...]] = (".html", ".htm")

    def parse(self, path: Path) -> ParsedDocument:
        import lxml.etree
        import lxml.html
        import trafilatura

        data = read_bytes(path)
        if not data.strip():
            return empty_document(path)
        page = _XML_DECLARATION.sub("", decode_html(data, path.name))  # lxml refuses str with an encoding declaration
        try:
            tree = lxml.html.document_fromstring(page)
        except (lxml.etree.LxmlError, ValueError) as exc:
            raise DocumentParseError(tr("%(name)s: not readable as HTML (%(error)s)", name=path.name,
                                        error=str(exc))) from exc
        page_title = _squash(tree.findtext(".//title") or "") or None

        builder = BlockBuilder()
        title = page_title
        try:  # offline: given the page itself, trafilatura fetches nothing
            extracted = trafilatura.extract(
                page, output_format="xml", include_tables=True, include_formatting=False, include_links=False,
                include_images=False, include_comments=False, with_metadata=True,
            )
        except Exception:  # a heuristic extractor failing on odd markup must not lose the page
            extracted = None
        if extracted:
            root = lxml.etree.fromstring(extracted.encode("utf-8"))
            for line_break in root.iter("lb"):
                line_break.tail = "\n" + (line_break.tail or "")
            cleaned = _squash(root.get("title") or "")
            if cleaned and (page_title is None or cleaned in page_title):
                title = cleaned  # <title> without the " | Site name" part
            main = root.find("main")
            if len(_text(main if main is not None else root)) >= MIN_ARTICLE_CHARS:
                _walk(main if main is not None else root, builder)
        if not builder.blocks:  # nothing, or so little that trafilatura kept the whole page, menus included
            _visible_text(tree, builder)
        return ParsedDocument(builder.blocks, title=title)
