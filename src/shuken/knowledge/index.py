"""The search index behind one narrow interface: keyword terms and dense vectors per chunk.

`SqliteIndex` is the embedded default: FTS5 (bm25) over our own normalised terms in the same SQLite
database, and vectors stored beside the chunks, searched exactly with NumPy from a per-collection matrix
that is reloaded when the collection's generation changes; past `ann_min_vectors` a usearch HNSW index
answers instead. A PostgreSQL + pgvector backend implements the same methods. Every search takes the
collections the permission query allowed and composes them into its own query: keyword rows carry their
collection as a `scope` token, matched inside the FTS5 expression, so no matching row is joined or filtered.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import Select, bindparam, column, delete, func, select, table, text
from sqlalchemy.orm import Session

from shuken.store.tables import ChunkVectorRow, DocumentRow

if TYPE_CHECKING:
    from usearch.index import Index

_fts = table("chunk_terms", column("rowid"), column("terms"), column("scope"))
_KEYWORD_SEARCH = text(
    # bm25 weights: the scope column only filters, it never scores. bm25() is lower-is-better.
    "SELECT rowid, bm25(chunk_terms, 1.0, 0.0) AS score FROM chunk_terms WHERE chunk_terms MATCH :match "
    "ORDER BY score LIMIT :limit")
_DOCUMENT_FREQUENCY = text(
    "SELECT term, doc FROM chunk_terms_vocab WHERE col = 'terms' AND term IN :terms").bindparams(
    bindparam("terms", expanding=True))
# In a large index a term found in more than this share of all chunks barely changes the ranking (its idf
# is near its floor) but makes FTS5 walk a huge posting list: such terms are left out of the query.
COMMON_TERM_SHARE = 0.10
PRUNE_FROM_CHUNKS = 20_000
MAX_QUERY_TERMS = 12  # distinct terms of a keyword query in a large index (questions rarely have more)
CHUNK_TOTAL_TTL_SECONDS = 30.0  # the pruning threshold needs the index size only roughly


def fts_query(terms: list[str]) -> str:
    """OR of quoted terms: FTS5 query syntax cannot be injected through a quoted string."""
    unique = dict.fromkeys(term.replace('"', '""') for term in terms if term)
    return " OR ".join(f'"{term}"' for term in unique)


def scope_token(collection_id: int) -> str:
    return f"c{int(collection_id)}"


def scoped_fts_query(terms: list[str], collection_ids: list[int]) -> str:
    """Any of the terms, in a chunk of one of the collections: the permission is part of the MATCH itself."""
    words = fts_query(terms)
    if not words or not collection_ids:
        return ""
    scopes = " OR ".join(f'"{scope_token(i)}"' for i in dict.fromkeys(collection_ids))
    return f"terms : ({words}) AND scope : ({scopes})"


@dataclass(frozen=True)
class AllowedCollection:
    id: int
    generation: int


@dataclass
class _Matrix:
    generation: int
    chunk_ids: np.ndarray  # int64[n]
    vectors: np.ndarray  # float32[n, d]
    row_of: dict[int, int]
    ann: Index | None = None  # a usearch HNSW index over the same vectors, for large collections


class AnnIndexes:
    """Approximate search (usearch HNSW, inner product on unit vectors) for collections past a size where
    exact search gets slow (~1M vectors; 100k exact is ~3–4 ms here). Kept in step incrementally: a new
    generation adds and removes only the changed chunk ids instead of rebuilding the graph."""

    def __init__(self, min_vectors: int):
        self.min_vectors = min_vectors
        self._by_collection: dict[int, tuple[Index, set[int]]] = {}

    def update(self, collection_id: int, chunk_ids: np.ndarray, vectors: np.ndarray) -> Index | None:
        if len(chunk_ids) < self.min_vectors:
            self._by_collection.pop(collection_id, None)
            return None
        from usearch.index import Index

        index, present = self._by_collection.get(collection_id) or (
            Index(ndim=vectors.shape[1], metric="ip", dtype="f32"), set())
        wanted = set(chunk_ids.tolist())
        gone = np.fromiter(present - wanted, dtype=np.uint64)
        if len(gone):
            index.remove(gone)
        new_rows = np.fromiter((i for i, c in enumerate(chunk_ids.tolist()) if c not in present), dtype=np.int64)
        if len(new_rows):
            index.add(chunk_ids[new_rows].astype(np.uint64), vectors[new_rows])
        self._by_collection[collection_id] = (index, wanted)
        return index

    def forget(self, collection_id: int) -> None:
        self._by_collection.pop(collection_id, None)


class SqliteIndex:
    def __init__(self, ann_min_vectors: int = 1_000_000) -> None:
        self._matrices: dict[int, _Matrix] = {}
        self._lock = threading.Lock()
        self._ann = AnnIndexes(ann_min_vectors)
        self._chunk_total: tuple[float, int] | None = None  # (monotonic time, chunks in all collections)

    # -- writes (inside the caller's transaction) -----------------------------------------------------
    def add_chunk(self, session: Session, chunk_id: int, collection_id: int, terms: list[str],
                  vector: np.ndarray) -> None:
        session.execute(_fts.insert().values(rowid=chunk_id, terms=" ".join(terms),
                                             scope=scope_token(collection_id)))
        session.add(ChunkVectorRow(chunk_id=chunk_id, collection_id=collection_id,
                                   vector=np.asarray(vector, dtype=np.float32).tobytes()))

    def remove_chunks(self, session: Session, chunk_ids: Select) -> None:
        """Keyword entries are removed explicitly (FTS5 tables have no foreign keys); vectors cascade with
        their chunks but are deleted here too so the caller's order of deletes does not matter."""
        session.execute(delete(_fts).where(_fts.c.rowid.in_(chunk_ids)))
        session.execute(delete(ChunkVectorRow).where(ChunkVectorRow.chunk_id.in_(chunk_ids)))

    # -- reads ------------------------------------------------------------------------------------------
    def _total_chunks(self, session: Session) -> int:
        now = time.monotonic()
        cached = self._chunk_total
        if cached is None or now - cached[0] > CHUNK_TOTAL_TTL_SECONDS:
            total = session.execute(select(func.coalesce(func.sum(DocumentRow.chunk_count), 0))).scalar_one()
            cached = self._chunk_total = (now, total)
        return cached[1]

    def _query_terms(self, session: Session, terms: list[str]) -> list[str]:
        """In a large index: without the near-universal terms, and at most MAX_QUERY_TERMS of the rarest
        (a pasted paragraph would otherwise walk hundreds of posting lists); the rarest term stays if all
        are common."""
        unique = list(dict.fromkeys(terms))
        if len(unique) < 2:
            return unique
        total = self._total_chunks(session)
        if total < PRUNE_FROM_CHUNKS:
            return unique
        frequency: dict[str, int] = dict(session.execute(_DOCUMENT_FREQUENCY, {"terms": unique}).all())
        rarest_first = sorted(unique, key=lambda term: frequency.get(term, 0))
        common = COMMON_TERM_SHARE * total
        chosen = {term for term in rarest_first[:MAX_QUERY_TERMS] if frequency.get(term, 0) <= common}
        return [term for term in unique if term in chosen] or rarest_first[:1]

    def keyword_search(self, session: Session, allowed: list[AllowedCollection], terms: list[str],
                       limit: int) -> list[tuple[int, float]]:
        """bm25 over the allowed collections only (their ids come from the permission query), best first."""
        match = scoped_fts_query(self._query_terms(session, terms), [c.id for c in allowed])
        if not match:
            return []
        rows = session.execute(_KEYWORD_SEARCH, {"match": match, "limit": limit})
        return [(int(chunk_id), -float(score)) for chunk_id, score in rows]

    def _matrix(self, session: Session, collection: AllowedCollection) -> _Matrix:
        with self._lock:
            cached = self._matrices.get(collection.id)
            if cached is not None and cached.generation == collection.generation:
                return cached
        rows = session.execute(select(ChunkVectorRow.chunk_id, ChunkVectorRow.vector)
                               .where(ChunkVectorRow.collection_id == collection.id)
                               .order_by(ChunkVectorRow.chunk_id)).all()
        chunk_ids = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
        vectors = (np.frombuffer(b"".join(row[1] for row in rows), dtype=np.float32).reshape(len(rows), -1)
                   if rows else np.zeros((0, 0), dtype=np.float32))
        with self._lock:
            ann = self._ann.update(collection.id, chunk_ids, vectors)
            matrix = _Matrix(collection.generation, chunk_ids, vectors, {int(c): i for i, c in enumerate(chunk_ids)},
                             ann)
            self._matrices[collection.id] = matrix
        return matrix

    def vector_search(self, session: Session, allowed: list[AllowedCollection], query: np.ndarray,
                      limit: int) -> list[tuple[int, float]]:
        """Exact cosine search over the allowed collections only (their ids come from the permission query)."""
        found: list[tuple[int, float]] = []
        for collection in allowed:
            matrix = self._matrix(session, collection)
            if not len(matrix.chunk_ids):
                continue
            if matrix.ann is not None:
                found_ann = matrix.ann.search(query, min(limit, len(matrix.chunk_ids)))
                found.extend((int(key), float(1.0 - distance))  # usearch "ip" distance is 1 - dot product
                             for key, distance in zip(found_ann.keys, found_ann.distances, strict=True))
                continue
            scores = matrix.vectors @ query
            top = min(limit, len(scores))
            best = np.argpartition(-scores, top - 1)[:top]
            found.extend((int(matrix.chunk_ids[i]), float(scores[i])) for i in best)
        found.sort(key=lambda pair: -pair[1])
        return found[:limit]

    def similarities(self, session: Session, allowed: list[AllowedCollection], query: np.ndarray,
                     chunk_ids: list[int]) -> dict[int, float]:
        result: dict[int, float] = {}
        for collection in allowed:
            matrix = self._matrix(session, collection)
            for chunk_id in chunk_ids:
                row = matrix.row_of.get(chunk_id)
                if row is not None:
                    result[chunk_id] = float(matrix.vectors[row] @ query)
        return result

    def forget(self, collection_id: int) -> None:
        with self._lock:
            self._matrices.pop(collection_id, None)
            self._ann.forget(collection_id)
