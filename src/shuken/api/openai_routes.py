"""/v1 OpenAI-compatible routes: parse, call the gateway, shape the reply."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from shuken.api.auth import Caller
from shuken.gateway.answers import AnswerStream
from shuken.gateway.schemas import ChatCompletionRequest, CompletionRequest, EmbeddingRequest
from shuken.governance.identity import Subject
from shuken.chat.generation import governed_generation

router = APIRouter(prefix="/v1")
# Every streamed response (SSE here, the web chat's NDJSON): no caching, and no proxy buffering it whole.
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def _gateway(request: Request):
    return request.app.state.gateway


async def until_disconnected(request: Request, work):
    """Run work; if the client hangs up first, cancel it so its sequence slot is freed at once.

    Streams get this from Starlette; a non-streamed generation would otherwise run to max_tokens.
    """
    task = asyncio.ensure_future(work)
    while True:
        done, _ = await asyncio.wait({task}, timeout=0.25)
        if done:
            return task.result()
        if await request.is_disconnected():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            return Response(status_code=499)  # nobody reads it; the gateway has counted the cancellation


async def _generate(request: Request, body, subject: Subject, endpoint: str):
    work = await governed_generation(request.app.state.services, _gateway(request), subject, body, endpoint)
    result = await (work if body.stream else until_disconnected(request, work))
    if isinstance(result, AnswerStream):
        return StreamingResponse(result.sse(), media_type="text/event-stream", headers=STREAM_HEADERS)
    return result


@router.get("/models")
async def list_models(request: Request, _subject: Caller):
    return {"object": "list", "data": _gateway(request).list_models()}


@router.get("/models/{model:path}")
async def get_model(model: str, request: Request, _subject: Caller):
    return _gateway(request).get_model(model)


@router.post("/chat/completions")
async def chat_completions(body: ChatCompletionRequest, request: Request, subject: Caller):
    return await _generate(request, body, subject, "chat")


@router.post("/completions")
async def completions(body: CompletionRequest, request: Request, subject: Caller):
    return await _generate(request, body, subject, "completions")


@router.post("/embeddings")
async def embeddings(body: EmbeddingRequest, request: Request, subject: Caller):
    call = await run_in_threadpool(request.app.state.services.governor.embedding_call, subject)
    return await _gateway(request).embed(body, observer=call)
