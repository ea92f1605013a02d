"""Hands engine output from the llama thread to an event loop, waking the loop without giving up the GIL.

Why not `loop.call_soon_threadsafe`: it wakes the loop with a write to a socket, and CPython releases the GIL
around that write. The woken loop thread takes the GIL there and runs its share of the request (SSE shaping,
the HTTP write: ~0.3 ms a token, measured) while the llama thread, back from its write, waits for the GIL
before it can start the next `llama_decode`. So every token's serving work was added to the next decode step:
~5% of single-stream decode speed. Here the llama thread only queues items during a step, and wakes each loop
once after the step with a write that keeps the GIL; the loop thread then gets the GIL when `llama_decode`
releases it, and does its work while the model computes.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import weakref
from collections import deque
from collections.abc import Callable

try:  # a PyDLL call keeps the GIL (a CDLL call, like os.write, releases it)
    _libc_write = ctypes.PyDLL(None).write
    _libc_write.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t]
    _libc_write.restype = ctypes.c_ssize_t

    def _wake(fd: int) -> None:
        _libc_write(fd, b"\0", 1)  # non-blocking; a full pipe already holds a wake-up
except (AttributeError, OSError, TypeError):  # no C library symbols to call: correct, only slower
    def _wake(fd: int) -> None:
        try:
            os.write(fd, b"\0")
        except BlockingIOError:
            pass

_outboxes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopOutbox] = weakref.WeakKeyDictionary()
_posted: set[LoopOutbox] = set()  # outboxes with items not yet announced to their loop


class LoopOutbox:
    """One event loop's inbound items from the llama thread. `post` queues, `flush_posted` wakes the loops."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self._items: deque[tuple[Callable[[object], None], object]] = deque()
        self._announced = False  # a wake-up byte is on its way; the loop will drain everything queued
        read_fd, self._write_fd = os.pipe()
        os.set_blocking(read_fd, False)
        os.set_blocking(self._write_fd, False)
        self._read_fd = read_fd
        loop.add_reader(read_fd, self._deliver)
        # The loop keeps this outbox alive through its reader; the pipe goes when both are gone.
        weakref.finalize(self, _close, read_fd, self._write_fd)

    @classmethod
    def of_running_loop(cls) -> LoopOutbox:
        """The running loop's outbox (call on the loop's thread)."""
        loop = asyncio.get_running_loop()
        outbox = _outboxes.get(loop)
        if outbox is None:
            outbox = _outboxes[loop] = cls(loop)
        return outbox

    def post(self, deliver: Callable[[object], None], item: object) -> None:
        """Queue `deliver(item)` to run on the loop (llama thread; nothing happens until `flush_posted`)."""
        self._items.append((deliver, item))
        _posted.add(self)

    def _announce(self) -> None:
        if self._items and not self._announced:
            self._announced = True
            _wake(self._write_fd)

    def _deliver(self) -> None:  # on the loop thread
        try:
            os.read(self._read_fd, 4096)
        except BlockingIOError:
            pass
        self._announced = False  # before draining: anything posted after this point wakes the loop again
        items = self._items
        while items:
            deliver, item = items.popleft()
            deliver(item)


def flush_posted() -> None:
    """Wake every loop that has items waiting (llama thread, after each step or call)."""
    while _posted:
        _posted.pop()._announce()


def _close(*fds: int) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass
