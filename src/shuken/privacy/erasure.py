"""Right to erasure, and the one place content is deleted completely (retention uses the same helpers):
documents with their chunks, vectors, keyword entries, fingerprints, job rows and stored files; conversations;
then a storage scrub so deleted text survives neither in SQLite's free pages, its WAL, nor the FTS5 segments.

The audit chain is never touched: erasing content removes `audit_content` rows only (the chain references them
by a salted hash), so `shuken audit verify` still passes. The person's account row is kept, de-identified, so
the pseudonymous `user:<id>` in keys, consent events and audit records stays resolvable.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import delete, or_, select, union
from sqlalchemy.orm import Session

from shuken.errors import Forbidden, InvalidRequest, NotFound
from shuken.governance import events as ev
from shuken.governance.audit import utc_iso
from shuken.governance.authz import Resource, require
from shuken.governance.directory import normalise_email
from shuken.governance.events import EventBus
from shuken.governance.identity import Subject
from shuken.knowledge.ingest import bump_generation, dependent_documents, release_file_if_unused, remove_document_chunks
from shuken.knowledge.jobs import JobFile
from shuken.knowledge.facade import KnowledgeService
from shuken.localisable import tr
from shuken.store import Database, rows_changed
from shuken.store.tables import (
    ApiKeyRow, AuditContentRow, CollectionRow, ConversationMessageRow, ConversationRow, DocumentRow,
    GroupMemberRow, IngestJobFileRow, IngestJobRow, MembershipRow, TrainingRecordRow, UserRow, WebSessionRow, utc_now,
)

ERASED_NAME = "erased user"
BATCH = 500  # ids per IN (...) list: far below every backend's bound-parameter limit


def erased_email(user_id: int) -> str:
    """Unique (the column is), obviously not a mailbox (.invalid is reserved, RFC 2606), and says nothing."""
    return f"erased-{user_id}@erased.invalid"


def _batches(ids) -> list[list]:
    ids = sorted(set(ids))
    return [ids[i:i + BATCH] for i in range(0, len(ids), BATCH)]


# -- complete deletion (shared with retention) -----------------------------------------------------------------
@dataclass
class Purge:
    """What a transaction deleted, and what must happen once it has committed (files, re-indexing)."""

    documents: int = 0
    chunks: int = 0
    jobs: int = 0
    conversations: int = 0
    messages: int = 0
    hashes: set[str] = field(default_factory=set)  # stored originals to release after commit
    dependents: dict[int, dict[str, str]] = field(default_factory=dict)  # collection → {document name: hash}


def purge_documents(session: Session, knowledge: KnowledgeService, document_ids, purge: Purge) -> None:
    """Delete documents with everything derived from them, inside the caller's transaction, as
    `KnowledgeService.delete_document` does; also every job row naming them, so no pending job re-creates one."""
    doomed: set[tuple[int, str]] = set()
    for batch in _batches(document_ids):
        for document in session.scalars(select(DocumentRow).where(DocumentRow.id.in_(batch))).all():
            doomed.add((document.collection_id, document.name))
            # Documents that skipped paragraphs as copies of this one must be indexed in full again.
            for name, content_hash in dependent_documents(session, document.id):
                purge.dependents.setdefault(document.collection_id, {})[name] = content_hash
            remove_document_chunks(session, knowledge.index, document.id)
            # Its outcome rows, and any queued re-index of its stored file (which would bring it back); another
            # user's pending upload under the same name has other bytes, so it is left alone.
            session.execute(delete(IngestJobFileRow).where(or_(
                IngestJobFileRow.document_id == document.id,
                (IngestJobFileRow.name == document.name)
                & (IngestJobFileRow.path == str(knowledge.files.path_for(document.content_hash)))
                & IngestJobFileRow.job_id.in_(select(IngestJobRow.id).where(
                    IngestJobRow.collection_id == document.collection_id)))))
            session.delete(document)
            purge.documents += 1
            purge.chunks += document.chunk_count
            purge.hashes.add(document.content_hash)
    for collection_id in {c for c, _ in doomed}:
        bump_generation(session, collection_id)
        kept = {n: h for n, h in purge.dependents.get(collection_id, {}).items() if (collection_id, n) not in doomed}
        purge.dependents[collection_id] = kept
    session.flush()


def delete_jobs(session: Session, knowledge: KnowledgeService, job_ids, purge: Purge) -> None:
    """Delete ingestion jobs with their file rows (which name the files); their stored uploads are released after
    commit unless a document still uses them."""
    root = knowledge.files.root.resolve()
    for batch in _batches(job_ids):
        for path in session.scalars(select(IngestJobFileRow.path).where(IngestJobFileRow.job_id.in_(batch))):
            stored = Path(path)
            if stored.parent.parent.resolve() == root:  # files/<2 hex>/<sha256>: one of our stored uploads
                purge.hashes.add(stored.name)
        session.execute(delete(IngestJobFileRow).where(IngestJobFileRow.job_id.in_(batch)))
        purge.jobs += rows_changed(session, delete(IngestJobRow).where(IngestJobRow.id.in_(batch)))


def delete_conversations(session: Session, conversation_ids, purge: Purge) -> None:
    for batch in _batches(conversation_ids):
        purge.messages += rows_changed(session, delete(ConversationMessageRow).where(
            ConversationMessageRow.conversation_id.in_(batch)))
        purge.conversations += rows_changed(session, delete(ConversationRow).where(
            ConversationRow.id.in_(batch)))


def finish_purge(knowledge: KnowledgeService, purge: Purge) -> tuple[int, list[str]]:
    """After commit: remove stored originals no document or pending job uses any more, and queue re-indexing of
    the documents that depended on deleted ones. Returns (files removed, re-index job ids)."""
    removed = 0
    with knowledge.db.session() as session:
        for content_hash in sorted(purge.hashes):
            path = knowledge.files.path_for(content_hash)
            existed = path.exists()
            release_file_if_unused(session, knowledge.files, content_hash)
            removed += existed and not path.exists()
    jobs = []
    for collection_id, documents in sorted(purge.dependents.items()):
        with knowledge.db.session() as session:  # only those still there (a later change may have removed some)
            present = set(session.execute(select(DocumentRow.name, DocumentRow.content_hash).where(
                DocumentRow.collection_id == collection_id, DocumentRow.name.in_(list(documents)))).all())
        files = [JobFile(name, knowledge.files.path_for(h), force=True) for name, h in sorted(documents.items())
                 if (name, h) in present]
        if files:
            jobs.append(knowledge.jobs.create(collection_id, files, Subject.operator()))
    if jobs:
        knowledge.runner.notify()
    return removed, jobs


def scrub_storage(db: Database, keyword_index: bool = True, wait_seconds: float = 10.0) -> dict:
    """Make deleted rows unrecoverable from the files. Every connection has `secure_delete` on (store.db), so
    freed cells and pages are zeroed; FTS5 keeps deleted terms in old index segments until they are merged, so
    `optimize` merges them; and the WAL still holds earlier page images, so it is checkpointed into the database
    file and truncated to zero bytes. A reader in another process can delay the truncation: we retry, then report."""
    if db.engine.dialect.name != "sqlite":
        return {"backend": db.engine.dialect.name}
    report = {"backend": "sqlite", "keyword_index_merged": False, "wal_truncated": False}
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        if keyword_index:
            connection.exec_driver_sql("INSERT INTO chunk_terms(chunk_terms) VALUES('optimize')")
            report["keyword_index_merged"] = True
        # A TRUNCATE checkpoint holds the write lock while it waits for readers: wait briefly per attempt (other
        # writers stall at most that long), and retry in between instead.
        usual = connection.exec_driver_sql("PRAGMA busy_timeout").scalar_one()
        connection.exec_driver_sql("PRAGMA busy_timeout=100")
        try:
            deadline = time.monotonic() + wait_seconds
            while True:
                busy, _frames, _done = connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
                if not busy or time.monotonic() > deadline:
                    break
                time.sleep(0.25)
        finally:
            connection.exec_driver_sql(f"PRAGMA busy_timeout={int(usual)}")  # the pooled connection goes back
        report["wal_truncated"] = not busy
        report["secure_delete"] = bool(connection.exec_driver_sql("PRAGMA secure_delete").scalar())
        report["free_pages"] = connection.exec_driver_sql("PRAGMA freelist_count").scalar()
    return report


# -- erasure -------------------------------------------------------------------------------------------------
def _workspaces_with(session: Session, user_id: int) -> list[str]:
    """Every workspace holding anything of the user: memberships, keys, content, documents or jobs."""
    queries = [
        select(MembershipRow.workspace).where(MembershipRow.user_id == user_id),
        select(ApiKeyRow.workspace).where(ApiKeyRow.user_id == user_id),
        select(ConversationRow.workspace).where(ConversationRow.user_id == user_id),
        select(TrainingRecordRow.workspace).where(TrainingRecordRow.user_id == user_id),
        select(AuditContentRow.workspace).where(AuditContentRow.user_id == user_id),
        select(CollectionRow.workspace).join(DocumentRow, DocumentRow.collection_id == CollectionRow.id)
        .where(DocumentRow.created_by_user == user_id),
        select(CollectionRow.workspace).join(IngestJobRow, IngestJobRow.collection_id == CollectionRow.id)
        .where(IngestJobRow.submitted_by_user == user_id),
    ]
    return sorted(set(session.scalars(union(*queries))))


class ErasureService:
    def __init__(self, db: Database, knowledge: KnowledgeService, bus: EventBus):
        self.db = db
        self.knowledge = knowledge
        self.bus = bus

    def erase(self, email: str, caller: Subject | None = None, workspace: str | None = None) -> dict:
        """Erase a person's content. A caller (HTTP) erases in its own workspace only; without one (the local
        operator) in `workspace`, or in every workspace that holds anything of theirs. Returns the receipt."""
        if caller is not None:
            if workspace not in (None, caller.workspace):
                raise InvalidRequest(tr("An erasure request acts in the caller's own workspace only."),
                                     param="workspace")
            require("data:erase", Resource("subject", caller.workspace), caller)
        address = normalise_email(email)
        message = (tr("No user %(email)s in workspace '%(workspace)s'.", email=address, workspace=caller.workspace)
                   if caller else tr("No user %(email)s.", email=address))
        not_found = NotFound(message, param="subject", code="user_not_found")
        now = utc_now()
        with self.db.session() as session:
            user = session.scalar(select(UserRow).where(UserRow.email == address))
            if user is None:
                raise not_found
            holding = _workspaces_with(session, user.id)
            wanted = caller.workspace if caller else workspace
            if wanted is not None and wanted not in holding:
                raise not_found  # an admin of one workspace learns nothing about accounts elsewhere
            # Someone with nothing anywhere still gets a de-identified account and an audit record of it.
            workspaces = [wanted] if wanted else (holding or [ev.SYSTEM_WORKSPACE])
            callers = {w: caller or Subject.operator(w) for w in workspaces}
            for w, acting in callers.items():
                require("data:erase", Resource("subject", w, f"user:{user.id}"), acting)
            for w in workspaces:  # the rule of memberships: only an owner acts on an owner
                membership = session.get(MembershipRow, (w, user.id))
                if membership is not None and membership.role == "owner" and callers[w].role != "owner":
                    raise Forbidden(tr("Only an owner can erase an owner of the workspace."), code="forbidden")
            elsewhere = set(holding) - set(workspaces)  # holding includes every membership
            # The account itself is de-identified once no other workspace holds anything of theirs: its e-mail
            # is how their data there can still be found and erased.
            account = "kept: member of other workspaces" if elsewhere else "de-identified"
            counts, hashes, purges = {}, {}, []
            for w in workspaces:
                purge = Purge()
                counts[w] = self._erase_in(session, w, user.id, purge, callers[w], now)
                hashes[w] = self.bus.emit(ev.SubjectErased(
                    workspace=w, actor=callers[w].actor, resource=f"user:{user.id}",
                    subject=f"user:{user.id}", counts=counts[w], account=account), session)
                purges.append((w, purge))
            if not elsewhere:
                user.email, user.display_name = erased_email(user.id), ERASED_NAME
                user.password_hash = user.external_id = user.locked_until = None
                user.failed_logins, user.disabled_at = 0, user.disabled_at or now
        reindex_jobs = []
        for w, purge in purges:  # committed: now the stored files can go and dependents be re-indexed
            counts[w]["stored_files"], jobs = finish_purge(self.knowledge, purge)
            reindex_jobs += jobs
        # The keyword index is merged only if chunks went (a costly rewrite); the WAL is truncated in any case.
        storage = scrub_storage(self.db, keyword_index=any(purge.chunks for _w, purge in purges))
        totals: dict[str, int] = {}
        for per in counts.values():
            for kind, n in per.items():
                totals[kind] = totals.get(kind, 0) + n
        return {"object": "erasure.receipt", "subject": f"user:{user.id}", "requested_for": address,
                "account": account, "workspaces": workspaces, "counts": counts, "totals": totals,
                "erased_at": utc_iso(now), "audit_hashes": hashes, "reindex_jobs": reindex_jobs, "storage": storage}

    def _erase_in(self, session: Session, workspace: str, user_id: int, purge: Purge, caller: Subject,
                  now: datetime) -> dict:
        collections = select(CollectionRow.id).where(CollectionRow.workspace == workspace)
        delete_conversations(session, session.scalars(select(ConversationRow.id).where(
            ConversationRow.workspace == workspace, ConversationRow.user_id == user_id)).all(), purge)
        delete_jobs(session, self.knowledge, session.scalars(select(IngestJobRow.id).where(
            IngestJobRow.collection_id.in_(collections), IngestJobRow.submitted_by_user == user_id)).all(), purge)
        purge_documents(session, self.knowledge, session.scalars(select(DocumentRow.id).where(
            DocumentRow.collection_id.in_(collections), DocumentRow.created_by_user == user_id)).all(), purge)
        training = rows_changed(session, delete(TrainingRecordRow).where(
            TrainingRecordRow.workspace == workspace, TrainingRecordRow.user_id == user_id))
        audit_content = rows_changed(session, delete(AuditContentRow).where(
            AuditContentRow.workspace == workspace, AuditContentRow.user_id == user_id))
        revoked = 0
        for key in session.scalars(select(ApiKeyRow).where(ApiKeyRow.workspace == workspace,
                                                           ApiKeyRow.user_id == user_id)).all():
            key.name = "erased"  # names like "Alice's laptop" are personal; the row stays for `key:<id>` references
            if key.revoked_at is None:
                key.revoked_at = now
                revoked += 1
                self.bus.emit(ev.KeyRevoked(workspace=workspace, actor=caller.actor, resource=f"key:{key.id}",
                                            reason="erasure"), session)
        session.execute(delete(GroupMemberRow).where(GroupMemberRow.workspace == workspace,
                                                     GroupMemberRow.user_id == user_id))
        session.execute(delete(WebSessionRow).where(WebSessionRow.workspace == workspace,  # signed out at once
                                                    WebSessionRow.user_id == user_id))
        memberships = rows_changed(session, delete(MembershipRow).where(MembershipRow.workspace == workspace,
                                                                        MembershipRow.user_id == user_id))
        return {"conversations": purge.conversations, "messages": purge.messages, "documents": purge.documents,
                "chunks": purge.chunks, "ingest_jobs": purge.jobs, "training_records": training,
                "audit_content": audit_content, "keys_revoked": revoked, "memberships": memberships}
