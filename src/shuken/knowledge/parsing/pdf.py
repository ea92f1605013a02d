"""PDF files: the pypdf text layer, page by page, split into paragraphs (and headings, by font size) from
the lines' positions; pages without a text layer are rendered with pypdfium2 and OCRed."""

from __future__ import annotations

import ctypes
import io
from itertools import pairwise
import math
import re
import statistics
from bisect import bisect_right
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from shuken.knowledge.parsing import BlockBuilder, DocumentParseError, ParsedDocument, empty_document, read_bytes
from shuken.knowledge.parsing.plain import join_lines, split_paragraphs, strip_controls
from shuken.localisable import tr

if TYPE_CHECKING:
    from pypdfium2 import PdfDocument

OCR_DPI = 300
MIN_TEXT_CHARS = 20  # a page whose text layer has fewer non-space characters is treated as scanned
HEADING_SCALE = 1.15  # a short paragraph set this much larger than the body text is a heading
_SENTENCE_END = re.compile(r"[.!?:。．！？：」』）)]$")
_BULLET = re.compile(r"^(?:[•●○◦▪■□・‣⁃※①-⑳]|[–-]\s|\(?\d{1,2}[.)）]\s)")  # a list item starts


@dataclass
class _Line:
    text: str
    y: float | None  # baseline in PDF user space (grows upwards); None if unknown
    size: float  # effective font size in points


@dataclass
class _Paragraph:
    lines: list[_Line]
    page: int

    @property
    def size(self) -> float:
        return max(line.size for line in self.lines)

    @property
    def text(self) -> str:
        return join_lines([strip_controls(line.text) for line in self.lines])


def _multiply(m: list[float], n: list[float]) -> list[float]:
    a, b, c, d, e, f = m
    return [a * n[0] + b * n[2], a * n[1] + b * n[3], c * n[0] + d * n[2], c * n[1] + d * n[3],
            e * n[0] + f * n[2] + n[4], e * n[1] + f * n[3] + n[5]]


def _page_lines(page) -> list[_Line]:
    """The page's text lines (pypdf's reading order) with each line's baseline and font size."""
    parts: list[str] = []
    starts: list[int] = []  # offset of each visited chunk in the page text
    places: list[tuple[float, float]] = []
    length = 0

    def visit(text, cm, tm, _font, font_size) -> None:
        nonlocal length
        if not text:
            return
        matrix = _multiply(list(tm), list(cm))
        starts.append(length)
        places.append((matrix[5], abs(font_size or 0) * math.hypot(matrix[2], matrix[3])))
        parts.append(text)
        length += len(text)

    returned = page.extract_text(visitor_text=visit)
    text = "".join(parts)
    if not text.strip():
        return [_Line(line, None, 0.0) for line in (returned or "").split("\n")]
    lines: list[_Line] = []
    offset = 0
    for raw in text.split("\n"):
        first = offset + len(raw) - len(raw.lstrip())
        chunk = max(bisect_right(starts, first) - 1, 0)
        y = places[chunk][0]
        # the line's size is that of the chunk holding most of its characters (not a bullet's symbol font)
        shares: dict[float, int] = {}
        end = offset + len(raw)
        while chunk < len(starts) and starts[chunk] < end:
            chunk_end = starts[chunk + 1] if chunk + 1 < len(starts) else length
            size = places[chunk][1]
            shares[size] = shares.get(size, 0) + min(chunk_end, end) - max(starts[chunk], first)
            chunk += 1
        lines.append(_Line(raw, y, max(shares, key=shares.__getitem__) if shares else places[-1][1]))
        offset = end + 1
    return lines


def _paragraphs(lines: list[_Line], page: int) -> list[_Paragraph]:
    """Break between lines where the vertical gap is wider than the page's usual line spacing, where the
    text jumps up (next column), where the font size changes, or after a short line ending a sentence."""
    lines = [line for line in lines if line.text.strip()]
    if not lines:
        return []
    steps = [a.y - b.y for a, b in pairwise(lines)
             if a.y is not None and b.y is not None and 0 < a.y - b.y < 3 * max(a.size, b.size, 1)]
    usual = statistics.median(steps) if steps else None
    widest = max(len(line.text.strip()) for line in lines)
    paragraphs = [_Paragraph([lines[0]], page)]
    for before, line in pairwise(lines):
        new = False
        if before.y is not None and line.y is not None:
            step = before.y - line.y
            biggest = max(before.size, line.size, 1)
            new = (
                step < -0.5 * biggest
                or (usual is not None and step > 1.3 * usual)
                or (usual is None and step > 2 * biggest)
                or abs(before.size - line.size) > 0.1 * biggest
            )
        short = len(before.text.strip()) < 0.7 * widest
        if new or _BULLET.match(line.text.strip()) or (short and _SENTENCE_END.search(before.text.strip())):
            paragraphs.append(_Paragraph([line], page))
        else:
            paragraphs[-1].lines.append(line)
    return paragraphs


def _heading_levels(paragraphs: list[_Paragraph]) -> dict[int, int]:
    """id(paragraph) → heading level, for short paragraphs set clearly larger than the body text."""
    weights: dict[float, int] = {}
    for paragraph in paragraphs:
        for line in paragraph.lines:
            size = round(line.size, 1)
            weights[size] = weights.get(size, 0) + len(line.text)
    if not weights:
        return {}
    body = max(weights, key=weights.__getitem__)  # the size most text is set in
    candidates = [p for p in paragraphs
                  if body > 0 and p.size >= HEADING_SCALE * body and len(p.lines) <= 3 and len(p.text) <= 200]
    sizes = sorted({round(p.size, 1) for p in candidates}, reverse=True)
    return {id(p): min(sizes.index(round(p.size, 1)) + 1, 6) for p in candidates}


def _unmapped_cjk_fonts(page) -> bool:
    """True if the page uses a CJK CID font with an Identity encoding and no ToUnicode map (older pLaTeX and
    Acrobat output): pypdf then returns CIDs as if they were characters (mojibake); pdfium knows the
    Adobe-Japan1/GB1/CNS1/Korea1 tables and reads such text correctly."""
    try:
        fonts = page["/Resources"]["/Font"]
        for font in fonts.values():
            font = font.get_object()
            if font.get("/Subtype") != "/Type0" or "/ToUnicode" in font:
                continue
            if not str(font.get("/Encoding", "")).startswith("/Identity"):
                continue
            info = font["/DescendantFonts"][0].get_object().get("/CIDSystemInfo")
            if info is not None and str(info.get_object().get("/Ordering")) in ("Japan1", "GB1", "CNS1", "Korea1"):
                return True
    except Exception:
        return False
    return False


class _Pdfium:
    """pypdfium2, opened on first use: renders scanned pages for OCR, and reads text pypdf cannot decode."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.document: PdfDocument | None = None

    def _page(self, index: int):
        import pypdfium2

        if self.document is None:
            self.document = pypdfium2.PdfDocument(self.data, password="")
        return self.document[index]

    def ocr(self, index: int, name: str) -> str:
        """The OCR text of page `index` (0-based) of the file `name`; a DocumentParseError naming the file
        and the page if OCR is unavailable."""
        from shuken.knowledge.parsing.ocr import OcrError, ocr_image

        image = self._page(index).render(scale=OCR_DPI / 72, grayscale=True).to_pil()
        if image.convert("L").getextrema()[0] > 160:  # nothing dark on the page: blank, no need to OCR
            return ""
        try:
            text, _ = ocr_image(image)
        except OcrError as exc:
            raise exc.in_file(name, index + 1) from exc
        return text

    def lines(self, index: int) -> list[_Line]:
        import pypdfium2.raw as pdfium_c

        textpage = self._page(index).get_textpage()
        count = textpage.count_chars()
        x, y = ctypes.c_double(), ctypes.c_double()
        lines: list[_Line] = []
        units: list[str] = []
        baseline: float | None = None
        sizes: dict[float, int] = {}
        for i in range(count + 1):
            unit = pdfium_c.FPDFText_GetUnicode(textpage.raw, i) if i < count else 10
            if unit == 10:  # pdfium ends lines with a generated "\r\n"
                text = "".join(units).encode("utf-16", "surrogatepass").decode("utf-16", "replace")
                lines.append(_Line(text, baseline, max(sizes, key=sizes.__getitem__) if sizes else 0.0))
                units, baseline, sizes = [], None, {}
                continue
            if unit == 13:
                continue
            units.append(chr(unit))
            if pdfium_c.FPDFText_IsGenerated(textpage.raw, i) or chr(unit).isspace():
                continue
            if baseline is None and pdfium_c.FPDFText_GetCharOrigin(textpage.raw, i, x, y):
                baseline = y.value
            size = round(pdfium_c.FPDFText_GetFontSize(textpage.raw, i), 1)
            sizes[size] = sizes.get(size, 0) + 1
        textpage.close()
        return lines

    def close(self) -> None:
        if self.document is not None:
            self.document.close()


class PdfParser:
    """Blocks carry 1-based page numbers; `ocr_pages` counts the pages whose text came from OCR."""

    suffixes: ClassVar[tuple[str, ...]] = (".pdf",)

    def parse(self, path: Path) -> ParsedDocument:
        data = read_bytes(path)
        if not data.strip():
            return empty_document(path)
        reader = _open(data, path.name)
        try:
            count = len(reader.pages)
        except Exception as exc:
            raise DocumentParseError(tr("%(name)s: damaged PDF, its page list cannot be read (%(error)s)",
                                        name=path.name, error=str(exc))) from exc
        if count == 0:
            raise DocumentParseError(tr("%(name)s: the PDF has no pages (truncated or damaged file)", name=path.name))

        warnings: list[str] = []
        content: list[tuple[int, _Paragraph | str]] = []  # (page, paragraph) or (page, OCR text) in order
        ocr_pages = 0
        pdfium = _Pdfium(data)
        try:
            for number in range(1, count + 1):
                try:
                    page = reader.pages[number - 1]
                    lines = pdfium.lines(number - 1) if _unmapped_cjk_fonts(page) else _page_lines(page)
                except Exception as exc:  # one broken content stream should not lose the other pages
                    warnings.append(f"{path.name}: page {number}: text layer unreadable ({exc})")
                    lines = []
                layer = sum(len("".join(strip_controls(line.text).split())) for line in lines)
                if layer < MIN_TEXT_CHARS:
                    try:
                        text = pdfium.ocr(number - 1, path.name)
                    except DocumentParseError:  # OCR unavailable: say so rather than index a scan as empty
                        raise
                    except Exception as exc:
                        warnings.append(f"{path.name}: page {number}: could not render for OCR ({exc})")
                        text = ""
                    if len("".join(text.split())) > layer:
                        content.append((number, text))
                        ocr_pages += 1
                        continue
                content.extend((number, paragraph) for paragraph in _paragraphs(lines, number))
        finally:
            pdfium.close()

        headings = _heading_levels([item for _, item in content if isinstance(item, _Paragraph)])
        builder = BlockBuilder()
        for number, item in content:
            if isinstance(item, str):
                for text in split_paragraphs(item):
                    builder.add("paragraph", text, page=number)
            else:
                level = headings.get(id(item), 0)
                builder.add("heading" if level else "paragraph", item.text, page=number, level=level)
        return ParsedDocument(builder.blocks, pages=count, title=_title(reader), ocr_pages=ocr_pages,
                              warnings=warnings)


def _open(data: bytes, name: str):
    from pypdf import PasswordType, PdfReader
    from pypdf.errors import DependencyError

    try:
        reader = PdfReader(io.BytesIO(data))
    except Exception as exc:
        raise DocumentParseError(tr("%(name)s: not a readable PDF (damaged or truncated: %(error)s)", name=name,
                                    error=str(exc))) from exc
    if reader.is_encrypted:
        try:
            decrypted = reader.decrypt("")
        except DependencyError as exc:
            raise DocumentParseError(tr(
                "%(name)s: encrypted with AES; reading it needs the Python package 'cryptography' (%(error)s)",
                name=name, error=str(exc))) from exc
        except Exception as exc:
            raise DocumentParseError(tr("%(name)s: encrypted PDF that cannot be decrypted (%(error)s)", name=name,
                                        error=str(exc))) from exc
        if decrypted == PasswordType.NOT_DECRYPTED:
            raise DocumentParseError(tr(
                "%(name)s: the PDF is password-protected; remove the password (or print it to a new PDF) and "
                "upload again", name=name))
    return reader


def _title(reader) -> str | None:
    try:
        title = reader.metadata.title if reader.metadata else None
    except Exception:
        return None
    title = str(title or "").strip()
    return None if title.lower() in ("", "untitled", "untitled document") else title
