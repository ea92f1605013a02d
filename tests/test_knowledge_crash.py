"""`kill -9` in the middle of an ingestion job, then recovery: by `shuken jobs resume`, and by a restarted
server on its own. Afterwards the index must be exactly what an uninterrupted run would have left: one
document per file, and chunks, keyword rows and vectors in one-to-one correspondence.

The database is observed from outside, read-only, with the `sqlite3` module.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import time
from contextlib import closing
from pathlib import Path

import httpx
import pytest
from conftest import SHUKEN, start_server
from fixtures.documents import SAMPLES, make_text
from knowledge_support import ADMIN, read_only

from shuken.config import Settings
from shuken.services import Services

pytestmark = pytest.mark.slow

FINAL = ("indexed", "replaced", "unchanged", "error")
FILES = 12
_SENTENCE = re.compile(r"[^.。!?।]+[.。!?।]")


def write_corpus(folder: Path) -> list[str]:
    """FILES text files of distinct paragraphs (sentences of the samples recombined), each a couple of chunks long."""
    sentences = [s.strip() for paragraphs in SAMPLES.values() for p in paragraphs for s in _SENTENCE.findall(p)]
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(FILES):
        rng = random.Random(i)
        paragraphs = [f"Section {i}.{n}: " + " ".join(rng.sample(sentences, 4)) for n in range(5)]
        name = f"file-{i:02}.txt"
        make_text(folder / name, paragraphs)
        names.append(name)
    return names


def env_for(home: Path, **extra) -> dict:
    return {**os.environ, "SHUKEN_HOME": str(home), "SHUKEN_JOB_STALE_SECONDS": "1", "NO_COLOR": "1",
            "COLUMNS": "200", **extra}


def query(db_path: Path, statement: str, *params) -> list[tuple]:
    with closing(read_only(db_path)) as connection:
        return connection.execute(statement, params).fetchall()


def wait_until_files_final(db_path: Path, at_least: int, process: subprocess.Popen, timeout: float = 180) -> str:
    """Poll the database until one job has `at_least` files with a final status; return its id."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "the process ended before it could be killed"
        try:
            rows = query(db_path, "SELECT job_id, count(*) FROM ingest_job_files WHERE status IN "
                                  f"({','.join('?' * len(FINAL))}) GROUP BY job_id", *FINAL)
        except sqlite3.OperationalError:  # not created yet, or mid-migration
            rows = []
        for job_id, done in rows:
            if done >= at_least:
                return job_id
        time.sleep(0.02)
    raise AssertionError("the job never got going")


def kill_mid_job(db_path: Path, process: subprocess.Popen) -> str:
    job_id = wait_until_files_final(db_path, 2, process)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    done = query(db_path, "SELECT count(*) FROM ingest_job_files WHERE job_id = ? AND status != 'pending'", job_id)
    assert 2 <= done[0][0] < FILES, "the kill must land in the middle of the job"
    assert query(db_path, "SELECT status FROM ingest_jobs WHERE id = ?", job_id) == [("running",)]
    return job_id


def assert_index_consistent(db_path: Path, job_id: str, names: list[str]) -> None:
    assert query(db_path, "SELECT status, error FROM ingest_jobs WHERE id = ?", job_id) == [("done", None)]
    files = query(db_path, "SELECT name, status, error FROM ingest_job_files WHERE job_id = ? ORDER BY ordinal",
                  job_id)
    assert [name for name, _, _ in files] == names
    assert all(status == "indexed" and error is None for _, status, error in files), files
    documents = query(db_path, "SELECT name, count(*) FROM documents GROUP BY name ORDER BY name")
    assert documents == [(name, 1) for name in names]  # every file exactly once
    chunks = query(db_path, "SELECT count(*) FROM chunks")[0][0]
    assert chunks >= FILES
    assert query(db_path, "SELECT sum(chunk_count) FROM documents")[0][0] == chunks
    assert query(db_path, "SELECT count(*) FROM chunk_terms")[0][0] == chunks
    assert query(db_path, "SELECT count(*) FROM chunk_vectors")[0][0] == chunks
    # Keyword rows and vectors belong to live chunks, one each.
    assert query(db_path, "SELECT count(*) FROM chunk_terms WHERE rowid NOT IN (SELECT id FROM chunks)") == [(0,)]
    assert query(db_path, "SELECT count(*) FROM chunk_vectors WHERE chunk_id NOT IN (SELECT id FROM chunks)") == [(0,)]
    assert query(db_path, "SELECT document_id, ordinal FROM chunks GROUP BY document_id, ordinal "
                          "HAVING count(*) > 1") == []
    # Ordinals run 0..n-1 in every document: no half-written or doubled document survives.
    assert query(db_path, "SELECT documents.name FROM documents JOIN chunks ON chunks.document_id = documents.id "
                          "GROUP BY documents.id HAVING max(ordinal) + 1 != count(*) "
                          "OR count(*) != documents.chunk_count") == []
    assert query(db_path, "SELECT count(*) FROM paragraph_fingerprints WHERE document_id NOT IN "
                          "(SELECT id FROM documents)") == [(0,)]


def test_cli_ingest_killed_mid_job_is_finished_by_jobs_resume(tmp_path, isolated_home):
    names = write_corpus(tmp_path / "docs")
    db_path = isolated_home / "shuken.db"
    ingest = subprocess.Popen(SHUKEN + ["ingest", str(tmp_path / "docs"), "-c", "papers", "--create"],
                              env=env_for(isolated_home), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        job_id = kill_mid_job(db_path, ingest)
    finally:
        if ingest.poll() is None:
            ingest.kill()
    time.sleep(1.2)  # the job's heartbeat goes stale

    resumed = subprocess.run(SHUKEN + ["jobs", "resume"], env=env_for(isolated_home), capture_output=True, text=True,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"Resuming job {job_id}" in resumed.stderr
    assert_index_consistent(db_path, job_id, names)

    again = subprocess.run(SHUKEN + ["ingest", str(tmp_path / "docs"), "-c", "papers", "--json"],
                           env=env_for(isolated_home), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    view = json.loads(again.stdout)
    assert view["status"] == "done"
    assert [(f["name"], f["status"]) for f in view["files"]] == [(name, "unchanged") for name in names]
    assert view["totals"]["unchanged"] == FILES and view["totals"]["chunks"] == 0
    assert query(db_path, "SELECT count(*) FROM documents") == [(FILES,)]


def test_server_killed_mid_job_finishes_the_job_after_restart(tmp_path_factory):
    home = tmp_path_factory.mktemp("crash-server") / "home"
    docs = tmp_path_factory.mktemp("crash-docs")
    names = write_corpus(docs)
    server = start_server(home, job_stale_seconds=1)
    try:
        headers = {"Authorization": f"Bearer {server.api_key}"}
        assert httpx.post(f"{server.base_url}/collections", json={"name": "papers"}, headers=headers).status_code == 201
        accepted = httpx.post(f"{server.base_url}/collections/papers/documents", headers=headers, timeout=60,
                              files=[("files", (n, (docs / n).read_bytes(), "text/plain")) for n in names])
        assert accepted.status_code == 202, accepted.text
        job_id = accepted.json()["id"]
        assert kill_mid_job(home / "shuken.db", server.process) == job_id
    finally:
        server.stop()

    restarted = start_server(home, api_key=server.api_key, job_stale_seconds=1)
    try:
        deadline = time.monotonic() + 180
        while True:
            job = httpx.get(f"{restarted.base_url}/jobs/{job_id}", headers=headers, timeout=30).json()
            if job["status"] == "done" or time.monotonic() > deadline:
                break
            time.sleep(0.25)
        assert job["status"] == "done", job
        assert job["totals"]["indexed"] == FILES and job["totals"]["errors"] == 0
        assert_index_consistent(home / "shuken.db", job_id, names)
        hits = httpx.post(f"{restarted.base_url}/collections/papers/search", headers=headers,
                          json={"query": "Section 11.4", "k": 3, "mode": "keyword"}).json()["data"]
        assert hits and hits[0]["document_name"] == "file-11.txt"
    finally:
        restarted.stop()


def test_a_live_job_is_not_taken_over_however_short_the_stale_time(tmp_path, isolated_home):
    """Only a silent job may be resumed by another worker: the heartbeat must beat well within the stale
    time, or a server would start a second copy of a job that `shuken ingest` is still running."""
    names = write_corpus(tmp_path / "docs")
    services = Services.open(Settings(home=isolated_home, job_stale_seconds=2))  # < the old fixed 5 s beat

    async def main():
        services.registry.seed_bundled()
        knowledge = services.knowledge
        knowledge.create_collection(ADMIN, "papers")
        job_id = knowledge.submit_paths(ADMIN, "papers", [(n, tmp_path / "docs" / n) for n in names])
        assert knowledge.jobs.claim(knowledge.runner.worker, job_id) == job_id
        running = asyncio.create_task(knowledge.runner.run(job_id))
        attempts = 0
        while True:
            await asyncio.sleep(0.7)
            if running.done():
                break
            assert await asyncio.to_thread(knowledge.jobs.claim, "intruder", job_id) is None
            attempts += 1
        await running
        assert attempts >= 3, "the job must run for longer than the stale time for this test to mean anything"
        view = knowledge.job(ADMIN, job_id)
        assert view["status"] == "done" and view["totals"]["indexed"] == FILES
        assert query(isolated_home / "shuken.db", "SELECT worker FROM ingest_jobs") == [(knowledge.runner.worker,)]

    async def run():
        try:
            await main()
        finally:
            await services.host.close()

    try:
        asyncio.run(run())
    finally:
        services.close()
