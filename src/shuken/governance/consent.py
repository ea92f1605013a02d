"""Opt-in consent before any conversation becomes training data, the capture itself, and its export.

Capture is off unless the workspace's policy is `opt-in`, and then only for users whose latest consent event
is a grant made before the request started. Every captured record points at that grant.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from shuken.errors import InvalidRequest
from shuken.governance import events as ev
from shuken.governance.authz import Resource, require
from shuken.governance.directory import policy_of
from shuken.governance.events import EventBus
from shuken.governance.identity import Subject
from shuken.governance.redaction import redact_for
from shuken.governance.governor import logged_message
from shuken.localisable import tr
from shuken.store import Database, rows_changed
from shuken.store.tables import ConsentEventRow, ModelRow, TrainingRecordRow, utc_now


def latest_consent(session: Session, workspace: str, user_id: int) -> ConsentEventRow | None:
    return session.scalar(select(ConsentEventRow).where(ConsentEventRow.workspace == workspace,
                                                        ConsentEventRow.user_id == user_id)
                          .order_by(ConsentEventRow.id.desc()).limit(1))


class ConsentService:
    def __init__(self, db: Database, bus: EventBus):
        self.db = db
        self.bus = bus

    def status(self, subject: Subject) -> dict:
        require("consent:self", Resource("consent", subject.workspace), subject)
        with self.db.session() as session:
            mode = policy_of(session, subject.workspace).training_capture
            # The local operator (no user) has no consent of its own.
            latest = None if subject.user_id is None else latest_consent(session, subject.workspace, subject.user_id)
            captured = session.scalar(select(func.count()).select_from(TrainingRecordRow).where(
                TrainingRecordRow.workspace == subject.workspace, TrainingRecordRow.user_id == subject.user_id))
        return {"object": "consent", "workspace": subject.workspace, "mode": mode,
                "granted": bool(latest and latest.granted),
                "since": latest.at.isoformat() if latest else None, "captured_records": captured,
                "capturing": mode == "opt-in" and bool(latest and latest.granted)}

    def set(self, subject: Subject, granted: bool, delete_captured: bool = False,
            recorded_by: str | None = None) -> dict:
        """Grant or withdraw. Withdrawing stops capture at once and, if asked, deletes what was captured.
        `recorded_by` names who entered it when not the user themselves (e.g. the operator, from a signed form),
        so the audit record never claims the user clicked."""
        require("consent:self", Resource("consent", subject.workspace), subject)
        if subject.user_id is None:
            raise InvalidRequest(tr("Consent is given by a user; the local operator has none. Use the user's key."))
        if granted and delete_captured:
            raise InvalidRequest(tr("delete_captured applies to a withdrawal."), param="delete_captured")
        with self.db.session() as session:
            if granted and policy_of(session, subject.workspace).training_capture == "off":
                raise InvalidRequest(tr("Workspace '%(workspace)s' does not capture training data (training_capture is "
                                        "'off'); there is nothing to consent to.", workspace=subject.workspace),
                                     code="capture_off")
            row = ConsentEventRow(workspace=subject.workspace, user_id=subject.user_id, granted=granted,
                                  at=utc_now())
            session.add(row)
            session.flush()
            deleted = 0
            if delete_captured:
                deleted = rows_changed(session, delete(TrainingRecordRow).where(
                    TrainingRecordRow.workspace == subject.workspace,
                    TrainingRecordRow.user_id == subject.user_id))
            row.audit_hash = self.bus.emit(ev.ConsentChanged(
                workspace=subject.workspace, actor=recorded_by or subject.actor, resource=f"user:{subject.user_id}",
                granted=granted, consent_event=row.id, deleted_records=deleted,
                recorded_by=recorded_by or "the user"), session)
        return {**self.status(subject), "deleted_records": deleted}

    # -- capture (event-bus subscriber) ---------------------------------------------------------------------
    def on_event(self, event: ev.Event, _session: Session | None = None) -> None:
        if not isinstance(event, ev.RequestServed) or event.captured_messages is None or event.outcome != "success":
            return
        if event.content_user_id is None:
            return
        with self.db.session() as session:
            policy = policy_of(session, event.workspace)
            if policy.training_capture != "opt-in":
                return
            consent = latest_consent(session, event.workspace, event.content_user_id)
            started = datetime.fromisoformat(event.started_at)
            if consent is None or not consent.granted or consent.at > started:
                return
            messages = [logged_message(policy, m) for m in event.captured_messages]
            model = session.get(ModelRow, event.model) if event.model else None
            session.add(TrainingRecordRow(
                workspace=event.workspace, user_id=event.content_user_id, consent_event_id=consent.id,
                model=event.model or "", messages=messages,
                completion=redact_for(policy, "logging", event.captured_completion or ""),
                lineage={"request_id": event.request_id, "endpoint": event.endpoint,
                         "model_sha256": model.sha256 if model else None, "started_at": event.started_at,
                         "pii_before_logging": policy.pii_before_logging},
                created_at=utc_now()))

    # -- export ---------------------------------------------------------------------------------------------
    def export_training(self, subject: Subject, out: Path) -> dict:
        """Write only consented records, each with its lineage (who, which grant, which model), as JSONL."""
        require("data:export", Resource("training-data", subject.workspace), subject)
        written = 0
        tmp = out.with_name(out.name + ".partial")
        with self.db.session() as session, tmp.open("w", encoding="utf-8") as file:
            rows = session.execute(select(TrainingRecordRow, ConsentEventRow)
                                   .join(ConsentEventRow, ConsentEventRow.id == TrainingRecordRow.consent_event_id)
                                   .where(TrainingRecordRow.workspace == subject.workspace,
                                          ConsentEventRow.granted.is_(True))
                                   .order_by(TrainingRecordRow.id))
            for record, consent in rows:
                line = {"messages": record.messages + [{"role": "assistant", "content": record.completion}],
                        "lineage": {**record.lineage, "record_id": record.id, "workspace": record.workspace,
                                    "user": f"user:{record.user_id}", "model": record.model,
                                    "captured_at": record.created_at.isoformat(),
                                    "consent_event_id": consent.id, "consent_granted_at": consent.at.isoformat(),
                                    "consent_audit_hash": consent.audit_hash}}
                file.write(json.dumps(line, ensure_ascii=False) + "\n")
                written += 1
        tmp.replace(out)
        audit_hash = self.bus.emit(ev.DataExported(workspace=subject.workspace, actor=subject.actor,
                                                   resource="training-data", records=written))
        return {"records": written, "path": str(out), "audit_hash": audit_hash}
