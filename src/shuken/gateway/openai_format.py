"""Pure translation between OpenAI shapes and engine values: params in, responses and stream chunks out."""

from __future__ import annotations

import base64
import struct
import time
import uuid

from shuken import __version__
from shuken.engines.base import Embeddings, Finished, SamplingParams
from shuken.gateway.schemas import ChatCompletionRequest, CompletionRequest, SamplingFields

FINGERPRINT = f"shuken-{__version__}"


def sampling_params(request: SamplingFields) -> SamplingParams:
    max_tokens = request.max_tokens
    response_format = None
    if isinstance(request, ChatCompletionRequest):
        max_tokens = request.max_completion_tokens or max_tokens
        response_format = request.response_format.as_dict() if request.response_format else None
    return SamplingParams(
        max_tokens=max_tokens,
        temperature=1.0 if request.temperature is None else request.temperature,
        top_p=1.0 if request.top_p is None else request.top_p,
        stop=request.stop_list,
        seed=request.seed,
        presence_penalty=request.presence_penalty or 0.0,
        frequency_penalty=request.frequency_penalty or 0.0,
        response_format=response_format,
    )


def new_id(kind: str) -> str:
    return f"{kind}-{uuid.uuid4().hex}"


def usage(finished: Finished) -> dict:
    return {"prompt_tokens": finished.prompt_tokens, "completion_tokens": finished.completion_tokens,
            "total_tokens": finished.prompt_tokens + finished.completion_tokens}


class ChatShaper:
    """Shapes one chat completion: the whole response, or its stream chunks."""

    def __init__(self, model: str, include_usage: bool = False):
        self.id = new_id("chatcmpl")
        self.created = int(time.time())
        self.model = model
        self.include_usage = include_usage

    def _chunk(self, delta: dict, finish_reason: str | None) -> dict:
        chunk = {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                 "system_fingerprint": FINGERPRINT,
                 "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]}
        if self.include_usage:
            chunk["usage"] = None
        return chunk

    def first_chunk(self) -> dict:
        return self._chunk({"role": "assistant", "content": ""}, None)

    def text_chunk(self, text: str) -> dict:
        return self._chunk({"content": text}, None)

    def final_chunks(self, finished: Finished) -> list[dict]:
        chunks = [self._chunk({}, finished.reason)]
        if self.include_usage:
            chunks.append({"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                           "model": self.model, "system_fingerprint": FINGERPRINT, "choices": [],
                           "usage": usage(finished)})
        return chunks

    def response(self, text: str, finished: Finished) -> dict:
        return {"id": self.id, "object": "chat.completion", "created": self.created, "model": self.model,
                "system_fingerprint": FINGERPRINT,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "refusal": None},
                             "logprobs": None, "finish_reason": finished.reason}],
                "usage": usage(finished)}


class CompletionShaper:
    def __init__(self, model: str, include_usage: bool = False):
        self.id = new_id("cmpl")
        self.created = int(time.time())
        self.model = model
        self.include_usage = include_usage

    def _chunk(self, text: str, finish_reason: str | None) -> dict:
        chunk = {"id": self.id, "object": "text_completion", "created": self.created, "model": self.model,
                 "system_fingerprint": FINGERPRINT,
                 "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish_reason}]}
        if self.include_usage:
            chunk["usage"] = None
        return chunk

    def first_chunk(self) -> dict | None:
        return None

    def text_chunk(self, text: str) -> dict:
        return self._chunk(text, None)

    def final_chunks(self, finished: Finished) -> list[dict]:
        chunks = [self._chunk("", finished.reason)]
        if self.include_usage:
            chunks.append({"id": self.id, "object": "text_completion", "created": self.created, "model": self.model,
                           "system_fingerprint": FINGERPRINT, "choices": [], "usage": usage(finished)})
        return chunks

    def response(self, text: str, finished: Finished) -> dict:
        return {"id": self.id, "object": "text_completion", "created": self.created, "model": self.model,
                "system_fingerprint": FINGERPRINT,
                "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finished.reason}],
                "usage": usage(finished)}


def shaper_for(request: SamplingFields, model: str):
    include_usage = bool(request.stream_options and request.stream_options.include_usage)
    cls = ChatShaper if isinstance(request, ChatCompletionRequest) else CompletionShaper
    return cls(model, include_usage)


def embeddings_response(model: str, result: Embeddings, encoding_format: str) -> dict:
    def encode(vector: list[float]):
        if encoding_format == "base64":
            return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        return vector

    return {"object": "list", "model": model,
            "data": [{"object": "embedding", "index": i, "embedding": encode(v)} for i, v in enumerate(result.vectors)],
            "usage": {"prompt_tokens": result.prompt_tokens, "total_tokens": result.prompt_tokens}}


def model_card(manifest) -> dict:
    return {"id": manifest.name, "object": "model", "created": int(manifest.added_at.timestamp()),
            "owned_by": "shuken"}


def sse(data: dict | str) -> bytes:
    import json

    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"data: {payload}\n\n".encode()
