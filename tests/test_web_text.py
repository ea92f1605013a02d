"""The web UI's pure text machinery: the Japanese catalogue covers every string in the templates and every service
message marked with `tr`, with the same placeholders; the language choice, CLDR formatting, and Markdown that
cannot carry script."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po

from shuken.errors import NotFound
from shuken.localisable import Message, as_record, from_record, joined, tr
from shuken.web.i18n import Localiser, choose_language
from shuken.web.markdown import render_answer

SOURCES = Path(__file__).resolve().parent.parent / "src" / "shuken"
TEMPLATES = SOURCES / "web" / "templates"
CATALOGUE = TEMPLATES.parent / "locale" / "ja" / "LC_MESSAGES" / "messages.po"
PLACEHOLDER = re.compile(r"%\(\w+\)s")


def template_messages() -> set[str]:
    found = extract_from_dir(str(TEMPLATES), method_map=[("**.j2", "jinja2")],
                             options_map={"**.j2": {"trim_blocks": "true", "lstrip_blocks": "true"}})
    return {message if isinstance(message, str) else message[0] for _f, _l, message, _c, _x in found}


def service_messages() -> set[str]:
    """The `tr("...")` templates in the Python sources, found as `make i18n` finds them (babel.cfg, `-k tr`)."""
    found = extract_from_dir(str(SOURCES), method_map=[("**.py", "python")], keywords={**DEFAULT_KEYWORDS, "tr": None})
    return {message if isinstance(message, str) else message[0] for _f, _l, message, _c, _x in found}


def test_service_messages_are_marked_without_f_strings():
    """An f-string given to `tr` is skipped by extraction and never translated."""
    offenders = [str(path.relative_to(SOURCES)) for path in SOURCES.rglob("*.py")
                 if re.search(r"\btr\(\s*[fF][\"']", path.read_text(encoding="utf-8"))]
    assert offenders == []
    assert len(service_messages()) > 100


def test_a_service_message_reads_in_the_viewers_language():
    # The message the knowledge service raises for a missing collection (knowledge/access.py).
    template = "No collection named '%(name)s'. List collections with GET /v1/collections or `shuken collections list`."
    error = NotFound(tr(template, name="規程"), code="collection_not_found")
    english = "No collection named '規程'. List collections with GET /v1/collections or `shuken collections list`."
    assert error.message == english and isinstance(error.message, Message)
    assert error.to_openai()["error"]["message"] == english  # the API and CLI stay English
    japanese = Localiser("ja").text(error.message)
    assert "規程" in japanese and re.search(r"[\u3040-\u30ff]", japanese) and "named" not in japanese
    assert Localiser("en").text(error.message) == english
    assert Localiser("ja").text("a library's own error") == "a library's own error"  # no template: as it is


def test_messages_inside_messages_and_lists_translate_and_survive_storage():
    """A parser's problem inside "file: problem", and a list of findings, read in Japanese part by part, also
    after a round trip through the JSON a job keeps (`ingest_job_files.error_message`)."""
    problem = tr("OCR took longer than %(seconds)s s for one page; gave up", seconds=300)
    wrapped = tr("%(name)s: page %(page)s: %(problem)s", name="scan.pdf", page=3, problem=problem)
    findings = joined([tr("files: %(days)s", days=tr("%(days)s day(s)", days=30)), tr("kept until deleted")])
    assert wrapped == "scan.pdf: page 3: OCR took longer than 300 s for one page; gave up"
    assert findings == "files: 30 day(s); kept until deleted"
    for text in (wrapped, findings):
        stored = from_record(json.loads(json.dumps(as_record(text))))
        assert stored == text and type(stored) is type(text)
        japanese = Localiser("ja").text(stored)
        assert japanese == Localiser("ja").text(text) and not re.search(r"[a-z]{4}", japanese.replace("scan.pdf", ""))
        assert Localiser("en").text(stored) == text
    assert "300" in Localiser("ja").text(wrapped) and "3" in Localiser("ja").text(wrapped)
    with pytest.raises(ValueError):
        from_record({"template": "%(missing)s needs a value", "values": {"other": "1"}})


def test_every_template_string_has_a_japanese_translation_with_the_same_placeholders():
    with CATALOGUE.open("rb") as po:
        catalogue = read_po(po, locale="ja")
    translated = {}
    for message in catalogue:
        if not message.id:
            continue
        singular = message.id[0] if isinstance(message.id, tuple) else message.id
        text = message.string[0] if isinstance(message.string, tuple) else message.string
        if text and not message.fuzzy:
            translated[singular] = text
    used = template_messages() | service_messages()
    assert len(used) > 300
    missing = sorted(used - set(translated))
    assert not missing, f"run `make i18n` and translate: {missing[:20]}"
    for source in used:
        assert set(PLACEHOLDER.findall(source)) == set(PLACEHOLDER.findall(translated[source])), source
        words = PLACEHOLDER.sub("", source)
        assert translated[source] != source or not re.search(r"[a-z]{4}", words), f"left in English: {source}"


@pytest.mark.parametrize("cookie, header, expected", [
    (None, "ja-JP,ja;q=0.9,en-US;q=0.8", "ja"),
    (None, "en-US,en;q=0.9", "en"),
    (None, "fr-FR, ja;q=0.5", "ja"),  # French is not offered; Japanese is the best remaining choice
    (None, "de-DE", "en"),
    (None, "ja;q=0, en", "en"),
    (None, "", "en"),
    ("en", "ja", "en"),  # the switch beats the browser
    ("xx", "ja", "ja"),
])
def test_language_choice(cookie, header, expected):
    assert choose_language(cookie, header) == expected


def test_dates_and_numbers_follow_the_language():
    moment = datetime(2026, 11, 23, 9, 5, tzinfo=timezone.utc)
    # Times are shown in UTC and say so (a Japanese reader would otherwise take them for JST, 9 hours off).
    assert Localiser("ja").datetime(moment) == "2026/11/23 9:05:00 UTC"
    assert Localiser("en").datetime(moment.isoformat()) == "Nov 23, 2026, 9:05:00\u202fAM UTC"
    tokyo = timezone(timedelta(hours=9))
    assert Localiser("ja").datetime(datetime(2026, 11, 24, 0, 5, tzinfo=tokyo)) == "2026/11/23 15:05:00 UTC"
    assert Localiser("ja").number(1234567) == "1,234,567"
    assert Localiser("en").size(3 * 1024 * 1024) == "3 MB"
    assert Localiser("ja").gettext("Sign in") == "サインイン"
    assert Localiser("en").gettext("Hello %(name)s", name="世界") == "Hello 世界"


@pytest.mark.parametrize("hostile", [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "[link](javascript:alert(1))",
    "[link](JaVaScRiPt:alert(1))",
    "[x][r]\n\n[r]: javascript:alert(1)",
    "<a href=\"https://example.org\" onclick=\"alert(1)\">a</a>",
    "![img](https://example.org/tracker.png)",
    "<svg onload=alert(1)>",
    "<iframe src=https://example.org></iframe>",
    "[data](data:text/html;base64,PHNjcmlwdD4=)",
    "\ue0001\ue001 forged marker",
    '[a](https://example.org "t [1]") [b](https://example.org "x\\" onclick=\\"alert(1)")',
    "<style>body{display:none}</style><p style=\"color:red\">x</p>",
])
def test_markdown_from_models_and_documents_cannot_carry_script(hostile):
    html = render_answer(hostile, sources=3)
    elements = parsed(html)
    assert {tag for tag, _ in elements} <= {"p", "a", "code", "em", "strong"}, html
    for tag, attributes in elements:
        assert not any(name.startswith("on") or name in ("src", "style") for name in attributes), html
        href = attributes.get("href")
        assert href is None or href.startswith(("https://", "#cite-")), html
    assert "\ue000" not in html
    assert all(attributes.get("class") != "cite" or tag == "a" and attributes["href"].startswith("#cite-")
               for tag, attributes in elements)
    assert html.count("<a ") == len([1 for tag, _ in elements if tag == "a"])  # no markup inside attributes


class _Elements(HTMLParser):
    def __init__(self):
        super().__init__()
        self.found: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.found.append((tag, dict(attrs)))


def parsed(html: str) -> list[tuple[str, dict]]:
    parser = _Elements()
    parser.feed(html)
    return parser.found


def test_markdown_citations_tables_and_direction():
    html = render_answer("**Bold** [1] and [7]\n\n| a |\n|---|\n| b |\n\nمرحبا [2]\n\n`[1]`", sources=2)
    assert '<strong>Bold</strong> <a href="#cite-1" class="cite" data-cite="1">[1]</a> and [7]' in html
    assert '<p dir="auto">مرحبا <a href="#cite-2" class="cite" data-cite="2">[2]</a></p>' in html
    assert "<table>" in html and '<td dir="auto">b</td>' in html
    assert render_answer("see [1]", sources=0) == '<p dir="auto">see [1]</p>\n'
    assert 'rel="noopener noreferrer nofollow"' in render_answer("[site](https://example.org)")


def test_code_blocks_can_be_reached_from_the_keyboard():
    # A long line makes a code block scroll sideways; a scrolling region must take focus (axe:
    # scrollable-region-focusable), and only the <pre> we render gets the attribute, never the model's text.
    html = render_answer("```\n" + "x = 1  # " + "long " * 60 + "\n```\n\n`inline`")
    elements = parsed(html)
    assert ("pre", {"tabindex": "0"}) in elements
    assert all(attributes == {} for tag, attributes in elements if tag == "code")
    assert [tag for tag, _ in parsed(render_answer('<pre tabindex="5">x</pre>'))] == ["p"]  # text, not markup
