"""One turn of the web chat: record the question, generate the answer through the governed path, and turn
the OpenAI stream into small UI events (sanitised HTML of the answer so far, then the stored message).

The answer is stored whatever happens: finished, failed, or stopped by the user (then marked stopped), so
the conversation shows afterwards exactly what the user saw.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import AsyncIterator

from shuken.chat.conversations import ConversationService
from shuken.chat.serve import governed_generation
from shuken.gateway.schemas import ChatCompletionRequest, ChatMessage, KnowledgeOptions
from shuken.governance.identity import Subject
from shuken.web.markdown import render_answer

UPDATE_EVERY = 0.06  # seconds between re-rendered updates: smooth to read, cheap to send
STREAMING_SOURCES = 99  # while streaming, every [n] that survived the citation filter is a real source


@dataclass
class TurnState:
    text: str = ""
    citations: list[dict] = field(default_factory=list)
    error: str | None = None
    model: str = ""


def _sse_payloads(raw: bytes) -> list[dict | str]:
    payloads = []
    for line in raw.decode("utf-8").splitlines():
        if line.startswith("data: "):
            data = line[len("data: "):]
            payloads.append(data if data == "[DONE]" else json.loads(data))
    return payloads


def _absorb(state: TurnState, payload: dict) -> None:
    if "error" in payload:
        state.error = payload["error"].get("message") or "The answer failed."
        return
    if payload.get("citations") is not None:
        state.citations = payload["citations"]
    for choice in payload.get("choices", []):
        state.text += (choice.get("delta") or {}).get("content") or ""


def event_line(event: dict) -> bytes:
    return (json.dumps(event, ensure_ascii=False) + "\n").encode("utf-8")


class ChatTurns:
    def __init__(self, services, gateway, conversations: ConversationService):
        self.services = services
        self.gateway = gateway
        self.conversations = conversations

    async def start(self, subject: Subject, conversation_id: int, text: str | None, model: str,
                    collections: list[str]) -> AsyncIterator[bytes]:
        """Validate and begin the turn (errors raise here, before any byte is sent), then return the stream
        of newline-delimited JSON events: {"type": "delta", "html"}, then {"type": "done", "message"}."""
        messages = await asyncio.to_thread(self.conversations.begin_turn, subject, conversation_id, text, model,
                                           collections)
        body = ChatCompletionRequest(
            model=model, stream=True, messages=[ChatMessage.model_validate(m) for m in messages],
            knowledge=KnowledgeOptions(collections=collections) if collections else None)
        work = await governed_generation(self.services, self.gateway, subject, body, "chat")
        sse = await work
        return self._events(subject, conversation_id, sse, TurnState(model=model), bool(collections))

    async def _events(self, subject: Subject, conversation_id: int, sse, state: TurnState,
                      grounded: bool) -> AsyncIterator[bytes]:
        stored = False
        sources = STREAMING_SOURCES if grounded else 0
        last_update = 0.0
        try:
            async for raw in sse:
                for payload in _sse_payloads(raw):
                    if payload != "[DONE]":
                        _absorb(state, payload)
                now = time.monotonic()
                if state.text and now - last_update >= UPDATE_EVERY:
                    last_update = now
                    yield event_line({"type": "delta", "html": render_answer(state.text, sources)})
            stored_turn = await asyncio.to_thread(
                self.conversations.finish_turn, subject, conversation_id, self._stored_text(state), state.model,
                state.citations, False)
            stored = True
            message, conversation = stored_turn or (None, None)
            yield event_line({"type": "done", "error": state.error, "conversation": conversation,
                              "message": message and {**message, "html": render_answer(message["content"],
                                                                                        len(state.citations))}})
        finally:
            if not stored:
                # Stopped by the user (the request was cancelled): keep what they saw. Synchronous on purpose:
                # a cancelled task cannot await, and this is one small insert.
                self.conversations.finish_turn(subject, conversation_id, state.text, state.model, state.citations,
                                               True)

    @staticmethod
    def _stored_text(state: TurnState) -> str:
        if state.error and not state.text:
            return f"⚠ {state.error}"
        return state.text
