"""Model answers as safe HTML: Markdown (CommonMark + tables) with raw HTML disabled, then an allow-list
sanitiser (nh3/ammonia) as a second wall, then each valid `[n]` turned into a citation link and each block
given `dir="auto"`, each code block made keyboard-focusable. Pure functions.

Model output and document text are untrusted: nothing they contain may become a script, an event handler,
a `javascript:` link or a style. Citation links are added after sanitising, from numbers we parsed, so they
are the only markup we write ourselves.
"""

from __future__ import annotations

import re

import nh3
from markdown_it import MarkdownIt

_md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable(
    ["table", "strikethrough"])

ALLOWED_TAGS = {
    "p", "br", "hr", "em", "strong", "del", "code", "pre", "blockquote", "ul", "ol", "li", "a",
    "h1", "h2", "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr", "th", "td",
}
# No free-text attributes (e.g. a link title): citation markers must only ever land in text.
ALLOWED_ATTRIBUTES = {"*": set(), "a": {"href"}, "ol": {"start"}, "th": {"align"}, "td": {"align"}}
# Private-use characters mark citations through Markdown and the sanitiser; any in the input are removed first.
_OPEN, _CLOSE = "\ue000", "\ue001"
_PRIVATE = re.compile(f"[{_OPEN}{_CLOSE}]")
_MARKER = re.compile(r"\[(\d{1,3})\]")
_PLACEHOLDER = re.compile(f"{_OPEN}(\\d{{1,3}}){_CLOSE}")
# Each block takes its direction from its own first strong character: an Arabic paragraph in an English answer
# reads right-to-left, and the other way round.
_BLOCK = re.compile(r"<(p|li|h[1-6]|blockquote|td|th)([\s>])")
# A code block scrolls sideways when its lines are long (chat.css), and a region that scrolls must be reachable
# from the keyboard (WCAG 2.1.1; axe's scrollable-region-focusable): every <pre> takes focus.
_PRE = re.compile(r"<pre>")


def render_answer(text: str, sources: int = 0) -> str:
    """HTML for an answer; `[n]` with 1 ≤ n ≤ sources becomes a link to citation n, other brackets stay text."""
    text = _PRIVATE.sub("", text)
    if sources:
        text = _MARKER.sub(lambda m: f"{_OPEN}{m.group(1)}{_CLOSE}" if 1 <= int(m.group(1)) <= sources
                           else m.group(0), text)
    html = nh3.clean(_md.render(text), tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES,
                     url_schemes={"http", "https", "mailto"}, link_rel="noopener noreferrer nofollow")
    html = _BLOCK.sub(r'<\1 dir="auto"\2', html)
    html = _PRE.sub('<pre tabindex="0">', html)
    return _PLACEHOLDER.sub(lambda m: f'<a href="#cite-{m.group(1)}" class="cite" data-cite="{m.group(1)}">'
                                      f'[{m.group(1)}]</a>', html)
