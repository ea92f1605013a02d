"""Hybrid retrieval: keyword (bm25 over our terms) and dense (cosine) lists fused by a convex combination
of normalised scores, then an optional rerank stage. Permission is part of every query: the allowed
collections come from the same SQL rule (`access.readable_condition`) and are composed into each search,
never applied after.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Literal, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from shuken.governance.identity import Subject
from shuken.knowledge.access import readable_condition
from shuken.knowledge.index import AllowedCollection, SqliteIndex
from shuken.knowledge.languages import analyze_query
from shuken.store.tables import ChunkRow, CollectionRow, DocumentRow

Mode = Literal["hybrid", "keyword", "dense"]
KEYWORD_WEIGHT = 0.4  # share of the keyword score in hybrid fusion (tuned on JSQuAD + XQuAD zh; flat 0.3–0.5)
CANDIDATES = 50


@dataclass
class Hit:
    chunk_id: int
    score: float
    similarity: float | None = None  # cosine to the query, whichever list found it
    # filled from the database after fusion:
    document_id: int = 0
    document_name: str = ""
    collection: str = ""
    text: str = ""
    heading: str | None = None
    language: str = ""
    page: int | None = None
    page_end: int | None = None
    start: int = 0
    end: int = 0

    def as_api(self) -> dict:
        return {"document_id": self.document_id, "document_name": self.document_name, "chunk_id": self.chunk_id,
                "collection": self.collection, "score": round(self.score, 6), "text": self.text,
                "language": self.language, "heading": self.heading,
                "location": {"page": self.page, "page_end": self.page_end, "start": self.start, "end": self.end}}


class Reranker(Protocol):
    """An optional second stage (e.g. a cross-encoder) that reorders the fused candidates."""

    async def rerank(self, query: str, hits: list[Hit]) -> list[Hit]: ...


def fuse(keyword: list[tuple[int, float]], dense: list[tuple[int, float]],
         similarity: dict[int, float] | None) -> list[Hit]:
    """Convex combination of normalised scores: bm25 ÷ the best bm25 for this query, and cosine min-max
    scaled over the candidates. Measured on JSQuAD and XQuAD zh (docs/benchmarks.md) it beats reciprocal
    rank fusion (JSQuAD MRR@10 0.942 vs 0.930), because it keeps how far apart the scores are, not only
    their order; a weak keyword list (a cross-lingual question matching only numbers) adds little.

    `similarity`: cosine for every candidate (None in keyword-only mode)."""
    best = max((score for _, score in keyword), default=0.0)
    keyword_part = {chunk_id: score / best if best > 0 else 0.0 for chunk_id, score in keyword}
    candidates = dict.fromkeys([*keyword_part, *(chunk_id for chunk_id, _ in dense)])
    if similarity is None:
        hits = [Hit(chunk_id, keyword_part.get(chunk_id, 0.0)) for chunk_id in candidates]
        return sorted(hits, key=lambda h: -h.score)
    values = [similarity[chunk_id] for chunk_id in candidates if chunk_id in similarity]
    low, high = (min(values), max(values)) if values else (0.0, 0.0)
    keyword_weight = KEYWORD_WEIGHT if keyword else 0.0
    hits = []
    for chunk_id in candidates:
        cosine = similarity.get(chunk_id)
        dense_part = (cosine - low) / (high - low) if cosine is not None and high > low else 0.0
        score = keyword_weight * keyword_part.get(chunk_id, 0.0) + (1 - keyword_weight) * dense_part
        hits.append(Hit(chunk_id, score, similarity=cosine))
    return sorted(hits, key=lambda h: -h.score)


def allowed_collections(session: Session, subject: Subject,
                        collection_ids: list[int] | None) -> list[AllowedCollection]:
    query = select(CollectionRow.id, CollectionRow.generation).where(readable_condition(subject))
    if collection_ids is not None:
        query = query.where(CollectionRow.id.in_(collection_ids))
    return [AllowedCollection(i, g) for i, g in session.execute(query)]


async def _nothing() -> list:
    return []


class Retriever:
    def __init__(self, index: SqliteIndex, embedder, reranker: Reranker | None = None):
        self.index = index
        self.embedder = embedder
        self.reranker = reranker

    async def search(self, session_factory, subject: Subject, collection_ids: list[int] | None, query: str,
                     k: int, mode: Mode = "hybrid") -> list[Hit]:
        # The query embedding (~15 ms, both cores) overlaps only the permission lookup; then keyword search
        # (SQLite) and vector search (one BLAS thread, memory-bound) run side by side, one per core.
        embedding = asyncio.ensure_future(self.embedder.embed_query(query)) if mode != "keyword" else None
        depth = max(k, CANDIDATES)
        try:
            allowed = await asyncio.to_thread(self._allowed, session_factory, subject, collection_ids)
            vector = await embedding if embedding is not None else None
        finally:
            if embedding is not None and not embedding.done():
                embedding.cancel()
        if not allowed:
            return []
        keyword_search = (asyncio.to_thread(self._keyword_search, session_factory, allowed, query, depth)
                          if mode != "dense" else _nothing())
        vector_search = (asyncio.to_thread(self._vector_search, session_factory, allowed, vector, depth)
                         if vector is not None else _nothing())
        keyword, dense = await asyncio.gather(keyword_search, vector_search)
        hits = await asyncio.to_thread(self._fuse_and_load, session_factory, subject, allowed, keyword, dense,
                                       vector, mode, max(k, CANDIDATES if self.reranker else k))
        if self.reranker is not None:
            hits = await self.reranker.rerank(query, hits)
        return hits[:k]

    @staticmethod
    def _allowed(session_factory, subject: Subject, collection_ids: list[int] | None) -> list[AllowedCollection]:
        with session_factory() as session:
            return allowed_collections(session, subject, collection_ids)

    def _keyword_search(self, session_factory, allowed: list[AllowedCollection], query: str,
                        depth: int) -> list[tuple[int, float]]:
        terms = analyze_query(query)
        if not terms:
            return []
        with session_factory() as session:
            return self.index.keyword_search(session, allowed, terms, depth)

    def _vector_search(self, session_factory, allowed: list[AllowedCollection], vector,
                       depth: int) -> list[tuple[int, float]]:
        with session_factory() as session:
            return self.index.vector_search(session, allowed, vector, depth)

    def _fuse_and_load(self, session_factory, subject: Subject, allowed: list[AllowedCollection],
                       keyword: list[tuple[int, float]], dense: list[tuple[int, float]], vector, mode: Mode,
                       keep: int) -> list[Hit]:
        with session_factory() as session:
            similarity = None
            if vector is not None:
                similarity = dict(dense)
                missing = [chunk_id for chunk_id, _ in keyword if chunk_id not in similarity]
                similarity.update(self.index.similarities(session, allowed, vector, missing))
            if mode == "dense":  # plain cosine order, scores stay cosines
                hits = [Hit(chunk_id, score, similarity=score) for chunk_id, score in dense]
            else:
                hits = fuse(keyword, dense, similarity)
            return self._load(session, subject, hits[:keep])

    @staticmethod
    def _load(session: Session, subject: Subject, hits: list[Hit]) -> list[Hit]:
        """Fill in text and provenance, dropping chunks deleted meanwhile; the permission rule is composed in
        here too (defence in depth)."""
        if not hits:
            return hits
        rows = session.execute(
            select(ChunkRow, DocumentRow.name, CollectionRow.name)
            .join(DocumentRow, DocumentRow.id == ChunkRow.document_id)
            .join(CollectionRow, CollectionRow.id == ChunkRow.collection_id)
            .where(ChunkRow.id.in_([h.chunk_id for h in hits]), readable_condition(subject))
        ).all()
        by_id = {chunk.id: (chunk, document, collection) for chunk, document, collection in rows}
        kept = []
        for hit in hits:
            found = by_id.get(hit.chunk_id)
            if found is None:  # deleted meanwhile
                continue
            chunk, hit.document_name, hit.collection = found
            hit.document_id, hit.text, hit.heading, hit.language = (chunk.document_id, chunk.text, chunk.heading,
                                                                    chunk.language)
            hit.page, hit.page_end = chunk.page, chunk.page_end
            hit.start, hit.end = chunk.start_offset, chunk.end_offset
            kept.append(hit)
        return kept
