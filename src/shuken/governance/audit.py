"""The tamper-evident audit log: append events to a SHA-256 hash chain per workspace, verify it, sign
checkpoints of its head (Ed25519, key outside the database), and export it for a SIEM.

A record's hash covers its canonical JSON form (sorted keys, no whitespace) including the previous record's
hash and its sequence number, so any edited, deleted, inserted or reordered row breaks the chain at that row.
Content (prompts, answers, file names) is never in the chain: it is a separate row referenced by a salted
hash, so erasing it leaves the chain intact and reveals nothing.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from collections.abc import Callable, Iterator

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from shuken.errors import InvalidRequest
from shuken.governance.authz import Resource, require
from shuken.governance.events import DataExported, Event
from shuken.governance.identity import Subject
from shuken.governance.policy import WorkspacePolicy
from shuken.localisable import tr
from shuken.store import Database, rows_changed
from shuken.store.tables import (
    AuditCheckpointRow, AuditContentRow, AuditEventRow, AuditHeadRow, utc_now,
)

GENESIS = "0" * 64
CHAINED_FIELDS = ("workspace", "seq", "occurred_at", "actor", "action", "resource", "outcome", "model",
                  "prompt_tokens", "completion_tokens", "details", "content_ref", "prev_hash")
EXPORT_FIELDS = ("id",) + CHAINED_FIELDS + ("record_hash",)


def canonical(data) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def record_hash(fields: dict) -> str:
    return hashlib.sha256(canonical({name: fields[name] for name in CHAINED_FIELDS})).hexdigest()


def row_fields(row: AuditEventRow) -> dict:
    return {name: getattr(row, name) for name in EXPORT_FIELDS}


def utc_iso(moment: datetime | None = None) -> str:
    return (moment or datetime.now(timezone.utc)).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class ChainReport:
    workspace: str
    records: int
    ok: bool
    problem: str | None = None  # a `tr` message: the web UI shows it in the viewer's language
    bad_seq: int | None = None  # the first record that fails
    bad_id: int | None = None
    checkpoints: int = 0

    def as_dict(self) -> dict:
        return self.__dict__.copy()


class AuditLog:
    """Subscriber of the event bus: `record(event, session)` appends one chained record."""

    def __init__(self, db: Database, policy_of: Callable[[Session, str], WorkspacePolicy],
                 signing_key_path: Path | None = None):
        self.db = db
        self.policy_of = policy_of
        self.signing_key_path = signing_key_path
        self._lock = threading.Lock()  # one appender per process; other processes are kept out by the head row

    # -- append ---------------------------------------------------------------------------------------------
    def record(self, event: Event, session: Session | None = None) -> str:
        if session is not None:
            return self._append(session, event)
        for attempt in range(8):
            try:
                with self._lock, self.db.session() as own:
                    return self._append(own, event)
            except (IntegrityError, OperationalError):  # another process appended first: read the new head
                if attempt == 7:
                    raise
                time.sleep(0.01 * (attempt + 1))
        raise AssertionError("unreachable")

    def _next_link(self, session: Session, workspace: str) -> tuple[int, str]:
        """Claim the next sequence number. Writing the head row first takes the write lock (SQLite) or the
        row lock (PostgreSQL) before anything is read, so two appenders cannot both claim the same number."""
        claimed = rows_changed(session, update(AuditHeadRow).where(AuditHeadRow.workspace == workspace)
                               .values(seq=AuditHeadRow.seq + 1))
        if not claimed:
            session.add(AuditHeadRow(workspace=workspace, seq=1, record_hash=GENESIS))
            session.flush()
            return 1, GENESIS
        head = session.get_one(AuditHeadRow, workspace, populate_existing=True)
        return head.seq, head.record_hash

    def _store_content(self, session: Session, event: Event) -> str | None:
        if event.content is None or not self.policy_of(session, event.workspace).audit_content:
            return None
        salt = secrets.token_hex(16)
        ref = hashlib.sha256(salt.encode() + canonical(event.content)).hexdigest()
        session.add(AuditContentRow(ref=ref, workspace=event.workspace, user_id=event.content_user_id, salt=salt,
                                    content=event.content, created_at=utc_now()))
        return ref

    def _append(self, session: Session, event: Event) -> str:
        seq, prev_hash = self._next_link(session, event.workspace)
        fields = {
            "workspace": event.workspace, "seq": seq, "occurred_at": utc_iso(), "actor": event.actor,
            "action": event.action, "resource": event.resource, "outcome": event.outcome, "model": event.model,
            "prompt_tokens": event.prompt_tokens, "completion_tokens": event.completion_tokens,
            "details": event.details, "content_ref": self._store_content(session, event), "prev_hash": prev_hash,
        }
        # What is hashed must be exactly what the database hands back: round-trip the details through JSON.
        fields["details"] = json.loads(canonical(fields["details"]))
        digest = record_hash(fields)
        session.add(AuditEventRow(**fields, record_hash=digest))
        session.execute(update(AuditHeadRow).where(AuditHeadRow.workspace == event.workspace)
                        .values(record_hash=digest))
        session.flush()
        return digest

    # -- verify ---------------------------------------------------------------------------------------------
    def chains(self) -> list[str]:
        with self.db.session() as session:
            return sorted(set(session.scalars(select(AuditEventRow.workspace).distinct()))
                          | set(session.scalars(select(AuditHeadRow.workspace))))

    def verify(self, workspace: str) -> ChainReport:
        with self.db.session() as session:
            # Checkpoints before the rows: each one read vouches for a record the rows read after it include.
            checkpoints = self._checkpoints(session, workspace)
            vouched = {checkpoint["seq"] for checkpoint in checkpoints}
            expected, prev, last_id, records = 1, GENESIS, 0, {}  # records: the hashes checkpoints vouch for
            rows = session.execute(select(AuditEventRow).where(AuditEventRow.workspace == workspace)
                                   .order_by(AuditEventRow.seq, AuditEventRow.id).execution_options(yield_per=2000))
            for row in rows.scalars():
                problem = self._check_row(row, expected, prev, last_id)
                if problem:
                    return ChainReport(workspace, expected - 1, False, problem, row.seq, row.id)
                if row.seq in vouched:
                    records[row.seq] = row.record_hash
                expected, prev, last_id = row.seq + 1, row.record_hash, row.id
            count = expected - 1
            head = session.get(AuditHeadRow, workspace)
            if head is not None and (head.seq, head.record_hash) != (count, prev):
                bad_seq, problem = self._head_problem(head, count)
                return ChainReport(workspace, count, False, problem, bad_seq, None)
        trusted = self.public_key_hex() if checkpoints else None
        for checkpoint in checkpoints:
            problem = self._check_checkpoint(checkpoint, records, trusted)
            if problem:
                return ChainReport(workspace, count, False, problem, checkpoint["seq"], None, len(checkpoints))
        return ChainReport(workspace, count, True, None, None, None, len(checkpoints))

    @staticmethod
    def _head_problem(head: AuditHeadRow, count: int) -> tuple[int, str]:
        """Name the first record the head disagrees about: the first missing one, the first unannounced one, or
        the last one if it is not the record the head names."""
        if head.seq > count:
            return count + 1, tr("record %(missing)s is missing: the chain ends at record %(count)s, but its head "
                                 "says %(head)s: records were removed from the end", missing=count + 1, count=count,
                                 head=head.seq)
        if head.seq < count:
            return head.seq + 1, tr("record %(appended)s was appended behind the log's back: the head says the chain "
                                    "ends at record %(head)s, but it goes on to %(count)s", appended=head.seq + 1,
                                    head=head.seq, count=count)
        return count, tr("record %(seq)s is not the record the chain's head names (hash mismatch): the tail was "
                         "replaced", seq=count)

    @staticmethod
    def _check_row(row: AuditEventRow, expected: int, prev: str, last_id: int) -> str | None:
        where = {"seq": row.seq, "id": row.id, "action": row.action, "at": row.occurred_at}
        if row.seq != expected:
            return tr("record %(seq)s (id %(id)s, %(action)s at %(at)s): record %(expected)s is missing before it "
                      "(deleted or renumbered)", expected=expected, **where)
        if row.id <= last_id:
            return tr("record %(seq)s (id %(id)s, %(action)s at %(at)s): stored out of order (id %(id)s after id "
                      "%(last_id)s): reordered", last_id=last_id, **where)
        if row.prev_hash != prev:
            return tr("record %(seq)s (id %(id)s, %(action)s at %(at)s): does not link to the record before it: "
                      "inserted, reordered or re-chained", **where)
        if record_hash(row_fields(row)) != row.record_hash:
            return tr("record %(seq)s (id %(id)s, %(action)s at %(at)s): its contents changed after it was written "
                      "(hash mismatch)", **where)
        return None

    # -- checkpoints ----------------------------------------------------------------------------------------
    @property
    def checkpoint_file(self) -> Path | None:
        return self.signing_key_path.with_suffix(".checkpoints.jsonl") if self.signing_key_path else None

    def _signing_key(self, create: bool):
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        path = self.signing_key_path
        if path is None:
            return None
        if not path.exists():
            if not create:
                return None
            path.parent.mkdir(parents=True, exist_ok=True)
            key = Ed25519PrivateKey.generate()
            pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
            try:  # O_EXCL: if the server and the CLI race to create it, one key wins and both use it
                descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                return self._signing_key(create=False)
            with os.fdopen(descriptor, "wb") as file:
                file.write(pem)
            return key
        return serialization.load_pem_private_key(path.read_bytes(), password=None)

    @staticmethod
    def _public_hex(key) -> str:
        from cryptography.hazmat.primitives import serialization

        return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()

    def public_key_hex(self) -> str | None:
        key = self._signing_key(create=False)
        return None if key is None else self._public_hex(key)

    def checkpoint(self) -> list[dict]:
        """Sign the head of every chain that moved since its latest checkpoint; stored in the database and appended
        to a file beside the key. Returns the checkpoints made (none if nothing was appended since the last run)."""
        key = self._signing_key(create=True)
        checkpoint_file = self.checkpoint_file
        if key is None or checkpoint_file is None:
            raise ValueError("No audit signing key path is configured (SHUKEN_AUDIT_SIGNING_KEY).")
        public = self._public_hex(key)
        made = []
        with self.db.session() as session:
            latest = select(func.max(AuditCheckpointRow.id)).group_by(AuditCheckpointRow.workspace)
            signed = {workspace: (seq, digest) for workspace, seq, digest in session.execute(
                select(AuditCheckpointRow.workspace, AuditCheckpointRow.seq, AuditCheckpointRow.record_hash)
                .where(AuditCheckpointRow.id.in_(latest)))}
            for head in session.scalars(select(AuditHeadRow)):
                if signed.get(head.workspace) == (head.seq, head.record_hash):
                    continue  # nothing appended since: a second signature of the same head proves nothing more
                statement = {"workspace": head.workspace, "seq": head.seq, "record_hash": head.record_hash,
                             "signed_at": utc_iso()}
                signature = key.sign(canonical(statement)).hex()
                checkpoint = {**statement, "public_key": public, "signature": signature}
                session.add(AuditCheckpointRow(**checkpoint))
                made.append(checkpoint)
        if made:
            with checkpoint_file.open("a", encoding="utf-8") as file:
                for checkpoint in made:
                    file.write(json.dumps(checkpoint, sort_keys=True) + "\n")
        return made

    def _checkpoints(self, session: Session, workspace: str) -> list[dict]:
        """Checkpoints from the database and from the file beside the key (deleting either copy is not enough)."""
        found = {}
        for row in session.scalars(select(AuditCheckpointRow).where(AuditCheckpointRow.workspace == workspace)):
            item = {name: getattr(row, name) for name in
                    ("workspace", "seq", "record_hash", "signed_at", "public_key", "signature")}
            found[row.signature] = item
        if self.checkpoint_file and self.checkpoint_file.exists():
            for number, line in enumerate(self.checkpoint_file.read_text(encoding="utf-8").splitlines(), 1):
                try:
                    item = json.loads(line)
                    if item.get("workspace") == workspace:
                        found[item["signature"]] = item
                except (ValueError, KeyError, AttributeError):
                    found[f"line {number}"] = {"seq": 0, "malformed": number}
        return sorted(found.values(), key=lambda item: item["seq"])

    def _check_checkpoint(self, checkpoint: dict, records: dict[int, str], trusted: str | None) -> str | None:
        """`trusted`: the public key of our signing key (None if it is gone: then each checkpoint's own key)."""
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        if "malformed" in checkpoint:
            return tr("line %(line)s of %(file)s is not a checkpoint: the file was edited",
                      line=checkpoint["malformed"], file=str(self.checkpoint_file))
        seq = checkpoint["seq"]
        if trusted is not None and checkpoint["public_key"] != trusted:
            return tr("checkpoint at record %(seq)s was signed by an unknown key", seq=seq)
        statement = {name: checkpoint[name] for name in ("workspace", "seq", "record_hash", "signed_at")}
        try:
            Ed25519PublicKey.from_public_bytes(bytes.fromhex(checkpoint["public_key"])).verify(
                bytes.fromhex(checkpoint["signature"]), canonical(statement))
        except (InvalidSignature, ValueError):
            return tr("checkpoint at record %(seq)s has an invalid signature", seq=seq)
        if seq not in records:
            return tr("a signed checkpoint (%(signed_at)s) vouches for record %(seq)s, which no longer exists: the "
                      "tail of the log was truncated", signed_at=checkpoint["signed_at"], seq=seq)
        if records[seq] != checkpoint["record_hash"]:
            return tr("record %(seq)s differs from the signed checkpoint of %(signed_at)s: the chain was rewritten",
                      seq=seq, signed_at=checkpoint["signed_at"])
        return None

    # -- reading and export ---------------------------------------------------------------------------------
    def rows(self, workspace: str, since: datetime | None = None, action: str | None = None,
             limit: int | None = None, newest_first: bool = False) -> Iterator[dict]:
        with self.db.session() as session:
            query = select(AuditEventRow).where(AuditEventRow.workspace == workspace)
            if since is not None:
                query = query.where(AuditEventRow.occurred_at >= utc_iso(since))
            if action:
                query = query.where(AuditEventRow.action == action)
            query = query.order_by(AuditEventRow.seq.desc() if newest_first else AuditEventRow.seq)
            if limit is not None:
                query = query.limit(limit)
            for row in session.scalars(query.execution_options(yield_per=2000)):
                yield row_fields(row)

    def read(self, subject: Subject, since: datetime | None = None, action: str | None = None,
             limit: int = 100) -> list[dict]:
        """The subject's workspace's newest records (auditors, admins and owners)."""
        require("audit:read", Resource("audit", subject.workspace), subject)
        return list(self.rows(subject.workspace, since, action, limit, newest_first=True))

    def search(self, subject: Subject, *, action: str | None = None, actor: str | None = None,
               since: datetime | None = None, offset: int = 0, limit: int = 50) -> tuple[list[dict], int]:
        """One page of the subject's workspace's records, newest first, and how many match (the web audit viewer).
        An actor `user:3` also matches that user's keys (`user:3/key:7`)."""
        require("audit:read", Resource("audit", subject.workspace), subject)
        where = [AuditEventRow.workspace == subject.workspace]
        if since is not None:
            where.append(AuditEventRow.occurred_at >= utc_iso(since))
        if action:
            where.append(AuditEventRow.action == action)
        if actor:
            where.append((AuditEventRow.actor == actor) | AuditEventRow.actor.startswith(f"{actor}/", autoescape=True))
        with self.db.session() as session:
            total = session.execute(select(func.count()).select_from(AuditEventRow).where(*where)).scalar_one()
            rows = session.scalars(select(AuditEventRow).where(*where).order_by(AuditEventRow.seq.desc())
                                   .offset(max(0, offset)).limit(limit))
            return [row_fields(row) for row in rows], total

    def verify_for(self, subject: Subject) -> ChainReport:
        require("audit:read", Resource("audit", subject.workspace), subject)
        return self.verify(subject.workspace)

    def export_for(self, subject: Subject, since: datetime | None = None) -> Iterator[dict]:
        require("audit:read", Resource("audit", subject.workspace), subject)
        return self.rows(subject.workspace, since)


def parse_since(value: str | None) -> datetime | None:
    """An export's --since / ?since=: ISO-8601, 'Z' accepted; naive times are taken as UTC."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequest(tr("since must be an ISO-8601 time such as 2026-11-01T00:00:00Z, not '%(value)s'.",
                                value=value), param="since") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def export_audited(audit: AuditLog, bus, subject: Subject, since: datetime | None, format: str) -> tuple[str, int]:
    """The subject's workspace's records rendered for a SIEM, and their count; the export is itself audited."""
    rows = list(audit.export_for(subject, since))
    bus.emit(DataExported(workspace=subject.workspace, actor=subject.actor, resource="audit-log",
                          records=len(rows), format=format))
    return render_export(rows, format), len(rows)


def render_export(rows, format: str) -> str:
    """Audit rows as JSON Lines or CSV (details as a JSON string), for a SIEM."""
    if format == "jsonl":
        return "".join(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n" for row in rows)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=EXPORT_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, "details": json.dumps(row["details"], ensure_ascii=False, sort_keys=True)})
    return buffer.getvalue()
