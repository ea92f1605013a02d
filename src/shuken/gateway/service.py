"""Gateway: runs OpenAI-shaped chat, completion and embedding requests against the model host.

Errors are raised before the first byte of a response, so they keep their HTTP status; a failure
mid-stream becomes an OpenAI error event. Logs carry counts and timings, never prompt or output text.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import AsyncIterator, Protocol

from shuken.config import Settings
from shuken.engines.base import Finished, GenerationRequest, TextDelta
from shuken.errors import InvalidRequest, ShukenError
from shuken.gateway import openai_format as fmt
from shuken.gateway.host import ModelHost
from shuken.gateway.metrics import GatewayMetrics
from shuken.gateway.schemas import ChatCompletionRequest, CompletionRequest, EmbeddingRequest
from shuken.localisable import tr

log = logging.getLogger("shuken.gateway")


@dataclass
class _Call:
    """Bookkeeping for one API call: labels, timings, and (only if opted in) its text."""

    model: str
    endpoint: str
    started: float
    first: float | None = None  # when the first text arrived
    prompt: object = None
    transcript: list[str] | None = None
    observer: "CallObserver | None" = None
    log_text: bool = False
    pieces: int = 0  # text deltas so far (about one token each): what a cancelled call still cost


class CallObserver(Protocol):
    """Told once how a call ended (governance: audit, quotas, consented capture). Must not block."""

    wants_text: bool

    def finished(self, model: str, status: int, prompt_tokens: int = 0, completion_tokens: int = 0,
                 completion: str | None = None) -> None: ...
class ResponseDecorator(Protocol):
    """Rewrites generated text as it passes (e.g. drops invalid citation markers) and annotates the final
    response or final stream chunk (e.g. with `citations`). Pure: no I/O."""

    def feed(self, text: str) -> str: ...
    def flush(self) -> str: ...
    def annotate(self, payload: dict) -> None: ...


CLIENT_CLOSED = 499  # nginx's status for "client closed the connection before the response was complete"
# Metric label for calls that fail before their model is known: client-chosen names must not become
# label values, or anyone with a key could grow /metrics (and server memory) without bound.
UNRESOLVED = "_unresolved"


class _Events:
    """Wraps an async iterator of engine events with the `cancel()` a live generation offers."""

    def __init__(self, iterator):
        self._iterator = iterator

    def __aiter__(self):
        return self._iterator.__aiter__()

    def cancel(self) -> None:
        pass


class Gateway:
    def __init__(self, host: ModelHost, settings: Settings):
        self.host = host
        self.settings = settings
        self.metrics = GatewayMetrics(host)

    def list_models(self) -> list[dict]:
        return [fmt.model_card(m) for m in self.host.registry.list()]

    def get_model(self, name: str) -> dict:
        return fmt.model_card(self.host.registry.get(name))

    async def _submit(self, request: ChatCompletionRequest | CompletionRequest, client: str, call: "_Call"):
        request.refuse_unsupported()
        is_chat = isinstance(request, ChatCompletionRequest)
        engine = await self.host.engine_for(request.model, "chat" if is_chat else "completions")
        call.model = request.model
        generation_request = GenerationRequest(
            params=fmt.sampling_params(request),
            messages=[m.for_template() for m in request.messages] if is_chat else None,
            prompt=None if is_chat else request.single_prompt,
            client=client,
            stream=request.stream,
        )
        return await engine.submit(generation_request)

    async def generate(self, request: ChatCompletionRequest | CompletionRequest, client: str,
                       endpoint: str, decorator: ResponseDecorator | None = None,
                       observer: CallObserver | None = None) -> dict | AsyncIterator[bytes]:
        """A whole response dict, or (for stream=True) an iterator of SSE bytes."""
        call = _Call(UNRESOLVED, endpoint, time.perf_counter(), observer=observer, log_text=self.settings.log_prompts)
        try:
            if call.log_text or (observer is not None and observer.wants_text):
                call.transcript = []
                call.prompt = request.single_prompt if isinstance(request, CompletionRequest) else \
                    [m.for_template() for m in request.messages]
            generation = await self._submit(request, client, call)
        except ShukenError as exc:
            self._count(call, exc.status)
            raise
        shaper = fmt.shaper_for(request, request.model)
        if request.stream:
            return self._stream(generation, shaper, call, decorator)
        return await self._collect(generation, shaper, call, decorator)

    async def fixed_reply(self, request: ChatCompletionRequest, text: str, endpoint: str,
                          decorator: ResponseDecorator | None = None,
                          observer: CallObserver | None = None) -> dict | AsyncIterator[bytes]:
        """Answer with a known text without running the model (e.g. "nothing relevant was found"),
        shaped exactly like a generated answer, streamed or not."""
        await self.host.engine_for(request.model, "chat")  # same 404/400 as a generated answer
        call = _Call(request.model, endpoint, time.perf_counter(), observer=observer,
                     transcript=[] if observer is not None and observer.wants_text else None)

        async def events():
            yield TextDelta(text)
            yield Finished("stop", 0, 0)

        shaper = fmt.shaper_for(request, request.model)
        if request.stream:
            return self._stream(_Events(events()), shaper, call, decorator)
        return await self._collect(_Events(events()), shaper, call, decorator)

    def _count(self, call: "_Call", status: int, finished: Finished | None = None) -> None:
        self.metrics.requests.labels(call.model, call.endpoint, str(status)).inc()
        self.metrics.latency.labels(call.model, call.endpoint).observe(time.perf_counter() - call.started)
        if call.observer is not None:
            # A call cut short has no usage report; its decoded pieces still count against the key's quota.
            call.observer.finished(call.model, status, finished.prompt_tokens if finished else 0,
                                   finished.completion_tokens if finished else call.pieces,
                                   "".join(call.transcript) if call.transcript is not None else None)

    def _finish(self, call: "_Call", finished: Finished) -> None:
        self._count(call, 200, finished)
        self.metrics.tokens.labels(call.model, "prompt").inc(finished.prompt_tokens)
        self.metrics.tokens.labels(call.model, "completion").inc(finished.completion_tokens)
        if call.first is not None:
            self.metrics.ttft.labels(call.model, call.endpoint).observe(call.first - call.started)
        record = {
            "model": call.model, "endpoint": call.endpoint, "finish_reason": finished.reason,
            "prompt_tokens": finished.prompt_tokens, "completion_tokens": finished.completion_tokens,
            "seconds": round(time.perf_counter() - call.started, 4),
            "ttft_seconds": round(call.first - call.started, 4) if call.first else None,
        }
        if call.log_text:  # SHUKEN_LOG_PROMPTS: an explicit opt-in for debugging
            record.update(prompt=call.prompt, completion="".join(call.transcript))
        log.info("generation finished", extra=record)

    def _on_text(self, call: "_Call", text: str) -> None:
        call.first = call.first or time.perf_counter()
        call.pieces += 1
        if call.transcript is not None:
            call.transcript.append(text)

    async def _collect(self, generation, shaper, call: "_Call", decorator: ResponseDecorator | None) -> dict:
        parts, finished = [], None
        try:
            async for event in generation:
                if isinstance(event, TextDelta):
                    self._on_text(call, event.text)
                    parts.append(event.text)
                else:
                    finished = event
        except ShukenError as exc:
            self._count(call, exc.status)
            raise
        except asyncio.CancelledError:
            self._count(call, CLIENT_CLOSED)
            raise
        finally:
            if finished is None:
                generation.cancel()
        self._finish(call, finished)
        text = "".join(parts)
        if decorator is None:
            return shaper.response(text, finished)
        response = shaper.response(decorator.feed(text) + decorator.flush(), finished)
        decorator.annotate(response)
        return response

    async def _stream(self, generation, shaper, call: "_Call",
                      decorator: ResponseDecorator | None) -> AsyncIterator[bytes]:
        settled = False  # finished or failed, i.e. the engine holds nothing for us
        try:
            opening = shaper.first_chunk()
            if opening:
                yield fmt.sse(opening)
            async for event in generation:
                if isinstance(event, TextDelta):
                    self._on_text(call, event.text)
                    text = decorator.feed(event.text) if decorator else event.text
                    if text:
                        yield shaper.text_event(text)
                else:
                    settled = True
                    self._finish(call, event)
                    rest = decorator.flush() if decorator else ""
                    if rest:
                        yield shaper.text_event(rest)
                    chunks = shaper.final_chunks(event)
                    if decorator:
                        decorator.annotate(chunks[0])  # the chunk that carries finish_reason
                    for chunk in chunks:
                        yield fmt.sse(chunk)
            yield fmt.sse("[DONE]")
        except ShukenError as exc:
            settled = True
            self._count(call, exc.status)
            yield fmt.sse(exc.to_openai())
            yield fmt.sse("[DONE]")
        finally:
            if not settled:  # the client went away: free the slot now
                generation.cancel()
                self._count(call, CLIENT_CLOSED)
                log.info("generation cancelled by client", extra={"model": call.model, "endpoint": call.endpoint})

    async def embed(self, request: EmbeddingRequest, observer: CallObserver | None = None) -> dict:
        call = _Call(UNRESOLVED, "embeddings", time.perf_counter(), observer=observer)
        try:
            texts = request.texts
            engine = await self.host.engine_for(request.model, "embeddings")
            call.model = request.model
            result = await engine.embed(texts)
            if request.dimensions is not None and result.vectors and request.dimensions != len(result.vectors[0]):
                raise InvalidRequest(tr("This model produces %(dimensions)s-dimensional embeddings; dimensions "
                                        "cannot be changed.", dimensions=len(result.vectors[0])), param="dimensions")
        except ShukenError as exc:
            self._count(call, exc.status)
            raise
        self._count(call, 200, Finished("stop", result.prompt_tokens, 0))
        self.metrics.tokens.labels(request.model, "prompt").inc(result.prompt_tokens)
        return fmt.embeddings_response(request.model, result, request.encoding_format)
