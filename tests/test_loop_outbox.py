"""The llama thread's hand-off to the event loop: items arrive in order, and only once the step is flushed (so
the loop wakes once per step, when the llama thread is about to release the GIL in llama_decode)."""

from __future__ import annotations

import asyncio
import threading
import time

from shuken.engines.llamacpp.outbox import LoopOutbox, flush_posted


def test_items_arrive_in_order_and_only_after_the_step_is_flushed():
    async def main():
        outbox = LoopOutbox.of_running_loop()
        assert LoopOutbox.of_running_loop() is outbox  # one per loop
        received: list[str] = []
        step_done = threading.Event()

        def llama_step():
            for item in ("a", "b", "c"):
                outbox.post(received.append, item)
            step_done.set()

        worker = threading.Thread(target=llama_step)
        worker.start()
        await asyncio.to_thread(step_done.wait)
        await asyncio.sleep(0.05)  # the loop idles: nothing may arrive before the flush
        assert received == []
        await asyncio.to_thread(flush_posted)
        for _ in range(200):
            if received:
                break
            await asyncio.sleep(0.005)
        assert received == ["a", "b", "c"]
        worker.join()

    asyncio.run(main())
