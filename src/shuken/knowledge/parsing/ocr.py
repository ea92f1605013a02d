"""OCR with Tesseract (shared by scanned PDF pages and images): script detection picks the language packs,
pages are turned upright, CJK spacing is repaired. Also `ImageParser` for .png/.jpg/.tif files."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import ClassVar

from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

from shuken.knowledge.parsing import BlockBuilder, DocumentParseError, ParsedDocument
from shuken.knowledge.parsing.plain import join_lines, split_paragraphs, strip_controls
from shuken.localisable import tr

# Tesseract OSD script name → language packs. Measured on rendered 300 dpi pages (character similarity):
# OSD confuses Japanese and Chinese both ways (kanji-heavy Japanese → "Han", Chinese → "Japanese"), so both
# CJK entries carry jpn and chi_sim: jpn+chi_sim read Japanese 1.00, Japanese with English words 1.00
# (jpn+eng: 0.96, it misread a kana phrase as Latin) and Chinese 0.97 (jpn+eng: 0.44).
SCRIPT_LANGUAGES = {
    "Japanese": "jpn+chi_sim",
    "Katakana": "jpn+chi_sim",
    "Hiragana": "jpn+chi_sim",
    "Han": "chi_sim+jpn",
    "Arabic": "ara+eng",
    "Devanagari": "hin+eng",
    "Latin": "fra+eng",  # French 1.00 vs 0.997 with eng+fra (accents); English 1.00 either way
}
DEFAULT_LANGUAGES = "eng+jpn"  # when OSD finds too little text to name a script
MIN_ORIENTATION_CONFIDENCE = 2.0  # below this OSD's rotation guess is noise; leave the page as it is
OCR_TIMEOUT_SECONDS = 300  # per page


def languages_for_script(script: str | None) -> str:
    """Tesseract language string for an OSD script name (None or unknown → the default)."""
    return SCRIPT_LANGUAGES.get(script or "", DEFAULT_LANGUAGES)


def debian_package(language: str) -> str:
    return "tesseract-ocr-" + language.lower().replace("_", "-")


class OcrError(DocumentParseError):
    """OCR is unavailable, or failed on one image; `in_file` names the file (and the page) it was for."""

    def in_file(self, name: str, page: int | None = None) -> DocumentParseError:
        if page is None:
            return DocumentParseError(tr("%(name)s: %(problem)s", name=name, problem=self.message))
        return DocumentParseError(tr("%(name)s: page %(page)s: %(problem)s", name=name, page=page,
                                     problem=self.message))


@cache
def _installed_languages() -> frozenset[str]:
    import pytesseract

    try:
        return frozenset(pytesseract.get_languages(config=""))
    except pytesseract.TesseractNotFoundError as exc:
        raise OcrError(tr("OCR needs the Tesseract program, which is not installed: run `apt-get install "
                          "tesseract-ocr` (Debian/Ubuntu) and restart Shuken")) from exc
    except (OSError, pytesseract.TesseractError) as exc:
        raise OcrError(tr("OCR unavailable: Tesseract could not list its languages (%(error)s)",
                          error=str(exc))) from exc


def require_languages(languages: str) -> None:
    missing = [lang for lang in languages.split("+") if lang not in _installed_languages()]
    if missing:  # look again: the pack may have been installed since the first check
        _installed_languages.cache_clear()
        missing = [lang for lang in missing if lang not in _installed_languages()]
    if missing:
        packages = " ".join(debian_package(lang) for lang in missing)
        raise OcrError(tr("OCR language pack(s) %(languages)s not installed: run `apt-get install %(packages)s`",
                          languages=", ".join(missing), packages=packages))


def detect_script(image: Image.Image) -> tuple[str | None, int]:
    """(script, clockwise degrees to turn the image upright) from Tesseract OSD; (None, 0) if too little text."""
    import pytesseract

    try:
        osd = pytesseract.image_to_osd(
            image, config="--psm 0", output_type=pytesseract.Output.DICT, timeout=OCR_TIMEOUT_SECONDS
        )
    except (pytesseract.TesseractError, RuntimeError):
        return None, 0  # "Too few characters", or an empty/odd image
    rotate = int(osd.get("rotate", 0)) if float(osd.get("orientation_conf", 0)) >= MIN_ORIENTATION_CONFIDENCE else 0
    return osd.get("script") or None, rotate


def _upright_grey(image: Image.Image) -> Image.Image:
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        background = Image.new("RGBA", image.size, "white")
        image = Image.alpha_composite(background, image.convert("RGBA"))
    return image.convert("L")


def ocr_image(image: Image.Image, languages: str | None = None) -> tuple[str, str]:
    """OCR one page image. Returns (text, Tesseract language string used); paragraphs are separated by
    blank lines, and a paragraph's layout lines are joined (no spaces inserted between CJK characters).
    With `languages=None` the script is detected first (OSD) and the page rotated upright if needed."""
    import pytesseract

    image = _upright_grey(image)
    if languages is None:
        require_languages("osd")
        script, rotate = detect_script(image)
        if rotate:
            image = image.rotate(-rotate, expand=True, fillcolor=255)
        languages = languages_for_script(script)
    require_languages(languages)
    try:
        raw = pytesseract.image_to_string(image, lang=languages, timeout=OCR_TIMEOUT_SECONDS)
    except RuntimeError as exc:  # pytesseract's timeout
        raise OcrError(tr("OCR took longer than %(seconds)s s for one page; gave up",
                          seconds=OCR_TIMEOUT_SECONDS)) from exc
    except pytesseract.TesseractError as exc:
        raise OcrError(tr("OCR failed: %(error)s", error=exc.message or str(exc))) from exc
    paragraphs = (join_lines(paragraph.split("\n")) for paragraph in split_paragraphs(strip_controls(raw)))
    return "\n\n".join(paragraph for paragraph in paragraphs if paragraph), languages


class ImageParser:
    """Images are OCRed; each frame of a multi-frame TIFF is a page (single images have no page number)."""

    suffixes: ClassVar[tuple[str, ...]] = (".png", ".jpg", ".jpeg", ".tif", ".tiff")

    def parse(self, path: Path) -> ParsedDocument:
        builder = BlockBuilder()
        warnings: list[str] = []
        try:
            if path.stat().st_size == 0:
                return ParsedDocument([], warnings=[f"{path.name}: empty file"])
            with Image.open(path) as image:
                frames = getattr(image, "n_frames", 1)
                paged = frames > 1
                for number, frame in enumerate(ImageSequence.Iterator(image), start=1):
                    text, _ = ocr_image(ImageOps.exif_transpose(frame))
                    for paragraph in split_paragraphs(text):
                        builder.add("paragraph", paragraph, page=number if paged else None)
                    if not text:
                        warnings.append(f"{path.name}: no text recognised" + (f" on page {number}" if paged else ""))
        except OcrError as exc:  # OCR unavailable or failed: name the file
            raise exc.in_file(path.name) from exc
        except UnidentifiedImageError as exc:
            raise DocumentParseError(tr("%(name)s: not a readable image (unknown or damaged format)",
                                        name=path.name)) from exc
        except Image.DecompressionBombError as exc:
            raise DocumentParseError(tr("%(name)s: image too large to OCR safely (%(error)s)", name=path.name,
                                        error=str(exc))) from exc
        except (OSError, ValueError, SyntaxError) as exc:  # truncated or damaged image data
            raise DocumentParseError(tr("%(name)s: damaged image (%(error)s)", name=path.name,
                                        error=str(exc))) from exc
        return ParsedDocument(builder.blocks, pages=frames if paged else None, ocr_pages=frames, warnings=warnings)
