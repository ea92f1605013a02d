"""Consent before training data, on a real server: nothing is captured unless the workspace is opt-in and the
user granted consent; withdrawal stops capture (and can delete what was kept); the export holds only consented
records with their lineage; every consent change is an audit record. The tests tell one story on one server,
in file order (each builds on the consents of the one before)."""

from __future__ import annotations

import json
import sqlite3
import time
import uuid

import httpx
import pytest
from conftest import run_cli, start_server

from shuken.config import Settings
from shuken.governance.identity import Subject
from shuken.services import Services

pytestmark = pytest.mark.slow  # starts a server

CHAT_MODEL = "smollm2-135m-instruct"
PEOPLE = {"carol": "closed", "alice": "optin", "bob": "optin", "dave": "optin"}


class World:
    def __init__(self, server, keys: dict[str, str], user_ids: dict[str, int]):
        self.server, self.keys, self.user_ids = server, keys, user_ids
        self.markers: dict[str, str] = {}

    def consent(self, who: str, granted: bool, delete_captured: bool = False, status: int = 200) -> dict:
        response = httpx.post(f"{self.server.base_url}/consent", timeout=30,
                              headers={"Authorization": f"Bearer {self.keys[who]}"},
                              json={"granted": granted, "delete_captured": delete_captured})
        assert response.status_code == status, response.text
        return response.json()

    def chat(self, who: str, label: str, stream: bool = False) -> str:
        """A conversation turn carrying a unique marker (and an e-mail address, which capture must redact)."""
        marker = self.markers[label] = f"mk{uuid.uuid4().hex[:10]}"
        client = self.server.client(api_key=self.keys[who])
        kwargs = dict(model=CHAT_MODEL, max_tokens=6, temperature=0,
                      messages=[{"role": "user", "content": f"Note {marker} for {who}@example.org. Reply briefly."}])
        if not stream:
            return client.chat.completions.create(**kwargs).choices[0].message.content
        return "".join(chunk.choices[0].delta.content or "" for chunk in client.chat.completions.create(
            stream=True, **kwargs) if chunk.choices)

    def sql(self, statement: str, *params) -> list[tuple]:
        with sqlite3.connect(self.server.home / "shuken.db", timeout=30) as db:
            return db.execute(statement, params).fetchall()

    def captured(self) -> list[dict]:
        rows = self.sql("SELECT id, workspace, user_id, consent_event_id, messages, completion, lineage "
                        "FROM training_records ORDER BY id")
        return [{"id": r[0], "workspace": r[1], "user_id": r[2], "consent_event_id": r[3],
                 "messages": json.loads(r[4]), "completion": r[5], "lineage": json.loads(r[6])} for r in rows]

    def captured_labels(self) -> set[str]:
        text = json.dumps(self.captured())
        return {label for label, marker in self.markers.items() if marker in text}

    def barrier(self) -> None:
        """Events are handled in order by one thread: once a fresh turn of dave (who consents) is captured,
        every earlier turn has been considered for capture too."""
        label = f"sentinel-{len(self.markers)}"
        self.chat("dave", label)
        deadline = time.monotonic() + 60
        while label not in self.captured_labels():
            assert time.monotonic() < deadline, "capture never happened"
            time.sleep(0.2)

    def grants(self, who: str) -> list[tuple[int, int]]:
        return self.sql("SELECT id, granted FROM consent_events WHERE user_id = ? ORDER BY id", self.user_ids[who])


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    server = start_server(tmp_path_factory.mktemp("consent-home"))
    # Set up in this process on the server's database (a second process, as the CLI would be).
    svc = Services.open(Settings(home=server.home))
    keys, user_ids = {}, {}
    try:
        for ws in ("closed", "optin"):
            svc.directory.create_workspace(ws)
        svc.directory.update_policy(Subject.operator("optin"), {"training_capture": "opt-in"})
        for who, ws in PEOPLE.items():
            user_ids[who] = svc.directory.create_user(Subject.operator(ws), f"{who}@example.org", "member").user_id
            keys[who] = svc.keys.create(Subject.operator(ws), f"{who}@example.org", who)[1]
    finally:
        svc.close()
    yield World(server, keys, user_ids)
    server.stop()


def test_with_capture_off_nothing_is_captured_and_consent_is_refused(world):
    refused = world.consent("carol", True, status=400)["error"]
    assert refused["code"] == "capture_off" and "off" in refused["message"]
    assert world.grants("carol") == []
    status = httpx.get(f"{world.server.base_url}/consent", headers={"Authorization": f"Bearer {world.keys['carol']}"})
    assert status.json()["mode"] == "off" and status.json()["granted"] is False
    world.chat("carol", "closed-workspace")
    world.consent("dave", True)
    world.barrier()
    assert "closed-workspace" not in world.captured_labels()
    assert {r["workspace"] for r in world.captured()} == {"optin"}


def test_opt_in_captures_only_while_consent_is_granted(world):
    world.chat("bob", "never-consented")
    world.chat("alice", "before-consent")
    granted = world.consent("alice", True)
    assert granted["granted"] and granted["capturing"] and granted["mode"] == "opt-in"
    [(grant_id, was_granted)] = world.grants("alice")
    assert was_granted == 1

    reply = world.chat("alice", "while-granted")
    world.chat("alice", "while-granted-streamed", stream=True)
    world.barrier()
    labels = world.captured_labels()
    assert {"while-granted", "while-granted-streamed"} <= labels
    assert not {"never-consented", "before-consent"} & labels
    mine = [r for r in world.captured() if r["user_id"] == world.user_ids["alice"]]
    assert len(mine) == 2 and {r["consent_event_id"] for r in mine} == {grant_id}
    [first] = [r for r in mine if world.markers["while-granted"] in json.dumps(r["messages"])]
    assert first["completion"] == reply and first["lineage"]["endpoint"] == "chat"
    assert "alice@example.org" not in json.dumps(mine)  # PII is redacted before anything is kept
    assert all(r["completion"] for r in mine)  # the streamed answer was assembled too

    withdrawn = world.consent("alice", False)
    assert not withdrawn["granted"] and not withdrawn["capturing"] and withdrawn["captured_records"] == 2
    world.chat("alice", "after-withdrawal")
    world.barrier()
    assert "after-withdrawal" not in world.captured_labels()
    assert len([r for r in world.captured() if r["user_id"] == world.user_ids["alice"]]) == 2


def test_export_holds_only_consented_records_with_their_lineage(world, tmp_path):
    # A record pointing at a withdrawal (as a bug or a hand edit could leave) must not leave the building.
    [withdrawal] = [event_id for event_id, granted in world.grants("alice") if not granted]
    world.sql("INSERT INTO training_records (workspace, user_id, consent_event_id, model, messages, completion, "
              "lineage, created_at) VALUES ('optin', ?, ?, 'm', '[]', 'not consented', '{}', '2026-01-01 00:00:00')",
              world.user_ids["alice"], withdrawal)
    out = tmp_path / "training.jsonl"
    run_cli(world.server.home, "data", "export-training", "--workspace", "optin", "--out", str(out))
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    kept = [r for r in world.captured() if r["completion"] != "not consented"]
    assert len(lines) == len(kept) and "not consented" not in out.read_text()
    text = out.read_text()
    assert world.markers["while-granted"] in text and world.markers["after-withdrawal"] not in text
    for line in lines:
        lineage = line["lineage"]
        assert line["messages"][-1]["role"] == "assistant" and lineage["workspace"] == "optin"
        [(granted, audit_action, details)] = world.sql(
            "SELECT c.granted, a.action, a.details FROM consent_events c JOIN audit_events a "
            "ON a.record_hash = c.audit_hash AND a.workspace = c.workspace WHERE c.id = ?",
            lineage["consent_event_id"])
        assert granted == 1 and audit_action == "consent.changed"
        assert json.loads(details)["consent_event"] == lineage["consent_event_id"]
        assert lineage["consent_audit_hash"] and lineage["user"] in {f"user:{world.user_ids[w]}" for w in PEOPLE}
    [(details,)] = world.sql("SELECT details FROM audit_events WHERE workspace = 'optin' AND action = 'data.exported' "
                             "ORDER BY seq DESC LIMIT 1")
    assert json.loads(details)["records"] == len(lines)
    world.sql("DELETE FROM training_records WHERE completion = 'not consented'")


def test_withdrawal_can_delete_what_was_captured(world):
    assert world.consent("dave", True, delete_captured=True, status=400)["error"]["param"] == "delete_captured"
    daves = [r for r in world.captured() if r["user_id"] == world.user_ids["dave"]]
    alices = [r for r in world.captured() if r["user_id"] == world.user_ids["alice"]]
    assert daves and alices
    result = world.consent("dave", False, delete_captured=True)
    assert result["deleted_records"] == len(daves) and result["captured_records"] == 0
    assert [r["id"] for r in world.captured()] == [r["id"] for r in alices]  # only dave's went


def test_every_consent_change_is_an_audit_record(world):
    events = world.sql("SELECT id, user_id, granted, audit_hash FROM consent_events ORDER BY id")
    audited = world.sql("SELECT record_hash, actor, details FROM audit_events WHERE action = 'consent.changed'")
    assert len(events) == len(audited) == 4  # dave grant, alice grant, alice withdraw, dave withdraw
    by_hash = {h: (actor, json.loads(details)) for h, actor, details in audited}
    for event_id, user_id, granted, audit_hash in events:
        actor, details = by_hash[audit_hash]
        assert actor.startswith(f"user:{user_id}/key:") and details["consent_event"] == event_id
        assert details["granted"] == bool(granted)
    run_cli(world.server.home, "audit", "verify", "--workspace", "optin")
