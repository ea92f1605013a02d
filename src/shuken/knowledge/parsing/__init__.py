"""Document parsing: turn a file into ordered text blocks that keep their page and character offsets.

Parsers are plugins found through the `shuken.parsers` entry-point group, exactly as a third-party
parser would be; each one claims file suffixes. Parsers never touch the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import ClassVar, Literal, Protocol

from shuken import plugins
from shuken.localisable import tr

BlockKind = Literal["heading", "paragraph", "table", "list"]


@dataclass(frozen=True)
class Block:
    """One structural unit of a document, in reading order.

    `start`/`end` are character offsets into `ParsedDocument.text` (the document's extracted text,
    blocks joined by blank lines); `page` is 1-based for paged formats and None otherwise.
    """

    kind: BlockKind
    text: str
    start: int
    end: int
    page: int | None = None
    level: int = 0  # heading depth (1 = top); 0 for non-headings


@dataclass
class ParsedDocument:
    blocks: list[Block]
    pages: int | None = None  # page count for paged formats
    title: str | None = None
    ocr_pages: int = 0  # pages (or images) whose text came from OCR
    warnings: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return build_text(self.blocks)


def build_text(blocks: list[Block]) -> str:
    """The extracted text that block offsets point into."""
    parts: list[str] = []
    position = 0
    for block in blocks:
        if block.start > position:
            parts.append(" " * (block.start - position) if not parts else "\n" * (block.start - position))
        parts.append(block.text)
        position = block.end
    return "".join(parts)


class BlockBuilder:
    """Collects blocks and assigns offsets so that `build_text` reproduces them (blocks joined by '\\n\\n')."""

    def __init__(self) -> None:
        self.blocks: list[Block] = []
        self._position = 0

    def add(self, kind: BlockKind, text: str, *, page: int | None = None, level: int = 0) -> None:
        text = text.strip()
        if not text:
            return
        start = self._position + (2 if self.blocks else 0)
        self.blocks.append(Block(kind, text, start, start + len(text), page, level))
        self._position = start + len(text)


class DocumentParseError(Exception):
    """A file could not be parsed; the message says why and what to do. Reported per file, never fatal.

    Raise it with a `shuken.localisable.tr` message, which the UI can translate: `message` gives it back
    (`str(exc)` would return only its English)."""

    @property
    def message(self) -> str:
        first = self.args[0] if self.args else None
        return first if isinstance(first, str) else str(self)


def read_bytes(path: Path) -> bytes:
    """A file's bytes, or a DocumentParseError that says why they cannot be read."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DocumentParseError(tr("%(name)s: cannot read file (%(error)s)", name=path.name,
                                    error=exc.strerror or str(exc))) from exc


def empty_document(path: Path) -> ParsedDocument:
    return ParsedDocument([], warnings=[f"{path.name}: empty file"])


class Parser(Protocol):
    suffixes: ClassVar[tuple[str, ...]]  # lower-case, with the dot: (".pdf",)

    def parse(self, path: Path) -> ParsedDocument: ...


@cache
def parser_classes() -> dict[str, type]:
    """Suffix → parser class, from every installed `shuken.parsers` plugin."""
    return plugins.by_attribute(plugins.PARSERS, "suffixes")


def supported_suffixes() -> list[str]:
    return sorted(parser_classes())


def parse_file(path: Path, name: str | None = None) -> ParsedDocument:
    """Parse by the suffix of `name` (the original file name) when the bytes live under another name."""
    suffix = Path(name or path.name).suffix.lower()
    cls = parser_classes().get(suffix)
    if cls is None:
        file_name, supported = Path(name or path.name).name, ", ".join(supported_suffixes())
        if not suffix:
            raise DocumentParseError(tr("%(name)s: unsupported file type (none); supported: %(supported)s",
                                        name=file_name, supported=supported))
        raise DocumentParseError(tr("%(name)s: unsupported file type %(suffix)s; supported: %(supported)s",
                                    name=file_name, suffix=suffix, supported=supported))
    return cls().parse(path)
