"""The /v1/admin HTTP API on a real server: users, roles and groups, keys (secret shown once), workspace settings,
the audit log (read, verify, export); members are refused, and an admin of one workspace sees only that one."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai
import pytest
from conftest import start_server

from shuken.governance.audit import EXPORT_FIELDS, record_hash

pytestmark = pytest.mark.slow  # starts a server

SHUKEN = [sys.executable, "-m", "shuken.cli"]


def shuken(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "SHUKEN_HOME": str(home), "NO_COLOR": "1"}
    return subprocess.run(SHUKEN + list(args), env=env, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)


class Api:
    def __init__(self, server, key: str):
        self.server, self.key = server, key

    def __call__(self, method: str, path: str, **kwargs) -> httpx.Response:
        return httpx.request(method, self.server.base_url + path, timeout=60,
                             headers={"Authorization": f"Bearer {self.key}"}, **kwargs)

    def ok(self, method: str, path: str, status: int = 200, **kwargs):
        response = self(method, path, **kwargs)
        assert response.status_code == status, response.text
        return response.json()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    running = start_server(tmp_path_factory.mktemp("admin-api-home"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def admin(server):
    """The bootstrap key: the owner of workspace `default`, with every scope."""
    return Api(server, server.api_key)


@pytest.fixture(scope="module")
def other_workspace(server):
    """Workspace `beta` with its own admin and key, made with the CLI on the server's home."""
    home = server.home
    for args in (["workspaces", "create", "beta"],
                 ["users", "create", "boss@beta.example", "-w", "beta", "--role", "admin"],
                 ["users", "create", "staff@beta.example", "-w", "beta", "--role", "member", "--group", "ops"]):
        assert shuken(home, *args).returncode == 0
    result = shuken(home, "keys", "create", "-w", "beta", "--user", "boss@beta.example", "--name", "beta-admin",
                    "--scopes", "admin,audit:read,chat")
    assert result.returncode == 0, result.stderr
    return Api(server, result.stdout.strip())


def openai_error(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}, body
    return body["error"]


def test_users_roles_and_groups(admin):
    created = admin.ok("POST", "/admin/users", 201,
                       json={"email": "Ann@Example.org", "role": "member", "groups": ["finance"]})
    assert (created["email"], created["role"], created["groups"]) == ("ann@example.org", "member", ["finance"])
    changed = admin.ok("PATCH", "/admin/users/ann@example.org", json={"role": "viewer", "groups": ["legal", "ops"]})
    assert (changed["role"], changed["groups"]) == ("viewer", ["legal", "ops"])
    assert admin.ok("PATCH", "/admin/users/ann@example.org", json={"groups": []})["groups"] == []
    listed = {m["email"]: m for m in admin.ok("GET", "/admin/users")["data"]}
    assert listed["ann@example.org"]["role"] == "viewer" and listed["admin@localhost"]["role"] == "owner"
    assert openai_error(admin("POST", "/admin/users", json={"email": "ann@example.org"}), 400)["code"] == "user_exists"
    assert openai_error(admin("POST", "/admin/users", json={"email": "x@example.org", "role": "god"}), 400)
    assert openai_error(admin("PATCH", "/admin/users/nobody@example.org", json={"role": "member"}), 404)


def test_keys_show_their_secret_once_and_revoked_keys_stop_working(admin):
    admin.ok("POST", "/admin/users", 201, json={"email": "kim@example.org", "role": "member"})
    created = admin.ok("POST", "/admin/keys", 201, json={"user": "kim@example.org", "name": "kim-bot",
                                                         "scopes": ["chat"], "expires": "1d", "rpm": 50})
    secret = created["secret"]
    assert secret.startswith("sk-shuken-") and created["scopes"] == ["chat"] and created["rpm"] == 50
    listing = admin("GET", "/admin/keys")
    assert secret not in listing.text and all("secret" not in k for k in listing.json()["data"])
    [key] = [k for k in listing.json()["data"] if k["id"] == created["id"]]
    assert key["status"] == "active" and key["user"] == "kim@example.org"
    client = admin.server.client(api_key=secret)
    assert client.models.list().data

    revoked = admin.ok("DELETE", f"/admin/keys/{created['id']}")
    assert revoked["status"] == "revoked"
    with pytest.raises(openai.AuthenticationError):
        client.models.list()
    assert openai_error(admin("DELETE", f"/admin/keys/{created['id']}"), 404)["code"] == "key_not_found"
    assert openai_error(admin("POST", "/admin/keys", json={"user": "kim@example.org", "name": "k",
                                                           "expires": "forever"}), 400)["param"] == "expires"


def test_workspace_settings_change_and_invalid_settings_change_nothing(admin):
    before = admin.ok("GET", "/admin/workspace")["policy"]
    after = admin.ok("PATCH", "/admin/workspace", json={"training_capture": "opt-in",
                                                        "retention_conversations_days": 30})["policy"]
    assert after == {**before, "training_capture": "opt-in", "retention_conversations_days": 30}
    for bad in ({"training_capture": "always"}, {"no_such_setting": 1},
                {"audit_content": True, "retention_files_days": 0}):  # one valid change, one invalid
        error = openai_error(admin("PATCH", "/admin/workspace", json=bad), 400)
        assert error["type"] == "invalid_request_error" and error["param"] == "settings", error
        assert admin.ok("GET", "/admin/workspace")["policy"] == after
    admin.ok("PATCH", "/admin/workspace", json={"policy": {"training_capture": "off"}})  # the nested form too
    assert admin.ok("GET", "/admin/workspace")["policy"]["training_capture"] == "off"


def test_the_audit_log_lists_verifies_and_exports_admin_actions(admin):
    [mine] = [k for k in admin.ok("GET", "/admin/keys")["data"] if k["name"] == "admin (first start)"]
    owner = next(m for m in admin.ok("GET", "/admin/users")["data"] if m["email"] == "admin@localhost")
    user = admin.ok("POST", "/admin/users", 201, json={"email": "lee@example.org", "groups": ["x"]})
    admin.ok("PATCH", "/admin/users/lee@example.org", json={"role": "viewer"})
    key = admin.ok("POST", "/admin/keys", 201, json={"user": "lee@example.org", "name": "lee-key"})
    admin.ok("DELETE", f"/admin/keys/{key['id']}")
    admin.ok("PATCH", "/admin/workspace", json={"retention_files_days": 90})

    newest = admin.ok("GET", "/admin/audit?limit=6")["data"]
    assert [r["action"] for r in newest] == ["settings.changed", "key.revoked", "key.created", "role.changed",
                                             "groups.changed", "role.changed"]
    assert {r["actor"] for r in newest} == {f"user:{owner['user_id']}/key:{mine['id']}"}
    assert {r["workspace"] for r in newest} == {"default"}
    assert newest[1]["resource"] == newest[2]["resource"] == f"key:{key['id']}"
    assert newest[3]["details"] == {"from": "member", "to": "viewer"}
    assert newest[0]["details"]["changed"]["retention_files_days"] == {"from": None, "to": 90}
    assert "lee@example.org" not in json.dumps(newest)  # e-mails never enter the chain
    created = admin.ok("GET", "/admin/audit?action=user.created")["data"]
    assert created[0]["resource"] == f"user:{user['user_id']}" and {r["action"] for r in created} == {"user.created"}
    assert admin.ok("GET", "/admin/audit?action=user.created&since=2999-01-01T00:00:00Z")["data"] == []
    assert openai_error(admin("GET", "/admin/audit?since=soon"), 400)["param"] == "since"

    report = admin.ok("GET", "/admin/audit/verify")
    assert report["ok"] and report["workspace"] == "default" and report["records"] >= newest[0]["seq"]

    exported = admin("GET", "/admin/audit/export?format=csv")
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert list(rows[0]) == list(EXPORT_FIELDS) and [int(r["seq"]) for r in rows] == list(range(1, len(rows) + 1))
    assert len(rows) >= newest[0]["seq"] and rows[newest[0]["seq"] - 1]["record_hash"] == newest[0]["record_hash"]
    [exported_record] = admin.ok("GET", "/admin/audit?limit=1")["data"]  # the export is itself audited
    assert exported_record["action"] == "data.exported"
    assert exported_record["details"] == {"records": len(rows), "format": "csv"}
    lines = admin("GET", "/admin/audit/export?format=jsonl").text.splitlines()
    assert all(record_hash(json.loads(line)) == json.loads(line)["record_hash"] for line in lines)
    assert openai_error(admin("GET", "/admin/audit/export?format=xml"), 400)["param"] == "format"


def test_members_are_refused_every_admin_endpoint(admin):
    admin.ok("POST", "/admin/users", 201, json={"email": "max@example.org", "role": "member"})
    member = Api(admin.server, admin.ok("POST", "/admin/keys", 201, json={
        "user": "max@example.org", "name": "max", "scopes": ["chat", "knowledge:read", "admin"]})["secret"])
    for method, path, body in (("GET", "/admin/users", None), ("POST", "/admin/users", {"email": "y@example.org"}),
                               ("PATCH", "/admin/users/max@example.org", {"role": "admin"}),
                               # an empty PATCH reads a membership: not for a caller who may not manage users
                               ("PATCH", "/admin/users/max@example.org", {}),
                               ("PATCH", "/admin/users/nobody@example.org", {}),
                               ("GET", "/admin/keys", None),
                               ("PATCH", "/admin/workspace", {"audit_content": True}),
                               ("POST", "/admin/keys", {"user": "kim@example.org", "name": "theirs"}),
                               # 403, not 404: who is a member is not told to a caller who may not manage keys
                               ("POST", "/admin/keys", {"user": "nobody@example.org", "name": "probe"}),
                               ("GET", "/admin/audit", None), ("GET", "/admin/audit/verify", None),
                               ("GET", "/admin/audit/export", None)):
        error = openai_error(member(method, path, json=body), 403)
        assert error["type"] == "permission_error", (method, path, error)
    assert admin.ok("GET", "/admin/workspace")["policy"]["audit_content"] is False


def test_a_key_without_the_admin_scope_cannot_mint_keys_even_for_its_own_user(admin):
    """Quotas are per key: a chat-only, rate-limited key of an owner minting siblings (or a wider key) would
    multiply its quota or widen its rights, so every key creation needs the admin right."""
    narrow = Api(admin.server, admin.ok("POST", "/admin/keys", 201, json={
        "user": "admin@localhost", "name": "owner-chat-only", "scopes": ["chat"], "rpm": 100})["secret"])
    for name, scopes in (("wider", ["chat", "admin"]), ("twin", ["chat"])):
        error = openai_error(narrow("POST", "/admin/keys", json={"user": "admin@localhost", "name": name,
                                                                 "scopes": scopes, "rpm": 100}), 403)
        assert error["type"] == "permission_error" and "admin" in error["message"]
    names = {k["name"] for k in admin.ok("GET", "/admin/keys")["data"]}
    assert "owner-chat-only" in names and not {"wider", "twin"} & names


def test_an_admin_cannot_demote_remove_or_act_as_an_owner(admin):
    admin.ok("POST", "/admin/users", 201, json={"email": "ada@example.org", "role": "admin"})
    ada = Api(admin.server, admin.ok("POST", "/admin/keys", 201, json={
        "user": "ada@example.org", "name": "ada", "scopes": ["admin", "audit:read", "chat"]})["secret"])
    assert ada.ok("POST", "/admin/users", 201, json={"email": "ole@example.org"})["role"] == "member"
    for method, path, body in (("PATCH", "/admin/users/admin@localhost", {"role": "member"}),
                               ("DELETE", "/admin/users/admin@localhost", None),
                               # A key acts as its user: a key for the owner would make the admin an owner.
                               ("POST", "/admin/keys", {"user": "admin@localhost", "name": "mine-now"})):
        assert ada(method, path, json=body).status_code == 403, (method, path)
    assert openai_error(ada("PATCH", "/admin/users/ada@example.org", json={"role": "owner"}), 403)["type"] == \
        "permission_error"
    owner = next(m for m in admin.ok("GET", "/admin/users")["data"] if m["email"] == "admin@localhost")
    assert owner["role"] == "owner"
    assert "mine-now" not in {k["name"] for k in admin.ok("GET", "/admin/keys")["data"]}


def test_an_admin_of_another_workspace_sees_only_their_own(admin, other_workspace):
    beta = other_workspace
    assert beta.ok("GET", "/admin/workspace")["id"] == "beta"
    assert {m["email"] for m in beta.ok("GET", "/admin/users")["data"]} == {"boss@beta.example", "staff@beta.example"}
    assert {k["workspace"] for k in beta.ok("GET", "/admin/keys")["data"]} == {"beta"}
    records = beta.ok("GET", "/admin/audit?limit=1000")["data"]
    assert records and {r["workspace"] for r in records} == {"beta"}
    default_hashes = {r["record_hash"] for r in admin.ok("GET", "/admin/audit?limit=1000")["data"]}
    assert not default_hashes & {r["record_hash"] for r in records}
    assert beta.ok("GET", "/admin/audit/verify")["workspace"] == "beta"
    exported = [json.loads(line) for line in beta("GET", "/admin/audit/export").text.splitlines()]
    assert exported and {r["workspace"] for r in exported} == {"beta"}

    # Default's people and keys cannot be reached from beta, and the reverse.
    admin_key_id = next(k["id"] for k in admin.ok("GET", "/admin/keys")["data"] if k["user"] == "admin@localhost")
    assert beta("DELETE", f"/admin/keys/{admin_key_id}").status_code == 404
    assert beta("PATCH", "/admin/users/admin@localhost", json={"role": "viewer"}).status_code == 404
    assert beta("POST", "/admin/keys", json={"user": "admin@localhost", "name": "stolen"}).status_code == 404
    assert admin("PATCH", "/admin/users/staff@beta.example", json={"role": "admin"}).status_code == 404
    assert "boss@beta.example" not in admin("GET", "/admin/users").text
    assert admin.server.client().models.list().data  # the default owner's key still works


def test_workspaces_over_http_creator_becomes_owner_with_a_key_shown_once(admin, other_workspace):
    created = admin.ok("POST", "/admin/workspaces", 201, json={"id": "gamma", "display_name": "Gamma dept."})
    assert created["id"] == "gamma" and created["owner_key"].startswith("sk-shuken-")
    gamma = Api(admin.server, created["owner_key"])
    assert gamma.ok("GET", "/admin/workspace")["id"] == "gamma"
    assert [m["email"] for m in gamma.ok("GET", "/admin/users")["data"]] == ["admin@localhost"]
    mine = {w["id"]: w["role"] for w in admin.ok("GET", "/admin/workspaces")["data"]}
    assert mine == {"default": "owner", "gamma": "owner"}  # never `beta`, where this user is no member
    assert [w["id"] for w in other_workspace.ok("GET", "/admin/workspaces")["data"]] == ["beta"]
    assert openai_error(admin("POST", "/admin/workspaces", json={"id": "gamma"}), 400)["code"] == "workspace_exists"
    assert not any("owner_key" in json.dumps(r) or created["owner_key"] in json.dumps(r)
                   for r in gamma.ok("GET", "/admin/audit")["data"])


def test_the_last_owner_cannot_be_demoted_or_removed(admin):
    error = openai_error(admin("PATCH", "/admin/users/admin@localhost", json={"role": "admin"}), 400)
    assert error["code"] == "last_owner"
    assert openai_error(admin("DELETE", "/admin/users/admin@localhost"), 400)["code"] == "last_owner"


def test_only_the_uploader_or_a_manager_replaces_a_document(admin, server):
    admin.ok("POST", "/collections", 201, json={"name": "shared-docs"})
    admin.ok("POST", "/admin/users", 201, json={"email": "writer@example.org", "role": "member"})
    writer = Api(server, admin.ok("POST", "/admin/keys", 201, json={
        "user": "writer@example.org", "name": "writer", "scopes": ["knowledge:read", "knowledge:write"]})["secret"])

    def upload(api, name):
        return api("POST", "/collections/shared-docs/documents", files=[("files", (name, b"Opening hours: 9 to 5."))])

    job = upload(admin, "hours.txt")
    assert job.status_code == 202, job.text
    deadline = time.monotonic() + 120
    while admin.ok("GET", f"/jobs/{job.json()['id']}")["status"] not in ("done", "failed"):
        assert time.monotonic() < deadline, "ingestion did not finish"
        time.sleep(0.3)
    error = openai_error(upload(writer, "hours.txt"), 403)
    assert error["code"] == "document_owned_by_another_user" and "hours.txt" in error["message"]
    assert upload(writer, "writer-notes.txt").status_code == 202
