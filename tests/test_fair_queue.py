"""FairQueue admits clients round-robin and drops cancelled requests (pure, no model)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from shuken.engines.llamacpp.scheduler import FairQueue


@dataclass(eq=False)
class FakeSampler:
    freed: bool = False

    def free(self):
        self.freed = True


@dataclass(eq=False)
class Item:
    client: str
    label: str
    sampler: FakeSampler = field(default_factory=FakeSampler)
    cancelled: threading.Event = field(default_factory=threading.Event)


def drain(queue):
    order = []
    while (item := queue.pop()) is not None:
        order.append(item.label)
    return order


def test_one_busy_client_cannot_starve_others():
    queue = FairQueue()
    for i in range(4):
        queue.push(Item("flood", f"f{i}"))
    queue.push(Item("alice", "a0"))
    queue.push(Item("bob", "b0"))
    queue.push(Item("alice", "a1"))
    assert queue.size == 7
    assert drain(queue) == ["f0", "a0", "b0", "f1", "a1", "f2", "f3"]
    assert queue.size == 0


def test_cancelled_requests_are_skipped_and_freed():
    queue = FairQueue()
    items = [Item("c", f"x{i}") for i in range(3)]
    for item in items:
        queue.push(item)
    items[1].cancelled.set()
    queue.drop_cancelled()
    assert queue.size == 2 and items[1].sampler.freed
    items[0].cancelled.set()
    assert drain(queue) == ["x2"] and items[0].sampler.freed
