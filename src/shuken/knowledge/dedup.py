"""Exact and near-duplicate paragraph detection (MinHash with LSH banding), within and across documents.

datasketch computes the MinHash signatures and picks the band/row split for a Jaccard threshold; the
bands live in the database (`paragraph_bands`), so candidates are found with one indexed query per
paragraph, however large the collection, and the check survives restarts. Only paragraphs are compared:
headings and very short lines ("Summary", table headers) legitimately repeat.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from functools import cache, cached_property

import numpy as np
from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from shuken.store.tables import ParagraphBandRow, ParagraphFingerprintRow

NUM_PERM = 64
NEAR_DUPLICATE_JACCARD = 0.8
MIN_CHARS = 40  # shorter paragraphs are never treated as duplicates
SHINGLE = 5  # character shingles work in every script without a tokeniser

_SPACE_OR_PUNCT = re.compile(r"[\s\W_]+", re.UNICODE)


@cache
def band_shape() -> tuple[int, int]:
    """(bands, rows per band) that datasketch picks for the threshold. datasketch (and SciPy under it) is
    imported only when ingesting: every `shuken` command would otherwise pay ~0.4 s for it."""
    from datasketch import MinHashLSH

    lsh = MinHashLSH(threshold=NEAR_DUPLICATE_JACCARD, num_perm=NUM_PERM)
    return lsh.b, lsh.r


def normalise(text: str) -> str:
    return _SPACE_OR_PUNCT.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


@dataclass(frozen=True)
class Fingerprint:
    exact_hash: str
    minhash: np.ndarray  # uint64[NUM_PERM]

    @cached_property
    def bands(self) -> list[int]:
        bands, rows = band_shape()
        return [int.from_bytes(hashlib.blake2b(self.minhash[b * rows:(b + 1) * rows].tobytes(),
                                               digest_size=8).digest(), "big", signed=True)
                for b in range(bands)]

    def similarity(self, other_minhash: np.ndarray) -> float:
        return float(np.count_nonzero(self.minhash == other_minhash)) / NUM_PERM


def fingerprint(text: str) -> Fingerprint | None:
    """None for paragraphs too short to judge."""
    normal = normalise(text)
    if len(normal) < MIN_CHARS:
        return None
    from datasketch import MinHash

    shingles = {normal[i:i + SHINGLE].encode() for i in range(len(normal) - SHINGLE + 1)}
    minhash = MinHash(num_perm=NUM_PERM)
    minhash.update_batch(list(shingles))
    return Fingerprint(hashlib.sha256(normal.encode()).hexdigest(), minhash.hashvalues.astype(np.uint64))


@dataclass(frozen=True)
class Match:
    document_id: int | None  # None: an earlier paragraph of the same document


class DuplicateFinder:
    """Finds each paragraph's earlier copy in the collection (excluding one document being replaced)
    or earlier in the same document."""

    def __init__(self, session: Session, collection_id: int, exclude_document_id: int | None):
        self.session = session
        self.collection_id = collection_id
        self.exclude = exclude_document_id
        self._own: list[Fingerprint] = []
        self._own_exact: set[str] = set()
        self._own_bands: set[tuple[int, int]] = set()

    def check(self, fp: Fingerprint) -> Match | None:
        if fp.exact_hash in self._own_exact:
            return Match(None)
        bands = list(enumerate(fp.bands))
        if any(band in self._own_bands for band in bands) and any(
                fp.similarity(own.minhash) >= NEAR_DUPLICATE_JACCARD for own in self._own):
            return Match(None)
        found = self._find_stored(fp, bands)
        if found is None:
            self._own.append(fp)
            self._own_exact.add(fp.exact_hash)
            self._own_bands.update(bands)
        return found

    def _scope(self, query):
        query = query.where(ParagraphFingerprintRow.collection_id == self.collection_id)
        if self.exclude is not None:
            query = query.where(ParagraphFingerprintRow.document_id != self.exclude)
        return query

    def _find_stored(self, fp: Fingerprint, bands: list[tuple[int, int]]) -> Match | None:
        exact = self.session.scalar(self._scope(
            select(ParagraphFingerprintRow.document_id).where(ParagraphFingerprintRow.exact_hash == fp.exact_hash)
        ).limit(1))
        if exact is not None:
            return Match(exact)
        candidates = self.session.execute(self._scope(
            select(ParagraphFingerprintRow.document_id, ParagraphFingerprintRow.minhash)
            .join(ParagraphBandRow, ParagraphBandRow.fingerprint_id == ParagraphFingerprintRow.id)
            .where(ParagraphBandRow.collection_id == self.collection_id,
                   tuple_(ParagraphBandRow.band, ParagraphBandRow.band_hash).in_(bands))
        ).distinct())
        for document_id, stored in candidates:
            if fp.similarity(np.frombuffer(stored, dtype=np.uint64)) >= NEAR_DUPLICATE_JACCARD:
                return Match(document_id)
        return None


def store_fingerprints(session: Session, collection_id: int, document_id: int, fingerprints: list[Fingerprint]):
    for fp in fingerprints:
        row = ParagraphFingerprintRow(collection_id=collection_id, document_id=document_id,
                                      exact_hash=fp.exact_hash, minhash=fp.minhash.tobytes())
        session.add(row)
        session.flush()
        session.add_all(ParagraphBandRow(fingerprint_id=row.id, band=band, collection_id=collection_id,
                                         band_hash=band_hash) for band, band_hash in enumerate(fp.bands))
