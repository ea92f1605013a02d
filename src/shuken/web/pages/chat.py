"""Web UI: the chat page and the JSON/streaming endpoints its script calls (conversations, turns, consent).
Routes parse and shape; conversations, generation and consent are the services'."""

from __future__ import annotations

import json

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from shuken.api.openai_routes import STREAM_HEADERS
from shuken.web.pages.common import API_PREFIX, Guarded, Viewer, can, render
from shuken.governance.policy import DEFAULT_AI_NOTICE
from shuken.governance.sessions import WebSession
from shuken.knowledge.languages.detect import detect_language
from shuken.web.markdown import render_answer

router = APIRouter(include_in_schema=False)
STREAMING_SOURCES = 99


def _services(request: Request):
    return request.app.state.services


def chat_models(request: Request) -> list[str]:
    """Models that can hold a conversation (not embedding or base completion models)."""
    registry = _services(request).registry
    return [m.name for m in registry.list() if "chat" in m.capabilities]


def _page_context(request: Request, viewer: WebSession) -> dict:
    services = _services(request)
    subject = viewer.subject
    collections = services.knowledge.list_collections(subject) if can(viewer, "knowledge:read") else []
    policy = services.directory.policy(subject.workspace)
    consent = services.consent.status(subject) if can(viewer, "consent:self") else None
    return {"conversations": services.conversations.list(subject), "models": chat_models(request),
            "default_model": services.settings.default_model, "collections": collections,
            "policy": policy, "default_notice": policy.ai_notice == DEFAULT_AI_NOTICE, "consent": consent}


def _shown_message(message: dict) -> dict:
    html = render_answer(message["content"], len(message["citations"])) if message["role"] == "assistant" else ""
    return {**message, "html": html, "language": detect_language(message["content"])}


@router.get("/chat")
def chat_home(request: Request, viewer: Viewer):
    return render(request, "chat.html.j2", conversation=None, messages=[], **_page_context(request, viewer))


@router.get("/chat/{conversation_id}")
def chat_conversation(conversation_id: int, request: Request, viewer: Viewer):
    conversation = _services(request).conversations.get(viewer.subject, conversation_id)
    return render(request, "chat.html.j2", conversation=conversation,
                  messages=[_shown_message(m) for m in conversation["messages"]], **_page_context(request, viewer))


# -- JSON endpoints for chat.js -----------------------------------------------------------------------------
class NewConversation(BaseModel):
    title: str = Field(default="", max_length=300)
    model: str | None = Field(default=None, max_length=200)
    collections: list[str] = Field(default_factory=list, max_length=20)


class Rename(BaseModel):
    title: str = Field(min_length=1, max_length=300)


class Turn(BaseModel):
    # No length limit here: the conversation service refuses an over-long message, in the viewer's language.
    content: str | None = Field(default=None, description="None: regenerate the last answer.")
    model: str = Field(min_length=1, max_length=200)
    collections: list[str] = Field(default_factory=list, max_length=20)


class ConsentChoice(BaseModel):
    granted: bool


@router.post(f"{API_PREFIX}/conversations", status_code=201)
def create_conversation(body: NewConversation, request: Request, viewer: Guarded):
    return _services(request).conversations.create(viewer.subject, body.title, body.model, body.collections)


@router.patch(f"{API_PREFIX}/conversations/{{conversation_id}}")
def rename_conversation(conversation_id: int, body: Rename, request: Request, viewer: Guarded):
    return _services(request).conversations.rename(viewer.subject, conversation_id, body.title)


@router.delete(f"{API_PREFIX}/conversations/{{conversation_id}}")
def delete_conversation(conversation_id: int, request: Request, viewer: Guarded):
    _services(request).conversations.delete(viewer.subject, conversation_id)
    return {"id": conversation_id, "deleted": True}


@router.post(f"{API_PREFIX}/conversations/{{conversation_id}}/turns")
async def take_turn(conversation_id: int, body: Turn, request: Request, viewer: Guarded):
    """Newline-delimited JSON: `delta` events with the answer so far as sanitised HTML, then `done` with the
    stored message. Closing the request (the Stop button) stops generation; the partial answer is kept."""
    events = await request.app.state.chat.start(viewer.subject, conversation_id, body.content, body.model,
                                                body.collections)
    return StreamingResponse(_as_lines(events), media_type="application/x-ndjson", headers=STREAM_HEADERS)


async def _as_lines(events):
    """Each event as one JSON line, the answer as sanitised HTML. While streaming every `[n]` is a real
    source (the citation filter dropped the others), so each is linked; the final message knows the count."""
    try:
        async for event in events:
            if event["type"] == "delta":
                sources = STREAMING_SOURCES if event["grounded"] else 0
                # Off the event loop: rendering a long answer (markdown-it, then nh3) takes milliseconds that
                # every other request would wait for.
                html = await anyio.to_thread.run_sync(render_answer, event["text"], sources)
                line = {"type": "delta", "html": html}
            else:
                message = event["message"]
                line = {**event, "message": message and await anyio.to_thread.run_sync(_shown_message, message)}
            yield (json.dumps(line, ensure_ascii=False) + "\n").encode("utf-8")
    finally:
        # Stopped while rendering or sending: end the turn now (it frees the model's slot and stores the partial
        # answer), not whenever the abandoned generator is collected.
        with anyio.CancelScope(shield=True):
            await events.aclose()


@router.post(f"{API_PREFIX}/consent")
def change_consent(body: ConsentChoice, request: Request, viewer: Guarded):
    return _services(request).consent.set(viewer.subject, body.granted)
