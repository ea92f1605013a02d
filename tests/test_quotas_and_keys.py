"""API keys against a real server through the official openai client: expiry and revocation (401), requests per
minute and tokens per day (429 with Retry-After, recovery, state kept across a restart), and what each scope
and role lets a key do."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import openai
import pytest
from conftest import start_server

pytestmark = pytest.mark.slow  # starts servers

SHUKEN = [sys.executable, "-m", "shuken.cli"]
CHAT_MODEL = "smollm2-135m-instruct"


def shuken(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "SHUKEN_HOME": str(home), "NO_COLOR": "1"}
    return subprocess.run(SHUKEN + list(args), env=env, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)


class Env:
    """The module's server (replaced when a test restarts it) and helpers that act as its administrator."""

    def __init__(self, home: Path):
        self.home = home
        self.server = start_server(home)
        self.admin_key = self.server.api_key

    def http(self, method: str, path: str, key: str | None = None, **kwargs) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key or self.admin_key}"}
        return httpx.request(method, self.server.base_url + path, headers=headers, timeout=60, **kwargs)

    def client(self, key: str) -> openai.OpenAI:
        return self.server.client(api_key=key)

    def user(self, email: str, role: str) -> None:
        response = self.http("POST", "/admin/users", json={"email": email, "role": role})
        assert response.status_code == 201, response.text

    def key(self, email: str, name: str, scopes: list[str] | None = None) -> str:
        response = self.http("POST", "/admin/keys", json={"user": email, "name": name, "scopes": scopes})
        assert response.status_code == 201, response.text
        return response.json()["secret"]

    def cli_key(self, email: str, name: str, *options: str) -> str:
        result = shuken(self.home, "keys", "create", "--user", email, "--name", name, *options)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    def sql(self, statement: str, *params) -> list[tuple]:
        with sqlite3.connect(self.home / "shuken.db", timeout=30) as db:
            return db.execute(statement, params).fetchall()


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    running = Env(tmp_path_factory.mktemp("quota-home"))
    running.user("member@example.org", "member")
    yield running
    running.server.stop()


def chat(client: openai.OpenAI, **kwargs):
    return client.chat.completions.create(model=CHAT_MODEL, messages=[{"role": "user", "content": "Say hello."}],
                                          max_tokens=4, temperature=0, **kwargs)


def error_of(exc: openai.APIStatusError) -> dict:
    body = exc.response.json()
    assert set(body) == {"error"} and {"message", "type", "param", "code"} <= set(body["error"]), body
    return body["error"]


def test_keys_create_prints_only_the_secret_and_keeps_scopes_expiry_and_quotas(env):
    result = shuken(env.home, "keys", "create", "--user", "member@example.org", "--name", "scoped",
                    "--scopes", "chat,knowledge:write", "--expires", "30d", "--rpm", "7", "--tpd", "900")
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"sk-shuken-[A-Za-z0-9_-]{40,}\n", result.stdout)  # the secret, alone
    assert "scoped" in result.stderr and "chat, knowledge:write" in result.stderr
    listed = json.loads(shuken(env.home, "keys", "list", "--json").stdout)
    [key] = [k for k in listed if k["name"] == "scoped"]
    assert key["scopes"] == ["chat", "knowledge:write"] and (key["rpm"], key["tpd"]) == (7, 900)
    expires = datetime.fromisoformat(key["expires_at"])
    assert abs(expires - (datetime.now(timezone.utc) + timedelta(days=30))) < timedelta(minutes=2)
    assert result.stdout.strip() not in json.dumps(listed)
    assert chat(env.client(result.stdout.strip())).choices[0].message.content is not None
    bad = shuken(env.home, "keys", "create", "--user", "member@example.org", "--name", "x", "--scopes", "root")
    assert bad.returncode != 0 and bad.stdout == "" and "Unknown scope" in bad.stderr


def test_an_expired_key_is_refused_with_401(env):
    secret = env.cli_key("member@example.org", "short-lived", "--expires", "1h")
    assert env.client(secret).models.list().data
    # Waiting an hour is not an option: move the expiry into the past, as time would.
    past = (datetime.now(timezone.utc) - timedelta(seconds=5)).strftime("%Y-%m-%d %H:%M:%S.%f")
    env.sql("UPDATE api_keys SET expires_at = ? WHERE name = 'short-lived'", past)
    with pytest.raises(openai.AuthenticationError) as refused:
        chat(env.client(secret))
    error = error_of(refused.value)
    assert refused.value.status_code == 401 and error["code"] == "expired_api_key" and "expired" in error["message"]
    [key] = [k for k in env.http("GET", "/admin/keys").json()["data"] if k["name"] == "short-lived"]
    assert key["status"] == "expired"


def test_a_revoked_key_is_refused_with_401(env):
    secret = env.cli_key("member@example.org", "to-revoke")
    assert chat(env.client(secret)).choices
    result = shuken(env.home, "keys", "revoke", "to-revoke")
    assert result.returncode == 0, result.stderr
    for call in (lambda c: c.models.list(), chat):
        with pytest.raises(openai.AuthenticationError) as refused:
            call(env.client(secret))
        assert error_of(refused.value)["code"] == "invalid_api_key" and "revoked" in error_of(refused.value)["message"]


def retry_after(exc: openai.RateLimitError) -> int:
    value = int(exc.response.headers["retry-after"])
    assert 1 <= value <= 60, value
    return value


def test_requests_per_minute_give_429_with_retry_after_then_recover(env):
    secret = env.cli_key("member@example.org", "rpm-3", "--rpm", "3")
    client = env.client(secret)
    if time.time() % 60 > 55:  # four requests must fall in one clock minute
        time.sleep(60 - time.time() % 60 + 0.2)
    for _ in range(3):
        assert client.models.list().data
    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.with_raw_response.create(
            model=CHAT_MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=2)
    error = error_of(refused.value)
    assert error["code"] == "requests_per_minute_exceeded" and error["type"] == "rate_limit_exceeded"
    wait = retry_after(refused.value)
    assert f"retry in {wait} s" in error["message"] or f"retry in {wait + 1} s" in error["message"]
    # The next minute, simulated: the counter belongs to the minute stored with it, so moving that minute back
    # is exactly what the clock passing would do (without sleeping up to a minute in a test).
    env.sql("UPDATE api_keys SET minute_window = minute_window - 1 WHERE name = 'rpm-3'")
    raw = client.chat.completions.with_raw_response.create(
        model=CHAT_MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=2)
    assert raw.http_response.status_code == 200 and raw.parse().choices
    assert client.models.list().data and client.models.list().data  # the new minute has the full budget
    with pytest.raises(openai.RateLimitError) as again:
        client.models.list()
    retry_after(again.value)
    assert env.client(env.admin_key).models.list().data  # other keys are not affected


def test_scopes_and_roles_decide_what_a_key_may_do(env, tmp_path):
    assert env.http("POST", "/collections", json={"name": "handbook"}).status_code == 201
    env.user("auditor@example.org", "auditor")
    env.user("viewer@example.org", "viewer")
    chat_only = env.key("member@example.org", "chat-only", ["chat"])
    read_only = env.key("member@example.org", "read-only", ["knowledge:read"])
    member = env.key("member@example.org", "member-all", ["chat", "knowledge:read", "knowledge:write"])
    auditor = env.key("auditor@example.org", "auditor", ["chat", "knowledge:read", "audit:read"])
    viewer = env.key("viewer@example.org", "viewer", ["chat", "knowledge:read", "knowledge:write"])

    def search(key: str) -> httpx.Response:
        return env.http("POST", "/collections/handbook/search", key, json={"query": "leave", "mode": "keyword"})

    def upload(key: str) -> httpx.Response:
        return env.http("POST", "/collections/handbook/documents", key,
                        files={"files": ("note.txt", b"Annual leave is 20 days.\n", "text/plain")})

    assert search(read_only).status_code == 200 and search(member).status_code == 200
    for key in (chat_only, auditor):
        refused = search(key)
        assert refused.status_code == 403 and refused.json()["error"]["type"] == "permission_error", refused.text
        assert env.http("GET", "/collections", key).json()["data"] == []  # nothing listed either
    assert [c["name"] for c in env.http("GET", "/collections", read_only).json()["data"]] == ["handbook"]

    assert chat(env.client(chat_only)).choices and chat(env.client(viewer)).choices
    for key in (read_only, auditor):
        with pytest.raises(openai.PermissionDeniedError) as refused:
            chat(env.client(key))
        assert error_of(refused.value)["type"] == "permission_error"

    audit = env.http("GET", "/admin/audit?limit=5", auditor)
    assert audit.status_code == 200 and len(audit.json()["data"]) == 5
    assert env.http("GET", "/admin/users", auditor).status_code == 403
    assert env.http("GET", "/admin/audit", member).status_code == 403

    refused = upload(viewer)  # the key has knowledge:write, the role does not allow it
    assert refused.status_code == 403 and refused.json()["error"]["type"] == "permission_error", refused.text
    assert search(viewer).status_code == 200
    assert upload(member).status_code == 202


def test_tokens_per_day_give_429_and_the_count_survives_a_restart(env):
    if 86400 - time.time() % 86400 < 60:  # the daily count resets at midnight UTC
        time.sleep(86400 - time.time() % 86400 + 1)
    secret = env.cli_key("member@example.org", "tpd-5", "--tpd", "5")
    client = env.client(secret)
    reply = chat(client)  # allowed: the quota is checked before a request, and nothing was used yet
    assert reply.usage.total_tokens > 5
    deadline = time.monotonic() + 30
    while True:  # tokens are counted after the response, off the request path
        try:
            client.models.list()
        except openai.RateLimitError as exc:
            refused = exc
            break
        assert time.monotonic() < deadline, "the token quota was never enforced"
        time.sleep(0.2)
    error = error_of(refused)
    assert error["code"] == "tokens_per_day_exceeded"
    until_midnight = 86400 - time.time() % 86400
    assert abs(int(refused.response.headers["retry-after"]) - until_midnight) < 10
    [(used,)] = env.sql("SELECT day_tokens FROM api_keys WHERE name = 'tpd-5'")
    assert used == reply.usage.total_tokens

    env.server.stop()
    env.server = start_server(env.home, api_key=env.admin_key)
    with pytest.raises(openai.RateLimitError) as after_restart:
        chat(env.client(secret))
    assert error_of(after_restart.value)["code"] == "tokens_per_day_exceeded"
    assert env.client(env.admin_key).models.list().data
