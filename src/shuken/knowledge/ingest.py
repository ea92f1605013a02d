"""Indexing one file into a collection: hash → parse → drop duplicate paragraphs → chunk → language and
terms → embed → one write transaction.

The write transaction replaces a changed document's old chunks, keyword entries, vectors and fingerprints
and records the job file's outcome together, so a crash leaves either the old version or the new one, and
a resumed job never indexes a file twice. Slow work (parsing, OCR, embedding) happens before it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from shuken.governance.events import DocumentIngested, EventBus
from shuken.governance.identity import actor_name
from shuken.knowledge import dedup
from shuken.knowledge.chunking import ChunkDraft, chunk_blocks
from shuken.knowledge.embedding import Embedder
from shuken.knowledge.files import FileStore, sha256_file
from shuken.knowledge.index import SqliteIndex
from shuken.knowledge.languages import index_terms
from shuken.knowledge.languages.detect import detect_language
from shuken.knowledge.parsing import Block, DocumentParseError, ParsedDocument, parse_file
from shuken.localisable import Message, as_record, tr
from shuken.store import Database
from shuken.store.tables import (
    ChunkRow, CollectionRow, DocumentRow, DuplicateSourceRow, IngestJobFileRow, IngestJobRow, ParagraphFingerprintRow,
)

log = logging.getLogger("shuken.knowledge")


@dataclass
class FileOutcome:
    status: str  # indexed | replaced | unchanged | error
    document_id: int | None = None
    pages: int = 0
    ocr_pages: int = 0
    chunks: int = 0
    duplicates: int = 0
    error: str | None = None  # a Message the UI can translate, or a plain str


def under_its_name(error: str, name: str) -> str:
    """A parser's error names the file it read, which for an upload is the content-addressed copy (a SHA-256);
    the person who uploaded it knows it by its document name."""
    if isinstance(error, Message) and "name" in error.values:
        return Message(error.template, {**error.values, "name": name})
    return error


@dataclass
class _Prepared:
    parsed: ParsedDocument
    drafts: list[ChunkDraft]
    languages: list[str]
    terms: list[list[str]]
    fingerprints: list[dedup.Fingerprint]
    duplicate_sources: Counter  # document id → paragraphs skipped because that document has them
    duplicates: int


def index_text(draft: ChunkDraft) -> str:
    """What keyword and dense indexing see: the section heading gives a chunk its context."""
    return f"{draft.heading}\n{draft.text}" if draft.heading else draft.text


def remove_document_chunks(session: Session, index: SqliteIndex, document_id: int) -> None:
    chunk_ids = select(ChunkRow.id).where(ChunkRow.document_id == document_id)
    index.remove_chunks(session, chunk_ids)
    session.execute(delete(ChunkRow).where(ChunkRow.document_id == document_id))
    session.execute(delete(ParagraphFingerprintRow).where(ParagraphFingerprintRow.document_id == document_id))
    session.execute(delete(DuplicateSourceRow).where(DuplicateSourceRow.document_id == document_id))


def dependent_documents(session: Session, document_id: int) -> list[tuple[str, str]]:
    """(name, content hash) of the documents that skipped paragraphs as copies of this one: they must be
    indexed in full again if this one is deleted or loses those paragraphs."""
    return [(name, content_hash) for name, content_hash in session.execute(
        select(DocumentRow.name, DocumentRow.content_hash)
        .join(DuplicateSourceRow, DuplicateSourceRow.document_id == DocumentRow.id)
        .where(DuplicateSourceRow.source_document_id == document_id))]


def bump_generation(session: Session, collection_id: int) -> None:
    session.execute(update(CollectionRow).where(CollectionRow.id == collection_id)
                    .values(generation=CollectionRow.generation + 1))


def release_file_if_unused(session: Session, files: FileStore, content_hash: str) -> None:
    still_used = session.scalar(select(func.count()).select_from(DocumentRow)
                                .where(DocumentRow.content_hash == content_hash))
    pending = session.scalar(select(func.count()).select_from(IngestJobFileRow).where(
        IngestJobFileRow.path == str(files.path_for(content_hash)), IngestJobFileRow.status == "pending"))
    if not still_used and not pending:
        files.remove(content_hash)


class Indexer:
    def __init__(self, db: Database, index: SqliteIndex, files: FileStore, embedder: Embedder, chunk_units: int,
                 bus: EventBus):
        self.db = db
        self.bus = bus
        self.index = index
        self.files = files
        self.embedder = embedder
        self.chunk_units = chunk_units

    async def ingest(self, collection_id: int, name: str, path: Path, *, force: bool = False,
                     job_file_id: int | None = None) -> FileOutcome:
        try:
            content_hash = await asyncio.to_thread(sha256_file, path)
        except OSError as exc:
            return await asyncio.to_thread(self._record, job_file_id,
                                           FileOutcome("error", error=tr("cannot read %(name)s: %(error)s",
                                                                         name=name, error=str(exc.strerror))))
        existing_id, unchanged = await asyncio.to_thread(self._existing, collection_id, name, content_hash,
                                                         force, job_file_id)
        if unchanged is not None:
            return unchanged
        try:
            parsed = await asyncio.to_thread(parse_file, path, name)
            prepared = await asyncio.to_thread(self._prepare, parsed, collection_id, existing_id)
            vectors = await self.embedder.embed_passages([index_text(d) for d in prepared.drafts])
            await asyncio.to_thread(self.files.put_file, path, content_hash)
        except DocumentParseError as exc:
            error = under_its_name(exc.message, name)
        except OSError as exc:
            error = tr("cannot read %(name)s: %(error)s", name=name, error=str(exc))
        except Exception as exc:  # a parser bug must cost one file, not the batch
            log.exception("unexpected ingestion failure", extra={"document": name})
            error = tr("%(name)s: unexpected error (%(type)s: %(error)s)", name=name, type=type(exc).__name__,
                       error=str(exc))
        else:
            return await asyncio.to_thread(self._write, collection_id, name, content_hash, path, prepared, vectors,
                                           job_file_id)
        return await asyncio.to_thread(self._failed, job_file_id, FileOutcome("error", error=error), content_hash)

    def _existing(self, collection_id: int, name: str, content_hash: str, force: bool,
                  job_file_id: int | None) -> tuple[int | None, FileOutcome | None]:
        """The id of the document this file would replace, and the recorded outcome if it is unchanged."""
        with self.db.session() as session:
            existing = session.scalar(select(DocumentRow).where(DocumentRow.collection_id == collection_id,
                                                                DocumentRow.name == name))
            if existing is None:
                return None, None
            if existing.content_hash == content_hash and not force:
                return existing.id, self._record(job_file_id, FileOutcome("unchanged", existing.id,
                                                                          existing.pages or 0), session)
            return existing.id, None

    def _prepare(self, parsed: ParsedDocument, collection_id: int, existing_id: int | None) -> _Prepared:
        kept: list[Block] = []
        fingerprints: list[dedup.Fingerprint] = []
        sources: Counter[int] = Counter()  # document id → paragraphs found there
        duplicates = 0
        with self.db.session() as session:
            finder = dedup.DuplicateFinder(session, collection_id, exclude_document_id=existing_id)
            for block in parsed.blocks:
                fp = dedup.fingerprint(block.text) if block.kind != "heading" else None
                if fp is not None:
                    match = finder.check(fp)
                    if match is not None:
                        duplicates += 1
                        if match.document_id is not None:
                            sources[match.document_id] += 1
                        continue
                    fingerprints.append(fp)
                kept.append(block)
        drafts = chunk_blocks(kept, parsed.text, max_units=self.chunk_units)
        languages = [detect_language(index_text(d)) for d in drafts]
        terms = [index_terms(index_text(d), language) for d, language in zip(drafts, languages, strict=True)]
        return _Prepared(parsed, drafts, languages, terms, fingerprints, sources, duplicates)

    def _write(self, collection_id: int, name: str, content_hash: str, path: Path, prepared: _Prepared,
               vectors, job_file_id: int | None) -> FileOutcome:
        now = datetime.now(timezone.utc)
        parsed = prepared.parsed
        weights: Counter[str] = Counter()  # language → characters
        for draft, language in zip(prepared.drafts, prepared.languages, strict=True):
            weights[language] += len(draft.text)
        with self.db.session() as session:
            if job_file_id is not None and session.get(IngestJobFileRow, job_file_id, with_for_update=True) is None:
                # Its job was deleted while this file was being prepared (its submitter's data was erased):
                # writing now would bring erased content back, with no owner to erase it by.
                release_file_if_unused(session, self.files, content_hash)
                return FileOutcome("error", error=tr("%(name)s: its ingestion job was cancelled", name=name))
            document = session.scalar(select(DocumentRow).where(DocumentRow.collection_id == collection_id,
                                                                DocumentRow.name == name).with_for_update())
            old_hash = None
            key_id, user_id = self._submitter(session, job_file_id)
            if document is None:
                status = "indexed"
                document = DocumentRow(collection_id=collection_id, name=name, created_at=now,
                                       created_by_key=key_id, created_by_user=user_id)
                session.add(document)
            else:
                status = "replaced"
                old_hash = document.content_hash
                if job_file_id is not None:  # the new bytes are the new submitter's: so is erasing them
                    document.created_by_key, document.created_by_user = key_id, user_id
                self._queue_dependents(session, document.id, prepared.fingerprints, job_file_id)
                remove_document_chunks(session, self.index, document.id)
            document.content_hash = content_hash
            document.size_bytes = path.stat().st_size
            document.format = Path(name).suffix.lower().lstrip(".") or "txt"
            document.title = parsed.title
            document.language = weights.most_common(1)[0][0] if weights else None
            document.pages = parsed.pages
            document.ocr_pages = parsed.ocr_pages
            document.chunk_count = len(prepared.drafts)
            document.duplicate_paragraphs = prepared.duplicates
            document.updated_at = now
            session.flush()
            for ordinal, (draft, language, terms) in enumerate(zip(prepared.drafts, prepared.languages,
                                                                   prepared.terms, strict=True)):
                chunk = ChunkRow(document_id=document.id, collection_id=collection_id, ordinal=ordinal,
                                 text=draft.text, heading=draft.heading, language=language, page=draft.page,
                                 page_end=draft.page_end, start_offset=draft.start, end_offset=draft.end)
                session.add(chunk)
                session.flush()
                self.index.add_chunk(session, chunk.id, collection_id, terms, vectors[ordinal])
            dedup.store_fingerprints(session, collection_id, document.id, prepared.fingerprints)
            session.add_all(DuplicateSourceRow(document_id=document.id, source_document_id=source, paragraphs=n)
                            for source, n in prepared.duplicate_sources.items() if source != document.id)
            bump_generation(session, collection_id)
            outcome = FileOutcome(status, document.id, parsed.pages or 0, parsed.ocr_pages,
                                  len(prepared.drafts), prepared.duplicates)
            self._record(job_file_id, outcome, session)
            workspace = session.execute(select(CollectionRow.workspace)
                                        .where(CollectionRow.id == collection_id)).scalar_one()
            self.bus.emit(DocumentIngested(
                workspace=workspace, actor=actor_name(user_id, key_id), resource=f"document:{document.id}",
                collection=collection_id, status=status, chunks=len(prepared.drafts), pages=parsed.pages,
                content={"name": name}, content_user_id=document.created_by_user), session)
        if old_hash and old_hash != content_hash:  # only once the new version is committed
            with self.db.session() as session:
                release_file_if_unused(session, self.files, old_hash)
        return outcome

    @staticmethod
    def _submitter(session: Session, job_file_id: int | None) -> tuple[int | None, int | None]:
        """(key id, user id) of whoever submitted the job this file belongs to."""
        if job_file_id is None:
            return None, None
        found = session.execute(select(IngestJobRow.submitted_by_key, IngestJobRow.submitted_by_user)
                                .join(IngestJobFileRow, IngestJobFileRow.job_id == IngestJobRow.id)
                                .where(IngestJobFileRow.id == job_file_id)).first()
        return (found[0], found[1]) if found else (None, None)

    def _failed(self, job_file_id: int | None, outcome: FileOutcome, content_hash: str) -> FileOutcome:
        """Record a file that could not be indexed, and release its stored copy (an upload) if no document
        or pending job file uses it."""
        self._record(job_file_id, outcome)
        with self.db.session() as session:
            release_file_if_unused(session, self.files, content_hash)
        return outcome

    def _queue_dependents(self, session: Session, document_id: int, kept: list[dedup.Fingerprint],
                          job_file_id: int | None) -> None:
        """Documents that skipped paragraphs as copies of this one must be indexed in full again if the new
        version drops any of its paragraphs. They are added to the current job in the replacing
        transaction, so a crash cannot lose them."""
        if job_file_id is None:
            return
        old = set(session.scalars(select(ParagraphFingerprintRow.exact_hash)
                                  .where(ParagraphFingerprintRow.document_id == document_id)))
        if old <= {fp.exact_hash for fp in kept}:
            return
        dependents = dependent_documents(session, document_id)
        if not dependents:
            return
        job_id = session.scalar(select(IngestJobFileRow.job_id).where(IngestJobFileRow.id == job_file_id))
        last = session.execute(select(func.max(IngestJobFileRow.ordinal))
                               .where(IngestJobFileRow.job_id == job_id)).scalar_one()
        session.add_all(IngestJobFileRow(job_id=job_id, ordinal=last + 1 + i, name=name, status="pending", force=True,
                                         path=str(self.files.path_for(content_hash)))
                        for i, (name, content_hash) in enumerate(dependents))

    def _record(self, job_file_id: int | None, outcome: FileOutcome, session: Session | None = None) -> FileOutcome:
        if job_file_id is None:
            return outcome
        values = dict(status=outcome.status, document_id=outcome.document_id,
                      error=None if outcome.error is None else str(outcome.error),  # the English
                      error_message=as_record(outcome.error) if isinstance(outcome.error, Message) else None,
                      pages=outcome.pages, ocr_pages=outcome.ocr_pages, chunks=outcome.chunks,
                      duplicates=outcome.duplicates)
        statement = update(IngestJobFileRow).where(IngestJobFileRow.id == job_file_id).values(**values)
        if session is not None:
            session.execute(statement)
        else:
            with self.db.session() as own:
                own.execute(statement)
        return outcome
