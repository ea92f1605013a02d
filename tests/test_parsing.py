"""Document parsers on real generated files of every format, always through `parse_file` (the
`shuken.parsers` entry points), so registration is tested too. OCR tests are marked `ocr`."""

from __future__ import annotations

import difflib
import random
import re
from pathlib import Path

import pytest
from fixtures.documents import (
    COOKIE_TEXT,
    FOOTER_TEXT,
    NAV_ITEMS,
    RELATED_TEXT,
    SAMPLES,
    SHARE_TEXT,
    Heading,
    Para,
    Table,
    concat_pdfs,
    make_corrupt_docx,
    make_corrupt_pdf,
    make_docx,
    make_html,
    make_markdown,
    make_pdf,
    make_scanned_pdf,
    make_text,
    render_text_image,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shuken.knowledge.parsing import DocumentParseError, ParsedDocument, parse_file, supported_suffixes
from shuken.knowledge.parsing.ocr import debian_package, languages_for_script, ocr_image
from shuken.knowledge.parsing.plain import CJK, join_lines

CJK_SPACE = re.compile(f"[{CJK}] +[{CJK}]")


def assert_offsets(document: ParsedDocument) -> None:
    text = document.text
    for block in document.blocks:
        assert text[block.start:block.end] == block.text, block


def similarity(found: str, expected: str) -> float:
    return difflib.SequenceMatcher(None, found, expected, autojunk=False).ratio()


def texts(document: ParsedDocument, kind: str | None = None) -> list[str]:
    return [block.text for block in document.blocks if kind is None or block.kind == kind]


def test_every_format_is_registered_as_a_plugin():
    assert set(supported_suffixes()) >= {
        ".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx", ".png", ".jpg", ".jpeg", ".tif", ".tiff"
    }


def corpus(directory: Path) -> dict[str, Path]:
    """One real file per format (no OCR needed)."""
    return {
        "txt": make_text(directory / "notes.txt", SAMPLES["fr"] + SAMPLES["ja"]),
        "md": make_markdown(directory / "handbook.md"),
        "html": make_html(directory / "travel.html", title="Travel | Example Holdings", heading="Travel",
                          paragraphs=SAMPLES["en"], table=[["Item", "Limit"], ["Hotel", "150 EUR"]]),
        "pdf": make_pdf(directory / "rules.pdf", [SAMPLES["ja"][:2], SAMPLES["en"][:1]]),
        "docx": make_docx(directory / "rules.docx", [Heading("Rules"), Para(SAMPLES["hi"][0]),
                                                     Table([["a", "b"], ["c", "d"]]), Para(SAMPLES["ar"][0])]),
    }


def test_block_offsets_index_the_document_text_for_every_format(tmp_path):
    for kind, path in corpus(tmp_path).items():
        document = parse_file(path)
        assert document.blocks, kind
        assert_offsets(document)
        assert document.text.count("\n\n") >= len(document.blocks) - 1


# ---------------------------------------------------------------- plain text


def test_text_paragraphs_round_trip(tmp_path):
    paragraphs = SAMPLES["en"] + SAMPLES["zh"] + ["Name: Example\nAddress: 1 Main Street"]
    document = parse_file(make_text(tmp_path / "a.txt", paragraphs))
    assert texts(document, "paragraph") == paragraphs  # a paragraph's own line breaks are kept
    assert document.title is None and document.pages is None and not document.warnings


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "cp932", "euc_jp"])
def test_text_encodings_of_japanese_files(tmp_path, encoding):
    document = parse_file(make_text(tmp_path / "legacy.txt", SAMPLES["ja"], encoding=encoding))
    assert texts(document) == SAMPLES["ja"]
    legacy = encoding in ("cp932", "euc_jp")
    assert bool(document.warnings) == legacy  # a guessed encoding is reported, a declared one is not


def test_binary_file_named_txt_is_refused(tmp_path):
    path = tmp_path / "photo.txt"
    render_text_image(["x"], "en").save(path, "PNG")
    with pytest.raises(DocumentParseError, match="photo.txt: .*(not a text file|binary)"):
        parse_file(path)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\ufeff"), max_size=30),
                max_size=6))
def test_text_parser_keeps_every_character_and_valid_offsets(tmp_path, parts):
    source = "\n\n".join(parts)
    path = tmp_path / "property.txt"
    path.write_text(source, encoding="utf-8", newline="")
    document = parse_file(path)
    assert_offsets(document)
    assert re.sub(r"\s", "", document.text) == re.sub(r"\s", "", source)


# ---------------------------------------------------------------- Markdown


def test_markdown_structure_without_markup(tmp_path):
    document = parse_file(make_markdown(tmp_path / "handbook.md"))
    headings = [(block.text, block.level) for block in document.blocks if block.kind == "heading"]
    assert headings == [("Office handbook", 1), ("Expenses", 2), ("日本語の節", 3)]
    assert document.title == "Office handbook"
    welcome = texts(document, "paragraph")[0]
    assert welcome == ("Welcome to the office handbook. Read the full policy before your first day, "
                       "and keep badge with you.")
    assert "intranet.example" not in document.text and "*" not in document.text and "`" not in document.text
    assert texts(document, "list") == [
        "Submit receipts within thirty days.\nUse the expense form.\nAttach the original receipt.",
        "Log in.\nChoose a project.",
    ]
    assert texts(document, "table") == ["Item | Limit\nHotel | 150 EUR\nMeals | 40 EUR"]
    assert "deadline = end of month" in texts(document, "paragraph")
    assert texts(document)[-1] == "経費の精算は毎月末までに申請してください。"  # soft break joined, no space
    assert_offsets(document)


def test_markdown_front_matter_title(tmp_path):
    path = make_markdown(tmp_path / "a.markdown", '---\ntitle: "Leave policy"\n---\n\n## Scope\n\nAll staff.\n')
    document = parse_file(path)
    assert document.title == "Leave policy"
    assert [(b.kind, b.text) for b in document.blocks] == [("heading", "Scope"), ("paragraph", "All staff.")]


# ---------------------------------------------------------------- HTML


def test_html_keeps_the_article_and_drops_boilerplate(tmp_path):
    path = make_html(tmp_path / "travel.html", title="Travel rules | Example Holdings", heading="Travel rules",
                     paragraphs=SAMPLES["en"], table=[["Item", "Limit"], ["Hotel", "150 EUR"], ["Meals", "40 EUR"]])
    document = parse_file(path)
    assert document.title == "Travel rules"
    assert [(b.text, b.level) for b in document.blocks if b.kind == "heading"] == [("Travel rules", 1), ("Details", 2)]
    assert texts(document, "paragraph") == SAMPLES["en"]
    assert texts(document, "table") == ["Item | Limit\nHotel | 150 EUR\nMeals | 40 EUR"]
    boilerplate_texts = [*NAV_ITEMS, FOOTER_TEXT, COOKIE_TEXT, SHARE_TEXT, RELATED_TEXT, "Popular posts",
                         "Cookie settings", "window.analytics"]
    for boilerplate in boilerplate_texts:
        assert boilerplate not in document.text
    assert_offsets(document)


@pytest.mark.parametrize("charset", ["utf-8", "Shift_JIS", None])  # None: Shift_JIS bytes, nothing declared
def test_html_in_japanese(tmp_path, charset):
    path = make_html(tmp_path / "ja.htm", title="社内案内", heading="研修について", paragraphs=SAMPLES["ja"], lang="ja")
    page = path.read_text(encoding="utf-8")
    page = page.replace('<meta charset="utf-8">', f'<meta charset="{charset}">' if charset else "")
    path.write_bytes(page.encode(charset or "cp932"))
    document = parse_file(path)
    assert document.title == "社内案内"
    assert texts(document, "paragraph") == SAMPLES["ja"]
    assert "Investor relations" not in document.text


def test_tiny_html_page_is_still_indexed(tmp_path):
    path = tmp_path / "tiny.html"
    path.write_text("<html><head><title>Closed</title></head><body><nav><a href='/'>Home</a></nav>"
                    "<h1>Office closed</h1><p>The office is closed on <b>Monday</b>.</p>"
                    "<footer>Example Holdings</footer></body></html>", encoding="utf-8")
    document = parse_file(path)
    assert document.title == "Closed"
    assert [(b.kind, b.text) for b in document.blocks] == [
        ("heading", "Office closed"), ("paragraph", "The office is closed on Monday.")]


# ---------------------------------------------------------------- PDF


def test_pdf_pages_paragraphs_and_headings(tmp_path):
    pages = [["# 社内規程の概要", *SAMPLES["ja"][:2]], SAMPLES["en"][:2], [SAMPLES["fr"][0], SAMPLES["ja"][2]]]
    document = parse_file(make_pdf(tmp_path / "rules.pdf", pages, title="社内規程"))
    assert document.pages == 3 and document.title == "社内規程" and document.ocr_pages == 0
    assert [(b.page, b.text) for b in document.blocks] == [
        (number, text.removeprefix("# ")) for number, page in enumerate(pages, start=1) for text in page]
    assert [(b.kind, b.level) for b in document.blocks][:2] == [("heading", 1), ("paragraph", 0)]
    assert_offsets(document)


def test_pdf_japanese_and_chinese_lines_join_without_spaces(tmp_path):
    japanese = parse_file(make_pdf(tmp_path / "ja.pdf", [SAMPLES["ja"]], font="cjk"))
    chinese = parse_file(make_pdf(tmp_path / "zh.pdf", [SAMPLES["zh"]], font="zh"))
    assert texts(japanese) == SAMPLES["ja"]  # every paragraph wraps over several lines
    assert texts(chinese) == SAMPLES["zh"]
    assert not CJK_SPACE.search(japanese.text + chinese.text)


def test_pdf_latin_lines_join_with_spaces(tmp_path):
    document = parse_file(make_pdf(tmp_path / "en.pdf", [SAMPLES["en"] + SAMPLES["fr"]], font="latin"))
    assert texts(document) == SAMPLES["en"] + SAMPLES["fr"]


def test_join_lines_rules():
    assert join_lines(["The docu-", "ment is signed by the", "manager."]) == "The document is signed by the manager."
    assert join_lines(["East-", "West line"]) == "East- West line"  # not a broken word: capital follows
    assert join_lines(["東京の本社では", "会議が", "始まります。"]) == "東京の本社では会議が始まります。"
    assert join_lines(["資料は", "SharePoint に", "あります。"]) == "資料はSharePoint にあります。"
    assert join_lines(["会 議 は 九 時", "", "から"]) == "会議は九時から"


def test_pdf_with_cjk_font_lacking_unicode_map(tmp_path):
    """A real pLaTeX-made PDF (shipped with the unidic-lite dependency): its Japanese fonts are Identity-H
    without a ToUnicode map, which pypdf decodes as mojibake; the parser reads those pages with pdfium."""
    unidic_lite = pytest.importorskip("unidic_lite")
    path = Path(unidic_lite.__file__).parent / "dicdir" / "unidic-mecab.pdf"
    if not path.exists():
        pytest.skip("unidic-lite no longer ships its manual")
    document = parse_file(path)
    assert "UniDic は、形態素解析システム用の日本語辞書です。" in document.text
    assert "はじめに" in [b.text for b in document.blocks if b.kind == "heading"]
    assert document.ocr_pages == 0
    assert_offsets(document)


def test_pdf_encrypted_with_empty_password_is_read(tmp_path):
    document = parse_file(make_pdf(tmp_path / "locked.pdf", [SAMPLES["en"][:1]], font="latin", owner_password="x"))
    assert texts(document) == SAMPLES["en"][:1]


def test_pdf_with_a_password_is_refused_clearly(tmp_path):
    path = make_pdf(tmp_path / "secret.pdf", [SAMPLES["en"][:1]], font="latin", user_password="s3cret")
    with pytest.raises(DocumentParseError, match="secret.pdf: .*password"):
        parse_file(path)


def test_corrupt_pdf_is_refused_clearly(tmp_path):
    source = make_pdf(tmp_path / "good.pdf", [SAMPLES["en"]], font="latin")
    with pytest.raises(DocumentParseError, match="cut.pdf: .*(damaged|truncated)"):
        parse_file(make_corrupt_pdf(tmp_path / "cut.pdf", source))
    (tmp_path / "fake.pdf").write_text("this is not a PDF at all", encoding="utf-8")
    with pytest.raises(DocumentParseError, match="fake.pdf"):
        parse_file(tmp_path / "fake.pdf")


# ---------------------------------------------------------------- DOCX


def test_docx_structure_in_document_order(tmp_path):
    body = [
        Heading("出張規程", 1),
        Para(SAMPLES["ja"][1]),
        Heading("Limits", 2),
        Table([["Item", "Limit", "Note"], ["Hotel", None, "per night"], ["Meals", "40 EUR", "^"]]),
        Para("Amounts include tax."),
        Heading("補足", style="見出し 2"),
        Para(SAMPLES["fr"][1]),
    ]
    document = parse_file(make_docx(tmp_path / "travel.docx", body, title="Travel rules"))
    assert document.title == "Travel rules"
    assert [(b.kind, b.level, b.text) for b in document.blocks] == [
        ("heading", 1, "出張規程"),
        ("paragraph", 0, SAMPLES["ja"][1]),
        ("heading", 2, "Limits"),
        # "Hotel" spans two columns and "per night" two rows: each appears once
        ("table", 0, "Item | Limit | Note\nHotel | per night\nMeals | 40 EUR |"),
        ("paragraph", 0, "Amounts include tax."),
        ("heading", 2, "補足"),
        ("paragraph", 0, SAMPLES["fr"][1]),
    ]
    assert_offsets(document)


def test_docx_heading_by_outline_level_without_any_style(tmp_path):
    """A document that defines no default paragraph style: an unstyled paragraph's style is None, and one with an
    outline level is still a heading (not a reason to refuse the file)."""
    from docx import Document
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    word = Document()
    for style in word.styles.element.findall(qn("w:style")):
        style.attrib.pop(qn("w:default"), None)
    heading = word.add_paragraph("Travel rules")
    outline = OxmlElement("w:outlineLvl")
    outline.set(qn("w:val"), "1")
    heading._p.get_or_add_pPr().append(outline)
    word.add_paragraph(SAMPLES["en"][0])
    assert heading.style is None
    word.save(str(tmp_path / "unstyled.docx"))
    document = parse_file(tmp_path / "unstyled.docx")
    assert [(b.kind, b.level, b.text) for b in document.blocks] == [
        ("heading", 2, "Travel rules"), ("paragraph", 0, SAMPLES["en"][0])]
    assert document.title is None


def test_corrupt_docx_is_refused_clearly(tmp_path):
    with pytest.raises(DocumentParseError, match="broken.docx: not a valid Word .docx"):
        parse_file(make_corrupt_docx(tmp_path / "broken.docx"))
    legacy = tmp_path / "old.docx"
    legacy.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504))
    with pytest.raises(DocumentParseError, match=r"old.docx: .*\.doc\b.*save as \.docx"):
        parse_file(legacy)


# ---------------------------------------------------------------- any format


def test_damaged_files_raise_only_document_parse_error(tmp_path):
    """Truncated and byte-flipped copies of real files: a parser may recover or refuse, never crash."""
    rng = random.Random(7)
    for kind, path in corpus(tmp_path).items():
        data = path.read_bytes()
        for trial in range(8):
            damaged = bytearray(data)
            if kind == "pdf" or trial % 2:  # (flipped PDF bytes can leave a page worth OCRing: slow)
                damaged = damaged[: rng.randrange(1, len(damaged))]
            else:
                for _ in range(rng.randrange(1, 20)):
                    damaged[rng.randrange(len(damaged))] = rng.randrange(256)
            target = tmp_path / f"damaged{path.suffix}"
            target.write_bytes(bytes(damaged))
            try:
                assert_offsets(parse_file(target))
            except DocumentParseError as exc:
                assert str(exc).startswith("damaged"), exc  # names the file


def test_damaged_image_is_refused_clearly(tmp_path):
    path = tmp_path / "scan.png"
    render_text_image(["Truncated upload"], "en").save(path)
    path.write_bytes(path.read_bytes()[:400])
    with pytest.raises(DocumentParseError, match="scan.png: damaged image"):
        parse_file(path)



@pytest.mark.parametrize("suffix", [".txt", ".md", ".html", ".pdf", ".docx", ".png"])
def test_empty_file_gives_an_empty_document(tmp_path, suffix):
    path = tmp_path / f"empty{suffix}"
    path.write_bytes(b"")
    document = parse_file(path)
    assert document.blocks == [] and document.text == ""


def test_unsupported_suffix_names_the_supported_ones(tmp_path):
    path = tmp_path / "budget.xlsx"
    path.write_bytes(b"PK\x03\x04")
    with pytest.raises(DocumentParseError, match=r"budget.xlsx: unsupported file type \.xlsx; supported: .*\.docx"):
        parse_file(path)


# ---------------------------------------------------------------- OCR


def test_script_to_language_packs():
    assert languages_for_script("Japanese") == "jpn+chi_sim"
    assert languages_for_script("Han") == "chi_sim+jpn"  # kanji-heavy Japanese is often reported as Han
    assert languages_for_script("Arabic") == "ara+eng"
    assert languages_for_script("Devanagari") == "hin+eng"
    assert languages_for_script("Latin") == "fra+eng"
    assert languages_for_script(None) == languages_for_script("Cyrillic") == "eng+jpn"
    assert debian_package("chi_sim") == "tesseract-ocr-chi-sim"


@pytest.mark.ocr
def test_scanned_japanese_page_is_ocred(tmp_path):
    text_page = make_pdf(tmp_path / "text.pdf", [SAMPLES["en"][:1]], font="latin")
    scan = make_scanned_pdf(tmp_path / "scan.pdf", SAMPLES["ja"][:2], "ja")
    document = parse_file(concat_pdfs(tmp_path / "mixed.pdf", text_page, scan))
    assert document.pages == 2 and document.ocr_pages == 1
    assert texts(document)[0] == SAMPLES["en"][0]
    ocr_text = "\n\n".join(b.text for b in document.blocks if b.page == 2)
    accuracy = similarity(ocr_text, "\n\n".join(SAMPLES["ja"][:2]))
    assert accuracy >= 0.9, (accuracy, ocr_text)
    assert not CJK_SPACE.search(ocr_text)
    assert_offsets(document)


@pytest.mark.ocr
def test_rotated_english_photo_is_ocred_upright(tmp_path):
    path = tmp_path / "notice.png"
    render_text_image(SAMPLES["en"][:2], "en").rotate(90, expand=True, fillcolor=255).save(path)
    document = parse_file(path)
    assert document.ocr_pages == 1 and document.pages is None
    accuracy = similarity(document.text, "\n\n".join(SAMPLES["en"][:2]))
    assert accuracy >= 0.9, (accuracy, document.text)


@pytest.mark.ocr
def test_multipage_tiff_in_arabic(tmp_path):
    path = tmp_path / "scan.tiff"
    first = render_text_image(SAMPLES["ar"], "ar")
    second = render_text_image(["Second page."], "en")
    first.save(path, save_all=True, append_images=[second], compression="tiff_lzw")
    document = parse_file(path)
    assert document.pages == 2 and document.ocr_pages == 2
    arabic = "\n\n".join(b.text for b in document.blocks if b.page == 1)
    accuracy = similarity(arabic, "\n\n".join(SAMPLES["ar"]))
    assert accuracy >= 0.9, (accuracy, arabic)
    assert [b.text for b in document.blocks if b.page == 2] == ["Second page."]  # too short for OSD: default packs


@pytest.mark.ocr
def test_missing_language_pack_says_what_to_install():
    image = render_text_image(["x"], "en")
    # "qaa" is a private-use language code: no Tesseract pack will ever be installed under it
    with pytest.raises(DocumentParseError, match="apt-get install tesseract-ocr-qaa"):
        ocr_image(image, languages="eng+qaa")


@pytest.mark.ocr
def test_missing_tesseract_says_what_to_install(monkeypatch):
    import pytesseract

    from shuken.knowledge.parsing import ocr

    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", "/nonexistent/tesseract")
    ocr._installed_languages.cache_clear()
    try:
        with pytest.raises(DocumentParseError, match="apt-get install tesseract-ocr"):
            ocr_image(render_text_image(["x"], "en"))
    finally:
        ocr._installed_languages.cache_clear()
