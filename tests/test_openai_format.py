"""Pure OpenAI translation: request → sampling params, results → shapes the official client's types accept."""

from __future__ import annotations

import base64
import json
import struct

import pytest
from openai.types import Completion, CreateEmbeddingResponse
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from shuken.engines.base import Embeddings, Finished
from shuken.errors import InvalidRequest
from shuken.gateway import openai_format as fmt
from shuken.gateway.schemas import ChatCompletionRequest, CompletionRequest, EmbeddingRequest

FINISHED = Finished("length", prompt_tokens=7, completion_tokens=3)


def chat_request(**fields) -> ChatCompletionRequest:
    return ChatCompletionRequest(model="m", messages=[{"role": "user", "content": "hi"}], **fields)


def test_sampling_params_defaults_and_precedence():
    params = fmt.sampling_params(chat_request())
    assert (params.temperature, params.top_p, params.max_tokens, params.stop) == (1.0, 1.0, None, [])
    params = fmt.sampling_params(chat_request(max_completion_tokens=9, temperature=0, stop="END", seed=3,
                                              response_format={"type": "json_object"}))
    assert (params.max_tokens, params.temperature, params.stop, params.seed) == (9, 0, ["END"], 3)
    assert params.response_format == {"type": "json_object"}
    assert fmt.sampling_params(CompletionRequest(model="m", prompt="p", max_tokens=4)).max_tokens == 4


@pytest.mark.parametrize("fields, param", [
    ({"n": 3}, "n"),
    ({"logprobs": True}, "logprobs"),
    ({"stream_options": {"include_usage": True}}, "stream_options"),
    ({"max_tokens": 5, "max_completion_tokens": 6}, "max_completion_tokens"),
    ({"tools": [{"type": "function"}]}, "tools"),
])
def test_unsupported_parameters_are_named(fields, param):
    with pytest.raises(InvalidRequest) as caught:
        chat_request(**fields).refuse_unsupported()
    assert caught.value.param == param


def test_developer_role_maps_to_system():
    request = ChatCompletionRequest(model="m", messages=[{"role": "developer", "content": "be brief"}])
    assert request.messages[0].for_template() == {"role": "system", "content": "be brief"}


def test_chat_shapes_validate_against_openai_types():
    shaper = fmt.ChatShaper("m", include_usage=True)
    chunks = [shaper.first_chunk(), shaper.text_chunk("Hel"), shaper.text_chunk("lo"), *shaper.final_chunks(FINISHED)]
    parsed = [ChatCompletionChunk.model_validate(chunk) for chunk in chunks]
    assert parsed[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in parsed if c.choices) == "Hello"
    assert parsed[-2].choices[0].finish_reason == "length" and parsed[-1].usage.total_tokens == 10
    assert len({c.id for c in parsed}) == 1
    whole = ChatCompletion.model_validate(shaper.response("Hello", FINISHED))
    assert whole.choices[0].message.content == "Hello" and whole.usage.completion_tokens == 3


def test_completion_shapes_validate_against_openai_types():
    shaper = fmt.CompletionShaper("m")
    assert shaper.first_chunk() is None
    # Mid-stream chunks carry finish_reason null, as OpenAI's own stream does (its type is stricter than
    # its stream, and the client parses chunks without validation); the final chunk validates fully.
    middle = shaper.text_chunk("abc")
    assert middle["choices"][0] == {"index": 0, "text": "abc", "logprobs": None, "finish_reason": None}
    final = Completion.model_validate(shaper.final_chunks(FINISHED)[0])
    assert final.id == middle["id"] and final.choices[0].finish_reason == "length"
    whole = Completion.model_validate(shaper.response("abc", FINISHED))
    assert whole.choices[0].finish_reason == "length"


@pytest.mark.parametrize("shaper", [fmt.ChatShaper("m"), fmt.ChatShaper("m", include_usage=True),
                                    fmt.CompletionShaper("m"), fmt.CompletionShaper("m", include_usage=True)])
def test_streamed_text_events_are_the_text_chunks_serialised(shaper):
    # The per-token fast path must send exactly what serialising the chunk would: quotes, backslashes,
    # control characters, the placeholder the frame is built with, non-ASCII kept as is (ensure_ascii=False).
    for text in ["Hel", "", 'say "hi"\\n', "tab\tnew\nline\x00\x1f", "\x00text\x00", "日本語 é 🚀", "</script>"]:
        assert shaper.text_event(text) == fmt.sse(shaper.text_chunk(text))
    event = json.loads(shaper.text_event("a\"b").decode()[len("data: "):])
    assert (event["choices"][0].get("text") or event["choices"][0]["delta"]["content"]) == 'a"b'


def test_embeddings_base64_is_little_endian_float32():
    vectors = [[0.5, -1.25, 3.0], [0.0, 1.0, 2.0]]
    shaped = fmt.embeddings_response("e", Embeddings(vectors, prompt_tokens=4), "base64")
    CreateEmbeddingResponse.model_validate({**shaped, "data": [{**d, "embedding": [0.0]} for d in shaped["data"]]})
    decoded = [list(struct.unpack("<3f", base64.b64decode(d["embedding"]))) for d in shaped["data"]]
    assert decoded == vectors and shaped["usage"] == {"prompt_tokens": 4, "total_tokens": 4}
    assert fmt.embeddings_response("e", Embeddings(vectors, 4), "float")["data"][1]["embedding"] == vectors[1]


@pytest.mark.parametrize("raw, message", [([], "must not be empty"), (["ok", ""], "empty strings")])
def test_embedding_inputs_are_checked(raw, message):
    with pytest.raises(InvalidRequest, match=message):
        EmbeddingRequest(model="e", input=raw).texts


def test_sse_framing():
    assert fmt.sse("[DONE]") == b"data: [DONE]\n\n"
    assert fmt.sse({"a": "日本"}) == 'data: {"a":"日本"}\n\n'.encode()
