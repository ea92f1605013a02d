"""Retention, with the real database, model and CLI: what is older than a workspace's limits (conversations, audit
content, uploaded documents with their index entries and stored files, training records) is deleted by
`shuken retention sweep`, what is newer stays, each run is audited, and the chain still verifies. The server runs
the sweep by itself too.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from conftest import run_cli, start_server
from knowledge_support import ingest, sql, stored_files
from sqlalchemy import update

from shuken.config import Settings
from shuken.governance import events as ev
from shuken.governance.identity import Subject
from shuken.services import Services
from shuken.store.tables import (
    AuditContentRow, ConversationMessageRow, ConversationRow, DocumentRow, IngestJobRow, TrainingRecordRow,
)

pytestmark = pytest.mark.slow  # embeds documents with the real model, runs the CLI and a server

DAYS = 30
OLD = datetime.now(timezone.utc) - timedelta(days=DAYS + 5)
RECENT = datetime.now(timezone.utc) - timedelta(days=DAYS - 5)
POLICY = {f"retention_{kind}_days": DAYS for kind in ("conversations", "audit_content", "files", "training")}


def conversation(svc: Services, workspace: str, user_id: int, updated_at: datetime) -> int:
    with svc.db.session() as session:
        row = ConversationRow(workspace=workspace, user_id=user_id, title="t", created_at=updated_at - timedelta(1),
                              updated_at=updated_at)
        session.add(row)
        session.flush()
        session.add(ConversationMessageRow(conversation_id=row.id, role="user", content="hello",
                                           created_at=updated_at))
        return row.id


def served(svc: Services, subject: Subject, text: str) -> None:
    """A finished chat request: its content goes into audit_content, and (with consent) a training record."""
    messages = [{"role": "user", "content": text}]
    svc.bus.emit(ev.RequestServed(
        workspace=subject.workspace, actor=subject.actor, resource="model:m", model="m", outcome="success",
        endpoint="chat", status=200, request_id=uuid.uuid4().hex[:8],
        started_at=datetime.now(timezone.utc).isoformat(),
        content={"messages": messages, "completion": "ok"}, content_user_id=subject.user_id,
        captured_messages=messages, captured_completion="ok"))


def backdate(svc: Services, model, column: str, ids: list, when: datetime, *extra: str) -> None:
    key = AuditContentRow.ref if model is AuditContentRow else model.id
    with svc.db.session() as session:
        session.execute(update(model).where(key.in_(ids)).values({name: when for name in (column, *extra)}))


@pytest.fixture
def aged(isolated_home, tmp_path) -> dict:
    """In `default` (with limits): one old and one recent item of every kind. In `keepall` (no limits): an old
    conversation that must survive."""
    marker = "zqx" + uuid.uuid4().hex[:28]
    svc = Services.open(Settings(home=isolated_home))
    try:
        operator = Subject.operator()
        svc.directory.update_policy(operator, {**POLICY, "training_capture": "opt-in", "audit_content": True,
                                               "pii_before_logging": "off"})
        svc.directory.create_workspace("keepall")
        member = svc.directory.create_user(operator, "kept@example.org", "member")
        svc.directory.create_user(Subject.operator("keepall"), "kept@example.org", "member")
        with svc.db.session() as session:
            subject = svc.directory.subject_for(session, "default", member.user_id)
        svc.knowledge.create_collection(operator, "archive")
        old_file, new_file = tmp_path / "old.txt", tmp_path / "new.txt"
        old_file.write_text(f"The 2019 filing reference {marker} is archived.\n", encoding="utf-8")
        new_file.write_text("This year's filing is current and stays indexed.\n", encoding="utf-8")

        async def index():
            svc.registry.seed_bundled()
            try:
                return (await ingest(svc, "archive", [("old.txt", old_file)]),
                        await ingest(svc, "archive", [("new.txt", new_file)]))
            finally:
                await svc.host.close()
        old_job, new_job = asyncio.run(index())
        svc.consent.set(subject, True)
        served(svc, subject, "old question")
        served(svc, subject, "new question")
        old_doc = old_job["files"][0]["document_id"]
        backdate(svc, DocumentRow, "created_at", [old_doc], OLD, "updated_at")
        backdate(svc, DocumentRow, "created_at", [new_job["files"][0]["document_id"]], RECENT, "updated_at")
        backdate(svc, IngestJobRow, "created_at", [old_job["id"]], OLD)
        refs = {json.loads(content)["messages"][0]["content"]: ref for ref, content in
                sql(svc, "SELECT ref, content FROM audit_content WHERE content LIKE '%question%'")}
        backdate(svc, AuditContentRow, "created_at", [refs["old question"]], OLD)
        records = {json.loads(messages)[0]["content"]: record for record, messages in
                   sql(svc, "SELECT id, messages FROM training_records")}
        backdate(svc, TrainingRecordRow, "created_at", [records["old question"]], OLD)
        return {"home": isolated_home, "marker": marker, "old_doc": old_doc, "old_job": old_job["id"],
                "old_chunks": old_job["totals"]["chunks"],
                "old_hash": sql(svc, "SELECT content_hash FROM documents WHERE id = :d", d=old_doc)[0][0],
                "refs": refs, "records": records,
                "conversations": {"old": conversation(svc, "default", member.user_id, OLD),
                                  "recent": conversation(svc, "default", member.user_id, RECENT),
                                  "elsewhere": conversation(svc, "keepall", member.user_id, OLD)}}
    finally:
        svc.close()


def test_sweep_deletes_what_is_older_than_the_limits_and_keeps_the_rest(aged):
    home = aged["home"]
    # The test can fail: before the sweep the old document's file is kept and its text is in the database.
    assert aged["old_hash"] in stored_files(home)
    assert aged["marker"].encode() in (home / "shuken.db").read_bytes()
    report = json.loads(run_cli(home, "retention", "sweep", "--json").stdout)
    assert list(report["workspaces"]) == ["default"]  # `keepall` has no limits: nothing to enforce there
    counts = report["workspaces"]["default"]["counts"]
    assert counts == {"conversations": 1, "messages": 1, "audit_content": 1, "documents": 1,
                      "chunks": aged["old_chunks"], "ingest_jobs": 1, "training_records": 1, "stored_files": 1}
    assert aged["old_chunks"] >= 1

    svc = Services.open(Settings(home=home))
    try:
        conversations = {row[0] for row in sql(svc, "SELECT id FROM conversations")}
        assert conversations == {aged["conversations"]["recent"], aged["conversations"]["elsewhere"]}
        assert {row[0] for row in sql(svc, "SELECT ref FROM audit_content WHERE content LIKE '%question%'")} == \
            {aged["refs"]["new question"]}
        assert {row[0] for row in sql(svc, "SELECT id FROM training_records")} == {aged["records"]["new question"]}
        assert [row[0] for row in sql(svc, "SELECT name FROM documents")] == ["new.txt"]
        assert sql(svc, "SELECT count(*) FROM chunks WHERE document_id = :d", d=aged["old_doc"]) == [(0,)]
        assert sql(svc, "SELECT count(*) FROM ingest_jobs WHERE id = :j", j=aged["old_job"]) == [(0,)]
        new_chunks = {row[0] for row in sql(svc, "SELECT id FROM chunks")}
        assert {row[0] for row in sql(svc, "SELECT rowid FROM chunk_terms")} == new_chunks
        assert {row[0] for row in sql(svc, "SELECT chunk_id FROM chunk_vectors")} == new_chunks
        swept = list(svc.audit.rows("default", action="retention.swept"))
        assert [row["record_hash"] for row in swept] == [report["workspaces"]["default"]["audit_hash"]]
        assert swept[0]["details"]["counts"]["documents"] == 1 and swept[0]["details"]["limits_days"]["files"] == DAYS
        assert list(svc.audit.rows("keepall", action="retention.swept")) == []
    finally:
        svc.close()
    assert aged["old_hash"] not in stored_files(home) and len(stored_files(home)) == 1
    assert aged["marker"].encode() not in (home / "shuken.db").read_bytes()

    again = json.loads(run_cli(home, "retention", "sweep", "--json").stdout)["workspaces"]["default"]
    assert not any(again["counts"].values())  # nothing left to delete, yet the run is on record
    assert run_cli(home, "audit", "verify", check=False).returncode == 0
    verified = json.loads(run_cli(home, "audit", "verify", "--json").stdout)
    assert {r["workspace"]: r["ok"] for r in verified}["default"] is True


def test_the_server_sweeps_by_itself(tmp_path):
    home = tmp_path / "sweeping-home"
    home.mkdir()
    run_cli(home, "workspaces", "set", f"retention_conversations_days={DAYS}")
    server = start_server(home, retention_sweep_minutes=0.02)
    try:
        deadline, records = time.monotonic() + 60, []
        while time.monotonic() < deadline and len(records) < 2:  # the first run at start, then periodic ones
            records = httpx.get(f"{server.root_url}/v1/admin/audit", params={"action": "retention.swept"},
                                headers={"Authorization": f"Bearer {server.api_key}"}).json()["data"]
            time.sleep(0.5)
        assert len(records) >= 2 and {r["actor"] for r in records} == {"system:retention"}
        assert records[0]["details"]["limits_days"]["conversations"] == DAYS
    finally:
        server.stop()
