"""Upstream engine (entry point `openai`): forward to an OpenAI-compatible server on the organisation's network.

vLLM, llama-server, llama_cpp.server or another Shuken. Streamed requests stream from the upstream too,
so tokens pass through as they arrive and a client that leaves closes the upstream call; non-streamed
ones are sent non-streamed, so the upstream's own usage counts come back even where it ignores
stream_options.include_usage.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import asdict

import httpx

from shuken.config import Settings
from shuken.engines.base import Embeddings, EngineStats, Finished, GenerationRequest, TextDelta
from shuken.errors import InvalidRequest, NotFound, QueueFull, ShukenError, Unavailable, UpstreamError
from shuken.localisable import tr
from shuken.registry.manifest import ModelManifest

log = logging.getLogger("shuken.upstream")


def upstream_body(request: GenerationRequest, upstream_model: str) -> dict:
    """OpenAI request body for the upstream (pure)."""
    params = asdict(request.params)
    body: dict = {"model": upstream_model, "stream": request.stream}
    if request.stream:
        body["stream_options"] = {"include_usage": True}  # not every upstream honours it (llama_cpp.server doesn't)
    for key in ("max_tokens", "seed", "response_format"):
        if params[key] is not None:
            body[key] = params[key]
    body.update(temperature=params["temperature"], top_p=params["top_p"])
    if params["stop"]:
        body["stop"] = params["stop"]
    if params["presence_penalty"]:
        body["presence_penalty"] = params["presence_penalty"]
    if params["frequency_penalty"]:
        body["frequency_penalty"] = params["frequency_penalty"]
    if request.messages is not None:
        body["messages"] = request.messages
    else:
        body["prompt"] = request.prompt
    return body


def upstream_error(status: int, payload: str, base_url: str) -> ShukenError:
    """Map an upstream error reply to Shuken's vocabulary, keeping the upstream's message."""
    try:
        message = json.loads(payload)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = payload[:500] or f"HTTP {status}"
    if status in (400, 422):
        return InvalidRequest(tr("The upstream model rejected the request: %(message)s", message=str(message)))
    if status == 404:
        return NotFound(tr("The upstream server at %(url)s does not serve this model: %(message)s", url=base_url,
                           message=str(message)), param="model")
    if status == 429:
        return QueueFull(tr("The upstream server at %(url)s is busy: %(message)s", url=base_url,
                            message=str(message)))
    return UpstreamError(tr("The upstream server at %(url)s answered %(status)s: %(message)s", url=base_url,
                            status=status, message=str(message)))


def _json(payload: str) -> dict:
    try:
        data = json.loads(payload)
    except ValueError:
        raise UpstreamError(tr("The upstream sent a reply that is not JSON; is base_url an OpenAI-compatible API?")) \
            from None
    if not isinstance(data, dict):
        raise UpstreamError(tr("The upstream sent an unexpected reply (not a JSON object)."))
    return data


def parse_chunk(data: dict, is_chat: bool) -> tuple[str, str | None]:
    """(text delta, finish_reason) from one upstream stream chunk."""
    choices = data.get("choices") or []
    if not choices:
        return "", None
    choice = choices[0]
    text = (choice.get("delta") or {}).get("content") if is_chat else choice.get("text")
    return text or "", choice.get("finish_reason")


class WholeGeneration:
    """A non-streamed upstream reply, replayed as one delta; it carries the upstream's own usage counts."""

    def __init__(self, data: dict, is_chat: bool):
        choice = (data.get("choices") or [{}])[0]
        self.text = ((choice.get("message") or {}).get("content") if is_chat else choice.get("text")) or ""
        self.reason = choice.get("finish_reason") if choice.get("finish_reason") in ("stop", "length") else "stop"
        self.usage = data.get("usage") or {}

    async def __aiter__(self):
        if self.text:
            yield TextDelta(self.text)
        yield Finished(self.reason, self.usage.get("prompt_tokens", 0), self.usage.get("completion_tokens", 0))

    def cancel(self) -> None:
        pass  # already complete: the upstream holds nothing for it


class UpstreamGeneration:
    def __init__(self, response: httpx.Response, is_chat: bool, engine: OpenAIUpstreamEngine):
        self._response = response
        self._is_chat = is_chat
        self._engine = engine

    async def __aiter__(self):
        reason, prompt_tokens, completion_tokens, usage = "stop", 0, 0, None
        try:
            async for line in self._response.aiter_lines():
                if not line.startswith("data:"):
                    continue
                payload = line[5:].strip()
                if payload == "[DONE]":
                    break
                data = _json(payload)
                if "error" in data:
                    raise UpstreamError(tr("The upstream failed mid-stream: %(error)s", error=str(data["error"])))
                usage = data.get("usage") or usage
                text, finish = parse_chunk(data, self._is_chat)
                if text:
                    completion_tokens += 1
                    yield TextDelta(text)
                reason = finish or reason
        except httpx.HTTPError as exc:
            raise Unavailable(tr("Lost the upstream connection mid-stream: %(error)s", error=str(exc))) from exc
        finally:
            await self.aclose()
        if usage:
            prompt_tokens = usage.get("prompt_tokens", 0)
            completion_tokens = usage.get("completion_tokens", completion_tokens)
        yield Finished(reason if reason in ("stop", "length") else "stop", prompt_tokens, completion_tokens)

    async def aclose(self) -> None:
        if not self._response.is_closed:
            await self._response.aclose()
            self._engine._running -= 1

    def cancel(self) -> None:
        # Closing the connection is how an OpenAI-compatible server learns the client left.
        self._closing = asyncio.get_running_loop().create_task(self.aclose())  # kept: tasks are weakly held


class OpenAIUpstreamEngine:
    def __init__(self, manifest: ModelManifest, settings: Settings):
        self.manifest = manifest
        self.settings = settings
        self.base_url = manifest.options["base_url"]
        self.upstream_model = manifest.options.get("upstream_model") or manifest.name
        self._client: httpx.AsyncClient | None = None
        self._running = 0

    async def start(self) -> None:
        headers = {}
        secret = self.settings.upstream_keys.get(self.manifest.name)
        if secret:
            headers["Authorization"] = f"Bearer {secret}"
        self._client = httpx.AsyncClient(
            base_url=self.base_url, headers=headers,
            timeout=httpx.Timeout(self.settings.upstream_timeout_seconds, connect=10.0),
        )

    async def close(self) -> None:
        if self._client:
            await self._client.aclose()

    @property
    def context_length(self) -> int | None:
        return self.manifest.metadata.get("context_length")

    def stats(self) -> EngineStats:
        return EngineStats(running=self._running, capacity=max(self._running, 1))

    async def _post(self, path: str, body: dict, stream: bool) -> httpx.Response:
        client = self._client
        if client is None:
            raise RuntimeError("the upstream engine is not started")
        try:
            request = client.build_request("POST", path, json=body)
            response = await client.send(request, stream=stream)
        except httpx.HTTPError as exc:
            raise Unavailable(tr("Cannot reach the upstream server at %(url)s: %(error)s. "
                                 "Check that it is running and that the model's base_url is right.",
                                 url=self.base_url, error=str(exc))) from exc
        if response.status_code >= 400:
            payload = (await response.aread()).decode("utf-8", errors="replace")
            await response.aclose()
            raise upstream_error(response.status_code, payload, self.base_url)
        return response

    async def submit(self, request: GenerationRequest) -> UpstreamGeneration | WholeGeneration:
        is_chat = request.messages is not None
        path = "/chat/completions" if is_chat else "/completions"
        body = upstream_body(request, self.upstream_model)
        if not request.stream:
            self._running += 1
            try:
                response = await self._post(path, body, stream=False)
                return WholeGeneration(_json(response.text), is_chat)
            finally:
                self._running -= 1
        response = await self._post(path, body, stream=True)
        self._running += 1
        return UpstreamGeneration(response, is_chat, self)

    async def embed(self, texts: list[str]) -> Embeddings:
        response = await self._post("/embeddings", {"model": self.upstream_model, "input": texts}, stream=False)
        data = _json(response.text)
        try:
            rows = sorted(data["data"], key=lambda row: row["index"])
            vectors = [row["embedding"] for row in rows]
        except (KeyError, TypeError) as exc:
            raise UpstreamError(tr("The upstream's embeddings reply lacks %(missing)s.", missing=str(exc))) from exc
        return Embeddings(vectors, (data.get("usage") or {}).get("prompt_tokens", 0))
