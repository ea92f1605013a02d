"""One turn of the web chat: record the question, generate the answer through the governed path from as much of
the conversation as fits the model's context (`chat.context`), and turn the answer's events (`gateway.answers`,
the same ones the API encodes as SSE) into events for the page: the answer's text so far, less often as it
grows, then the stored message.

The answer is stored whatever happens: finished, failed, or stopped by the user (then marked stopped), so
the conversation shows afterwards exactly what the user saw.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from collections.abc import AsyncIterator

import anyio

from shuken.chat.context import history_budget
from shuken.chat.conversations import ConversationService
from shuken.chat.generation import governed_generation
from shuken.errors import ContextLengthExceeded
from shuken.gateway.answers import AnswerEnded, AnswerEvent, AnswerFailed, AnswerStream, AnswerText
from shuken.gateway.schemas import ChatCompletionRequest, ChatMessage, KnowledgeOptions
from shuken.governance.identity import Subject

# Seconds between updates. Each update carries the whole answer so far, rendered again (about 1 ms per 1,000
# characters), so the pause grows with the answer: smooth while it is short, bounded work and bytes when long.
UPDATE_EVERY = 0.06
UPDATE_EVERY_PER_CHAR = 0.00005  # +50 ms per 1,000 characters
UPDATE_EVERY_AT_MOST = 0.5


def update_interval(text: str) -> float:
    return min(UPDATE_EVERY_AT_MOST, UPDATE_EVERY + UPDATE_EVERY_PER_CHAR * len(text))


@dataclass
class TurnState:
    text: str = ""
    citations: list[dict] = field(default_factory=list)
    error: str | None = None
    model: str = ""


def _absorb(state: TurnState, event: AnswerEvent) -> None:
    if isinstance(event, AnswerText):
        state.text += event.text
    elif isinstance(event, AnswerEnded):
        state.citations = event.extras.get("citations") or state.citations
    elif isinstance(event, AnswerFailed):
        state.error = event.error.message or "The answer failed."


def stored_text(state: TurnState) -> str:
    """What is kept of an answer: its text, and the error that cut it short if one did."""
    if state.error:
        return f"{state.text}\n\n⚠ {state.error}" if state.text else f"⚠ {state.error}"
    return state.text


class ChatTurns:
    def __init__(self, services, gateway, conversations: ConversationService):
        self.services = services
        self.gateway = gateway
        self.conversations = conversations

    async def start(self, subject: Subject, conversation_id: int, text: str | None, model: str,
                    collections: list[str]) -> AsyncIterator[dict]:
        """Validate and begin the turn (errors raise here, before anything is sent), then return the events:
        {"type": "delta", "text", "grounded"} as the answer grows, then {"type": "done", "message", ...}."""
        replaces = await asyncio.to_thread(self.conversations.begin_turn, subject, conversation_id, text, model,
                                           collections)
        knowledge = KnowledgeOptions(collections=collections) if collections else None
        # As much of the conversation as fits the model's context, leaving room for the answer and the sources.
        engine = await self.gateway.host.engine_for(model, "chat")  # loaded once; 404/400 as for the answer
        context = engine.context_length or self.services.settings.context_per_sequence  # unknown upstream: ours
        budget = history_budget(context, knowledge.k if knowledge else 0, self.services.settings.chunk_units)
        messages = await asyncio.to_thread(self.conversations.history, subject, conversation_id, budget, replaces)
        try:
            answer = await self._generate(subject, model, messages, knowledge)
        except ContextLengthExceeded:
            if len(messages) == 1:
                raise  # the question itself (with its sources) is too long: the engine's message says so
            # The estimate fell short (an unusual tokenizer, or long sources): the model refused before answering,
            # so nothing was sent yet. Ask again with the question alone.
            answer = await self._generate(subject, model, messages[-1:], knowledge)
        return self._events(subject, conversation_id, answer, TurnState(model=model), bool(collections), replaces)

    async def _generate(self, subject: Subject, model: str, messages: list[dict],
                        knowledge: KnowledgeOptions | None) -> AnswerStream:
        body = ChatCompletionRequest(model=model, stream=True, knowledge=knowledge,
                                     messages=[ChatMessage.model_validate(m) for m in messages])
        work = await governed_generation(self.services, self.gateway, subject, body, "chat")
        answer = await work
        assert isinstance(answer, AnswerStream)  # the body asked for a stream
        return answer

    async def _events(self, subject: Subject, conversation_id: int, answer: AnswerStream, state: TurnState,
                      grounded: bool, replaces: int | None) -> AsyncIterator[dict]:
        stored, stopped = None, True
        last_update = 0.0
        try:
            async for event in answer:
                _absorb(state, event)
                now = time.monotonic()
                if state.text and now - last_update >= update_interval(state.text):
                    last_update = now
                    yield {"type": "delta", "text": state.text, "grounded": grounded}
            stopped = False
        finally:
            # Also when the user stopped the answer (this task is being cancelled): shielded, so the partial
            # answer is stored and the generation's slot freed before the cancellation goes on.
            with anyio.CancelScope(shield=True):
                await answer.aclose()
                stored = await anyio.to_thread.run_sync(
                    lambda: self.conversations.finish_turn(subject, conversation_id, stored_text(state), state.model,
                                                           state.citations, stopped, replaces))
        message, conversation = stored or (None, None)
        yield {"type": "done", "error": state.error, "conversation": conversation, "message": message}
