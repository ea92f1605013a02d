"""Right to erasure, end to end: a unique marker planted in one person's uploaded document, conversations, training
record, stored audit content and key name is found nowhere under SHUKEN_HOME after `shuken erase` (every table,
FTS5 shadow tables included, and the raw bytes of every file: database, WAL, stored originals), while another
person's marker survives and the audit chain still verifies. Also the HTTP endpoint and its authorisation.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import uuid
from datetime import datetime, timezone
from pathlib import Path

import httpx
import openai
import pytest
from conftest import run_cli, start_server
from fixtures.documents import SAMPLES, make_text
from knowledge_support import ingest, stored_files

from shuken.config import Settings
from shuken.errors import Unauthorized
from shuken.governance import events as ev
from shuken.governance.identity import Subject
from shuken.services import Services
from shuken.store.tables import ConversationMessageRow, ConversationRow

pytestmark = pytest.mark.slow  # embeds documents with the real model, runs the CLI in subprocesses

SHARED = SAMPLES["en"][0]  # a paragraph both people uploaded: the second copy is skipped as a duplicate


def new_marker() -> str:
    # Letters and hex digits only: one keyword term, so it is in the FTS5 index's segments as well. It ends in a
    # digit because the English stemmer would cut a final "e" or "ed" from the indexed term, and the tail would
    # then not be found in the index even when the marker is there.
    return "zqx" + uuid.uuid4().hex[:27] + "7"


def tail(marker: str) -> str:
    """What is searched for: FTS5 stores a term after the prefix it shares with the term before it (both markers
    start with "zqx"), so only the marker's end is sure to appear contiguously in the index's segments."""
    return marker[-20:]


def files_containing(home: Path, needle: str) -> list[str]:
    """Every file under home whose raw bytes contain the needle (as `grep -r` would find it)."""
    data = needle.encode()
    return sorted(str(p.relative_to(home)) for p in home.rglob("*") if p.is_file() and data in p.read_bytes())


def tables_containing(db_path: Path, needle: str) -> list[str]:
    """Every table (virtual FTS5 tables and their shadow tables included) with a cell containing the needle."""
    data = needle.encode()
    connection = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        names = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        assert {"chunk_terms", "chunk_terms_data", "chunk_terms_content", "audit_content"} <= set(names)
        found = []
        for name in names:
            for row in connection.execute(f'SELECT * FROM "{name}"'):
                if any(data in (cell if isinstance(cell, bytes) else str(cell).encode()) for cell in row):
                    found.append(name)
                    break
        return found
    finally:
        connection.close()


def add_conversation(svc: Services, workspace: str, user_id: int, text: str) -> None:
    now = datetime.now(timezone.utc)
    with svc.db.session() as session:
        conversation = ConversationRow(workspace=workspace, user_id=user_id, title=f"About {text}", created_at=now,
                                       updated_at=now)
        session.add(conversation)
        session.flush()
        session.add_all([ConversationMessageRow(conversation_id=conversation.id, role="user", content=f"Note {text}",
                                                created_at=now),
                         ConversationMessageRow(conversation_id=conversation.id, role="assistant",
                                                content=f"Noted: {text}", model="smollm2-135m-instruct",
                                                created_at=now)])


def user_subject(svc: Services, workspace: str, email: str) -> Subject:
    member = svc.directory.member(workspace, email)
    with svc.db.session() as session:
        return svc.directory.subject_for(session, workspace, member.user_id)


@pytest.fixture
def planted(isolated_home, tmp_path) -> dict:
    """Two people in workspace `default` (and the subject also in `branch`), each with a document holding their
    own marker; the subject also has conversations, a captured training record, audit content and a key."""
    marker, other_marker = new_marker(), new_marker()
    tag = uuid.uuid4().hex[:8]
    email, other_email = f"subject-{tag}@example.org", f"other-{tag}@example.org"
    svc = Services.open(Settings(home=isolated_home))
    try:
        operator = Subject.operator()
        # Opt-in capture and kept audit content; PII redaction off so the marker reaches storage unchanged.
        svc.directory.update_policy(operator, {"training_capture": "opt-in", "audit_content": True,
                                               "pii_before_logging": "off"})
        svc.directory.create_workspace("branch")
        for workspace in ("default", "branch"):
            svc.directory.create_user(Subject.operator(workspace), email, "member")
        svc.directory.create_user(operator, other_email, "member")
        _key, secret = svc.keys.create(operator, email, f"laptop {marker}")
        svc.knowledge.create_collection(operator, "shared")
        subject = user_subject(svc, "default", email)
        other = user_subject(svc, "default", other_email)

        mine = make_text(tmp_path / f"{marker}-notes.txt", [SHARED, f"The ledger reference is {marker} for audit."])
        theirs = make_text(tmp_path / "other-notes.txt", [SHARED, f"Their ledger reference is {other_marker}."])

        async def index_both():
            svc.registry.seed_bundled()
            try:
                first = await ingest(svc, "shared", [(mine.name, mine)], subject)
                second = await ingest(svc, "shared", [(theirs.name, theirs)], other)
                return first, second
            finally:
                await svc.host.close()
        first, second = asyncio.run(index_both())
        assert first["totals"]["indexed"] == 1 and second["totals"]["indexed"] == 1
        assert second["totals"]["duplicates_skipped"] == 1  # the other document now depends on the subject's

        add_conversation(svc, "default", subject.user_id, marker)
        add_conversation(svc, "branch", subject.user_id, marker)
        svc.consent.set(subject, True)
        started = datetime.now(timezone.utc).isoformat()
        messages = [{"role": "user", "content": f"Summarise {marker}"}]
        svc.bus.emit(ev.RequestServed(
            workspace="default", actor=subject.actor, resource="model:smollm2-135m-instruct",
            model="smollm2-135m-instruct", prompt_tokens=5, completion_tokens=5,
            endpoint="chat", status=200, request_id="r1", started_at=started,
            content={"messages": messages, "completion": f"It is {marker}."}, content_user_id=subject.user_id,
            key_id=subject.key_id, captured_messages=messages, captured_completion=f"It is {marker}."))
        assert svc.consent.status(subject)["captured_records"] == 1
        return {"home": isolated_home, "marker": marker, "other_marker": other_marker, "email": email,
                "user_id": subject.user_id, "secret": secret, "mine": first, "theirs": second}
    finally:
        svc.close()


def test_erase_leaves_no_trace_of_the_subject_and_keeps_everyone_else(planted):
    home, marker, other = planted["home"], planted["marker"], planted["other_marker"]
    db_path = home / "shuken.db"
    # The test can fail: before erasure the marker is in the tables (the keyword index's segments too) and files.
    before = tables_containing(db_path, tail(marker))
    assert {"chunks", "chunk_terms_data", "conversation_messages", "training_records", "audit_content",
            "documents", "api_keys"} <= set(before), before
    assert "shuken.db" in files_containing(home, marker)
    files_before = stored_files(home)

    receipt = json.loads(run_cli(home, "erase", "--subject", planted["email"], "--yes", "--json").stdout)

    # Nothing of the subject in any file under SHUKEN_HOME (database, WAL, shared memory, stored originals) ...
    for needle in (marker, tail(marker), planted["email"], planted["email"].split("@")[0]):
        assert files_containing(home, needle) == [], needle
    assert not (home / "shuken.db-wal").exists() or (home / "shuken.db-wal").stat().st_size == 0
    # ... nor in any table; the other person's marker is still in their document, its index entries and the file.
    assert tables_containing(db_path, tail(marker)) == []
    assert {"chunks", "chunk_terms_data"} <= set(tables_containing(db_path, tail(other)))
    assert any(name.startswith("files/") for name in files_containing(home, tail(other)))
    assert len(stored_files(home)) == len(files_before) - 1

    assert receipt["subject"] == f"user:{planted['user_id']}" and receipt["workspaces"] == ["branch", "default"]
    assert receipt["account"] == "de-identified"
    default, branch = receipt["counts"]["default"], receipt["counts"]["branch"]
    assert (default["documents"], default["conversations"], default["messages"]) == (1, 1, 2)
    assert (default["training_records"], default["keys_revoked"], default["stored_files"]) == (1, 1, 1)
    assert default["chunks"] == planted["mine"]["totals"]["chunks"]
    # UserCreated, KeyCreated, DocumentIngested and RequestServed content of theirs in `default`.
    assert default["audit_content"] >= 4 and branch["conversations"] == 1 and branch["documents"] == 0
    assert receipt["storage"]["wal_truncated"] and receipt["storage"]["secure_delete"]

    connection = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        for workspace, record_hash in receipt["audit_hashes"].items():
            action, details = connection.execute("SELECT action, details FROM audit_events WHERE workspace = ? AND "
                                                 "record_hash = ?", (workspace, record_hash)).fetchone()
            assert action == "subject.erased" and json.loads(details)["counts"]["documents"] == \
                receipt["counts"][workspace]["documents"]
        user = connection.execute("SELECT email, display_name, password_hash FROM users WHERE id = ?",
                                  (planted["user_id"],)).fetchone()
        assert user == (f"erased-{planted['user_id']}@erased.invalid", "erased user", None)
        # The other document skipped the shared paragraph as a copy of the subject's: it was indexed again in full.
        texts = [row[0] for row in connection.execute(
            "SELECT c.text FROM chunks c JOIN documents d ON d.id = c.document_id WHERE d.name = 'other-notes.txt'")]
        assert any(SHARED[:60] in text for text in texts)
    finally:
        connection.close()

    assert run_cli(home, "audit", "verify", check=False).returncode == 0
    svc = Services.open(Settings(home=home))
    try:
        with pytest.raises(Unauthorized):
            svc.keys.authenticate(planted["secret"])
    finally:
        svc.close()


def test_erase_in_one_workspace_keeps_the_account_for_the_others(planted):
    home, marker = planted["home"], planted["marker"]
    receipt = json.loads(run_cli(home, "erase", "--subject", planted["email"], "-w", "branch", "--yes",
                             "--json").stdout)
    assert receipt["workspaces"] == ["branch"] and receipt["account"] == "kept: member of other workspaces"
    assert receipt["counts"]["branch"]["conversations"] == 1
    connection = sqlite3.connect(f"file:{home / 'shuken.db'}?mode=ro", uri=True)
    try:
        left = connection.execute("SELECT workspace FROM conversations WHERE user_id = ?",
                                  (planted["user_id"],)).fetchall()
        assert left == [("default",)]  # the other workspace's data is untouched
        assert connection.execute("SELECT email FROM users WHERE id = ?",
                                  (planted["user_id"],)).fetchone() == (planted["email"],)
    finally:
        connection.close()
    assert "documents" in tables_containing(home / "shuken.db", tail(marker))
    unknown = run_cli(home, "erase", "--subject", "nobody@example.org", "--yes", check=False)
    assert unknown.returncode == 1 and "No user nobody@example.org" in unknown.stderr


def test_erasure_over_http_needs_an_administrator(tmp_path):
    home = tmp_path / "http-home"
    server = start_server(home)
    try:
        tag = uuid.uuid4().hex[:8]
        victim, member = f"victim-{tag}@example.org", f"member-{tag}@example.org"
        run_cli(home, "users", "create", victim, "--role", "member")
        run_cli(home, "users", "create", member, "--role", "member")
        member_key = run_cli(home, "keys", "create", "--user", member, "--name", "m").stdout.strip()

        refused = server.client(api_key=member_key)
        with pytest.raises(openai.PermissionDeniedError) as denied:
            refused.post("/admin/erasure", body={"subject": victim}, cast_to=object)
        error = denied.value.response.json()["error"]
        assert denied.value.status_code == 403 and error["type"] == "permission_error" and "data:erase" in \
            error["message"]

        receipt = server.client().post("/admin/erasure", body={"subject": victim}, cast_to=object)
        assert receipt["workspaces"] == ["default"] and receipt["account"] == "de-identified"
        # In the server too (other connections open, idle) the WAL was checkpointed into the file and emptied.
        assert receipt["storage"]["wal_truncated"] and receipt["storage"]["secure_delete"]
        audit = httpx.get(f"{server.root_url}/v1/admin/audit", params={"action": "subject.erased"},
                          headers={"Authorization": f"Bearer {server.api_key}"}).json()["data"]
        assert [row["record_hash"] for row in audit] == [receipt["audit_hashes"]["default"]]
        assert audit[0]["resource"] == receipt["subject"] and victim not in json.dumps(audit)
        # A second request finds no such person any more: the e-mail itself is gone.
        with pytest.raises(openai.NotFoundError):
            server.client().post("/admin/erasure", body={"subject": victim}, cast_to=object)
    finally:
        server.stop()
