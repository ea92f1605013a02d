"""The gateway driven by the official openai client over real HTTP, on the real bundled models."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

pytestmark = pytest.mark.slow

CHAT_MODEL = "smollm2-135m-instruct"
BASE_MODEL = "gemma-3-270m"
EMBED_MODEL = "multilingual-e5-small"


def test_models_lists_bundled_models_with_openai_shape(server):
    models = server.client().models.list()
    ids = {m.id for m in models.data}
    assert {CHAT_MODEL, BASE_MODEL, EMBED_MODEL} <= ids
    for model in models.data:
        assert model.object == "model" and model.owned_by == "shuken" and model.created > 0
    assert server.client().models.retrieve(CHAT_MODEL).id == CHAT_MODEL


def test_chat_completion_plain(server):
    reply = server.client().chat.completions.create(
        model=CHAT_MODEL, messages=[{"role": "user", "content": "What is the capital of France?"}],
        max_tokens=24, temperature=0,
    )
    assert reply.object == "chat.completion" and reply.id.startswith("chatcmpl-")
    assert reply.model == CHAT_MODEL
    choice = reply.choices[0]
    assert choice.message.role == "assistant" and choice.message.content.strip()
    assert choice.finish_reason in ("stop", "length")
    assert reply.usage.prompt_tokens > 5
    assert 0 < reply.usage.completion_tokens <= 24
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


def test_greedy_is_deterministic_and_max_completion_tokens_limits(server):
    client = server.client()
    kwargs = dict(model=CHAT_MODEL, messages=[{"role": "user", "content": "Tell me about the sea."}], temperature=0)
    first = client.chat.completions.create(max_completion_tokens=12, **kwargs)
    second = client.chat.completions.create(max_tokens=12, **kwargs)
    assert first.choices[0].message.content == second.choices[0].message.content
    assert first.usage.completion_tokens == 12 and first.choices[0].finish_reason == "length"


def test_seeded_sampling_repeats(server):
    client = server.client()
    kwargs = dict(model=CHAT_MODEL, messages=[{"role": "user", "content": "Name a colour."}], max_tokens=16,
                  temperature=1.0, top_p=0.9)
    runs = {client.chat.completions.create(seed=42, **kwargs).choices[0].message.content for _ in range(2)}
    assert len(runs) == 1


def test_stop_sequence_cuts_output(server):
    client = server.client()
    kwargs = dict(model=CHAT_MODEL, messages=[{"role": "user", "content": "Count from 1 to 20, comma separated."}],
                  temperature=0, max_tokens=60)
    full = client.chat.completions.create(**kwargs).choices[0].message.content
    assert "5" in full, full
    stop_at = full[full.index("5"):full.index("5") + 1]
    cut = client.chat.completions.create(stop=[stop_at], **kwargs)
    assert cut.choices[0].finish_reason == "stop"
    assert cut.choices[0].message.content == full[: full.index(stop_at)]


def test_chat_streaming_matches_openai_chunk_schema(server):
    stream = server.client().chat.completions.create(
        model=CHAT_MODEL, messages=[{"role": "user", "content": "Say hello."}], max_tokens=20, temperature=0,
        stream=True, stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    ids = {c.id for c in chunks}
    assert len(ids) == 1 and next(iter(ids)).startswith("chatcmpl-")
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finals = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finals) == 1 and finals[0].choices[0].finish_reason in ("stop", "length")
    usage_chunk = chunks[-1]
    assert usage_chunk.choices == [] and usage_chunk.usage.completion_tokens > 0
    # Same answer as the non-streamed call.
    whole = server.client().chat.completions.create(
        model=CHAT_MODEL, messages=[{"role": "user", "content": "Say hello."}], max_tokens=20, temperature=0)
    assert text == whole.choices[0].message.content


def test_raw_sse_ends_with_done(server):
    with httpx.stream("POST", f"{server.base_url}/chat/completions",
                      headers={"Authorization": f"Bearer {server.api_key}"},
                      # Greedy, and a prompt whose answer is long: a sampled reply to "Hi" sometimes stopped
                      # within 5 tokens, and the last chunk then said "stop".
                      json={"model": CHAT_MODEL, "messages": [{"role": "user", "content": "Tell me a long story."}],
                            "max_tokens": 5, "temperature": 0, "stream": True}) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line for line in response.iter_lines() if line]
    assert all(line.startswith("data: ") for line in events)
    assert events[-1] == "data: [DONE]"
    assert json.loads(events[-2][6:])["choices"][0]["finish_reason"] == "length"


def test_json_object_mode_returns_parseable_json(server):
    reply = server.client().chat.completions.create(
        model=CHAT_MODEL, response_format={"type": "json_object"}, temperature=0, max_tokens=200,
        messages=[{"role": "user", "content": "Give a JSON object describing a cat with a name and an age."}],
    )
    assert reply.choices[0].finish_reason == "stop", reply.choices[0].message.content
    assert isinstance(json.loads(reply.choices[0].message.content), dict)


def test_json_schema_mode_follows_schema(server):
    schema = {"type": "object", "properties": {"city": {"type": "string", "maxLength": 20},
                                               "population": {"type": "integer"},
                                               "capital": {"type": "boolean"}},
              "required": ["city", "population", "capital"], "additionalProperties": False}
    reply = server.client().chat.completions.create(
        model=CHAT_MODEL, temperature=0, max_tokens=120,
        response_format={"type": "json_schema", "json_schema": {"name": "city", "schema": schema}},
        messages=[{"role": "user", "content": "Describe Paris as JSON."}],
    )
    data = json.loads(reply.choices[0].message.content)
    assert set(data) == {"city", "population", "capital"}
    assert isinstance(data["city"], str) and len(data["city"]) <= 20
    assert isinstance(data["population"], int) and isinstance(data["capital"], bool)


def test_completions_on_gemma_base_model(server):
    reply = server.client().completions.create(model=BASE_MODEL, prompt="The capital of Japan is", max_tokens=8,
                                               temperature=0)
    assert reply.object == "text_completion" and reply.id.startswith("cmpl-")
    assert reply.choices[0].text.strip()
    assert reply.usage.completion_tokens == 8 and reply.choices[0].finish_reason == "length"
    chunks = list(server.client().completions.create(model=BASE_MODEL, prompt="The capital of Japan is",
                                                      max_tokens=8, temperature=0, stream=True))
    assert "".join(c.choices[0].text for c in chunks if c.choices) == reply.choices[0].text


def test_chat_on_base_model_is_a_clear_400(server):
    with pytest.raises(openai.BadRequestError) as caught:
        server.client().chat.completions.create(model=BASE_MODEL, messages=[{"role": "user", "content": "Hi"}])
    error = caught.value.body
    assert "chat template" in error["message"] and error["param"] == "model"
    assert error["type"] == "invalid_request_error"


def test_embeddings_multilingual(server):
    client = server.client()
    texts = ["The cat sleeps on the sofa.", "猫がソファで寝ている。", "Interest rates rose by half a point."]
    result = client.embeddings.create(model=EMBED_MODEL, input=texts)  # client asks for base64 by default
    vectors = [d.embedding for d in result.data]
    assert [d.index for d in result.data] == [0, 1, 2] and all(len(v) == 384 for v in vectors)
    assert result.usage.prompt_tokens > 10

    def cosine(a, b):
        return sum(x * y for x, y in zip(a, b))

    # A translation is nearer than an unrelated sentence: the vectors carry meaning across languages.
    assert cosine(vectors[0], vectors[1]) > cosine(vectors[0], vectors[2])
    as_floats = client.embeddings.create(model=EMBED_MODEL, input=texts[0], encoding_format="float")
    assert as_floats.data[0].embedding == pytest.approx(vectors[0], abs=1e-6)


def test_wrong_key_is_401(server):
    with pytest.raises(openai.AuthenticationError) as caught:
        server.client(api_key="sk-shuken-not-a-real-key").models.list()
    assert caught.value.body["code"] == "invalid_api_key"


def test_missing_key_is_401_in_openai_error_shape(server):
    response = httpx.post(f"{server.base_url}/chat/completions",
                          json={"model": CHAT_MODEL, "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 401
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}


def test_unknown_model_is_404_and_not_a_metric_label(server):
    with pytest.raises(openai.NotFoundError) as caught:
        server.client().chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
    assert caught.value.body["code"] == "model_not_found" and caught.value.body["param"] == "model"
    assert "no-such-model" not in httpx.get(f"{server.root_url}/metrics").text
    assert server.metric("shuken_requests_total", model="_unresolved", endpoint="chat", status="404") >= 1


@pytest.mark.parametrize("bad", [
    {"temperature": 3},
    {"top_p": 0},
    {"max_tokens": 0},
    {"n": 2},
    {"messages": []},
    {"stop": ["a", "b", "c", "d", "e"]},
    {"response_format": {"type": "xml"}},
    {"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]},
    {"messages": [{"role": "user", "content": [{"type": "text", "text": None}]}]},
])
def test_invalid_parameters_are_400_with_param(server, bad):
    body = {"model": CHAT_MODEL, "messages": [{"role": "user", "content": "hi"}], **bad}
    response = httpx.post(f"{server.base_url}/chat/completions", json=body,
                          headers={"Authorization": f"Bearer {server.api_key}"})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["message"]
    assert error["param"] and error["param"].split(".")[0] in bad


def test_malformed_json_body_is_400(server):
    response = httpx.post(f"{server.base_url}/chat/completions", content=b"{not json",
                          headers={"Authorization": f"Bearer {server.api_key}", "Content-Type": "application/json"})
    assert response.status_code == 400 and response.json()["error"]["type"] == "invalid_request_error"


def test_prompt_longer_than_context_is_400_with_limits(server):
    long_text = "word " * 5000
    with pytest.raises(openai.BadRequestError) as caught:
        server.client().chat.completions.create(model=CHAT_MODEL, messages=[{"role": "user", "content": long_text}])
    error = caught.value.body
    assert error["code"] == "context_length_exceeded"
    from shuken.config import Settings

    limit = Settings.model_fields["context_per_sequence"].default  # the fixture server runs the defaults
    assert f"maximum context length is {limit} tokens" in error["message"]  # the limit is stated


def test_prompt_plus_max_tokens_over_context_is_400(server):
    with pytest.raises(openai.BadRequestError) as caught:
        server.client().chat.completions.create(model=CHAT_MODEL, messages=[{"role": "user", "content": "hi"}],
                                                max_tokens=100_000)
    assert caught.value.body["param"] == "max_tokens"


def test_health_readiness_and_metrics(server):
    assert httpx.get(f"{server.root_url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{server.root_url}/readyz").json()
    assert ready["status"] == "ready" and CHAT_MODEL in ready["models_loaded"]
    server.client().chat.completions.create(model=CHAT_MODEL, messages=[{"role": "user", "content": "hi"}],
                                            max_tokens=3)
    assert server.metric("shuken_requests_total", model=CHAT_MODEL, endpoint="chat", status="200") >= 1
    assert server.metric("shuken_tokens_total", model=CHAT_MODEL, direction="completion") >= 3
    assert server.metric("shuken_queue_depth", model=CHAT_MODEL) == 0
    assert server.metric("shuken_request_latency_seconds_count", model=CHAT_MODEL, endpoint="chat") >= 1


def test_logs_are_json_and_hold_no_prompt_text(server):
    secret_phrase = "purple-elephant-4711"
    server.client().chat.completions.create(model=CHAT_MODEL, max_tokens=4,
                                            messages=[{"role": "user", "content": f"Remember {secret_phrase}"}])
    log_text = server.log_path.read_text()
    json_lines = [json.loads(line) for line in log_text.splitlines() if line.startswith("{")]
    assert any(line.get("message") == "generation finished" for line in json_lines)
    assert secret_phrase not in log_text


def test_prompt_logging_is_an_explicit_opt_in(tmp_path):
    from conftest import start_server

    opted_in = start_server(tmp_path / "verbose-home", log_prompts="true")
    try:
        opted_in.client().chat.completions.create(
            model=CHAT_MODEL, max_tokens=4, messages=[{"role": "user", "content": "Say teal-otter-99"}])
    finally:
        opted_in.stop()
    finished = [json.loads(line) for line in opted_in.log_path.read_text().splitlines()
                if line.startswith("{") and '"generation finished"' in line]
    assert finished and "teal-otter-99" in json.dumps(finished[0]["prompt"])
    assert isinstance(finished[0]["completion"], str)


def test_e5_role_prefixes_are_honoured(server):
    client = server.client()
    text = "Tokyo is the capital of Japan."
    rows = client.embeddings.create(model=EMBED_MODEL, encoding_format="float",
                                    input=[text, f"query: {text}", f"passage: {text}"]).data
    plain, as_query, as_passage = (row.embedding for row in rows)
    assert plain == pytest.approx(as_query, abs=1e-6)  # unprefixed text is embedded as a query
    assert as_passage != pytest.approx(as_query, abs=1e-3)  # the passage role really changes the vector


@pytest.mark.parametrize("path, body, param", [
    ("completions", {"model": CHAT_MODEL, "prompt": [1, 2, 3]}, "prompt"),  # token arrays: not supported
    ("embeddings", {"model": EMBED_MODEL, "input": [[1, 2]]}, "input"),
    ("chat/completions", {"model": CHAT_MODEL, "messages": [{"role": "user", "content": "x"}],
                          "temperature": "hot"}, "temperature"),
])
def test_union_validation_errors_name_the_client_field(server, path, body, param):
    response = httpx.post(f"{server.base_url}/{path}", json=body, headers={"Authorization": f"Bearer {server.api_key}"})
    assert response.status_code == 400 and response.json()["error"]["param"] == param


def test_unknown_route_and_wrong_capability_explain_themselves(server):
    response = httpx.post(f"{server.base_url}/chat", json={}, headers={"Authorization": f"Bearer {server.api_key}"})
    assert response.status_code == 404 and "/v1/chat/completions" in response.json()["error"]["message"]
    with pytest.raises(openai.BadRequestError) as caught:
        server.client().chat.completions.create(model=EMBED_MODEL, messages=[{"role": "user", "content": "x"}])
    assert "/v1/embeddings" in caught.value.body["message"]
