"""Batching, queueing and cancellation on real servers: streams are never interrupted, slots are freed."""

from __future__ import annotations

import asyncio
import threading
import time

import openai
import pytest

pytestmark = pytest.mark.slow
MODEL = "smollm2-135m-instruct"


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


async def _stream_one(client, index: int, max_tokens: int):
    stream = await client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": f"Write a long story about ship number {index}."}],
        max_tokens=max_tokens, temperature=0.8, seed=index, stream=True, stream_options={"include_usage": True})
    text, finish, usage, chunks = "", None, None, 0
    async for chunk in stream:
        chunks += 1
        if chunk.usage:
            usage = chunk.usage
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
            finish = chunk.choices[0].finish_reason or finish
    return text, finish, usage


def test_eight_concurrent_streams_all_complete(server):
    max_tokens = 96
    peak_running = []
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            peak_running.append(server.metric("shuken_running_requests", model=MODEL) or 0)
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()

    async def main():
        async with server.async_client() as client:
            return await asyncio.gather(*[_stream_one(client, i, max_tokens) for i in range(8)])

    try:
        results = asyncio.run(main())
    finally:
        stop.set()
        watcher.join()
    for text, finish, usage in results:
        assert finish in ("stop", "length") and usage is not None
        assert text, "every stream produced text"
        if finish == "length":
            assert usage.completion_tokens == max_tokens
    # Sequences really were decoded together, not one after another.
    assert max(peak_running) >= 4, peak_running


def test_cancelled_stream_frees_its_slot(narrow_server):
    client = narrow_server.client()
    stream = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Write a very long essay."}], max_tokens=1500,
        stream=True)
    received = 0
    for chunk in stream:
        received += 1
        if received == 3:
            break
    assert narrow_server.metric("shuken_running_requests", model=MODEL) == 1
    stream.close()  # the client goes away mid-stream
    assert wait_for(lambda: narrow_server.metric("shuken_running_requests", model=MODEL) == 0), \
        "the cancelled request kept its slot"
    reply = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=4)
    assert reply.usage.completion_tokens > 0


def test_full_queue_is_429_and_queued_request_still_completes(narrow_server):
    client = narrow_server.client()
    long_request = dict(model=MODEL, messages=[{"role": "user", "content": "Write a very long essay."}],
                        max_tokens=400, stream=True)
    running = client.chat.completions.create(**long_request)
    next(iter(running))  # admitted and streaming
    queued = client.chat.completions.create(**{**long_request, "max_tokens": 8})  # takes the one queue place
    assert wait_for(lambda: narrow_server.metric("shuken_queue_depth", model=MODEL) == 1)
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}], max_tokens=2)
    assert caught.value.body["code"] == "queue_full"
    assert caught.value.response.headers.get("retry-after")
    running.close()
    chunks = list(queued)  # the queued stream runs once the slot frees, and runs to its end
    assert [c for c in chunks if c.choices and c.choices[0].finish_reason]


def test_abandoned_non_streamed_request_is_cancelled(narrow_server):
    import httpx

    before = narrow_server.metric("shuken_requests_total", model=MODEL, endpoint="chat", status="499") or 0
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{narrow_server.base_url}/chat/completions", timeout=1.0,
                   headers={"Authorization": f"Bearer {narrow_server.api_key}"},
                   # Greedy: this prompt then runs to max_tokens (a sampled reply sometimes ended within 1 s).
                   json={"model": MODEL, "max_tokens": 1500, "temperature": 0, "messages": [
                       {"role": "user", "content": "Write a very long essay about the history of ships."}]})
    # 499 = the server noticed the hang-up and cancelled, rather than running on to a 200.
    assert wait_for(lambda: (narrow_server.metric("shuken_requests_total", model=MODEL, endpoint="chat",
                                                  status="499") or 0) > before)
    assert wait_for(lambda: narrow_server.metric("shuken_running_requests", model=MODEL) == 0)
