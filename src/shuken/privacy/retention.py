"""Retention: the sweep that deletes, per workspace, what is older than its policy allows (conversations, stored
audit content, uploaded documents, captured training records), and records each run in the audit chain.

Deletion itself goes through `governance.erasure` (the one place content is deleted completely).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from shuken.governance import events as ev
from shuken.governance.audit import utc_iso
from shuken.privacy.erasure import (
    Purge, delete_conversations, delete_jobs, finish_purge, purge_documents, scrub_storage,
)
from shuken.governance.events import EventBus
from shuken.governance.policy import WorkspacePolicy
from shuken.knowledge.facade import KnowledgeService
from shuken.store import Database, rows_changed
from shuken.store.tables import (
    AuditContentRow, CollectionRow, ConversationRow, DocumentRow, IngestJobRow, TrainingRecordRow, WorkspaceRow,
)

SYSTEM_ACTOR = "system:retention"


class RetentionSweeper:
    def __init__(self, db: Database, knowledge: KnowledgeService, bus: EventBus):
        self.db = db
        self.knowledge = knowledge
        self.bus = bus

    def sweep(self, now: datetime | None = None, actor: str = SYSTEM_ACTOR) -> dict:
        """Enforce every workspace's retention limits. Each workspace with at least one limit gets one
        `retention.swept` record per run, even when nothing was old enough: a regulator can see it ran."""
        now = now or datetime.now(timezone.utc)
        with self.db.session() as session:
            policies = {row.slug: WorkspacePolicy.load(row.policy)
                        for row in session.scalars(select(WorkspaceRow).order_by(WorkspaceRow.slug))}
        results, deleted_chunks = {}, False
        for workspace, policy in policies.items():
            limits = policy.retention_limits()
            if not any(limits.values()):
                continue
            purge = Purge()
            with self.db.session() as session:  # a workspace's deletions and their audit record commit together
                counts = self._sweep_workspace(session, workspace, limits, now, purge)
                audit_hash = self.bus.emit(ev.RetentionSwept(
                    workspace=workspace, actor=actor, resource=f"workspace:{workspace}",
                    limits_days=limits, counts=counts, as_of=utc_iso(now)), session)
            counts["stored_files"], reindex_jobs = finish_purge(self.knowledge, purge)
            results[workspace] = {"limits_days": limits, "counts": counts, "audit_hash": audit_hash,
                                  "reindex_jobs": reindex_jobs}
            deleted_chunks |= purge.chunks > 0
        # Always: a checkpoint is cheap, and it finishes any scrub an erasure could not (a reader held the WAL).
        storage = scrub_storage(self.db, keyword_index=deleted_chunks)
        return {"object": "retention.sweep", "swept_at": utc_iso(now), "workspaces": results, "storage": storage}

    def _sweep_workspace(self, session: Session, workspace: str, limits: dict, now: datetime, purge: Purge) -> dict:
        cutoff = {kind: now - timedelta(days=days) for kind, days in limits.items() if days}
        counts = {"conversations": 0, "messages": 0, "audit_content": 0, "documents": 0, "chunks": 0,
                  "ingest_jobs": 0, "training_records": 0}
        if "conversations" in cutoff:  # by last activity: a conversation still in use is kept whole
            delete_conversations(session, session.scalars(select(ConversationRow.id).where(
                ConversationRow.workspace == workspace, ConversationRow.updated_at < cutoff["conversations"])).all(),
                purge)
        if "audit_content" in cutoff:
            counts["audit_content"] = rows_changed(session, delete(AuditContentRow).where(
                AuditContentRow.workspace == workspace,
                AuditContentRow.created_at < cutoff["audit_content"]))
        if "files" in cutoff:
            collections = select(CollectionRow.id).where(CollectionRow.workspace == workspace)
            # By updated_at: when the bytes now stored arrived (a re-upload of changed content is new data).
            purge_documents(session, self.knowledge, session.scalars(select(DocumentRow.id).where(
                DocumentRow.collection_id.in_(collections), DocumentRow.updated_at < cutoff["files"])).all(), purge)
            # Finished jobs name the files they ingested; unfinished ones are still at work and stay.
            delete_jobs(session, self.knowledge, session.scalars(select(IngestJobRow.id).where(
                IngestJobRow.collection_id.in_(collections), IngestJobRow.status.in_(("done", "failed")),
                IngestJobRow.created_at < cutoff["files"])).all(), purge)
        if "training_records" in cutoff:
            counts["training_records"] = rows_changed(session, delete(TrainingRecordRow).where(
                TrainingRecordRow.workspace == workspace,
                TrainingRecordRow.created_at < cutoff["training_records"]))
        counts.update(conversations=purge.conversations, messages=purge.messages, documents=purge.documents,
                      chunks=purge.chunks, ingest_jobs=purge.jobs)
        return counts
