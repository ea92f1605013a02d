"""Gateway: runs OpenAI-shaped chat, completion and embedding requests against the model host.

Errors are raised before the first byte of a response, so they keep their HTTP status; a failure
mid-stream becomes an OpenAI error event. Logs carry counts and timings, never prompt or output text.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import AsyncIterator

from shuken.config import Settings
from shuken.engines.base import Finished, GenerationRequest, TextDelta
from shuken.errors import InvalidRequest, ShukenError
from shuken.gateway import openai_format as fmt
from shuken.gateway.host import ModelHost
from shuken.gateway.metrics import GatewayMetrics
from shuken.gateway.schemas import ChatCompletionRequest, CompletionRequest, EmbeddingRequest

log = logging.getLogger("shuken.gateway")
CLIENT_CLOSED = 499  # nginx's status for "client closed the connection before the response was complete"


class Gateway:
    def __init__(self, host: ModelHost, settings: Settings):
        self.host = host
        self.settings = settings
        self.metrics = GatewayMetrics(host)

    def list_models(self) -> list[dict]:
        return [fmt.model_card(m) for m in self.host.registry.list()]

    def get_model(self, name: str) -> dict:
        return fmt.model_card(self.host.registry.get(name))

    def _count(self, model: str, endpoint: str, status: int, started: float) -> None:
        self.metrics.requests.labels(model, endpoint, str(status)).inc()
        self.metrics.latency.labels(model, endpoint).observe(time.perf_counter() - started)

    async def _submit(self, request: ChatCompletionRequest | CompletionRequest, client: str):
        request.refuse_unsupported()
        is_chat = isinstance(request, ChatCompletionRequest)
        engine = await self.host.engine_for(request.model, "chat" if is_chat else "completions")
        generation_request = GenerationRequest(
            params=fmt.sampling_params(request),
            messages=[m.for_template() for m in request.messages] if is_chat else None,
            prompt=None if is_chat else request.single_prompt,
            client=client,
            stream=request.stream,
        )
        return await engine.submit(generation_request)

    async def generate(self, request: ChatCompletionRequest | CompletionRequest, client: str,
                       endpoint: str) -> dict | AsyncIterator[bytes]:
        """A whole response dict, or (for stream=True) an iterator of SSE bytes."""
        started = time.perf_counter()
        try:
            generation = await self._submit(request, client)
        except ShukenError as exc:
            self._count(request.model, endpoint, exc.status, started)
            raise
        shaper = fmt.shaper_for(request, request.model)
        if request.stream:
            return self._stream(generation, shaper, request.model, endpoint, started)
        return await self._collect(generation, shaper, request.model, endpoint, started)

    def _finish(self, model: str, endpoint: str, finished: Finished, started: float, first: float | None,
                client: str = "") -> None:
        self._count(model, endpoint, 200, started)
        self.metrics.tokens.labels(model, "prompt").inc(finished.prompt_tokens)
        self.metrics.tokens.labels(model, "completion").inc(finished.completion_tokens)
        if first is not None:
            self.metrics.ttft.labels(model, endpoint).observe(first - started)
        log.info("generation finished", extra={
            "model": model, "endpoint": endpoint, "finish_reason": finished.reason,
            "prompt_tokens": finished.prompt_tokens, "completion_tokens": finished.completion_tokens,
            "seconds": round(time.perf_counter() - started, 4),
            "ttft_seconds": round(first - started, 4) if first else None,
        })

    async def _collect(self, generation, shaper, model: str, endpoint: str, started: float) -> dict:
        parts, first, finished = [], None, None
        try:
            async for event in generation:
                if isinstance(event, TextDelta):
                    first = first or time.perf_counter()
                    parts.append(event.text)
                else:
                    finished = event
        except ShukenError as exc:
            self._count(model, endpoint, exc.status, started)
            raise
        except asyncio.CancelledError:
            self._count(model, endpoint, CLIENT_CLOSED, started)
            raise
        finally:
            if finished is None:
                generation.cancel()
        self._finish(model, endpoint, finished, started, first)
        return shaper.response("".join(parts), finished)

    async def _stream(self, generation, shaper, model: str, endpoint: str, started: float) -> AsyncIterator[bytes]:
        first, settled = None, False  # settled: finished or failed, i.e. the engine holds nothing for us
        try:
            opening = shaper.first_chunk()
            if opening:
                yield fmt.sse(opening)
            async for event in generation:
                if isinstance(event, TextDelta):
                    first = first or time.perf_counter()
                    yield fmt.sse(shaper.text_chunk(event.text))
                else:
                    settled = True
                    self._finish(model, endpoint, event, started, first)
                    for chunk in shaper.final_chunks(event):
                        yield fmt.sse(chunk)
            yield fmt.sse("[DONE]")
        except ShukenError as exc:
            settled = True
            self._count(model, endpoint, exc.status, started)
            yield fmt.sse(exc.to_openai())
            yield fmt.sse("[DONE]")
        finally:
            if not settled:  # the client went away: free the slot now
                generation.cancel()
                self._count(model, endpoint, CLIENT_CLOSED, started)
                log.info("generation cancelled by client", extra={"model": model, "endpoint": endpoint})

    async def embed(self, request: EmbeddingRequest) -> dict:
        started = time.perf_counter()
        try:
            texts = request.texts
            engine = await self.host.engine_for(request.model, "embeddings")
            result = await engine.embed(texts)
            if request.dimensions is not None and result.vectors and request.dimensions != len(result.vectors[0]):
                raise InvalidRequest(f"This model produces {len(result.vectors[0])}-dimensional embeddings; "
                                     "dimensions cannot be changed.", param="dimensions")
        except ShukenError as exc:
            self._count(request.model, "embeddings", exc.status, started)
            raise
        self._count(request.model, "embeddings", 200, started)
        self.metrics.tokens.labels(request.model, "prompt").inc(result.prompt_tokens)
        return fmt.embeddings_response(request.model, result, request.encoding_format)
