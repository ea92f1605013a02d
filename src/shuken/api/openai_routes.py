"""/v1 OpenAI-compatible routes: parse, call the gateway, shape the reply."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse

from shuken.api.auth import require_key
from shuken.gateway.schemas import ChatCompletionRequest, CompletionRequest, EmbeddingRequest
from shuken.governance.keys import ApiKey
from shuken.knowledge.access import Subject
from shuken.knowledge.answering import grounded_answer

router = APIRouter(prefix="/v1")
Key = Annotated[ApiKey, Depends(require_key)]
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


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


async def _generate(request: Request, body, key: ApiKey, endpoint: str):
    client = f"key-{key.id}"
    if getattr(body, "knowledge", None) is not None:
        work = grounded_answer(_gateway(request), request.app.state.services.knowledge,
                               Subject.from_api_key(key), body, client, endpoint)
    else:
        work = _gateway(request).generate(body, client=client, endpoint=endpoint)
    result = await (work if body.stream else until_disconnected(request, work))
    if isinstance(result, (dict, Response)):
        return result
    return StreamingResponse(result, media_type="text/event-stream", headers=SSE_HEADERS)


@router.get("/models")
async def list_models(request: Request, _key: Key):
    return {"object": "list", "data": _gateway(request).list_models()}


@router.get("/models/{model:path}")
async def get_model(model: str, request: Request, _key: Key):
    return _gateway(request).get_model(model)


@router.post("/chat/completions")
async def chat_completions(body: ChatCompletionRequest, request: Request, key: Key):
    return await _generate(request, body, key, "chat")


@router.post("/completions")
async def completions(body: CompletionRequest, request: Request, key: Key):
    return await _generate(request, body, key, "completions")


@router.post("/embeddings")
async def embeddings(body: EmbeddingRequest, request: Request, _key: Key):
    return await _gateway(request).embed(body)
