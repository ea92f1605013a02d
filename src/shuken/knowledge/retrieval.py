"""Hybrid retrieval: keyword (bm25 over our terms) and dense (cosine) lists fused by reciprocal rank fusion,
then an optional rerank stage. Permission is part of every query: the allowed collections come from the
same SQL rule (`access.readable_collection_ids`) and are composed into each search, never applied after.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from shuken.knowledge.access import Subject, readable_collection_ids, readable_condition
from shuken.knowledge.index import AllowedCollection, SqliteIndex
from shuken.knowledge.languages import analyze_query
from shuken.store.tables import ChunkRow, CollectionRow, DocumentRow

Mode = Literal["hybrid", "keyword", "dense"]
RRF_K = 60  # the constant from Cormack et al.; damps the influence of any single list's top ranks
CANDIDATES = 50


@dataclass
class Hit:
    chunk_id: int
    score: float
    keyword_rank: int | None = None
    dense_rank: int | None = None
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
    extra: dict = field(default_factory=dict)

    def as_api(self) -> dict:
        return {"document_id": self.document_id, "document_name": self.document_name, "chunk_id": self.chunk_id,
                "collection": self.collection, "score": round(self.score, 6), "text": self.text,
                "language": self.language, "heading": self.heading,
                "location": {"page": self.page, "page_end": self.page_end, "start": self.start, "end": self.end}}


class Reranker(Protocol):
    """An optional second stage (e.g. a cross-encoder) that reorders the fused candidates."""

    async def rerank(self, query: str, hits: list[Hit]) -> list[Hit]: ...


def fuse(lists: list[list[tuple[int, float]]]) -> list[Hit]:
    """Reciprocal rank fusion of ranked (chunk_id, score) lists."""
    hits: dict[int, Hit] = {}
    for list_index, ranked in enumerate(lists):
        for rank, (chunk_id, _score) in enumerate(ranked, start=1):
            hit = hits.setdefault(chunk_id, Hit(chunk_id, 0.0))
            hit.score += 1.0 / (RRF_K + rank)
            if list_index == 0:
                hit.keyword_rank = rank
            else:
                hit.dense_rank = rank
    return sorted(hits.values(), key=lambda h: -h.score)


def allowed_collections(session: Session, subject: Subject, collection_ids: list[int] | None) -> list[AllowedCollection]:
    query = select(CollectionRow.id, CollectionRow.generation).where(readable_condition(subject))
    if collection_ids is not None:
        query = query.where(CollectionRow.id.in_(collection_ids))
    return [AllowedCollection(i, g) for i, g in session.execute(query)]


class Retriever:
    def __init__(self, index: SqliteIndex, embedder, reranker: Reranker | None = None):
        self.index = index
        self.embedder = embedder
        self.reranker = reranker

    async def search(self, session_factory, subject: Subject, collection_ids: list[int] | None, query: str,
                     k: int, mode: Mode = "hybrid") -> list[Hit]:
        vector = await self.embedder.embed_query(query) if mode != "keyword" else None
        terms = analyze_query(query) if mode != "dense" else []
        with session_factory() as session:
            allowed = allowed_collections(session, subject, collection_ids)
            if not allowed:
                return []
            allowed_ids = readable_collection_ids(subject).where(CollectionRow.id.in_([c.id for c in allowed]))
            depth = max(k, CANDIDATES)
            keyword = self.index.keyword_search(session, allowed_ids, terms, depth) if terms else []
            dense = self.index.vector_search(session, allowed, vector, depth) if vector is not None else []
            hits = fuse([keyword, dense])[: max(k, CANDIDATES if self.reranker else k)]
            if vector is not None:
                sims = dict(dense)
                missing = [h.chunk_id for h in hits if h.chunk_id not in sims]
                sims.update(self.index.similarities(session, allowed, vector, missing))
                for hit in hits:
                    hit.similarity = sims.get(hit.chunk_id)
            self._load(session, subject, hits)
        if self.reranker is not None:
            hits = await self.reranker.rerank(query, hits)
        return hits[:k]

    @staticmethod
    def _load(session: Session, subject: Subject, hits: list[Hit]) -> None:
        """Fill text and provenance; the permission rule is composed in here too (defence in depth)."""
        if not hits:
            return
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
            hit.page, hit.page_end, hit.start, hit.end = chunk.page, chunk.page_end, chunk.start_offset, chunk.end_offset
            kept.append(hit)
        hits[:] = kept
