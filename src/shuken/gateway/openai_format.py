"""Pure translation between OpenAI shapes and engine values: params in, responses and stream chunks out."""

from __future__ import annotations

import base64
import json
import struct
import time
import uuid
from json.encoder import encode_basestring  # the string encoder json.dumps(ensure_ascii=False) uses

from shuken import __version__
from shuken.engines.base import Embeddings, Finished, SamplingParams
from shuken.gateway.schemas import ChatCompletionRequest, SamplingFields

FINGERPRINT = f"shuken-{__version__}"
_TEXT_SLOT = "\x00text\x00"  # stands for the text while the frame around it is made; JSON-escaped, so unique


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


class _Shaper:
    """Shapes one generation as an OpenAI response, or as its stream chunks; subclasses name the shapes."""

    id_prefix = ""
    object_name = ""
    chunk_object = ""

    def __init__(self, model: str, include_usage: bool = False):
        self.id = new_id(self.id_prefix)
        self.created = int(time.time())
        self.model = model
        self.include_usage = include_usage
        self._text_frame: tuple[bytes, bytes] | None = None  # a text chunk's bytes before and after its text

    def _envelope(self, object_name: str, choices: list[dict]) -> dict:
        return {"id": self.id, "object": object_name, "created": self.created, "model": self.model,
                "system_fingerprint": FINGERPRINT, "choices": choices}

    def _stream_choice(self, text: str | None, finish_reason: str | None) -> dict:
        raise NotImplementedError

    def _chunk(self, text: str | None, finish_reason: str | None) -> dict:
        chunk = self._envelope(self.chunk_object, [self._stream_choice(text, finish_reason)])
        if self.include_usage:
            chunk["usage"] = None  # OpenAI sends null usage on every chunk but the last
        return chunk

    def first_chunk(self) -> dict | None:
        return None

    def text_chunk(self, text: str) -> dict:
        return self._chunk(text, None)

    def text_event(self, text: str) -> bytes:
        """`sse(self.text_chunk(text))`, without building and serialising the whole chunk for every token:
        the bytes around the text are the same in every text chunk of a response, so they are made once."""
        if self._text_frame is None:
            head, tail = sse(self.text_chunk(_TEXT_SLOT)).split(encode_basestring(_TEXT_SLOT).encode())
            self._text_frame = (head, tail)
        head, tail = self._text_frame
        return head + encode_basestring(text).encode() + tail

    def final_chunks(self, finished: Finished) -> list[dict]:
        chunks = [self._chunk(None, finished.reason)]
        if self.include_usage:
            chunks.append({**self._envelope(self.chunk_object, []), "usage": usage(finished)})
        return chunks


class ChatShaper(_Shaper):
    id_prefix, object_name, chunk_object = "chatcmpl", "chat.completion", "chat.completion.chunk"

    def _stream_choice(self, text, finish_reason):
        delta = {} if text is None else {"content": text}
        return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}

    def first_chunk(self) -> dict:
        chunk = self._chunk("", None)
        chunk["choices"][0]["delta"]["role"] = "assistant"
        return chunk

    def response(self, text: str, finished: Finished) -> dict:
        message = {"role": "assistant", "content": text, "refusal": None}
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finished.reason}
        return {**self._envelope(self.object_name, [choice]), "usage": usage(finished)}


class CompletionShaper(_Shaper):
    id_prefix, object_name, chunk_object = "cmpl", "text_completion", "text_completion"

    def _stream_choice(self, text, finish_reason):
        return {"index": 0, "text": text or "", "logprobs": None, "finish_reason": finish_reason}

    def response(self, text: str, finished: Finished) -> dict:
        choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": finished.reason}
        return {**self._envelope(self.object_name, [choice]), "usage": usage(finished)}


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
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"data: {payload}\n\n".encode()
