"""The one thread that calls llama.cpp in this process, for every model.

Why one: llama.cpp's OpenMP runtime keeps a thread pool per calling thread. Two calling threads (say,
one per loaded model) give two pools on the same cores; their threads then oversubscribe the CPU and
OpenMP stops spinning and starts sleeping at every barrier, which measured 3x slower decoding for the
first model once a second had been used. So loads, decode steps and frees all run here, and models
take turns one batch step at a time.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from concurrent.futures import Future
from typing import Protocol
from collections.abc import Callable

from shuken.engines.llamacpp.outbox import flush_posted

log = logging.getLogger("shuken.llamacpp")


class Steppable(Protocol):
    def has_work(self) -> bool: ...  # called with the worker's condition held

    def step(self) -> None: ...  # one batch step; called on the worker thread, condition not held

    def fail_everything(self, error: Exception) -> None: ...

    def refuse_new_work(self) -> None: ...  # after a failure it cannot clean up: submit() then raises


class LlamaThread:
    _shared: LlamaThread | None = None
    _shared_lock = threading.Lock()

    @classmethod
    def shared(cls) -> LlamaThread:
        with cls._shared_lock:
            if cls._shared is None:
                cls._shared = cls()
            return cls._shared

    def __init__(self):
        self.cond = threading.Condition()
        self._calls: deque[tuple[Callable, tuple, Future]] = deque()
        self._models: list[Steppable] = []
        self._thread = threading.Thread(target=self._run, name="shuken-llama", daemon=True)
        self._thread.start()

    def call(self, fn: Callable, *args) -> Future:
        """Run fn(*args) on the llama thread (loading, freeing); the future holds its result."""
        future: Future = Future()
        with self.cond:
            self._calls.append((fn, args, future))
            self.cond.notify()
        return future

    def attach(self, model: Steppable) -> None:
        with self.cond:
            self._models.append(model)
            self.cond.notify()

    def detach(self, model: Steppable) -> None:
        with self.cond:
            if model in self._models:
                self._models.remove(model)

    def wake(self) -> None:
        with self.cond:
            self.cond.notify()

    def _run(self) -> None:
        while True:
            with self.cond:
                while not self._calls and not any(model.has_work() for model in self._models):
                    self.cond.wait()
                call = self._calls.popleft() if self._calls else None
                busy = [model for model in self._models if model.has_work()]
            if call is not None:
                fn, args, future = call
                if future.set_running_or_notify_cancel():
                    try:
                        future.set_result(fn(*args))
                    except BaseException as exc:  # handed to the caller, who raises it
                        future.set_exception(exc)
                flush_posted()
                continue
            for model in busy:  # one step each: models take turns
                try:
                    model.step()
                except Exception as exc:  # a bug must not kill the thread every model depends on
                    log.exception("decode step failed")
                    try:
                        model.fail_everything(exc)
                    except Exception:
                        log.exception("could not clean up after the failure; the model stops being served")
                        model.refuse_new_work()
                        self.detach(model)
                flush_posted()  # the woken loops get the GIL when the next llama_decode releases it
