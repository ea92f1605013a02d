"""Helpers shared by the knowledge tests: running ingestion jobs in-process and reading index tables raw."""

from __future__ import annotations

import sqlite3
from pathlib import Path

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
