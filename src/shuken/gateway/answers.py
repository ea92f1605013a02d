"""A streamed answer as typed events, for every consumer alike: the OpenAI SSE encoding (`AnswerStream.sse`) and
the web chat read the same events, so nothing re-parses the bytes another part of Shuken wrote."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from shuken.engines.base import Finished
from shuken.errors import ShukenError
from shuken.gateway import openai_format as fmt


@dataclass(frozen=True)
class AnswerStarted:
    """The answer is under way (always the first event; the SSE stream opens with its role chunk here)."""


@dataclass(frozen=True)
class AnswerText:
    """More of the answer's text, as the user sees it (after the answer's decorators: citations, redaction)."""

    text: str


@dataclass(frozen=True)
class AnswerEnded:
    """The generation finished; `extras` are the response-level fields decorators add (e.g. `citations`)."""

    finished: Finished
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AnswerFailed:
    """The generation failed after it had started; what was sent stays sent."""

    error: ShukenError


AnswerEvent = AnswerStarted | AnswerText | AnswerEnded | AnswerFailed


class AnswerStream:
    """One streamed answer. Iterate it for its events, or take `sse()` for the OpenAI bytes; closing it before
    the end (a client that went away, a user who pressed Stop) cancels the generation and frees its slot."""

    def __init__(self, events: AsyncGenerator[AnswerEvent, None], shaper):
        self._events = events
        self._shaper = shaper

    def __aiter__(self) -> AsyncIterator[AnswerEvent]:
        return self._events

    async def aclose(self) -> None:
        await self._events.aclose()

    async def sse(self) -> AsyncIterator[bytes]:
        """The answer as OpenAI server-sent events, `data: [DONE]` last."""
        shaper = self._shaper
        try:
            async for event in self._events:
                if isinstance(event, AnswerText):
                    yield shaper.text_event(event.text)
                elif isinstance(event, AnswerEnded):
                    chunks = shaper.final_chunks(event.finished)
                    chunks[0].update(event.extras)  # the chunk that carries finish_reason
                    for chunk in chunks:
                        yield fmt.sse(chunk)
                elif isinstance(event, AnswerFailed):
                    yield fmt.sse(event.error.to_openai())
                elif isinstance(event, AnswerStarted) and (opening := shaper.first_chunk()):
                    yield fmt.sse(opening)  # chat streams open with the assistant's role
            yield fmt.sse("[DONE]")
        finally:
            await self._events.aclose()
