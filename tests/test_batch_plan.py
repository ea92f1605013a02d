"""The batch planner (pure): sequences in id order, positions in order, logits exactly where sampled."""

from __future__ import annotations

from types import SimpleNamespace

from shuken.engines.llamacpp.scheduler import BatchScheduler, Sequence
from shuken.engines.text_stream import TextStream


def make_sequence(seq_id: int, prompt_length: int, prefilled: int, generated: int = 0) -> Sequence:
    seq = Sequence(client="c", prompt=list(range(100, 100 + prompt_length)), max_tokens=50, sampler=None,
                   text=TextStream(), outbox=None, seq_id=seq_id, prefilled=prefilled)
    seq.generated, seq.last_token = generated, 7 + seq_id
    return seq


def planner(running: list[Sequence], batch_tokens: int) -> BatchScheduler:
    scheduler = object.__new__(BatchScheduler)  # only the planner's inputs: no model, no thread
    scheduler.running = {seq.seq_id: seq for seq in running}  # insertion order = slot reuse order
    scheduler.runtime = SimpleNamespace(batch_tokens=batch_tokens)
    return scheduler


def test_plan_sorts_sequences_and_samples_the_right_rows():
    streaming = [make_sequence(5, 4, 4, generated=3), make_sequence(0, 6, 6, generated=1)]
    new = make_sequence(2, 5, 0)
    entries, sample_at = planner([*streaming, new], batch_tokens=64)._plan_batch()
    assert [e.seq_id for e in entries] == sorted(e.seq_id for e in entries)  # one ubatch for llama.cpp
    assert [(e.seq_id, e.pos, e.token) for e in entries if e.seq_id != 2] == [(0, 6, 7), (5, 6, 12)]
    assert [e.pos for e in entries if e.seq_id == 2] == [0, 1, 2, 3, 4]
    sampled = {seq.seq_id: index for seq, index in sample_at}
    assert set(sampled) == {0, 2, 5}
    assert all(entries[i].seq_id == sid and entries[i].wants_logits for sid, i in sampled.items())
    assert sum(e.wants_logits for e in entries) == 3 and entries[sampled[2]].pos == 4


def test_long_prompt_is_chunked_around_streaming_sequences():
    streaming = make_sequence(1, 3, 3, generated=2)
    long_prompt = make_sequence(0, 20, 0)
    scheduler = planner([streaming, long_prompt], batch_tokens=8)
    entries, sample_at = scheduler._plan_batch()
    assert len(entries) == 8 and [s.seq_id for s, _ in sample_at] == [1]  # the stream still advances
    assert [e.pos for e in entries if e.seq_id == 0] == list(range(7)) and long_prompt.prefilled == 7
    entries, _ = scheduler._plan_batch()
    assert [e.pos for e in entries if e.seq_id == 0] == list(range(7, 14))
