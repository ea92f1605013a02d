"""How much of a conversation the web chat sends to the model: the newest messages that fit the model's context
after room for the answer (and for the sources of a grounded answer), by a cautious token estimate. Pure.

The chat does not count tokens exactly: only an engine knows its tokenizer, and the sources of a grounded answer
are chosen after the history is. The estimate errs high for the tokenizers that matter here; when it still
falls short, the engine refuses the prompt before answering and the turn is retried with the question alone
(`turns.ChatTurns`).
"""

from __future__ import annotations

import re

ANSWER_TOKENS = 512  # room kept for the answer (at most a quarter of a small context)
TEMPLATE_TOKENS = 64  # the chat template's markup and the system prompt some templates add
MESSAGE_TOKENS = 8  # each message's role markers
GROUNDING_TOKENS = 100  # the grounding instructions
SOURCE_TOKENS = 25  # each source's <source id=.. document=.. location=..> tag

_LETTERS_AND_SPACES = re.compile(r"[A-Za-z \t]+")


def estimate_tokens(text: str) -> int:
    """Tokens `text` may cost a chat model, without its tokenizer: an ASCII letter, space or tab a quarter, other
    ASCII (digits, punctuation, line breaks) one each, and any other character one per UTF-8 byte after its
    first (kana and Han 2, Arabic 1).

    Measured against the tokenizers of SmolLM2 (the default model), Gemma 3, Llama 2 and 3, Qwen 2, Command R
    and MPT on XQuAD (en, ar, hi, zh), JSQuAD (ja), Markdown, Python and numbers: the real count is 0.2–0.9 of
    the estimate on average (1.08 for Arabic in SmolLM2, and for numbers), and at most 1.16 of it for any one
    text over 50 characters; the room kept for the answer absorbs that."""
    ascii_chars = len(text.encode("ascii", "ignore"))
    quarters = len(text) - len(_LETTERS_AND_SPACES.sub("", text))
    beyond_first_byte = len(text.encode("utf-8", "surrogatepass")) - len(text)
    return -(-quarters // 4) + (ascii_chars - quarters) + beyond_first_byte


def history_budget(context: int, sources: int = 0, source_tokens: int = 0) -> int:
    """Estimated tokens the messages may take in a `context`-token window: what is left after the answer's
    room, the template and, for a grounded answer, up to `sources` sources of `source_tokens` each."""
    grounding = GROUNDING_TOKENS + sources * (source_tokens + SOURCE_TOKENS) if sources else 0
    return context - min(ANSWER_TOKENS, context // 4) - TEMPLATE_TOKENS - grounding


def fit_history(newest_first, budget: int) -> list[dict]:
    """The newest messages (dicts with `role` and `content`, newest first) whose estimates fit `budget`, oldest
    first. The newest is always kept, so a question too long for the model gets the engine's own refusal. The
    result starts with a user message, as chat templates that enforce user/assistant turns require."""
    kept: list[dict] = []
    used = 0
    for message in newest_first:
        used += estimate_tokens(message["content"]) + MESSAGE_TOKENS
        if kept and used > budget:
            break
        kept.append(message)
    kept.reverse()
    while len(kept) > 1 and kept[0]["role"] != "user":
        kept.pop(0)
    return kept
