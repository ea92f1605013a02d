"""Markdown files (.md, .markdown) via markdown-it-py tokens: headings, paragraphs, lists, tables and code,
with the markup stripped (link text kept, URLs and emphasis markers dropped)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar

from shuken.knowledge.parsing import BlockBuilder, ParsedDocument, read_bytes
from shuken.knowledge.parsing.plain import decode_text, join_lines

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.S)
_FRONT_TITLE = re.compile(r"^title:[ \t]*(.+?)[ \t]*$", re.M)


def inline_text(token) -> str:
    """Visible text of an inline token: soft line breaks reflowed (no space added between CJK lines),
    hard breaks kept as newlines, images by their alt text, raw HTML tags dropped."""
    lines: list[list[str]] = [[""]]  # hard-broken lines, each a list of soft-broken source lines
    for child in token.children or []:
        if child.type in ("text", "code_inline"):
            lines[-1][-1] += child.content
        elif child.type == "image":
            lines[-1][-1] += child.content  # alt text
        elif child.type == "softbreak":
            lines[-1].append("")
        elif child.type == "hardbreak":
            lines.append([""])
    return "\n".join(join_lines(soft, dehyphenate=False) for soft in lines).strip()


def _closing(tokens: list, start: int) -> int:
    """Index of the token that closes the container opened at `start`."""
    depth = 0
    for index in range(start, len(tokens)):
        depth += tokens[index].nesting
        if depth == 0:
            return index
    return len(tokens) - 1


def _table(tokens: list) -> str:
    rows: list[list[str]] = []
    for token in tokens:
        if token.type == "tr_open":
            rows.append([])
        elif token.type == "inline" and rows:
            rows[-1].append(inline_text(token))
    return "\n".join(" | ".join(cells) for cells in rows if any(cells))


def _html_text(html: str) -> str:
    import lxml.html

    try:
        fragment = lxml.html.fragment_fromstring(html, create_parent="div")
    except Exception:  # not well-formed enough to parse: keep nothing rather than raw tags
        return ""
    return " ".join(fragment.text_content().split())


def parse_markdown(source: str, builder: BlockBuilder | None = None) -> tuple[BlockBuilder, str | None]:
    """Blocks from Markdown source, and a title (front matter `title:`, else the first level-1 heading).

    Lists are one "list" block per top-level list, one line per item (nested items included, markers dropped),
    so a list stays together when chunked. Code blocks become paragraphs; block quotes' paragraphs are paragraphs.
    """
    from markdown_it import MarkdownIt

    builder = builder or BlockBuilder()
    title = None
    front = _FRONT_MATTER.match(source)
    if front:
        found = _FRONT_TITLE.search(front.group(1))
        title = found.group(1).strip("\"'") if found else None
        source = source[front.end():]
    tokens = MarkdownIt("commonmark").enable(["table", "strikethrough"]).parse(source)
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token.type == "heading_open":
            text = inline_text(tokens[index + 1])
            level = int(token.tag[1])
            builder.add("heading", text, level=level)
            if title is None and level == 1:
                title = text or None
            index = _closing(tokens, index)
        elif token.type == "paragraph_open":
            builder.add("paragraph", inline_text(tokens[index + 1]))
            index = _closing(tokens, index)
        elif token.type in ("bullet_list_open", "ordered_list_open"):
            end = _closing(tokens, index)
            items = [inline_text(t) if t.type == "inline" else t.content.rstrip("\n")
                     for t in tokens[index:end] if t.type in ("inline", "fence", "code_block")]
            builder.add("list", "\n".join(item for item in items if item))
            index = end
        elif token.type == "table_open":
            end = _closing(tokens, index)
            builder.add("table", _table(tokens[index:end]))
            index = end
        elif token.type in ("fence", "code_block"):
            builder.add("paragraph", token.content.rstrip("\n"))
        elif token.type == "html_block":
            builder.add("paragraph", _html_text(token.content))
        index += 1
    return builder, title


class MarkdownParser:
    suffixes: ClassVar[tuple[str, ...]] = (".md", ".markdown")

    def parse(self, path: Path) -> ParsedDocument:
        data = read_bytes(path)
        source, warning = decode_text(data, path.name)
        builder, title = parse_markdown(source.replace("\r\n", "\n"))
        return ParsedDocument(builder.blocks, title=title, warnings=[warning] if warning else [])
