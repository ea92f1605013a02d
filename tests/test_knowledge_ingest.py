"""Ingestion in-process, with every real part: generated PDF/DOCX/HTML/Markdown/text files, the real parsers
and tokenisers, the SQLite index (FTS5 + vectors) and multilingual-e5-small embeddings.

Each test drives the async service in one `asyncio.run` and closes the model host at the end.
"""

from __future__ import annotations

import asyncio

import pytest
from fixtures.documents import (
    SAMPLES, Heading, Para, make_corrupt_pdf, make_docx, make_html, make_markdown, make_pdf, make_text,
)
from knowledge_support import (
    ADMIN, fts_ids, ids, ingest, run_job, sql, stored_files, vector_ids,
)

from shuken.config import Settings
from shuken.knowledge import dedup
from shuken.knowledge.files import sha256_file
from shuken.knowledge.parsing import parse_file
from shuken.services import Services

pytestmark = pytest.mark.slow  # loads the embedding model

REVIEW, TRAVEL, ARCHIVE = SAMPLES["en"]
# One word changed ("class" → "cabin"): not the same text, but well above the near-duplicate threshold.
TRAVEL_NEAR = TRAVEL.replace("Economy class", "Economy cabin")
# Only case, spacing and punctuation differ: the same paragraph once normalised.
REVIEW_RESHAPED = REVIEW.upper().replace(". ", " -- ")


def run(services, work):
    """Run `work(services)` in a fresh event loop; always release the loaded models."""
    async def main():
        services.registry.seed_bundled()
        try:
            return await work(services)
        finally:
            await services.host.close()
    return asyncio.run(main())


def index_state(services, document_id: int) -> dict[str, set]:
    """Everything the index holds for one document, by table, as (row id, content) pairs: SQLite reuses
    freed row ids, so a replaced chunk can come back under its old id with other text."""
    chunks = set(sql(services, "SELECT id, text FROM chunks WHERE document_id = :d", d=document_id))
    chunk_ids = {chunk_id for chunk_id, _ in chunks}
    return {
        "chunks": chunks,
        "chunk_terms": {row for row in all_rows(services, "chunk_terms") if row[0] in chunk_ids},
        "chunk_vectors": {row for row in all_rows(services, "chunk_vectors") if row[0] in chunk_ids},
        "paragraph_fingerprints": set(sql(services, "SELECT id, exact_hash FROM paragraph_fingerprints "
                                                    "WHERE document_id = :d", d=document_id)),
    }


def all_rows(services, table: str) -> set[tuple]:
    """(row id, content) of every row of one index table."""
    statement = {"chunks": "SELECT id, text FROM chunks",
                 "chunk_terms": "SELECT rowid, terms FROM chunk_terms",
                 "chunk_vectors": "SELECT chunk_id, vector FROM chunk_vectors",
                 "paragraph_fingerprints": "SELECT id, exact_hash FROM paragraph_fingerprints"}[table]
    return set(sql(services, statement))


def row_ids(state: dict[str, set], table: str) -> set:
    return {row[0] for row in state[table]}


def hits_containing(hits, phrase: str) -> list:
    return [hit for hit in hits if phrase.casefold() in hit.text.casefold()]


def test_unchanged_file_is_a_noop_and_a_changed_file_replaces_every_index_entry(services, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    notes = make_text(docs / "notes.txt", [REVIEW, TRAVEL])

    async def work(svc):
        svc.knowledge.create_collection(ADMIN, "handbook")
        first = await ingest(svc, "handbook", [("notes.txt", notes)])
        assert first["status"] == "done"
        assert [f["status"] for f in first["files"]] == ["indexed"]
        document_id = first["files"][0]["document_id"]
        before = index_state(svc, document_id)
        assert before["chunks"]
        for table in ("chunk_terms", "chunk_vectors"):
            assert row_ids(before, table) == row_ids(before, "chunks"), table
        assert len(before["paragraph_fingerprints"]) == 2
        old_hash = sha256_file(notes)
        assert old_hash in stored_files(svc.settings.home_dir)
        generation = sql(svc, "SELECT generation FROM collections WHERE name = 'handbook'")[0][0]

        # Same bytes again: nothing is re-parsed, re-embedded or rewritten.
        again = await ingest(svc, "handbook", [("notes.txt", notes)])
        assert [f["status"] for f in again["files"]] == ["unchanged"]
        assert again["files"][0]["document_id"] == document_id
        assert index_state(svc, document_id) == before
        assert sql(svc, "SELECT generation FROM collections WHERE name = 'handbook'")[0][0] == generation

        # New content under the same name: the old chunks, terms, vectors and fingerprints all go.
        make_text(notes, [ARCHIVE, SAMPLES["fr"][0]])
        changed = await ingest(svc, "handbook", [("notes.txt", notes)])
        assert [f["status"] for f in changed["files"]] == ["replaced"]
        assert changed["files"][0]["document_id"] == document_id
        after = index_state(svc, document_id)
        assert after["chunks"]
        for table in ("chunk_terms", "chunk_vectors"):
            assert row_ids(after, table) == row_ids(after, "chunks"), table
        for table, rows in before.items():  # no old row survives anywhere, under any id
            assert not all_rows(svc, table) & rows, table
            assert after[table] == all_rows(svc, table), table  # and nothing else is left over
        assert len(after["paragraph_fingerprints"]) == 2
        assert sql(svc, "SELECT count(*) FROM paragraph_bands")[0][0] == 2 * dedup.band_shape()[0]
        assert ids(svc, "SELECT fingerprint_id FROM paragraph_bands") == row_ids(after, "paragraph_fingerprints")
        assert sql(svc, "SELECT count(*) FROM documents")[0][0] == 1
        # The old original is released once the new version is committed.
        assert stored_files(svc.settings.home_dir) == {sha256_file(notes)}
        assert old_hash != sha256_file(notes)

        for mode in ("keyword", "hybrid"):
            old = await svc.knowledge.search(ADMIN, ["handbook"], "quarterly review conference room", 10, mode)
            assert not hits_containing(old, "quarterly review"), mode
        new = await svc.knowledge.search(ADMIN, ["handbook"], "archive system seven years", 5, "keyword")
        assert new and "archive system" in new[0].text

    run(services, work)


def test_a_failed_reingest_keeps_the_previous_version_intact(services, tmp_path):
    """The replacement happens in one transaction after parsing: a file that no longer parses costs
    nothing that was already indexed."""
    report = make_pdf(tmp_path / "report.pdf", [[REVIEW, TRAVEL]], font="latin")
    good = report.read_bytes()

    async def work(svc):
        svc.knowledge.create_collection(ADMIN, "reports")
        first = await ingest(svc, "reports", [("report.pdf", report)])
        document_id = first["files"][0]["document_id"]
        before = index_state(svc, document_id)
        assert before["chunks"]

        report.write_bytes(good[:300])  # truncated, as an interrupted copy leaves it
        broken = await ingest(svc, "reports", [("report.pdf", report)])
        assert broken["status"] == "done"
        assert [f["status"] for f in broken["files"]] == ["error"]
        assert broken["files"][0]["error"]
        assert index_state(svc, document_id) == before
        hits = await svc.knowledge.search(ADMIN, ["reports"], "travel policy line manager", 5, "hybrid")
        assert hits and hits[0].document_id == document_id

    run(services, work)


def test_deleting_documents_and_collections_leaves_no_index_rows_and_releases_originals(services, tmp_path):
    shared = make_text(tmp_path / "shared.txt", [REVIEW, ARCHIVE])
    only_a = make_docx(tmp_path / "policy.docx", [Heading("Travel"), Para(TRAVEL), Para(SAMPLES["fr"][1])])
    only_b = make_text(tmp_path / "hindi.txt", SAMPLES["hi"])

    async def work(svc):
        home = svc.settings.home_dir
        knowledge = svc.knowledge
        knowledge.create_collection(ADMIN, "alpha")
        knowledge.create_collection(ADMIN, "beta")
        view_a = await ingest(svc, "alpha", [("shared.txt", shared), ("policy.docx", only_a)])
        view_b = await ingest(svc, "beta", [("shared.txt", shared), ("hindi.txt", only_b)])
        assert view_a["totals"]["indexed"] == 2 and view_b["totals"]["indexed"] == 2
        assert stored_files(home) == {sha256_file(p) for p in (shared, only_a, only_b)}
        alpha_id, beta_id = (sql(svc, "SELECT id FROM collections WHERE name = :n", n=n)[0][0]
                             for n in ("alpha", "beta"))
        beta_chunks = ids(svc, "SELECT id FROM chunks WHERE collection_id = :c", c=beta_id)

        # Delete one document: its rows go everywhere; its original goes, since nothing else uses it.
        policy = next(f for f in view_a["files"] if f["name"] == "policy.docx")
        state = index_state(svc, policy["document_id"])
        deleted = knowledge.delete_document(ADMIN, "alpha", policy["document_id"])
        assert deleted["deleted"] and deleted["chunks"] == len(state["chunks"]) > 0
        assert deleted["reindex_job"] is None
        for table, rows in state.items():
            assert rows and not all_rows(svc, table) & rows, table
        fingerprint_ids = row_ids(state, "paragraph_fingerprints")
        assert not ids(svc, "SELECT fingerprint_id FROM paragraph_bands") & fingerprint_ids
        assert sha256_file(only_a) not in stored_files(home)
        hits = await knowledge.search(ADMIN, ["alpha"], "line manager approval booking", 10, "keyword")
        assert not hits_containing(hits, "line manager")

        # Delete a collection: nothing of it is left in any table; the file it shares with beta stays.
        shared_doc = next(f for f in view_a["files"] if f["name"] == "shared.txt")
        alpha_chunks = row_ids(index_state(svc, shared_doc["document_id"]), "chunks")
        assert alpha_chunks
        result = knowledge.delete_collection(ADMIN, "alpha")
        assert result["documents"] == 1 and result["chunks"] == len(alpha_chunks)
        for table in ("documents", "chunks", "chunk_vectors", "paragraph_fingerprints", "paragraph_bands",
                      "ingest_jobs", "collection_grants"):
            assert sql(svc, f"SELECT count(*) FROM {table} WHERE collection_id = :c", c=alpha_id)[0][0] == 0, table
        assert not fts_ids(svc) & alpha_chunks
        assert fts_ids(svc) == vector_ids(svc) == beta_chunks  # beta untouched
        assert stored_files(home) == {sha256_file(shared), sha256_file(only_b)}

        knowledge.delete_collection(ADMIN, "beta")
        for table in ("documents", "chunks", "chunk_terms", "chunk_vectors", "paragraph_fingerprints",
                      "paragraph_bands", "duplicate_sources", "ingest_jobs", "ingest_job_files"):
            assert sql(svc, f"SELECT count(*) FROM {table}")[0][0] == 0, table
        assert stored_files(home) == set()
        assert await knowledge.search(ADMIN, None, "quarterly review", 10, "hybrid") == []

    run(services, work)


def test_exact_and_near_duplicate_paragraphs_are_skipped_and_counted(services, tmp_path):
    first = make_text(tmp_path / "first.txt", [REVIEW, TRAVEL, REVIEW, ARCHIVE])  # one exact copy inside
    second = make_markdown(tmp_path / "second.md", "\n\n".join(
        ["# Reminders", TRAVEL_NEAR, SAMPLES["fr"][0], REVIEW_RESHAPED]) + "\n")  # two copies of first.txt
    # The variants really are different texts, and really are near copies.
    near = dedup.fingerprint(TRAVEL_NEAR)
    assert near.exact_hash != dedup.fingerprint(TRAVEL).exact_hash
    assert near.similarity(dedup.fingerprint(TRAVEL).minhash) >= dedup.NEAR_DUPLICATE_JACCARD
    assert dedup.fingerprint(REVIEW_RESHAPED).exact_hash == dedup.fingerprint(REVIEW).exact_hash

    async def work(svc):
        knowledge = svc.knowledge
        knowledge.create_collection(ADMIN, "memos")
        view = await ingest(svc, "memos", [("first.txt", first), ("second.md", second)])
        assert view["status"] == "done"
        by_name = {f["name"]: f for f in view["files"]}
        assert by_name["first.txt"]["duplicates_skipped"] == 1
        assert by_name["second.md"]["duplicates_skipped"] == 2
        assert view["totals"]["duplicates_skipped"] == 3
        documents = {d["name"]: d for d in knowledge.list_documents(ADMIN, "memos")}
        assert documents["first.txt"]["duplicates_skipped"] == 1
        assert documents["second.md"]["duplicates_skipped"] == 2
        stored = sql(svc, "SELECT name, duplicate_paragraphs FROM documents ORDER BY name")
        assert stored == [("first.txt", 1), ("second.md", 2)]
        # Only paragraphs that were kept are fingerprinted: 3 from first.txt, 1 from second.md.
        assert sql(svc, "SELECT count(*) FROM paragraph_fingerprints")[0][0] == 4

        all_text = "\n".join(row[0] for row in sql(svc, "SELECT text FROM chunks"))
        assert all_text.casefold().count("quarterly review") == 1
        assert all_text.count("Economy c") == 1  # "class" or "cabin": the paragraph is indexed once
        assert "réunion mensuelle" in all_text  # the new paragraph of second.md is not lost
        for mode in ("keyword", "dense", "hybrid"):
            hits = await knowledge.search(ADMIN, ["memos"], "Economy class flights shorter than six hours", 10, mode)
            found = hits_containing(hits, "economy c")
            assert len(found) == 1, mode
            assert found[0].document_name == "first.txt"
            hits = await knowledge.search(ADMIN, ["memos"], "quarterly review meeting", 10, mode)
            assert len(hits_containing(hits, "quarterly review")) == 1, mode

    run(services, work)


def test_deleting_the_source_of_skipped_duplicates_reindexes_the_dependent(services, tmp_path):
    source = make_text(tmp_path / "source.txt", [TRAVEL, ARCHIVE])
    dependent = make_text(tmp_path / "dependent.txt", [TRAVEL, SAMPLES["fr"][1]])

    async def work(svc):
        knowledge = svc.knowledge
        knowledge.create_collection(ADMIN, "travel")
        view = await ingest(svc, "travel", [("source.txt", source), ("dependent.txt", dependent)])
        by_name = {f["name"]: f for f in view["files"]}
        dependent_id = by_name["dependent.txt"]["document_id"]
        assert by_name["dependent.txt"]["duplicates_skipped"] == 1
        hits = await knowledge.search(ADMIN, ["travel"], "travel policy line manager booking", 10, "keyword")
        assert [h.document_name for h in hits_containing(hits, "line manager")] == ["source.txt"]

        deleted = knowledge.delete_document(ADMIN, "travel", by_name["source.txt"]["document_id"])
        assert deleted["reindex_job"]
        # The dependent's original is still needed by the queued re-index job.
        assert sha256_file(dependent) in stored_files(svc.settings.home_dir)
        reindex = await run_job(svc, deleted["reindex_job"])
        assert reindex["status"] == "done"
        assert [(f["name"], f["status"], f["document_id"]) for f in reindex["files"]] == \
               [("dependent.txt", "replaced", dependent_id)]
        documents = knowledge.list_documents(ADMIN, "travel")
        assert [(d["name"], d["duplicates_skipped"]) for d in documents] == [("dependent.txt", 0)]
        for mode in ("keyword", "hybrid"):
            hits = await knowledge.search(ADMIN, ["travel"], "travel policy line manager booking", 10, mode)
            found = hits_containing(hits, "line manager")
            assert [h.document_name for h in found] == ["dependent.txt"], mode
        assert sql(svc, "SELECT count(*) FROM duplicate_sources")[0][0] == 0
        assert stored_files(svc.settings.home_dir) == {sha256_file(dependent)}

    run(services, work)


def test_replacing_the_source_of_skipped_duplicates_keeps_the_paragraph_findable(services, tmp_path):
    """A new version of the source that no longer has the shared paragraph must not make it vanish from
    the document that skipped it."""
    source = make_text(tmp_path / "source.txt", [TRAVEL, ARCHIVE])
    dependent = make_text(tmp_path / "dependent.txt", [TRAVEL, SAMPLES["fr"][1]])

    async def work(svc):
        knowledge = svc.knowledge
        knowledge.create_collection(ADMIN, "travel")
        view = await ingest(svc, "travel", [("source.txt", source), ("dependent.txt", dependent)])
        assert {f["name"]: f["duplicates_skipped"] for f in view["files"]} == {"source.txt": 0, "dependent.txt": 1}

        make_text(source, [ARCHIVE, SAMPLES["en"][0]])  # the travel paragraph is gone from the source
        replaced = await ingest(svc, "travel", [("source.txt", source)])
        # The dependent is re-indexed in full as part of the same job.
        assert [(f["name"], f["status"]) for f in replaced["files"]] == \
               [("source.txt", "replaced"), ("dependent.txt", "replaced")]
        assert replaced["status"] == "done" and knowledge.jobs.unfinished() == []
        documents = {d["name"]: d["duplicates_skipped"] for d in knowledge.list_documents(ADMIN, "travel")}
        assert documents == {"source.txt": 0, "dependent.txt": 0}
        hits = await knowledge.search(ADMIN, ["travel"], "travel policy line manager booking", 10, "keyword")
        assert [h.document_name for h in hits_containing(hits, "line manager")] == ["dependent.txt"]

    run(services, work)


def test_corrupt_and_unsupported_files_fail_alone(services, tmp_path):
    good_pdf = make_pdf(tmp_path / "good.pdf", [[ARCHIVE]], font="latin")
    corrupt = make_corrupt_pdf(tmp_path / "broken.pdf", good_pdf)
    unsupported = tmp_path / "data.xyz"
    unsupported.write_text("quarterly numbers that no parser claims\n", encoding="utf-8")
    docx = make_docx(tmp_path / "travel.docx", [Heading("Travel"), Para(TRAVEL)])
    text_file = make_text(tmp_path / "review.txt", [REVIEW])

    async def work(svc):
        knowledge = svc.knowledge
        knowledge.create_collection(ADMIN, "mixed")
        files = [("good.pdf", good_pdf), ("broken.pdf", corrupt), ("data.xyz", unsupported),
                 ("travel.docx", docx), ("review.txt", text_file)]
        view = await ingest(svc, "mixed", files)
        assert view["status"] == "done" and view["error"] is None
        status = {f["name"]: f["status"] for f in view["files"]}
        assert status == {"good.pdf": "indexed", "broken.pdf": "error", "data.xyz": "error",
                          "travel.docx": "indexed", "review.txt": "indexed"}
        errors = {f["name"]: f["error"] for f in view["files"] if f["status"] == "error"}
        assert ".xyz" in errors["data.xyz"]
        assert errors["broken.pdf"] and "broken.pdf" in errors["broken.pdf"]
        assert view["totals"]["errors"] == 2 and view["totals"]["indexed"] == 3
        assert view["totals"]["processed"] == 5
        documents = knowledge.list_documents(ADMIN, "mixed")
        assert sorted(d["name"] for d in documents) == ["good.pdf", "review.txt", "travel.docx"]
        assert all(d["chunks"] >= 1 for d in documents)
        hits = await knowledge.search(ADMIN, ["mixed"], "Economy class flights", 3, "hybrid")
        assert hits[0].document_name == "travel.docx"
        # Failed files leave no stored originals behind.
        assert stored_files(svc.settings.home_dir) == {sha256_file(p) for p in (good_pdf, docx, text_file)}

    run(services, work)


@pytest.fixture
def small_chunk_services(isolated_home):
    """Services with a small chunk budget, so a few pages make many chunks (some cut inside a page)."""
    svc = Services.open(Settings(home=isolated_home, chunk_units=64))
    yield svc
    svc.close()


def test_pdf_chunks_keep_their_page_and_offsets(small_chunk_services, tmp_path):
    services = small_chunk_services
    pages = [["# 社内規程", SAMPLES["ja"][0], SAMPLES["ja"][1]],
             [SAMPLES["ja"][2], SAMPLES["zh"][0]],
             [SAMPLES["zh"][1]],
             ["# 附則", SAMPLES["ja"][1].replace("経費", "交通費") + SAMPLES["ja"][0]]]
    pdf = make_pdf(tmp_path / "rules.pdf", pages)
    parsed = parse_file(pdf)
    assert parsed.pages == 4
    text = parsed.text

    def page_at(offset: int) -> int:
        block = next(b for b in parsed.blocks if b.start <= offset < b.end)
        return block.page

    async def work(svc):
        svc.knowledge.create_collection(ADMIN, "rules")
        view = await ingest(svc, "rules", [("rules.pdf", pdf)])
        assert view["files"][0]["status"] == "indexed" and view["files"][0]["pages"] == 4
        rows = sql(svc, "SELECT ordinal, text, page, page_end, start_offset, end_offset FROM chunks "
                        "ORDER BY ordinal")
        assert len(rows) >= 6
        assert [r[0] for r in rows] == list(range(len(rows)))
        covered = set()
        for ordinal, chunk_text, page, page_end, start, end in rows:
            assert text[start:end] == chunk_text, ordinal
            assert page == page_at(start), ordinal
            assert page_end == page_at(end - 1), ordinal
            covered.update(range(page, page_end + 1))
        assert covered == {1, 2, 3, 4}
        assert [r[4] for r in rows] == sorted(r[4] for r in rows)  # reading order
        [document] = svc.knowledge.list_documents(ADMIN, "rules")
        assert document["pages"] == 4 and document["chunks"] == len(rows)

        hits = await svc.knowledge.search(ADMIN, ["rules"], "交通費", 3, "keyword")
        assert hits and "交通費" in hits[0].text
        assert hits[0].page <= 4 <= hits[0].page_end
        assert text[hits[0].start:hits[0].end] == hits[0].text

    run(services, work)


MULTILINGUAL_QUERIES = {
    "ja": ("ja.pdf", "経費の精算"),
    "zh": ("zh.pdf", "图书馆借阅"),
    "ar": ("ar.html", "حماية البيانات الشخصية"),
    "hi": ("hi.txt", "प्रशिक्षण कार्यक्रम"),
    "fr": ("fr.md", "demandes de congé"),
    "en": ("en.docx", "travel policy approval"),
}


def test_a_multilingual_collection_answers_keyword_queries_in_every_language(services, tmp_path):
    files = [
        ("ja.pdf", make_pdf(tmp_path / "ja.pdf", [SAMPLES["ja"][:2], SAMPLES["ja"][2:]])),
        ("zh.pdf", make_pdf(tmp_path / "zh.pdf", [SAMPLES["zh"]], font="zh")),
        ("ar.html", make_html(tmp_path / "ar.html", title="اجتماع", heading="إعلان", paragraphs=SAMPLES["ar"],
                              lang="ar")),
        ("hi.txt", make_text(tmp_path / "hi.txt", SAMPLES["hi"])),
        ("fr.md", make_markdown(tmp_path / "fr.md", "# Équipe\n\n" + "\n\n".join(SAMPLES["fr"]) + "\n")),
        ("en.docx", make_docx(tmp_path / "en.docx", [Heading("Office"), *map(Para, SAMPLES["en"])])),
    ]

    async def work(svc):
        knowledge = svc.knowledge
        knowledge.create_collection(ADMIN, "world")
        view = await ingest(svc, "world", files)
        assert view["totals"]["indexed"] == 6, view["files"]
        languages = {d["name"]: d["language"] for d in knowledge.list_documents(ADMIN, "world")}
        assert languages == {name: language for language, (name, _) in MULTILINGUAL_QUERIES.items()}
        for language, (expected, query) in MULTILINGUAL_QUERIES.items():
            hits = await knowledge.search(ADMIN, ["world"], query, 5, "keyword")
            assert hits, language
            assert hits[0].document_name == expected, (language, [h.document_name for h in hits])
            assert hits[0].language == language

    run(services, work)


async def dense_view(services, collection: str, query: str) -> dict[str, float]:
    """document name → cosine similarity of its best chunk, as one process's dense search sees it."""
    hits = await services.knowledge.search(ADMIN, [collection], query, 10, "dense")
    return {hit.document_name: round(hit.similarity, 4) for hit in reversed(hits)}


async def fresh_view(settings: Settings, collection: str, query: str) -> dict[str, float]:
    """The same, from a process that has cached nothing."""
    fresh = Services.open(settings)
    try:
        return await dense_view(fresh, collection, query)
    finally:
        await fresh.host.close()
        fresh.close()


@pytest.mark.parametrize("ann_min_vectors", [1_000_000, 1], ids=["exact", "hnsw"])
def test_vector_search_never_serves_vectors_of_replaced_or_recreated_chunks(isolated_home, tmp_path, ann_min_vectors):
    """Two processes on one home (the server, and the CLI changing collections), each with its own in-memory
    vector cache. SQLite hands freed row ids out again, so a re-created collection or a replaced document's
    chunks come back under ids the cache already holds; the server must still see the new text.
    """
    settings = Settings(home=isolated_home, ann_min_vectors=ann_min_vectors)
    server, cli = Services.open(settings), Services.open(settings)
    query = "La réunion mensuelle de l'équipe aura lieu jeudi à quatorze heures"
    travel = make_text(tmp_path / "travel.txt", [TRAVEL])
    meeting = make_text(tmp_path / "meeting.txt", [SAMPLES["fr"][0]])

    async def work():
        for svc in (server, cli):
            svc.registry.seed_bundled()
        cli.knowledge.create_collection(ADMIN, "team")
        await ingest(cli, "team", [("notes.txt", travel)])
        before = await dense_view(server, "team", query)  # the server caches the collection's vectors

        # The same document now holds the meeting paragraph; its new chunk gets the freed id back.
        await ingest(cli, "team", [("notes.txt", meeting)])
        after = await fresh_view(settings, "team", query)
        assert after["notes.txt"] > before["notes.txt"] + 0.05  # the new text is much closer to the query
        assert await dense_view(server, "team", query) == after

        # Delete and re-create the collection, with as many writes as before: same id, same generation,
        # same chunk id, other text.
        cli.knowledge.delete_collection(ADMIN, "team")
        cli.knowledge.create_collection(ADMIN, "team")
        await ingest(cli, "team", [("notes.txt", meeting)])
        await ingest(cli, "team", [("notes.txt", travel)])
        recreated = await fresh_view(settings, "team", query)
        assert recreated == before
        assert await dense_view(server, "team", query) == recreated

    async def main():
        try:
            await work()
        finally:
            for svc in (server, cli):
                await svc.host.close()

    try:
        asyncio.run(main())
    finally:
        server.close()
        cli.close()
