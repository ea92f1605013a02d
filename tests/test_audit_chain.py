"""The audit chain against an attacker with write access to the database: records made by real service calls,
edited, deleted, inserted, reordered and truncated directly in SQLite, then `shuken audit verify` (a real CLI
process) must exit non-zero naming the first bad record; signed checkpoints, content erasure, concurrent
appenders from two processes, and `shuken audit export`."""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from shuken.config import Settings
from shuken.governance import events as ev
from shuken.governance.audit import EXPORT_FIELDS, canonical, record_hash
from shuken.governance.identity import SCOPES, Subject
from shuken.services import Services

SHUKEN = [sys.executable, "-m", "shuken.cli"]
HISTORY = ["workspace.created", "settings.changed", "user.created", "role.changed", "user.created", "role.changed",
           "groups.changed", "key.created", "key.created", "role.changed", "settings.changed", "key.revoked"]
N = len(HISTORY)
K = 6  # the record most scenarios tamper with


def shuken(*args: str, home: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "250"}
    if home is not None:
        env["SHUKEN_HOME"] = str(home)
    return subprocess.run(SHUKEN + list(args), env=env, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def build_history(svc: Services, ws: str) -> None:
    """Twelve records through real service calls, by the operator and by an admin acting through her key."""
    svc.directory.create_workspace(ws)
    operator = Subject.operator(ws)
    svc.directory.update_policy(operator, {"audit_content": True})  # user and key names go to erasable content
    svc.directory.create_user(operator, f"alice@{ws}.example.org", "admin")
    svc.directory.create_user(operator, f"bob@{ws}.example.org", "member", ["finance"])
    _key, secret = svc.keys.create(operator, f"alice@{ws}.example.org", f"alice-{ws}", scopes=SCOPES)
    alice = svc.keys.authenticate(secret)
    svc.keys.create(alice, f"bob@{ws}.example.org", f"bob-bot-{ws}", rpm=5)
    svc.directory.set_role(alice, f"bob@{ws}.example.org", "viewer")
    svc.directory.update_policy(alice, {"retention_conversations_days": 30})
    svc.keys.revoke(alice, f"bob-bot-{ws}")


def connect(home: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(home / "shuken.db", timeout=30)
    connection.row_factory = sqlite3.Row
    return connection


def chain(home: Path, ws: str) -> list[dict]:
    with connect(home) as db:
        rows = [dict(r) for r in db.execute("SELECT * FROM audit_events WHERE workspace = ? ORDER BY seq", (ws,))]
    for row in rows:
        row["details"] = json.loads(row["details"])
    return rows


def write_row(db: sqlite3.Connection, row: dict, insert: bool = False) -> None:
    values = {**row, "details": json.dumps(row["details"])}
    if insert:
        columns = ", ".join(values)
        db.execute(f"INSERT INTO audit_events ({columns}) VALUES ({', '.join(':' + c for c in values)})", values)
    else:
        sets = ", ".join(f"{c} = :{c}" for c in values if c != "id")
        db.execute(f"UPDATE audit_events SET {sets} WHERE id = :id", values)


def shift_seqs(db: sqlite3.Connection, ws: str, after: int, by: int) -> None:
    # Through negative numbers: SQLite checks UNIQUE(workspace, seq) row by row during an UPDATE.
    db.execute("UPDATE audit_events SET seq = -(seq + ?) WHERE workspace = ? AND seq > ?", (by, ws, after))
    db.execute("UPDATE audit_events SET seq = -seq WHERE workspace = ? AND seq < 0", (ws,))
    db.execute("UPDATE audit_heads SET seq = seq + ? WHERE workspace = ?", (by, ws))


def fix_head(db: sqlite3.Connection, ws: str) -> None:
    seq, digest = db.execute("SELECT seq, record_hash FROM audit_events WHERE workspace = ? ORDER BY seq DESC "
                             "LIMIT 1", (ws,)).fetchone()
    db.execute("UPDATE audit_heads SET seq = ?, record_hash = ? WHERE workspace = ?", (seq, digest, ws))


def truncate(db: sqlite3.Connection, ws: str, n: int = 3) -> None:
    db.execute("DELETE FROM audit_events WHERE workspace = ? AND seq > ?", (ws, N - n))
    fix_head(db, ws)


def rewrite_from(db: sqlite3.Connection, rows: list[dict], start: int) -> None:
    """Re-chain every record from `start` on and fix the head: undetectable without a signed checkpoint."""
    for row in rows[start - 1:]:
        row["prev_hash"] = rows[row["seq"] - 2]["record_hash"] if row["seq"] > 1 else "0" * 64
        row["record_hash"] = record_hash(row)
        write_row(db, row)
    fix_head(db, rows[0]["workspace"])


# -- scenarios: each tampers with its own workspace's chain; the value is (bad seq, bad id, phrase) ---------
# An attacker who read audit.py recomputes hashes with its record_hash() where that helps them.
def edit(column, value):
    def apply(db, ws, rows):
        db.execute(f"UPDATE audit_events SET {column} = ? WHERE workspace = ? AND seq = ?", (value, ws, K))
        return K, rows[K - 1]["id"], "contents changed"
    return apply


def edit_details(db, ws, rows):
    # Record 10 says bob became a viewer; the attacker makes it say owner.
    assert rows[9]["details"] == {"from": "member", "to": "viewer"}
    db.execute("UPDATE audit_events SET details = ? WHERE id = ?", ('{"from": "member", "to": "owner"}', rows[9]["id"]))
    return 10, rows[9]["id"], "contents changed"


def edit_and_rehash(db, ws, rows):
    rows[K - 1]["actor"] = "user:999"
    rows[K - 1]["record_hash"] = record_hash(rows[K - 1])
    write_row(db, rows[K - 1])
    return K + 1, rows[K]["id"], "does not link"


def delete(db, ws, rows):
    db.execute("DELETE FROM audit_events WHERE id = ?", (rows[K - 1]["id"],))
    return K + 1, rows[K]["id"], f"record {K} is missing"


def delete_and_renumber(db, ws, rows):
    db.execute("DELETE FROM audit_events WHERE id = ?", (rows[K - 1]["id"],))
    shift_seqs(db, ws, K, -1)
    return K, rows[K]["id"], "does not link"


def forged(rows: list[dict], after: int) -> dict:
    return {**rows[after - 1], "id": None, "seq": after + 1, "actor": "operator", "action": "key.revoked",
            "resource": "key:1", "details": {}, "content_ref": None, "prev_hash": rows[after - 1]["record_hash"]}


def insert_naive(db, ws, rows):
    shift_seqs(db, ws, K, 1)
    fake = {**forged(rows, K), "record_hash": "f" * 64}
    del fake["id"]
    write_row(db, fake, insert=True)
    new_id = db.execute("SELECT id FROM audit_events WHERE workspace = ? AND seq = ?", (ws, K + 1)).fetchone()[0]
    return K + 1, new_id, "contents changed"


def insert_rehashed(db, ws, rows):
    """A forged record with a correct hash, slotted in by id as well as by seq; the later records are left."""
    shift_seqs(db, ws, K, 1)
    db.execute("UPDATE audit_events SET id = id + 100000 WHERE workspace = ? AND seq > ?", (ws, K + 1))
    fake = {**forged(rows, K), "id": rows[K]["id"]}
    fake["record_hash"] = record_hash(fake)
    write_row(db, fake, insert=True)
    return K + 2, rows[K]["id"] + 100000, "does not link"


def swap_seqs(db, ws, rows):
    first, second = rows[K - 1]["id"], rows[K]["id"]
    db.execute("UPDATE audit_events SET seq = -1 WHERE id = ?", (first,))
    db.execute("UPDATE audit_events SET seq = ? WHERE id = ?", (K, second))
    db.execute("UPDATE audit_events SET seq = ? WHERE id = ?", (K + 1, first))
    return K, second, "does not link"


def swap_rows(db, ws, rows):
    """Exchange everything but the ids: each record stays self-consistent and correctly linked; only its
    position in storage betrays the swap, first visible at the later record."""
    first, second = dict(rows[K - 1]), dict(rows[K])
    db.execute("UPDATE audit_events SET seq = -seq WHERE id IN (?, ?)", (first["id"], second["id"]))
    write_row(db, {**second, "id": first["id"]})
    write_row(db, {**first, "id": second["id"]})
    return K + 1, first["id"], "stored out of order"


def truncate_tail(db, ws, rows):
    db.execute("DELETE FROM audit_events WHERE workspace = ? AND seq > ?", (ws, N - 3))
    return N - 2, None, "removed from the end"


SCENARIOS = {
    "edit-actor": edit("actor", "user:999"), "edit-outcome": edit("outcome", "failure"),
    "edit-time": edit("occurred_at", "2020-01-01T00:00:00.000000Z"), "edit-hash": edit("record_hash", "0" * 64),
    "edit-details": edit_details, "edit-and-rehash": edit_and_rehash, "delete": delete,
    "delete-renumber": delete_and_renumber, "insert-naive": insert_naive, "insert-rehashed": insert_rehashed,
    "swap-seqs": swap_seqs, "swap-rows": swap_rows, "truncate-tail": truncate_tail,
}


def make_home(home: Path, workspaces: list[str]) -> Path:
    svc = Services.open(Settings(home=home))
    try:
        for ws in workspaces:
            build_history(svc, ws)
    finally:
        svc.close()
    return home


def verify_json(home: Path, ws: str | None = None) -> tuple[int, dict[str, dict]]:
    """`shuken audit verify [--workspace ws] --json`: exit code and the report of each chain."""
    result = shuken("audit", "verify", *(["--workspace", ws] if ws else []), "--json", home=home)
    return result.returncode, {report["workspace"]: report for report in json.loads(result.stdout)}


@pytest.fixture(scope="module")
def tampered(tmp_path_factory):
    """One home, one workspace per scenario; each scenario tampers with its own chain only. Every chain is
    verified by one CLI run (a CLI process per scenario would cost a second each)."""
    home = make_home(tmp_path_factory.mktemp("audit-tamper"), ["intact", "content-erased", *SCENARIOS])
    expected = {}
    with connect(home) as db:
        assert db.execute("DELETE FROM audit_content WHERE workspace = 'content-erased'").rowcount == 4
        for ws, apply in SCENARIOS.items():
            rows = chain(home, ws)
            assert [r["action"] for r in rows] == HISTORY and [r["seq"] for r in rows] == list(range(1, N + 1))
            expected[ws] = apply(db, ws, rows)
    code, reports = verify_json(home)
    assert code == 1
    return home, expected, reports


def test_untampered_chains_verify_and_erasing_content_keeps_them_intact(tampered):
    home, _, reports = tampered
    assert reports["intact"]["ok"] and reports["intact"]["records"] == N and reports["default"]["ok"]
    assert reports["content-erased"]["ok"] and reports["content-erased"]["records"] == N
    refs = {r["content_ref"] for r in chain(home, "content-erased") if r["content_ref"]}
    assert len(refs) == 4  # two e-mails and two key names were kept as content, and still are referenced
    code, only = verify_json(home, "intact")  # one chain asked for by name: exit 0 although others are broken
    assert code == 0 and list(only) == ["intact"] and only["intact"] == reports["intact"]
    typo = shuken("audit", "verify", "--workspace", "intcat", home=home)  # not "intact, 0 records"
    assert typo.returncode == 1 and "No workspace or audit chain named 'intcat'" in typo.stderr


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_tampering_is_found_at_the_first_bad_record(tampered, scenario):
    _, expected, reports = tampered
    seq, row_id, phrase = expected[scenario]
    report = reports[scenario]
    assert not report["ok"], report
    assert (report["bad_seq"], report["bad_id"]) == (seq, row_id), report
    assert f"record {seq}" in report["problem"] and phrase in report["problem"], report["problem"]
    if row_id is not None:
        assert f"id {row_id}" in report["problem"]


@pytest.mark.parametrize("scenario", ["delete", "insert-rehashed", "truncate-tail"])
def test_verify_of_one_named_workspace_fails_with_the_same_report(tampered, scenario):
    code, only = verify_json(tampered[0], scenario)
    assert code == 1 and only == {scenario: tampered[2][scenario]}


def test_text_report_names_each_broken_chain_and_the_intact_ones(tampered):
    home, expected, _ = tampered
    result = shuken("audit", "verify", home=home)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    for ws, (seq, _id, _phrase) in expected.items():
        [line] = [x for x in lines if f" {ws}:" in x]
        assert line.startswith("BROKEN") and f"record {seq}" in line, line
    assert any(x.startswith("intact intact:") and f"{N} records" in x for x in lines), lines
    assert any(x.startswith("intact default:") for x in lines), lines


# -- signed checkpoints ---------------------------------------------------------------------------------------
def rewrite_checkpoint_file(home: Path, ws: str, change) -> None:
    """Apply change() to the workspace's lines of the checkpoint file kept beside the key (None drops a line)."""
    path = home / "keys" / "audit-signing.checkpoints.jsonl"
    items = [json.loads(line) for line in path.read_text().splitlines()]
    items = [change(item) if item["workspace"] == ws else item for item in items]
    path.write_text("".join(json.dumps(item) + "\n" for item in items if item is not None))


def forge_signature(db, ws, home):
    flip = lambda sig: ("0" if sig[0] != "0" else "1") + sig[1:]  # noqa: E731
    [(signature,)] = db.execute("SELECT signature FROM audit_checkpoints WHERE workspace = ?", (ws,)).fetchall()
    db.execute("UPDATE audit_checkpoints SET signature = ? WHERE workspace = ?", (flip(signature), ws))
    rewrite_checkpoint_file(home, ws, lambda item: {**item, "signature": flip(item["signature"])})
    return N, "invalid signature"


def own_key_checkpoint(db, ws, home):
    """Truncate, remove the genuine checkpoints everywhere, and sign the shortened head with another key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    truncate(db, ws)
    db.execute("DELETE FROM audit_checkpoints WHERE workspace = ?", (ws,))
    rewrite_checkpoint_file(home, ws, lambda item: None)
    key = Ed25519PrivateKey.generate()
    seq, digest = db.execute("SELECT seq, record_hash FROM audit_heads WHERE workspace = ?", (ws,)).fetchone()
    statement = {"workspace": ws, "seq": seq, "record_hash": digest, "signed_at": "2026-01-01T00:00:00.000000Z"}
    public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()
    db.execute("INSERT INTO audit_checkpoints (workspace, seq, record_hash, signed_at, public_key, signature) "
               "VALUES (:workspace, :seq, :record_hash, :signed_at, :public, :signature)",
               {**statement, "public": public, "signature": key.sign(canonical(statement)).hex()})
    return N - 3, "unknown key"


def truncate_then(remove_db: bool, remove_file: bool):
    def apply(db, ws, home):
        truncate(db, ws)  # the head now agrees with the shortened chain
        if remove_db:
            db.execute("DELETE FROM audit_checkpoints WHERE workspace = ?", (ws,))
        if remove_file:
            rewrite_checkpoint_file(home, ws, lambda item: None)
        return N, "truncated"
    return apply


def rewritten(db, ws, home):
    rows = chain(home, ws)
    rows[K - 1]["details"] = {"rewritten": True}
    rewrite_from(db, rows, K)  # every link and the head are consistent again
    return N, "differs from the signed checkpoint"


CHECKPOINT_SCENARIOS = {
    "cp-truncated": truncate_then(False, False), "cp-truncated-db-rows-gone": truncate_then(True, False),
    "cp-truncated-file-gone": truncate_then(False, True), "cp-forged-signature": forge_signature,
    "cp-other-key": own_key_checkpoint, "cp-rewritten": rewritten,
}


@pytest.fixture(scope="module")
def checkpointed(tmp_path_factory):
    home = make_home(tmp_path_factory.mktemp("audit-checkpoints"), ["cp-intact", *CHECKPOINT_SCENARIOS])
    result = shuken("audit", "checkpoint", home=home)
    assert result.returncode == 0, result.stderr
    assert (home / "keys" / "audit-signing.pem").exists()
    expected = {}
    with connect(home) as db:
        for ws, apply in CHECKPOINT_SCENARIOS.items():
            expected[ws] = apply(db, ws, home)
    code, reports = verify_json(home)
    assert code == 1
    return home, expected, reports


def test_checkpointed_chain_verifies_and_a_truncated_one_fails_by_name(checkpointed):
    home, _, reports = checkpointed
    assert reports["cp-intact"]["ok"] and reports["cp-intact"]["checkpoints"] == 1, reports["cp-intact"]
    code, only = verify_json(home, "cp-truncated-db-rows-gone")
    assert code == 1 and only == {"cp-truncated-db-rows-gone": reports["cp-truncated-db-rows-gone"]}


@pytest.mark.parametrize("scenario", CHECKPOINT_SCENARIOS)
def test_signed_checkpoints_catch_what_the_chain_alone_cannot(checkpointed, scenario):
    _, expected, reports = checkpointed
    seq, phrase = expected[scenario]
    report = reports[scenario]
    assert not report["ok"], report
    assert report["bad_seq"] == seq and phrase in report["problem"], report


# -- concurrency, export --------------------------------------------------------------------------------------
@pytest.fixture
def home_with_history(isolated_home):
    return make_home(isolated_home, ["w1"])


def test_a_checkpoint_run_signs_only_the_heads_that_moved(home_with_history):
    """The server signs every hour: a head already signed is not signed again, in the table or the file."""
    svc = Services.open(Settings(home=home_with_history))
    try:
        first = svc.audit.checkpoint()
        assert {(c["workspace"], c["seq"]) for c in first} >= {("w1", N)}
        lines = svc.audit.checkpoint_file.read_text().splitlines()
        assert len(lines) == len(first)
        assert svc.audit.checkpoint() == []
        assert svc.audit.checkpoint_file.read_text().splitlines() == lines
        with connect(home_with_history) as db:
            assert db.execute("SELECT count(*) FROM audit_checkpoints").fetchone()[0] == len(first)
        svc.bus.emit(ev.DataExported(workspace="w1", actor="operator", resource="test"))
        [again] = svc.audit.checkpoint()
        assert (again["workspace"], again["seq"]) == ("w1", N + 1)
        assert len(svc.audit.checkpoint_file.read_text().splitlines()) == len(first) + 1
        report = svc.audit.verify("w1")
        assert report.ok and report.checkpoints == 2, report
    finally:
        svc.close()


def test_a_password_change_is_audited_in_each_workspace_of_the_user_never_the_password(home_with_history):
    svc = Services.open(Settings(home=home_with_history))
    try:
        svc.directory.create_workspace("w2")
        bob = svc.directory.create_user(Subject.operator("w2"), "bob@w1.example.org", "member")
        svc.directory.set_password("bob@w1.example.org", "a brand new password")
        for ws in ("w1", "w2"):
            [record] = [r for r in svc.audit.rows(ws) if r["action"] == "password.changed"]
            assert (record["actor"], record["resource"]) == ("operator", f"user:{bob.user_id}"), record
            assert record["content_ref"] is None and svc.audit.verify(ws).ok
    finally:
        svc.close()
    with connect(home_with_history) as db:  # neither in the chain nor in the content kept beside it
        for table in ("audit_events", "audit_content"):
            rows = db.execute(f"SELECT * FROM {table}").fetchall()
            assert rows and not any("a brand new password" in json.dumps(list(row)) for row in rows)


def test_concurrent_appenders_in_two_processes_keep_one_contiguous_chain(home_with_history):
    home = home_with_history
    svc = Services.open(Settings(home=home))
    operator = Subject.operator("w1")
    stop = threading.Event()
    appended, failures = [], []

    def in_process():
        try:
            while not stop.is_set():
                svc.directory.set_groups(operator, "bob@w1.example.org", ["finance", f"g{len(appended)}"])
                svc.bus.emit(ev.DataExported(workspace="w1", actor="operator", resource="test"))  # own session
                appended.append(2)
        except Exception as exc:  # reported below: a lost append must fail the test, not vanish in a thread
            failures.append(exc)

    worker = threading.Thread(target=in_process)
    worker.start()
    try:
        env = {**os.environ, "SHUKEN_HOME": str(home)}
        procs = [subprocess.Popen(SHUKEN + ["users", "create", f"p{i}@example.org", "-w", "w1", "--group", "ops"],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                 for i in range(5)]
        errors = [p.communicate(timeout=120)[1] for p in procs]
    finally:
        stop.set()
        worker.join()
        svc.close()
    assert all(p.returncode == 0 for p in procs) and not failures, (errors, failures)
    assert len(appended) >= 3, "the in-process appender must have run alongside the CLI processes"
    rows = chain(home, "w1")
    assert [r["seq"] for r in rows] == list(range(1, len(rows) + 1))
    assert len(rows) == N + 3 * len(procs) + sum(appended)  # user.created, role.changed, groups.changed each
    code, reports = verify_json(home, "w1")
    assert code == 0 and reports["w1"]["records"] == len(rows), reports


def test_export_jsonl_csv_and_since(home_with_history, tmp_path):
    home = home_with_history
    before = chain(home, "w1")
    result = shuken("audit", "export", "--workspace", "w1", "--format", "jsonl", home=home)
    assert result.returncode == 0, result.stderr
    exported = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(exported) == len(before) == N and [e["seq"] for e in exported] == list(range(1, N + 1))
    for row in exported:  # a SIEM can check every record on its own
        assert set(row) == set(EXPORT_FIELDS) and record_hash(row) == row["record_hash"]
    assert chain(home, "w1")[-1]["action"] == "data.exported"  # the export itself is audited

    out = tmp_path / "audit.csv"
    assert shuken("audit", "export", "-w", "w1", "--format", "csv", "--out", str(out), home=home).returncode == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert len(rows) == N + 1 and list(rows[0]) == list(EXPORT_FIELDS)
    assert [r["record_hash"] for r in rows[:N]] == [e["record_hash"] for e in exported]
    assert json.loads(rows[5]["details"]) == exported[5]["details"]
    assert rows[-1]["action"] == "data.exported" and json.loads(rows[-1]["details"])["records"] == N

    since = before[4]["occurred_at"]  # record 5
    result = shuken("audit", "export", "-w", "w1", "--since", since, home=home)
    later = [json.loads(line) for line in result.stdout.splitlines()]
    assert [e["seq"] for e in later] == list(range(5, N + 3))  # through the two export records
    assert shuken("audit", "export", "-w", "w1", "--since", "2999-01-01T00:00:00Z", home=home).stdout == ""
    bad = shuken("audit", "export", "-w", "w1", "--since", "yesterday", home=home)
    assert bad.returncode != 0 and "ISO-8601" in bad.stderr
