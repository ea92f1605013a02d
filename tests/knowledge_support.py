"""Helpers shared by the knowledge tests: running ingestion jobs in-process, waiting for a server's job over
HTTP, and reading index tables raw."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import httpx
from sqlalchemy import text

from shuken.governance.identity import Subject

ADMIN = Subject.operator()


async def ingest(services, collection: str, files: list[tuple[str, Path]], subject: Subject = ADMIN) -> dict:
    """Queue the files as one durable job, run it to the end in this event loop, return the job view."""
    knowledge = services.knowledge
    job_id = knowledge.submit_paths(subject, collection, files)
    return await run_job(services, job_id, subject)


async def run_job(services, job_id: str, subject: Subject = ADMIN) -> dict:
    knowledge = services.knowledge
    assert knowledge.jobs.claim(knowledge.runner.worker, job_id) == job_id
    await knowledge.runner.run(job_id)
    return knowledge.job(subject, job_id)


def wait_for_job(api: httpx.Client, job_id: str, timeout: float = 120) -> dict:
    """Poll a running server's /v1/jobs/ID (on a client that carries a key) until the job is done or failed."""
    deadline = time.monotonic() + timeout
    job = None
    while time.monotonic() < deadline:
        response = api.get(f"/v1/jobs/{job_id}")
        assert response.status_code == 200, response.text
        job = response.json()
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def sql(services, statement: str, **params) -> list[tuple]:
    with services.db.engine.connect() as connection:
        return [tuple(row) for row in connection.execute(text(statement), params)]


def ids(services, statement: str, **params) -> set:
    return {row[0] for row in sql(services, statement, **params)}


def fts_ids(services) -> set[int]:
    return ids(services, "SELECT rowid FROM chunk_terms")


def vector_ids(services) -> set[int]:
    return ids(services, "SELECT chunk_id FROM chunk_vectors")


def stored_files(home: Path) -> set[str]:
    """Content hashes of the originals kept under $SHUKEN_HOME/files (temporary files excluded)."""
    root = home / "files"
    if not root.exists():
        return set()
    return {p.name for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")}


def read_only(db_path: Path) -> sqlite3.Connection:
    """A read-only connection, as an outside observer would open the database (WAL allows it mid-write)."""
    connection = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10)
    connection.execute("PRAGMA busy_timeout=10000")
    return connection
