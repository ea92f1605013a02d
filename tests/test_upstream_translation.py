"""Pure parts of the upstream engine: request bodies, error mapping, chunk parsing (no server)."""

from __future__ import annotations

import json

import pytest

from shuken.engines.base import GenerationRequest, SamplingParams
from shuken.engines.upstream import WholeGeneration, parse_chunk, upstream_body, upstream_error
from shuken.errors import InvalidRequest, NotFound, QueueFull, UpstreamError


def test_streamed_chat_body_asks_for_usage_and_omits_defaults():
    request = GenerationRequest(params=SamplingParams(max_tokens=5, temperature=0, stop=["x"]),
                                messages=[{"role": "user", "content": "hi"}])
    body = upstream_body(request, "up-model")
    assert body["model"] == "up-model" and body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["messages"] == request.messages and "prompt" not in body
    assert (body["max_tokens"], body["temperature"], body["stop"]) == (5, 0, ["x"])
    assert "seed" not in body and "presence_penalty" not in body and "response_format" not in body


def test_whole_completion_body_is_not_streamed():
    body = upstream_body(GenerationRequest(params=SamplingParams(seed=7), prompt="Once", stream=False), "m")
    assert body["stream"] is False and "stream_options" not in body
    assert body["prompt"] == "Once" and body["seed"] == 7


@pytest.mark.parametrize("status, kind", [(400, InvalidRequest), (422, InvalidRequest), (404, NotFound),
                                          (429, QueueFull), (500, UpstreamError), (401, UpstreamError)])
def test_upstream_errors_map_to_our_vocabulary(status, kind):
    error = upstream_error(status, json.dumps({"error": {"message": "boom"}}), "http://10.0.0.5/v1")
    assert isinstance(error, kind) and "boom" in error.message
    assert type(upstream_error(status, "<html>oops</html>", "u")) is kind


def test_chunk_parsing():
    assert parse_chunk({"choices": [{"delta": {"content": "a"}, "finish_reason": None}]}, True) == ("a", None)
    assert parse_chunk({"choices": [{"text": "b", "finish_reason": "length"}]}, False) == ("b", "length")
    assert parse_chunk({"choices": [], "usage": {"prompt_tokens": 3}}, True) == ("", None)


def test_whole_generation_keeps_upstream_usage():
    import asyncio

    data = {"choices": [{"message": {"content": "hello"}, "finish_reason": "length"}],
            "usage": {"prompt_tokens": 9, "completion_tokens": 2}}

    async def events():
        return [event async for event in WholeGeneration(data, is_chat=True)]

    delta, finished = asyncio.run(events())
    assert delta.text == "hello" and (finished.reason, finished.prompt_tokens, finished.completion_tokens) == (
        "length", 9, 2)
