"""Chat messages → prompt tokens, keeping message text out of the special-token namespace.

The template's own markup (<|im_start|>, <start_of_turn>, ...) is tokenized with special tokens on;
what users wrote is tokenized with them off, so a message containing "<|im_end|>" cannot forge a turn.
Contents are swapped for markers while rendering; the markers carry no whitespace at either end, so
templates that `trim` contents keep them. A template that drops or rewrites them is refused rather
than rendered unsafely.
"""

from __future__ import annotations

import re
import uuid

from shuken.engines.llamacpp.runtime import LlamaRuntime
from shuken.localisable import tr
from shuken.registry.chat_template import ChatTemplateFailed, render_chat_prompt


def _content_text(content) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    # OpenAI content parts (validated by the request schema): only text parts reach a text model.
    return "".join(part["text"] for part in content if part.get("type") == "text" and part.get("text"))


def chat_prompt_tokens(runtime: LlamaRuntime, template: str, messages: list[dict]) -> list[int]:
    nonce = uuid.uuid4().hex
    marker = re.compile(rf"⟦{nonce}:(\d+)⟧")
    texts = [_content_text(m.get("content")) for m in messages]
    placeholders = [{**m, "content": f"⟦{nonce}:{i}⟧"} for i, m in enumerate(messages)]
    rendered = render_chat_prompt(template, placeholders, bos_token=runtime.bos_text, eos_token=runtime.eos_text)

    pieces = marker.split(rendered)  # markup, index, markup, index, ..., markup
    indices = [int(index) for index in pieces[1::2]]
    if sorted(indices) != list(range(len(messages))) or nonce in "".join(pieces[0::2]):
        raise ChatTemplateFailed(tr(
            "This model's chat template rewrites message contents, so Shuken cannot keep user text apart "
            "from the template's special tokens; it refuses rather than risk forged turns. "
            "Use /v1/completions, or a model whose template inserts contents unchanged."), param="model")
    tokens = _markup_tokens(runtime, pieces[0], first=True)
    for index, markup in zip(indices, pieces[2::2], strict=True):
        tokens += runtime.tokenize(texts[index], add_special=False, parse_special=False)
        tokens += _markup_tokens(runtime, markup, first=False)
    if not pieces[0] and runtime.add_bos:
        tokens = runtime.tokenize("", add_special=True) + tokens  # nothing came before the first content
    return tokens


def _markup_tokens(runtime: LlamaRuntime, text: str, *, first: bool) -> list[int]:
    if not text:
        return []
    if first and runtime.bos_text and text.startswith(runtime.bos_text) and runtime.add_bos:
        text = text[len(runtime.bos_text):]  # the tokenizer adds BOS itself; never send it twice
    return runtime.tokenize(text, add_special=first, parse_special=True)
