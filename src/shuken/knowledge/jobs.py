"""Durable ingestion jobs: a job and its files are committed before anyone is told the job id, then a
worker claims the job, indexes its pending files one by one, and heartbeats while it works.

A job whose worker died (crash, `kill -9`) stops heartbeating; after `job_stale_seconds` any worker — the
restarted server or `shuken jobs resume` — claims it and carries on from the first file not yet recorded.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from collections.abc import Callable

from sqlalchemy import and_, func, or_, select, update

from shuken.knowledge.ingest import FileOutcome, Indexer
from shuken.localisable import from_record
from shuken.store import Database, rows_changed
from shuken.store.tables import IngestJobFileRow, IngestJobRow, utc_now

log = logging.getLogger("shuken.knowledge.jobs")
HEARTBEAT_SECONDS = 5.0
FILE_DONE = ("indexed", "replaced", "unchanged", "error")


@dataclass(frozen=True)
class JobFile:
    name: str
    path: Path
    force: bool = False


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def file_error(row: IngestJobFileRow) -> str | None:
    """A file's error: the Message it was made from when that was kept (so the UI can translate it), else its
    text. Either way a str with the English the API and CLI show."""
    if row.error is None or row.error_message is None:
        return row.error
    try:
        return from_record(row.error_message)
    except ValueError:  # a damaged record: its English is still there
        return row.error


def job_view(job: IngestJobRow, files: list[IngestJobFileRow], collection: str) -> dict:
    totals = {"files": len(files), "processed": 0, "indexed": 0, "replaced": 0, "unchanged": 0, "errors": 0,
              "pages": 0, "ocr_pages": 0, "chunks": 0, "duplicates_skipped": 0}
    for f in files:
        if f.status in FILE_DONE:
            totals["processed"] += 1
        if f.status == "error":
            totals["errors"] += 1
        elif f.status in totals:
            totals[f.status] += 1
        totals["pages"] += f.pages
        totals["ocr_pages"] += f.ocr_pages
        totals["chunks"] += f.chunks
        totals["duplicates_skipped"] += f.duplicates
    return {
        "id": job.id, "object": "ingest.job", "collection": collection, "status": job.status,
        "created_at": job.created_at.isoformat(),
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "error": job.error, "totals": totals,
        "files": [{"name": f.name, "status": f.status, "error": file_error(f), "document_id": f.document_id,
                   "pages": f.pages, "ocr_pages": f.ocr_pages, "chunks": f.chunks,
                   "duplicates_skipped": f.duplicates} for f in files],
    }


class JobQueue:
    def __init__(self, db: Database, stale_seconds: float):
        self.db = db
        self.stale = timedelta(seconds=stale_seconds)

    def create(self, collection_id: int, files: list[JobFile], submitted_by) -> str:
        """A durable job; `submitted_by` (a Subject) becomes the uploader of its documents."""
        job_id = uuid.uuid4().hex
        with self.db.session() as session:
            session.add(IngestJobRow(id=job_id, collection_id=collection_id, status="queued",
                                     submitted_by_key=submitted_by.key_id, submitted_by_user=submitted_by.user_id,
                                     created_at=utc_now()))
            session.flush()  # the job row must exist before its files reference it
            session.add_all(IngestJobFileRow(job_id=job_id, ordinal=i, name=f.name, path=str(f.path),
                                             status="pending", force=f.force) for i, f in enumerate(files))
        return job_id

    def _claimable(self):
        return or_(IngestJobRow.status == "queued",
                   and_(IngestJobRow.status == "running", IngestJobRow.heartbeat_at < utc_now() - self.stale))

    def claim(self, worker: str, job_id: str | None = None) -> str | None:
        """Atomically take a queued or abandoned job (the UPDATE's WHERE decides who wins)."""
        with self.db.session() as session:
            query = select(IngestJobRow.id).where(self._claimable()).order_by(IngestJobRow.created_at)
            if job_id is not None:
                query = query.where(IngestJobRow.id == job_id)
            for candidate in session.scalars(query.limit(5)).all():
                claimed = rows_changed(
                    session,
                    update(IngestJobRow).where(IngestJobRow.id == candidate, self._claimable())
                    .values(status="running", worker=worker, heartbeat_at=utc_now(),
                            started_at=func.coalesce(IngestJobRow.started_at, utc_now()))
                )
                if claimed:
                    return candidate
        return None

    def heartbeat(self, job_id: str, worker: str) -> bool:
        """False if another worker has taken the job over (this one must stop)."""
        with self.db.session() as session:
            return bool(rows_changed(session, update(IngestJobRow).where(IngestJobRow.id == job_id,
                                                                         IngestJobRow.worker == worker)
                                     .values(heartbeat_at=utc_now())))

    def pending_files(self, job_id: str) -> list[IngestJobFileRow]:
        with self.db.session() as session:
            return list(session.scalars(select(IngestJobFileRow).where(
                IngestJobFileRow.job_id == job_id, IngestJobFileRow.status == "pending")
                .order_by(IngestJobFileRow.ordinal)))

    def collection_of(self, job_id: str) -> int | None:
        """None if the job is gone (deleted with its submitter's data)."""
        with self.db.session() as session:
            return session.scalar(select(IngestJobRow.collection_id).where(IngestJobRow.id == job_id))

    def finish(self, job_id: str, worker: str, error: str | None = None) -> None:
        with self.db.session() as session:
            session.execute(update(IngestJobRow).where(IngestJobRow.id == job_id, IngestJobRow.worker == worker)
                            .values(status="failed" if error else "done", finished_at=utc_now(), error=error))

    def unfinished(self) -> list[str]:
        with self.db.session() as session:
            return list(session.scalars(select(IngestJobRow.id).where(IngestJobRow.status.in_(("queued", "running")))
                                        .order_by(IngestJobRow.created_at)))


class JobRunner:
    """Runs jobs in the current event loop: one at a time, files in order."""

    def __init__(self, queue: JobQueue, indexer: Indexer):
        self.queue = queue
        self.indexer = indexer
        self.worker = worker_name()
        self._wakeup: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def notify(self) -> None:
        """Wake `serve_forever` for a new job; safe from any thread (uploads are stored in a worker thread)."""
        if self._loop is not None and self._wakeup is not None:
            self._loop.call_soon_threadsafe(self._wakeup.set)

    async def run(self, job_id: str, on_file: Callable[[IngestJobFileRow, FileOutcome], None] | None = None) -> None:
        collection_id = await asyncio.to_thread(self.queue.collection_of, job_id)
        if collection_id is None:
            return  # deleted since it was claimed: no file of it is left to index
        beating = asyncio.create_task(self._heartbeat(job_id))
        try:
            # Until none is pending: indexing a file may add files to its job (documents to re-index).
            while pending := await asyncio.to_thread(self.queue.pending_files, job_id):
                for job_file in pending:
                    if beating.done():  # lost the job to another worker
                        return
                    outcome = await self.indexer.ingest(collection_id, job_file.name, Path(job_file.path),
                                                        force=job_file.force, job_file_id=job_file.id)
                    if on_file is not None:
                        on_file(job_file, outcome)
            await asyncio.to_thread(self.queue.finish, job_id, self.worker)
        except asyncio.CancelledError:
            raise  # shutting down: the job stays running, goes stale and is resumed on restart
        except Exception as exc:
            log.exception("ingest job failed", extra={"job": job_id})
            await asyncio.to_thread(self.queue.finish, job_id, self.worker, f"{type(exc).__name__}: {exc}")
        finally:
            beating.cancel()

    async def _heartbeat(self, job_id: str) -> None:
        # Well within the stale time, however short it is configured, or a live job looks abandoned.
        interval = min(HEARTBEAT_SECONDS, self.queue.stale.total_seconds() / 3)
        while True:
            await asyncio.sleep(interval)
            if not await asyncio.to_thread(self.queue.heartbeat, job_id, self.worker):
                return

    async def serve_forever(self, poll_seconds: float = 2.0) -> None:
        self._wakeup = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        while True:
            try:
                job_id = await asyncio.to_thread(self.queue.claim, self.worker)
            except Exception:  # e.g. the database briefly locked by a CLI writer: try again later
                log.exception("could not claim an ingest job")
                job_id = None
            if job_id is not None:
                await self.run(job_id)
                continue
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), timeout=poll_seconds)
            except TimeoutError:
                pass
