"""KnowledgeService: collections, documents, ingestion jobs and search, for the API and the CLI alike.

Every method takes the caller (`Subject`) and goes through `access` for permission; services raise the
shared error vocabulary and never import FastAPI.
"""

from __future__ import annotations

import asyncio
import mimetypes
import re
import unicodedata
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from sqlalchemy import func, select

from shuken.config import Settings
from shuken.errors import Forbidden, InvalidRequest, NotFound
from shuken.gateway.host import ModelHost
from shuken.gateway.schemas import MAX_K
from shuken.knowledge import uploads
from shuken.governance import events as ev
from shuken.governance.authz import Resource, authorize, require
from shuken.governance.events import EventBus
from shuken.governance.identity import Subject
from shuken.knowledge.access import find_collection, readable_condition
from shuken.knowledge.embedding import HostEmbedder
from shuken.knowledge.files import FileStore
from shuken.knowledge.index import SqliteIndex
from shuken.knowledge.ingest import (
    Indexer, bump_generation, dependent_documents, release_file_if_unused, remove_document_chunks,
)
from shuken.knowledge.jobs import JobFile, JobQueue, JobRunner, job_view
from shuken.knowledge.parsing import supported_suffixes
from shuken.knowledge.retrieval import Hit, Mode, Retriever
from shuken.localisable import tr
from shuken.store import Database
from shuken.store.tables import (
    ChunkRow, CollectionGrantRow, CollectionRow, DocumentRow, IngestJobFileRow, IngestJobRow,
)

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def document_dict(row: DocumentRow, collection: str) -> dict:
    return {"id": row.id, "object": "document", "collection": collection, "name": row.name,
            "content_hash": row.content_hash, "size_bytes": row.size_bytes, "format": row.format,
            "title": row.title, "language": row.language, "pages": row.pages, "ocr_pages": row.ocr_pages,
            "chunks": row.chunk_count, "duplicates_skipped": row.duplicate_paragraphs,
            "created_at": row.created_at.isoformat(), "updated_at": row.updated_at.isoformat()}


def clean_document_name(raw: str) -> str:
    """A safe display/document name from a client-supplied path: keep the relative path, drop tricks."""
    parts = [p for p in PurePosixPath(unicodedata.normalize("NFC", raw).replace("\\", "/")).parts
             if p not in ("", ".", "..", "/")]
    name = "/".join(parts).strip()
    if not name or any(ord(c) < 32 for c in name):
        raise InvalidRequest(tr("Invalid file name %(name)s.", name=repr(raw)), param="files")
    return name[:500]


class KnowledgeService:
    def __init__(self, db: Database, settings: Settings, host: ModelHost, bus: EventBus):
        self.db = db
        self.bus = bus  # the one sink: audit records of collections and documents
        self.settings = settings
        self.index = SqliteIndex(settings.ann_min_vectors)
        self.files = FileStore(settings.files_dir)
        self.embedder = HostEmbedder(host, settings.embedding_model)
        self.indexer = Indexer(db, self.index, self.files, self.embedder, settings.chunk_units, self.bus)
        self.jobs = JobQueue(db, settings.job_stale_seconds)
        self.runner = JobRunner(self.jobs, self.indexer)
        self.retriever = Retriever(self.index, self.embedder)

    # -- collections ------------------------------------------------------------------------------------
    def create_collection(self, subject: Subject, name: str, description: str = "",
                          groups: list[str] | None = None) -> dict:
        if not NAME.match(name or ""):
            raise InvalidRequest(tr("A collection name is 1–100 letters, digits, '.', '_' or '-', starting with a "
                                    "letter or digit."), param="name")
        require("knowledge:write", Resource("collection", subject.workspace, name), subject)
        groups = sorted({g.strip() for g in groups or [] if g.strip()})
        if groups and not subject.is_admin and not set(groups) & subject.groups:
            raise Forbidden(tr("You can only restrict a collection to a group you belong to."), param="groups")
        with self.db.session() as session:
            if session.scalar(select(CollectionRow.id).where(CollectionRow.workspace == subject.workspace,
                                                            CollectionRow.name == name)) is not None:
                raise InvalidRequest(tr("A collection named '%(name)s' already exists.", name=name), param="name",
                                     code="collection_exists")
            row = CollectionRow(workspace=subject.workspace, name=name, description=description or "",
                                restricted=bool(groups), generation=0, created_by_key=subject.key_id,
                                created_by_user=subject.user_id, created_at=datetime.now(timezone.utc))
            session.add(row)
            session.flush()
            session.add_all(CollectionGrantRow(collection_id=row.id, group_name=g) for g in groups)
            self.bus.emit(ev.CollectionCreated(workspace=subject.workspace, actor=subject.actor,
                                               resource=f"collection:{row.id}", groups=groups,
                                               content={"name": name}, content_user_id=subject.user_id), session)
            return self._collection_dict(session, row, groups)

    def _collection_dict(self, session, row: CollectionRow, groups: list[str] | None = None) -> dict:
        if groups is None:
            groups = sorted(session.scalars(select(CollectionGrantRow.group_name)
                                            .where(CollectionGrantRow.collection_id == row.id)))
        documents, chunks = session.execute(
            select(func.count(DocumentRow.id), func.coalesce(func.sum(DocumentRow.chunk_count), 0))
            .where(DocumentRow.collection_id == row.id)).one()
        return {"id": row.name, "object": "collection", "name": row.name, "description": row.description,
                "workspace": row.workspace, "groups": groups, "documents": documents, "chunks": int(chunks),
                "created_at": row.created_at.isoformat()}

    def list_collections(self, subject: Subject) -> list[dict]:
        with self.db.session() as session:
            rows = session.scalars(select(CollectionRow).where(readable_condition(subject))
                                   .order_by(CollectionRow.name)).all()
            return [self._collection_dict(session, row) for row in rows]

    def get_collection(self, subject: Subject, name: str) -> dict:
        with self.db.session() as session:
            return self._collection_dict(session, find_collection(session, subject, name))

    def _require_manage(self, subject: Subject, row: CollectionRow) -> None:
        resource = Resource("collection", row.workspace, row.name)
        if authorize("knowledge:manage", resource, subject).allowed:
            return
        own = subject.user_id is not None and row.created_by_user == subject.user_id
        if not (own and authorize("knowledge:write", resource, subject).allowed):
            raise Forbidden(tr("Only an administrator or the user who created '%(collection)s' may delete it.",
                               collection=row.name), param="collection")

    def delete_collection(self, subject: Subject, name: str) -> dict:
        with self.db.session() as session:
            row = find_collection(session, subject, name)
            self._require_manage(subject, row)
            hashes = set(session.scalars(select(DocumentRow.content_hash).where(DocumentRow.collection_id == row.id)))
            counts = self._collection_dict(session, row)
            self.index.remove_chunks(session, select(ChunkRow.id).where(ChunkRow.collection_id == row.id))
            session.delete(row)  # documents, chunks, vectors, fingerprints, grants and jobs cascade
            collection_id = row.id
            self.bus.emit(ev.CollectionDeleted(workspace=subject.workspace, actor=subject.actor,
                                               resource=f"collection:{row.id}",
                                               documents=counts["documents"], chunks=counts["chunks"]),
                          session)
        self.index.forget(collection_id)
        self._release(hashes)
        return {"id": name, "object": "collection.deleted", "deleted": True,
                "documents": counts["documents"], "chunks": counts["chunks"]}

    def _release(self, hashes: set[str]) -> None:
        with self.db.session() as session:
            for content_hash in hashes:
                release_file_if_unused(session, self.files, content_hash)

    # -- documents --------------------------------------------------------------------------------------
    def list_documents(self, subject: Subject, collection: str) -> list[dict]:
        with self.db.session() as session:
            row = find_collection(session, subject, collection)
            documents = session.scalars(select(DocumentRow).where(DocumentRow.collection_id == row.id)
                                        .order_by(DocumentRow.name))
            return [document_dict(d, row.name) for d in documents]

    def document_file(self, subject: Subject, document_id: int) -> tuple[Path, str, str]:
        """(stored path, download name, media type) of a document's original, if the subject may read its
        collection: the same rule as listing it (NotFound outside the workspace, Forbidden if restricted)."""
        with self.db.session() as session:
            found = session.execute(select(DocumentRow, CollectionRow.name)
                                    .join(CollectionRow, CollectionRow.id == DocumentRow.collection_id)
                                    .where(DocumentRow.id == document_id,
                                           CollectionRow.workspace == subject.workspace)).first()
            if found is None:
                raise NotFound(tr("No document %(document_id)s.", document_id=document_id), param="document_id",
                               code="document_not_found")
            document, collection = found
            find_collection(session, subject, collection)
            path = self.files.path_for(document.content_hash)
            name = PurePosixPath(document.name).name or f"document-{document_id}"
        if not path.is_file():
            raise NotFound(tr("The original file of document %(document_id)s is no longer stored.",
                              document_id=document_id), param="document_id", code="file_not_found")
        return path, name, mimetypes.guess_type(name)[0] or "application/octet-stream"

    def delete_document(self, subject: Subject, collection: str, document_id: int) -> dict:
        with self.db.session() as session:
            row = find_collection(session, subject, collection)
            document = session.scalar(select(DocumentRow).where(DocumentRow.id == document_id,
                                                                DocumentRow.collection_id == row.id))
            if document is None:
                raise NotFound(tr("No document %(document_id)s in '%(collection)s'.", document_id=document_id,
                                  collection=collection), param="document_id", code="document_not_found")
            if not authorize("knowledge:manage", Resource("document", row.workspace, str(document_id)),
                             subject).allowed:
                require("knowledge:write", Resource("document", row.workspace, str(document_id)), subject)
                if document.created_by_user != subject.user_id:
                    raise Forbidden(tr("Only an administrator or the user who uploaded a document may delete it."),
                                    param="document_id")
            # Documents whose paragraphs were skipped as copies of this one must be indexed in full again.
            dependents = dependent_documents(session, document.id)
            chunks = document.chunk_count
            remove_document_chunks(session, self.index, document.id)
            session.delete(document)
            bump_generation(session, row.id)
            self.bus.emit(ev.DocumentDeleted(workspace=subject.workspace, actor=subject.actor,
                                             resource=f"document:{document_id}",
                                             collection=row.id, chunks=chunks), session)
            content_hash, collection_id = document.content_hash, row.id
        self._release({content_hash})
        reindex_job = None
        if dependents:
            reindex_job = self.jobs.create(collection_id, [JobFile(name, self.files.path_for(h), force=True)
                                                           for name, h in dependents], subject)
            self.runner.notify()
        return {"id": document_id, "object": "document.deleted", "deleted": True, "chunks": chunks,
                "reindex_job": reindex_job}

    # -- ingestion --------------------------------------------------------------------------------------
    def submit_paths(self, subject: Subject, collection: str, files: list[tuple[str, Path]]) -> str:
        """Queue local files (CLI). Returns the job id once the job is durable."""
        with self.db.session() as session:
            row = find_collection(session, subject, collection)
        require("knowledge:write", Resource("collection", row.workspace, row.name), subject)
        named = [JobFile(clean_document_name(n), p.resolve()) for n, p in files]
        self._require_replaceable(subject, row, [f.name for f in named])
        return self.jobs.create(row.id, named, subject)

    def _require_replaceable(self, subject: Subject, row: CollectionRow, names: list[str]) -> None:
        """Uploading under an existing document's name replaces it: only its uploader or a manager may."""
        if authorize("knowledge:manage", Resource("collection", row.workspace, row.name), subject).allowed:
            return
        with self.db.session() as session:
            taken = session.scalars(select(DocumentRow.name).where(
                DocumentRow.collection_id == row.id, DocumentRow.name.in_(names),
                DocumentRow.created_by_user.is_distinct_from(subject.user_id))).all()
        if taken:
            raise Forbidden(tr("'%(document)s' already exists in '%(collection)s' and was uploaded by someone else; "
                               "only they or an administrator may replace it. Upload it under another name.",
                               document=taken[0], collection=row.name),
                            param="files", code="document_owned_by_another_user")

    def submit_uploads(self, subject: Subject, collection: str, uploaded: list[tuple[str, BinaryIO]]) -> dict:
        """Store uploaded files (expanding .zip archives within limits), then queue one job for them."""
        with self.db.session() as session:
            row = find_collection(session, subject, collection)
        require("knowledge:write", Resource("collection", row.workspace, row.name), subject)
        stored = uploads.store_uploads(self.files, self.settings, uploaded, clean_document_name,
                                       release=self._release)
        try:
            self._require_replaceable(subject, row, [name for name, _ in stored])
        except Forbidden:
            self._release({path.name for _, path in stored})
            raise
        job_id = self.jobs.create(row.id, [JobFile(name, path) for name, path in stored], subject)
        self.runner.notify()
        return self.job(subject, job_id)

    def job(self, subject: Subject, job_id: str) -> dict:
        with self.db.session() as session:
            job = session.get(IngestJobRow, job_id)
            if job is None:
                raise NotFound(tr("No ingestion job %(job_id)s.", job_id=job_id), param="job_id", code="job_not_found")
            collection = session.scalar(select(CollectionRow).where(CollectionRow.id == job.collection_id,
                                                                    readable_condition(subject)))
            if collection is None:
                raise NotFound(tr("No ingestion job %(job_id)s.", job_id=job_id), param="job_id", code="job_not_found")
            files = session.scalars(select(IngestJobFileRow).where(IngestJobFileRow.job_id == job_id)
                                    .order_by(IngestJobFileRow.ordinal)).all()
            return job_view(job, list(files), collection.name)

    # -- search -----------------------------------------------------------------------------------------
    def _collection_ids(self, subject: Subject, names: list[str] | None) -> list[int] | None:
        if not names:
            return None  # every collection the subject may read
        with self.db.session() as session:
            return [find_collection(session, subject, name).id for name in names]

    async def search(self, subject: Subject, collections: list[str] | None, query: str, k: int = 10,
                     mode: Mode = "hybrid") -> list[Hit]:
        if not query or not query.strip():
            raise InvalidRequest(tr("The query is empty."), param="query")
        if not 1 <= k <= MAX_K:
            raise InvalidRequest(tr("k must be between 1 and %(max_k)s.", max_k=MAX_K), param="k")
        if mode not in ("hybrid", "keyword", "dense"):
            raise InvalidRequest(tr("mode must be hybrid, keyword or dense."), param="mode")
        require("knowledge:read", Resource("collection", subject.workspace, ",".join(collections or [])), subject)
        ids = await asyncio.to_thread(self._collection_ids, subject, collections)
        return await self.retriever.search(self.db.session, subject, ids, query, k, mode)

    @staticmethod
    def supported_suffixes() -> list[str]:
        return supported_suffixes()
