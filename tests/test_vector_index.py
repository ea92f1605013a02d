"""The vector side of the index: exact search, and the approximate (HNSW) path for large collections,
which must agree with exact search and follow additions and deletions without a rebuild."""

from __future__ import annotations

import numpy as np

from shuken.knowledge.index import AnnIndexes


def _unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def _exact_top(ids, vectors, query, k):
    order = np.argsort(-(vectors @ query))[:k]
    return set(ids[order].tolist())


def test_ann_agrees_with_exact_search_and_follows_changes():
    rng = np.random.default_rng(7)
    centres = _unit(rng.normal(size=(40, 64)))
    vectors = _unit(centres[rng.integers(0, 40, size=3000)] + 0.3 * rng.normal(size=(3000, 64)))
    ids = np.arange(1000, 4000, dtype=np.int64)
    anns = AnnIndexes(min_vectors=1000)
    index = anns.update(1, ids, vectors)
    assert index is not None and len(index) == 3000

    queries = _unit(centres[:20] + 0.2 * rng.normal(size=(20, 64)))
    recall = np.mean([len(set(int(k) for k in index.search(q, 10).keys) & _exact_top(ids, vectors, q, 10)) / 10
                      for q in queries])
    assert recall >= 0.9

    # Next generation: 500 chunks deleted, 200 added. The same index object is updated in place.
    keep = np.ones(3000, dtype=bool)
    keep[:500] = False
    added_ids = np.arange(9000, 9200, dtype=np.int64)
    added = _unit(rng.normal(size=(200, 64)))
    ids2 = np.concatenate([ids[keep], added_ids])
    vectors2 = np.concatenate([vectors[keep], added])
    index2 = anns.update(1, ids2, vectors2)
    assert index2 is index and len(index2) == 2700
    found = {int(k) for k in index2.search(added[5], 5).keys}
    assert 9005 in found
    assert not found & set(ids[:500].tolist())


def test_small_collections_use_exact_search():
    anns = AnnIndexes(min_vectors=1000)
    vectors = _unit(np.random.default_rng(1).normal(size=(10, 8)))
    assert anns.update(1, np.arange(10, dtype=np.int64), vectors) is None
