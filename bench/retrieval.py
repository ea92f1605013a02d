"""Retrieval benchmark: Shuken's keyword, dense and hybrid search against generic baselines, in one process.

Per dev set (JSQuAD valid for Japanese; XQuAD for English, Arabic, Hindi, Chinese) one run:

1. ingests every distinct paragraph as its own .txt file through the real pipeline (durable job, parse,
   de-duplicate, chunk, detect language, index terms, embed) into a fresh collection: chunks/s;
2. asks every question (or `--max-questions`, evenly spread) in each mode, interleaved question by
   question so background noise hits all alike, and scores the paragraph-level ranking: Recall@1/5/10
   and MRR@10 (a hit is right if its document is the question's paragraph; a ranked list is reduced to
   distinct documents first), plus query latency (including the query embedding);
   baselines in the same loop: whitespace-split BM25 exactly as generic toolkits do it by default
   (LangChain's BM25Retriever = `rank_bm25.BM25Okapi` over `text.split()`, top n by argsort), and the
   dense-only baseline, which is Shuken's own dense mode;
3. cross-lingual: English XQuAD questions against the Arabic, Hindi and Chinese collections;
4. calibrates the "nothing relevant found" threshold (`min_relevance`, compared with the cosine similarity
   of retrieved chunks): top-1 similarity of in-domain questions against out-of-domain ones (JSQuAD
   questions on XQuAD-en and back, plus hand-written off-topic questions) and a suggested threshold (the
   highest that keeps ≥ 99% of the in-domain questions of every language);
5. `--scale N`: query latency over a collection of N synthetic chunks inserted straight into the store
   (words sampled from the paragraphs' own word frequencies; vectors = real paragraph vectors + Gaussian
   noise), since embedding N real texts would take hours on a small CPU.

Steps 3 and 4 reuse the query vectors computed in step 2 (same text → same vector), so they cost no
embedding time; their latency is therefore not reported. Everything else goes through `KnowledgeService`.

`--quick` runs every step above on tiny data (the first few paragraphs of each set, a few questions, a
small synthetic collection) to show that the benchmark still works; its figures mean nothing and the latency
target is not judged. Exit status: 0, or 1 if a file failed to ingest or an ingestion job failed.

Run:    .venv/bin/python bench/retrieval.py [--max-questions 50] [--scale 100000] [--quick]   (--help for options)
Output: tables on stdout and bench/results/retrieval-<timestamp>.json ($SHUKEN_BENCH_RESULTS instead of
        bench/results if set). Needs rank_bm25 (test extra).
Data:   ../shared/data/jsquad and ../shared/data/xquad (CC BY-SA 4.0), read by bench/_datasets.py.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import os
import platform
import shlex
import sys
import tempfile
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.orm import aliased

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _datasets  # noqa: E402
from _datasets import OFF_TOPIC, DevSet  # noqa: E402
from _results import results_dir  # noqa: E402

from shuken.config import Settings  # noqa: E402
from shuken.governance.identity import Subject  # noqa: E402
from shuken.knowledge.ingest import bump_generation  # noqa: E402
from shuken.knowledge.languages import index_terms  # noqa: E402
from shuken.services import Services  # noqa: E402
from shuken.store.tables import ChunkRow, ChunkVectorRow, CollectionRow, DocumentRow, DuplicateSourceRow  # noqa: E402

OPERATOR = Subject.operator()  # an owner of the default workspace: may create, fill and search collections
K = 10
MODES = ("keyword", "dense", "hybrid")
BASELINE = "bm25-whitespace"
SYSTEM_LABELS = {BASELINE: "whitespace BM25 (baseline)", "dense": "dense only (baseline = Shuken dense)",
                 "keyword": "Shuken keyword", "hybrid": "Shuken hybrid"}
CROSS_LINGUAL_TARGETS = ("ar", "hi", "zh")
SCALE_QUESTIONS = 200  # default of --scale-questions
SCALE_WARMUP = 5
SCALE_CHUNKS_PER_DOCUMENT = 10
SCALE_BATCH_DOCUMENTS = 200
SCALE_BASE_VECTORS = 64  # real paragraph vectors per language that synthetic vectors scatter around
SCALE_NOISE_COSINE = 0.9  # expected cosine between a synthetic vector and its base vector
TARGET_HYBRID_P95_MS = 50.0
# --quick: enough of each set for every pass to have something to rank (an XQuAD paragraph carries ~5
# questions), and a synthetic collection of a few hundred chunks (the same insert and search code, one batch).
QUICK = {"paragraphs": 8, "max_questions": 8, "scale": 300, "scale_questions": 20}
console = Console(width=None if sys.stdout.isatty() else 150)


# -- measurement helpers ----------------------------------------------------------------------------------
def _cpu_ticks() -> tuple[int, int]:
    """(busy ticks of the whole machine, ticks of this process and its threads)."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, Path("/proc/stat").read_text().split()[1:9])
    fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    return user + nice + system + irq + softirq + steal, int(fields[11]) + int(fields[12])


class Phase:
    """Wall time of a phase and the CPU other processes used meanwhile (in cores; ~0 on a quiet machine).
    On 2 shared cores a busy neighbour inflates every latency, so each phase reports it."""

    log: dict[str, dict] = {}

    def __init__(self, name: str):
        self.name = name

    def __enter__(self) -> "Phase":
        self.started, (self.busy, self.ours) = time.monotonic(), _cpu_ticks()
        return self

    def __exit__(self, *exc) -> None:
        seconds = time.monotonic() - self.started
        busy, ours = _cpu_ticks()
        foreign = max(0.0, ((busy - self.busy) - (ours - self.ours)) / os.sysconf("SC_CLK_TCK") / max(seconds, 1e-9))
        Phase.log[self.name] = {"seconds": round(seconds, 1), "foreign_cpu_cores": round(foreign, 2)}
        console.print(f"[dim]{self.name}: {seconds:.0f} s, other processes used {foreign:.2f} cores[/dim]")


@contextmanager
def progress(description: str, total: int):
    """A rich progress bar; yields a function that advances it by one."""
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console) as bar:
        task = bar.add_task(description, total=total)
        yield lambda: bar.advance(task)


def quantiles(values: list[float], percents: tuple[float, ...]) -> dict[str, float | None]:
    if not values:
        return {f"p{p:g}": None for p in percents}
    return {f"p{p:g}": float(np.percentile(values, p)) for p in percents}


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


@dataclass
class Run:
    """One system's answers to one question set: ranks of the right paragraph (None: not in the top K),
    latencies, time spent embedding the query, and the best cosine similarity among the hits."""

    ranks: list[int | None] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    embed_seconds: list[float] = field(default_factory=list)
    top_similarity: list[float] = field(default_factory=list)

    def summary(self, latency: bool = True) -> dict:
        n = len(self.ranks)
        found = [r for r in self.ranks if r is not None]
        summary = {"questions": n, **{f"recall@{k}": sum(r <= k for r in found) / n for k in (1, 5, 10)},
                   "mrr@10": sum(1 / r for r in found) / n}
        if latency:
            ms = 1000 * np.asarray(self.seconds)
            summary.update(p50_ms=float(np.percentile(ms, 50)), p95_ms=float(np.percentile(ms, 95)))
            if any(self.embed_seconds):
                summary["embed_p50_ms"] = float(np.percentile(1000 * np.asarray(self.embed_seconds), 50))
        return summary


def rank_of(ranked_names: list[str], gold: set[str]) -> int | None:
    """1-based rank of the first right document among the distinct documents of a ranked list."""
    for rank, name in enumerate(dict.fromkeys(ranked_names), start=1):
        if rank > K:
            break
        if name in gold:
            return rank
    return None


# -- Shuken ------------------------------------------------------------------------------------------------
class RecordingEmbedder:
    """Wraps the retriever's embedder: times each query embedding and remembers its vector, so that the
    cross-lingual and calibration passes (`reuse = True`) need not embed a question a second time."""

    def __init__(self, inner):
        self.inner = inner
        self.vectors: dict[str, np.ndarray] = {}
        self.reuse = False
        self.last_seconds = 0.0

    async def embed_passages(self, texts: list[str]) -> np.ndarray:
        return await self.inner.embed_passages(texts)

    async def embed_query(self, text: str) -> np.ndarray:
        if self.reuse and text in self.vectors:
            self.last_seconds = 0.0
            return self.vectors[text]
        started = time.perf_counter()
        vector = await self.inner.embed_query(text)
        self.last_seconds = time.perf_counter() - started
        self.vectors[text] = vector
        return vector


def document_name(paragraph: int) -> str:
    return f"p{paragraph:05d}.txt"


@dataclass
class Collection:
    """An ingested dev set: its collection name and, per paragraph, the document names that count as right
    (its own, plus the document it was skipped in favour of if Shuken found it a near-duplicate)."""

    name: str
    gold_names: list[set[str]]
    stats: dict


def write_paragraph_files(devset: DevSet, directory: Path) -> list[tuple[str, Path]]:
    directory.mkdir(parents=True, exist_ok=True)
    files = []
    for index, text in enumerate(devset.paragraphs):
        path = directory / document_name(index)
        path.write_text(text + "\n", encoding="utf-8")
        files.append((path.name, path))
    return files


def duplicate_sources(svc: Services, collection: str) -> dict[str, set[str]]:
    """Document name → names of the documents whose paragraphs made Shuken skip some of its own."""
    source = aliased(DocumentRow)
    query = (select(DocumentRow.name, source.name)
             .join(DuplicateSourceRow, DuplicateSourceRow.document_id == DocumentRow.id)
             .join(source, source.id == DuplicateSourceRow.source_document_id)
             .join(CollectionRow, CollectionRow.id == DocumentRow.collection_id)
             .where(CollectionRow.name == collection))
    found: dict[str, set[str]] = {}
    with svc.db.session() as session:
        for name, source_name in session.execute(query):
            found.setdefault(name, set()).add(source_name)
    return found


async def ingest(svc: Services, devset: DevSet, directory: Path) -> Collection:
    knowledge = svc.knowledge
    name = f"bench-{devset.language}"
    knowledge.create_collection(OPERATOR, name, description=devset.name)
    files = write_paragraph_files(devset, directory / devset.language)
    outcomes = {}
    started = time.perf_counter()
    job_id = knowledge.submit_paths(OPERATOR, name, files)
    knowledge.jobs.claim(knowledge.runner.worker, job_id)  # ours: nobody else may take it
    with progress(f"ingesting {devset.name}", len(files)) as advance:
        def on_file(job_file, outcome):
            outcomes[job_file.name] = outcome
            advance()

        await knowledge.runner.run(job_id, on_file=on_file)
    seconds = time.perf_counter() - started
    job = knowledge.job(OPERATOR, job_id)
    if job["status"] != "done" or len(outcomes) != len(files):
        raise RuntimeError(f"ingesting {devset.name} failed: job {job['status']}, {len(outcomes)} of {len(files)} "
                           f"files processed, error: {job.get('error')}")
    chunks = sum(o.chunks for o in outcomes.values())
    errors = {n: o.error for n, o in outcomes.items() if o.status == "error"}
    sources = duplicate_sources(svc, name) if any(o.duplicates for o in outcomes.values()) else {}
    stats = {"paragraphs": len(files), "chunks": chunks, "seconds": seconds, "chunks_per_second": chunks / seconds,
             "paragraphs_per_second": len(files) / seconds, "errors": errors,
             "documents_with_skipped_duplicates": sum(bool(o.duplicates) for o in outcomes.values()),
             "documents_without_chunks": sum(o.chunks == 0 for o in outcomes.values())}
    gold = [{document_name(i)} | sources.get(document_name(i), set()) for i in range(len(files))]
    return Collection(name, gold, stats)


async def ask(svc: Services, embedder: RecordingEmbedder, collection: str, question: str, mode: str,
              gold: set[str], run: Run) -> None:
    embedder.last_seconds = 0.0
    started = time.perf_counter()
    hits = await svc.knowledge.search(OPERATOR, [collection], question, K, mode)
    run.seconds.append(time.perf_counter() - started)
    run.embed_seconds.append(embedder.last_seconds)
    run.ranks.append(rank_of([hit.document_name for hit in hits], gold))
    similarities = [hit.similarity for hit in hits if hit.similarity is not None]
    if similarities:
        run.top_similarity.append(max(similarities))


# -- the generic baseline ----------------------------------------------------------------------------------
class WhitespaceBM25:
    """LangChain's BM25Retriever with its defaults: rank_bm25.BM25Okapi (k1=1.5, b=0.75, epsilon=0.25) over
    `text.split()` of documents and query, top n by `np.argsort(scores)[::-1]`."""

    def __init__(self, paragraphs: list[str]):
        from rank_bm25 import BM25Okapi

        self.bm25 = BM25Okapi([paragraph.split() for paragraph in paragraphs])

    def ask(self, question: str, gold: int, run: Run) -> None:
        started = time.perf_counter()
        top = np.argsort(self.bm25.get_scores(question.split()))[::-1][:K]
        run.seconds.append(time.perf_counter() - started)
        run.ranks.append(rank_of([document_name(int(i)) for i in top], {document_name(gold)}))


# -- the passes ---------------------------------------------------------------------------------------------
async def evaluate_set(svc: Services, embedder: RecordingEmbedder, devset: DevSet, collection: Collection,
                       indices: list[int]) -> dict[str, Run]:
    """Every sampled question through every system, systems interleaved per question."""
    runs = {system: Run() for system in (BASELINE, *MODES)}
    baseline = WhitespaceBM25(devset.paragraphs)
    with progress(f"questions {devset.name}", len(indices)) as advance:
        for i in indices:
            question, gold = devset.questions[i], devset.gold[i]
            baseline.ask(question, gold, runs[BASELINE])
            for mode in MODES:
                await ask(svc, embedder, collection.name, question, mode, collection.gold_names[gold], runs[mode])
            advance()
    return runs


async def cross_lingual(svc: Services, embedder: RecordingEmbedder, english: DevSet, target: Collection,
                        indices: list[int]) -> dict[str, Run]:
    runs = {mode: Run() for mode in ("dense", "hybrid")}
    for i in indices:
        for mode, run in runs.items():
            await ask(svc, embedder, target.name, english.questions[i], mode, target.gold_names[english.gold[i]], run)
    return runs


async def top_similarities(svc: Services, embedder: RecordingEmbedder, collection: str,
                           questions: list[str]) -> list[float]:
    """Top-1 cosine similarity (dense mode) of each question against a collection."""
    run = Run()
    for question in questions:
        await ask(svc, embedder, collection, question, "dense", set(), run)
    return run.top_similarity


def suggest_threshold(in_domain: dict[str, list[float]]) -> float:
    """The highest threshold (in steps of 0.01) that keeps at least 99% of the in-domain questions of every
    language: similarities run higher in some languages, so a pooled percentile would fail the lowest one."""
    lowest = min(float(np.percentile(values, 1)) for values in in_domain.values() if values)
    return math.floor(lowest * 100) / 100


async def calibrate(svc: Services, embedder: RecordingEmbedder, sets: dict[str, DevSet],
                    collections: dict[str, Collection], indices: dict[str, list[int]],
                    in_domain: dict[str, list[float]], cross: dict[str, list[float]], current: float) -> dict:
    groups: dict[str, list[float]] = {}
    highest: dict[str, list] = {}  # the out-of-domain questions that look most relevant, for inspection

    async def out_of_domain(group: str, collection: str, questions: list[str]) -> None:
        similarities = await top_similarities(svc, embedder, collection, questions)
        groups.setdefault(group, []).extend(similarities)
        highest.setdefault(group, []).extend(zip(similarities, questions, [collection] * len(questions)))

    if "ja" in sets and "en" in sets:
        await out_of_domain("JSQuAD questions → XQuAD-en", collections["en"].name,
                            [sets["ja"].questions[i] for i in indices["ja"]])
        await out_of_domain("XQuAD-en questions → JSQuAD", collections["ja"].name,
                            [sets["en"].questions[i] for i in indices["en"]])
    for language, collection in collections.items():
        await out_of_domain("off-topic → every collection", collection.name, [q for _, q in OFF_TOPIC])
        await out_of_domain("off-topic → same-language collection", collection.name,
                            [q for question_language, q in OFF_TOPIC if question_language == language])

    pooled = [s for values in in_domain.values() for s in values]
    suggested = suggest_threshold(in_domain)

    def kept(values: list[float], threshold: float) -> float | None:
        return sum(v >= threshold for v in values) / len(values) if values else None

    def at(threshold: float) -> dict:
        return {"in_domain_kept": kept(pooled, threshold),
                "in_domain_kept_by_language": {lang: kept(v, threshold) for lang, v in in_domain.items()},
                "cross_lingual_kept": {pair: kept(v, threshold) for pair, v in cross.items()},
                "out_of_domain_rejected": {g: 1 - kept(v, threshold) for g, v in groups.items() if v}}

    return {
        "measure": "cosine similarity of the top dense hit (Hit.similarity of hits[0], mode=dense)",
        "in_domain": {"all": quantiles(pooled, (1, 5, 50)),
                      **{lang: quantiles(v, (1, 5, 50)) for lang, v in in_domain.items()}},
        "cross_lingual": {pair: quantiles(v, (1, 5, 50)) for pair, v in cross.items()},
        "out_of_domain": {g: {**quantiles(v, (50, 95, 99)), "max": max(v) if v else None, "n": len(v),
                              "highest": sorted(highest[g], reverse=True)[:5]}
                          for g, v in groups.items()},
        "suggested_threshold": suggested, "at_suggested": at(suggested),
        "current_setting": current, "at_current": at(current),
    }


# -- scale ---------------------------------------------------------------------------------------------------
def surface_words(text: str, language: str) -> list[str]:
    """Words as written (Japanese and Chinese segmented, others split at spaces), for re-assembling text."""
    if language == "ja":
        from shuken.knowledge.languages.japanese import JapaneseTokenizer

        return JapaneseTokenizer(form="surface", stop_words=False).terms(text)
    if language == "zh":
        from shuken.knowledge.languages.chinese import segmenter

        return [word for word in segmenter().lcut(text) if word.strip()]
    return text.split()


def synthetic_texts(sets: dict[str, DevSet], total: int, rng: np.random.Generator) -> list[tuple[str, str]]:
    """(text, language) chunks whose words follow the dev sets' own word frequencies (natural text is
    Zipf-distributed), 40–160 words each, languages in equal shares. The vocabulary is only the dev
    sets', so posting lists are denser than in a real corpus of this size: pessimistic for keyword search."""
    chunks: list[tuple[str, str]] = []
    languages = list(sets)
    for position, language in enumerate(languages):
        counts = Counter(w for paragraph in sets[language].paragraphs for w in surface_words(paragraph, language))
        words = np.array(list(counts))
        probabilities = np.array(list(counts.values()), dtype=np.float64)
        probabilities /= probabilities.sum()
        joiner = "" if language in ("ja", "zh") else " "
        share = total // len(languages) + (position < total % len(languages))
        for length in rng.integers(40, 161, size=share):
            chunks.append((joiner.join(rng.choice(words, size=length, p=probabilities)), language))
    order = rng.permutation(len(chunks))
    return [chunks[i] for i in order]


def base_vectors(svc: Services, collection: str, count: int, rng: np.random.Generator) -> np.ndarray:
    with svc.db.session() as session:
        blobs = session.scalars(select(ChunkVectorRow.vector).join(CollectionRow,
                                CollectionRow.id == ChunkVectorRow.collection_id)
                                .where(CollectionRow.name == collection)).all()
    vectors = np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(blobs), -1)
    return vectors[rng.choice(len(vectors), size=min(count, len(vectors)), replace=False)]


def synthetic_vectors(bases: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """Unit vectors scattered around randomly chosen base vectors, at cosine ≈ SCALE_NOISE_COSINE to them."""
    sigma = math.sqrt((1 / SCALE_NOISE_COSINE ** 2 - 1) / bases.shape[1])
    vectors = bases[rng.integers(len(bases), size=count)] + rng.normal(0, sigma, size=(count, bases.shape[1]))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def insert_synthetic(svc: Services, collection: str, chunks: list[tuple[str, str]], terms: list[list[str]],
                     vectors: np.ndarray) -> None:
    """Documents of SCALE_CHUNKS_PER_DOCUMENT chunks, written through the store's ORM rows and the index's
    own `add_chunk`, a batch per transaction; then the collection's generation is bumped."""
    knowledge = svc.knowledge
    with svc.db.session() as session:
        collection_id = session.scalar(select(CollectionRow.id).where(CollectionRow.name == collection))
    per_batch = SCALE_CHUNKS_PER_DOCUMENT * SCALE_BATCH_DOCUMENTS
    now = datetime.now(timezone.utc)
    with progress("inserting synthetic chunks", len(chunks)) as advance:
        for start in range(0, len(chunks), per_batch):
            with svc.db.session() as session:
                documents = []
                for first in range(start, min(start + per_batch, len(chunks)), SCALE_CHUNKS_PER_DOCUMENT):
                    texts = [text for text, _ in chunks[first:first + SCALE_CHUNKS_PER_DOCUMENT]]
                    body = "\n\n".join(texts).encode()
                    documents.append(DocumentRow(
                        collection_id=collection_id, name=f"synthetic/{first // SCALE_CHUNKS_PER_DOCUMENT:06d}.txt",
                        content_hash=hashlib.sha256(body).hexdigest(), size_bytes=len(body), format="txt",
                        language=chunks[first][1], pages=None, ocr_pages=0, chunk_count=len(texts),
                        duplicate_paragraphs=0, created_at=now, updated_at=now))
                session.add_all(documents)
                session.flush()
                rows = []
                for document_index, document in enumerate(documents):
                    first = start + document_index * SCALE_CHUNKS_PER_DOCUMENT
                    offset = 0
                    for ordinal, (text, language) in enumerate(chunks[first:first + document.chunk_count]):
                        rows.append(ChunkRow(document_id=document.id, collection_id=collection_id, ordinal=ordinal,
                                             text=text, language=language, start_offset=offset,
                                             end_offset=offset + len(text)))
                        offset += len(text) + 2
                session.add_all(rows)
                session.flush()
                for position, row in enumerate(rows, start=start):
                    knowledge.index.add_chunk(session, row.id, collection_id, terms[position], vectors[position])
                    advance()
    with svc.db.session() as session:
        bump_generation(session, collection_id)


async def scale_latency(svc: Services, embedder: RecordingEmbedder, sets: dict[str, DevSet],
                        collections: dict[str, Collection], total: int, question_total: int, seed: int,
                        judge_target: bool) -> dict:
    rng = np.random.default_rng(seed)
    name = "bench-scale"
    svc.knowledge.create_collection(OPERATOR, name, description=f"{total} synthetic chunks")
    started = time.perf_counter()
    chunks = synthetic_texts(sets, total, rng)
    generate_seconds = time.perf_counter() - started
    started = time.perf_counter()
    terms = [index_terms(text, language) for text, language in chunks]
    terms_seconds = time.perf_counter() - started
    bases = {lang: base_vectors(svc, collections[lang].name, SCALE_BASE_VECTORS, rng) for lang in sets}
    vectors = np.zeros((len(chunks), next(iter(bases.values())).shape[1]), dtype=np.float32)
    for language, lang_bases in bases.items():
        rows = [i for i, (_, chunk_language) in enumerate(chunks) if chunk_language == language]
        vectors[rows] = synthetic_vectors(lang_bases, len(rows), rng)
    started = time.perf_counter()
    insert_synthetic(svc, name, chunks, terms, vectors)
    insert_seconds = time.perf_counter() - started
    console.print(f"{total:,} synthetic chunks: text {generate_seconds:.0f} s, index_terms {terms_seconds:.0f} s, "
                  f"insert {insert_seconds:.0f} s")

    per_set = max(1, question_total // len(sets))
    questions = [s.questions[i] for s in sets.values() for i in s.sample(per_set)]
    embedder.reuse = False  # latency here must include the query embedding
    first = Run()
    await ask(svc, embedder, name, questions[0], "dense", set(), first)  # loads the vector matrix
    for question in questions[1:1 + SCALE_WARMUP]:
        for mode in MODES:
            await ask(svc, embedder, name, question, mode, set(), Run())
    runs = {mode: Run() for mode in MODES}
    with progress(f"{len(questions)} questions x {len(MODES)} modes over {total:,} chunks", len(questions)) as advance:
        for question in questions:
            for mode in MODES:
                await ask(svc, embedder, name, question, mode, set(), runs[mode])
            advance()
    latency = {}
    for mode, run in runs.items():
        search_ms = 1000 * (np.asarray(run.seconds) - np.asarray(run.embed_seconds))
        latency[mode] = {**{k: v for k, v in run.summary().items() if k.endswith("_ms")},
                         "search_only_p50_ms": float(np.percentile(search_ms, 50)),
                         "search_only_p95_ms": float(np.percentile(search_ms, 95))}
    return {"chunks": total, "questions": len(questions), "generate_seconds": generate_seconds,
            "index_terms_seconds": terms_seconds, "insert_seconds": insert_seconds,
            "first_dense_query_ms": 1000 * first.seconds[0],
            "matrix_load_ms_estimate": 1000 * first.seconds[0] - latency["dense"]["p50_ms"],
            "latency": latency, "target_hybrid_p95_ms": TARGET_HYBRID_P95_MS,
            "target_met": latency["hybrid"]["p95_ms"] <= TARGET_HYBRID_P95_MS if judge_target else None}


# -- report -------------------------------------------------------------------------------------------------
def fmt(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def print_report(results: dict) -> None:
    table = Table("set", "paragraphs", "chunks", "seconds", "chunks/s", "near-dup docs", "errors",
                  title="Ingestion (real pipeline: parse, dedup, chunk, terms, embed, write)")
    for language, stats in results["ingestion"].items():
        table.add_row(language, str(stats["paragraphs"]), str(stats["chunks"]), f"{stats['seconds']:.0f}",
                      f"{stats['chunks_per_second']:.2f}", str(stats["documents_with_skipped_duplicates"]),
                      str(len(stats["errors"])))
    console.print(table)

    table = Table("set", "system", "n", "R@1", "R@5", "R@10", "MRR@10", "p50 ms", "p95 ms", "embed p50",
                  title=f"Paragraph retrieval, k={K}")
    for language, systems in results["quality"].items():
        for system in (BASELINE, "dense", "keyword", "hybrid"):
            s = systems[system]
            table.add_row(language, SYSTEM_LABELS[system], str(s["questions"]), fmt(s["recall@1"]),
                          fmt(s["recall@5"]), fmt(s["recall@10"]), fmt(s["mrr@10"]), fmt(s["p50_ms"], 1),
                          fmt(s["p95_ms"], 1), fmt(s.get("embed_p50_ms"), 1))
        table.add_section()
    console.print(table)

    table = Table("set", *results["ratios"][next(iter(results["ratios"]))].keys(),
                  title="Ratios against the baselines run in the same process (quality >1: Shuken better; latency >1: slower; — : the baseline scored 0)")
    for language, ratios in results["ratios"].items():
        table.add_row(language, *(fmt(v, 2) for v in ratios.values()))
    console.print(table)

    if results["cross_lingual"]:
        table = Table("questions → documents", "mode", "R@1", "R@5", "R@10", "MRR@10", "R@5 ÷ monolingual",
                      title="Cross-lingual (English questions, same paragraph in another language)")
        for pair, modes in results["cross_lingual"].items():
            for mode, s in modes.items():
                table.add_row(pair, mode, fmt(s["recall@1"]), fmt(s["recall@5"]), fmt(s["recall@10"]),
                              fmt(s["mrr@10"]), fmt(s["r5_vs_monolingual"], 2))
        console.print(table)

    calibration = results["calibration"]
    table = Table("questions", "n", "p1", "p5", "p50", "p95", "p99", "max",
                  title=f"Top-1 cosine similarity ({calibration['measure']})")
    for label, q in calibration["in_domain"].items():
        table.add_row(f"in-domain {label}", "", fmt(q["p1"]), fmt(q["p5"]), fmt(q["p50"]), "", "", "")
    for pair, q in calibration["cross_lingual"].items():
        table.add_row(f"cross-lingual {pair}", "", fmt(q["p1"]), fmt(q["p5"]), fmt(q["p50"]), "", "", "")
    for group, q in calibration["out_of_domain"].items():
        table.add_row(f"out-of-domain: {group}", str(q["n"]), "", "", fmt(q["p50"]), fmt(q["p95"]), fmt(q["p99"]),
                      fmt(q["max"]))
    console.print(table)
    for key, label in (("suggested_threshold", "suggested"), ("current_setting", "current min_relevance")):
        at = calibration["at_suggested" if key == "suggested_threshold" else "at_current"]
        rejected = ", ".join(f"{g} {fmt(v, 3)}" for g, v in at["out_of_domain_rejected"].items())
        cross = ", ".join(f"{p} {fmt(v, 3)}" for p, v in at["cross_lingual_kept"].items())
        by_language = ", ".join(f"{lang} {fmt(v)}" for lang, v in at["in_domain_kept_by_language"].items())
        console.print(f"threshold {calibration[key]:.2f} ({label}): in-domain kept {fmt(at['in_domain_kept'])} "
                      f"({by_language}); cross-lingual kept: {cross or '—'}; out-of-domain rejected: {rejected}")

    scale = results.get("scale")
    if scale:
        table = Table("mode", "p50 ms", "p95 ms", "embed p50 ms", "search-only p50", "search-only p95",
                      title=f"Query latency over {scale['chunks']:,} synthetic chunks ({scale['questions']} questions)")
        for mode, s in scale["latency"].items():
            table.add_row(mode, fmt(s["p50_ms"], 1), fmt(s["p95_ms"], 1), fmt(s.get("embed_p50_ms"), 1),
                          fmt(s["search_only_p50_ms"], 1), fmt(s["search_only_p95_ms"], 1))
        console.print(table)
        console.print(f"first dense query {scale['first_dense_query_ms']:.0f} ms (vector matrix load ≈ "
                      f"{scale['matrix_load_ms_estimate']:.0f} ms); insert {scale['insert_seconds']:.0f} s; "
                      f"hybrid p95 target ≤ {TARGET_HYBRID_P95_MS:.0f} ms: "
                      + {True: "[green]met[/green]", False: "[red]missed[/red]",
                         None: "not judged (--quick: tiny data)"}[scale["target_met"]])
    console.print("Phases (other processes' CPU, cores): "
                  + ", ".join(f"{n} {p['foreign_cpu_cores']:.2f}" for n, p in results["phases"].items()))
    console.print(f"Command: {results['command']}")


def set_ratios(quality: dict[str, dict]) -> dict[str, float | None]:
    base, dense, keyword, hybrid = (quality[s] for s in (BASELINE, "dense", "keyword", "hybrid"))
    return {"R@5 hybrid÷BM25": ratio(hybrid["recall@5"], base["recall@5"]),
            "R@5 keyword÷BM25": ratio(keyword["recall@5"], base["recall@5"]),
            "MRR hybrid÷BM25": ratio(hybrid["mrr@10"], base["mrr@10"]),
            "R@5 hybrid÷dense": ratio(hybrid["recall@5"], dense["recall@5"]),
            "MRR hybrid÷dense": ratio(hybrid["mrr@10"], dense["mrr@10"]),
            "p50 keyword÷BM25": ratio(keyword["p50_ms"], base["p50_ms"]),
            "p50 hybrid÷dense": ratio(hybrid["p50_ms"], dense["p50_ms"])}


# -- main -----------------------------------------------------------------------------------------------------
def load_set(language: str, args: argparse.Namespace) -> DevSet:
    devset = _datasets.load(language)
    return devset.head(args.paragraphs) if args.paragraphs else devset


async def benchmark(svc: Services, args: argparse.Namespace, home: Path) -> dict:
    embedder = RecordingEmbedder(svc.knowledge.retriever.embedder)
    svc.knowledge.retriever.embedder = embedder
    await svc.knowledge.embedder.embed_query("warm-up")  # load the embedding model before timing anything
    sets = {language: load_set(language, args) for language in args.sets}
    indices = {language: s.sample(args.max_questions) for language, s in sets.items()}
    collections, ingestion, quality, per_question, in_domain = {}, {}, {}, {}, {}
    for language, devset in sets.items():
        with Phase(f"ingest {language}"):
            collections[language] = await ingest(svc, devset, home / "paragraphs")
        ingestion[language] = collections[language].stats
        console.print(f"{devset.name}: {ingestion[language]['chunks']} chunks in {ingestion[language]['seconds']:.0f} s "
                      f"({ingestion[language]['chunks_per_second']:.2f} chunks/s)")
        with Phase(f"questions {language}"):
            runs = await evaluate_set(svc, embedder, devset, collections[language], indices[language])
        quality[language] = {system: run.summary() for system, run in runs.items()}
        per_question[language] = {"question_indices": indices[language],
                                  **{system: run.ranks for system, run in runs.items()},
                                  "dense_top_similarity": runs["dense"].top_similarity}
        in_domain[language] = runs["dense"].top_similarity
        console.print(f"{devset.name}: " + ", ".join(f"{s} R@5 {quality[language][s]['recall@5']:.3f}" for s in runs))

    embedder.reuse = True  # from here on, questions already embedded are not embedded again
    cross_results, cross_similarity = {}, {}
    targets = [t for t in CROSS_LINGUAL_TARGETS if t in sets]
    if targets:
        english = sets.get("en") or load_set("en", args)
        english_indices = english.sample(args.max_questions)
        with Phase("cross-lingual"):
            for target in targets:
                runs = await cross_lingual(svc, embedder, english, collections[target], english_indices)
                pair = f"en → {target}"
                cross_results[pair] = {mode: {**run.summary(latency=False),
                                              "r5_vs_monolingual": ratio(run.summary()["recall@5"],
                                                                         quality[target][mode]["recall@5"])}
                                       for mode, run in runs.items()}
                cross_similarity[pair] = runs["dense"].top_similarity
    with Phase("calibration"):
        calibration = await calibrate(svc, embedder, sets, collections, indices, in_domain, cross_similarity,
                                      svc.settings.min_relevance)
    scale = None
    if args.scale:
        with Phase("scale"):
            scale = await scale_latency(svc, embedder, sets, collections, args.scale, args.scale_questions,
                                        args.seed, judge_target=not args.quick)
    return {"ingestion": ingestion, "quality": quality,
            "ratios": {language: set_ratios(q) for language, q in quality.items()},
            "cross_lingual": cross_results, "calibration": calibration, "scale": scale,
            "per_question": per_question}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", default=",".join(_datasets.LANGUAGES),
                        help="dev sets, comma-separated: ja (JSQuAD), en, ar, hi, zh (XQuAD). Default: all")
    parser.add_argument("--max-questions", type=int, default=None,
                        help=f"questions per set (default: all; --quick: {QUICK['max_questions']})")
    parser.add_argument("--paragraphs", type=int, default=None,
                        help=f"only the first N paragraphs of each set (default: all; --quick: {QUICK['paragraphs']})")
    parser.add_argument("--scale", type=int, default=None,
                        help=f"synthetic chunks for the latency test (0: skip; default 100000; --quick: {QUICK['scale']})")
    parser.add_argument("--scale-questions", type=int, default=None,
                        help=f"questions asked over the synthetic collection (default {SCALE_QUESTIONS}; "
                             f"--quick: {QUICK['scale_questions']})")
    parser.add_argument("--quick", action="store_true",
                        help="tiny data, every step: checks that the benchmark runs; figures and target not judged")
    parser.add_argument("--home", type=Path, default=None, help="SHUKEN_HOME to create (default: a temporary one)")
    parser.add_argument("--json-out", type=Path, default=None,
                        help="results file (default: bench/results/retrieval-<timestamp>.json)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the synthetic collection")
    args = parser.parse_args()
    full = {"paragraphs": None, "max_questions": None, "scale": 100_000, "scale_questions": SCALE_QUESTIONS}
    for name, value in (QUICK if args.quick else full).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.sets = [s.strip() for s in args.sets.split(",") if s.strip()]
    unknown = set(args.sets) - set(_datasets.LANGUAGES)
    if unknown:
        parser.error(f"unknown set(s): {', '.join(sorted(unknown))}")
    missing = [str(path) for _, path in _datasets.SOURCES.values() if not path.exists()]
    if missing:
        console.print(f"[red]Data not found:[/red] {', '.join(missing)}")
        return 2
    if args.home is not None and args.home.exists() and any(args.home.iterdir()):
        parser.error(f"--home {args.home} is not empty; the benchmark needs a fresh SHUKEN_HOME")
    command = shlex.join([sys.executable, *sys.argv])
    console.print(f"Command: {command}")

    with tempfile.TemporaryDirectory(prefix="shuken-retrieval-") as temporary:
        home = args.home or Path(temporary)
        settings = Settings(home=home)
        svc = Services.open(settings)
        svc.registry.seed_bundled()

        async def run() -> dict:
            try:
                return await benchmark(svc, args, home)
            finally:
                await svc.host.close()

        try:
            with Phase("total"):
                results = asyncio.run(run())
        finally:
            svc.close()

    results = {"when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "command": command,
               "machine": {"cores": len(os.sched_getaffinity(0)), "python": platform.python_version(),
                           "platform": platform.platform()},
               "config": {"sets": args.sets, "quick": args.quick, "paragraphs": args.paragraphs,
                          "max_questions": args.max_questions, "scale": args.scale,
                          "scale_questions": args.scale_questions, "k": K,
                          "seed": args.seed, "embedding_model": settings.embedding_model,
                          "chunk_units": settings.chunk_units, "threads": settings.threads,
                          "baseline": "rank_bm25.BM25Okapi over str.split() (LangChain BM25Retriever defaults)"},
               "phases": Phase.log, **results}
    print_report(results)
    kind = "retrieval-quick" if args.quick else "retrieval"
    out = args.json_out or results_dir() / f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False))
    console.print(f"Results written to {out}")
    failed = {language: stats["errors"] for language, stats in results["ingestion"].items() if stats["errors"]}
    if failed:
        console.print(f"[red]Files that failed to ingest:[/red] {failed}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
