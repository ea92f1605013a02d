"""Chat messages → prompt tokens, keeping message text out of the special-token namespace.

The template's own markup (<|im_start|>, <start_of_turn>, ...) is tokenized with special tokens on;
what users wrote is tokenized with them off, so a message containing "<|im_end|>" cannot forge a turn.
"""

from __future__ import annotations

import uuid

from shuken.engines.llamacpp.runtime import LlamaRuntime
from shuken.registry.chat_template import render_chat_prompt


def _content_text(content) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    # OpenAI content parts: only text parts can reach a text model.
    return "".join(part.get("text", "") for part in content if isinstance(part, dict) and part.get("type") == "text")


def chat_prompt_tokens(runtime: LlamaRuntime, template: str, messages: list[dict]) -> list[int]:
    marker = f"\x1eshuken-{uuid.uuid4().hex}-"
    texts = [_content_text(m.get("content")) for m in messages]
    placeholders = [{**m, "content": f"{marker}{i}\x1e"} for i, m in enumerate(messages)]
    rendered = render_chat_prompt(template, placeholders, bos_token=runtime.bos_text, eos_token=runtime.eos_text)

    tokens: list[int] = []
    pieces = rendered.split(marker)
    if len(pieces) - 1 != len(messages):
        # The template rewrote or dropped contents; fall back to plain rendering.
        full = render_chat_prompt(template, [{**m, "content": t} for m, t in zip(messages, texts)],
                                  bos_token=runtime.bos_text, eos_token=runtime.eos_text)
        return _markup_tokens(runtime, full, first=True)
    tokens += _markup_tokens(runtime, pieces[0], first=True)
    for piece in pieces[1:]:
        index, _, after = piece.partition("\x1e")
        tokens += runtime.tokenize(texts[int(index)], add_special=False, parse_special=False)
        tokens += _markup_tokens(runtime, after, first=False)
    return tokens


def _markup_tokens(runtime: LlamaRuntime, text: str, *, first: bool) -> list[int]:
    if not text:
        return []
    if first and runtime.bos_text and text.startswith(runtime.bos_text) and runtime.add_bos:
        text = text[len(runtime.bos_text):]  # the tokenizer adds BOS itself; never send it twice
    return runtime.tokenize(text, add_special=first, parse_special=True)
