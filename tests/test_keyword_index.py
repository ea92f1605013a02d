"""The keyword side of the index: bm25 confined to the allowed collections inside the FTS5 query itself,
scope tokens that never act as terms, common-term pruning, and migration 0003 keeping old rows searchable."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from sqlalchemy import select

from knowledge_support import ADMIN, ingest, sql
from shuken.knowledge import index as index_module
from shuken.knowledge.index import scope_token
from shuken.knowledge.languages import analyze_query
from shuken.knowledge.retrieval import allowed_collections
from shuken.store.tables import CollectionRow

TOPICS = ["boiler pressure valves", "roof gutters and drains", "elevator cables", "fire extinguishers",
          "parking lot lighting", "zeppelin hangar doors", "kitchen ventilation hoods", "server room cooling",
          "loading dock ramps", "emergency generator fuel"]


def _ingest_texts(services, collection: str, texts: dict[str, str], directory: Path) -> None:
    services.registry.seed_bundled()
    services.knowledge.create_collection(ADMIN, collection)
    files = []
    for name, body in texts.items():
        path = directory / name
        path.write_text(body)
        files.append((name, path))

    async def run():
        try:
            await ingest(services, collection, files)
        finally:
            await services.host.close()

    asyncio.run(run())


def _notes(prefix: str) -> dict[str, str]:
    # distinct enough that none is a near-duplicate of another
    return {f"{prefix}{number}.txt": f"Quarterly check of the {topic}, done by team {number * 7 + 3}."
            for number, topic in enumerate(TOPICS)}


def _search(services, collections: list[str], query: str) -> list[tuple[int, float]]:
    with services.db.session() as session:
        ids = list(session.scalars(select(CollectionRow.id).where(CollectionRow.name.in_(collections))))
        allowed = allowed_collections(session, ADMIN, ids) if ids else []
        return services.knowledge.index.keyword_search(session, allowed, analyze_query(query), 50)


def _collection_of(services, chunk_ids) -> set[str]:
    return {name for (name,) in sql(services, "SELECT c.name FROM chunks k JOIN collections c ON c.id = "
                                              f"k.collection_id WHERE k.id IN ({','.join(map(str, chunk_ids))})")}


def test_keyword_search_stays_inside_the_allowed_collections(services, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _ingest_texts(services, "alpha", _notes("alpha"), tmp_path / "a")
    _ingest_texts(services, "beta", {**_notes("beta"), "cabinet.txt": "Cabinet C1 holds the zeppelin manuals."},
                  tmp_path / "b")
    alpha_id = sql(services, "SELECT id FROM collections WHERE name = 'alpha'")[0][0]
    assert scope_token(alpha_id) == "c1"

    only_alpha = _search(services, ["alpha"], "quarterly check")
    assert len(only_alpha) == len(TOPICS) and _collection_of(services, [c for c, _ in only_alpha]) == {"alpha"}
    both = _search(services, ["alpha", "beta"], "quarterly check")
    assert len(both) == 2 * len(TOPICS) and _collection_of(services, [c for c, _ in both]) == {"alpha", "beta"}
    assert _search(services, [], "quarterly check") == []

    # "c1" is a word of one beta document, and also alpha's scope token: only the word is found.
    word = _search(services, ["alpha", "beta"], "C1")
    assert len(word) == 1 and _collection_of(services, [word[0][0]]) == {"beta"}
    assert _search(services, ["alpha"], "C1") == []
    frequency = dict(sql(services, "SELECT term, doc FROM chunk_terms_vocab WHERE col = 'terms'"))
    assert frequency["c1"] == 1 and "c2" not in frequency


def test_large_keyword_queries_keep_only_the_rarer_terms(services, monkeypatch, tmp_path):
    """A term in most chunks of a large index costs a long posting-list walk and barely ranks: it is dropped
    from the query, unless nothing would be left; past MAX_QUERY_TERMS only the rarest terms are kept."""
    _ingest_texts(services, "notes", {**_notes("note"), "extra.txt": "Zeppelin hangar doors, second check."},
                  tmp_path)
    choose = services.knowledge.index._query_terms
    with services.db.session() as session:
        assert choose(session, ["quarter", "zeppelin", "quarter"]) == ["quarter", "zeppelin"]  # small: all
        monkeypatch.setattr(index_module, "PRUNE_FROM_CHUNKS", 5)
        assert choose(session, ["quarter", "zeppelin"]) == ["zeppelin"]
        assert choose(session, ["quarter", "check"]) in (["quarter"], ["check"])  # both common: the rarer stays
        monkeypatch.setattr(index_module, "MAX_QUERY_TERMS", 2)
        # document frequencies: zeppelin 2, hangar 2, boiler 1, elev 1; the two rarest stay, in query order
        assert choose(session, ["zeppelin", "boiler", "hangar", "elev"]) == ["boiler", "elev"]


def test_migration_0003_keeps_existing_chunks_searchable_both_ways(services, tmp_path):
    _ingest_texts(services, "notes", _notes("note"), tmp_path)
    before = _search(services, ["notes"], "zeppelin hangar check")
    assert len(before) == len(TOPICS)
    config = services.db.alembic_config()
    command.downgrade(config, "0002")
    columns = [row[1] for row in sql(services, "PRAGMA table_info(chunk_terms)")]
    assert columns == ["terms"]
    assert len(sql(services, "SELECT rowid FROM chunk_terms WHERE chunk_terms MATCH 'zeppelin'")) == 1
    command.upgrade(config, "head")
    assert [row[1] for row in sql(services, "PRAGMA table_info(chunk_terms)")] == ["terms", "scope"]
    after = _search(services, ["notes"], "zeppelin hangar check")
    assert [c for c, _ in after] == [c for c, _ in before]
    assert [round(s, 9) for _, s in after] == [round(s, 9) for _, s in before]
