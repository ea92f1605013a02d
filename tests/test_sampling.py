"""The NumPy sampler draws what softmax(logits / T) says, over llama.cpp's top_p nucleus when asked, and requests
without a grammar or penalties get it (no model needed)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from shuken.engines.base import SamplingParams
from shuken.engines.llamacpp.sampling import SamplerChain, TemperatureSampler, make_sampler


def softmax(logits: np.ndarray, temperature: float) -> np.ndarray:
    scaled = logits.astype(np.float64) / temperature
    weights = np.exp(scaled - scaled.max())
    return weights / weights.sum()


def frequencies(sampler: TemperatureSampler, logits: np.ndarray, draws: int) -> np.ndarray:
    counts = Counter(sampler.draw(logits) for _ in range(draws))
    return np.array([counts[token] / draws for token in range(len(logits))])


@pytest.mark.parametrize("vocab_size", [1000, 256 * 3, 37])  # a partial last block, whole blocks, one short block
@pytest.mark.parametrize("temperature", [0.5, 1.0, 1.7])
def test_draws_follow_the_softmax(vocab_size, temperature):
    logits = np.random.default_rng(vocab_size).normal(0, 3, vocab_size).astype(np.float32)
    expected = softmax(logits, temperature)
    seen = frequencies(TemperatureSampler(vocab_size, temperature, seed=1), logits, 20_000)
    # 20k draws: a binomial standard deviation is at most 0.0036; an off-by-one token or a wrong scale is far off.
    assert np.abs(seen - expected).max() < 0.02
    likely = np.argsort(-expected)[:3]
    assert np.allclose(seen[likely], expected[likely], atol=0.02)


def reference_nucleus(logits: np.ndarray, top_p: float) -> np.ndarray:
    """llama.cpp's rule, written the slow way: sort everything, keep ranks until the running sum reaches top_p."""
    order = np.argsort(-logits.astype(np.float64), kind="stable")
    probabilities = softmax(logits, 1.0)[order]
    return order[: int(np.argmax(np.cumsum(probabilities) >= top_p)) + 1]


@pytest.mark.parametrize("spread, top_p", [(3.0, 0.9), (3.0, 0.5), (0.3, 0.95), (0.0, 0.6)])  # 0.3, 0.0: wide nuclei
def test_top_p_draws_from_the_nucleus_at_the_requested_temperature(spread, top_p):
    logits = np.random.default_rng(7).normal(0, spread, 3000).astype(np.float32)
    nucleus = reference_nucleus(logits, top_p)
    if spread < 1:
        assert len(nucleus) > TemperatureSampler.NUCLEUS_GUESS * 8  # the first guesses cannot reach top_p
    expected = np.zeros(len(logits))
    expected[nucleus] = softmax(logits[nucleus], 0.7)
    sampler = TemperatureSampler(len(logits), 0.7, seed=11, top_p=top_p)
    assert set(sampler._nucleus(logits)) == set(nucleus)
    seen = frequencies(sampler, logits, 20_000)
    assert set(np.flatnonzero(seen)) <= set(nucleus)
    assert np.abs(seen - expected).max() < 0.02


def test_a_tiny_top_p_keeps_only_the_most_likely_token():
    logits = np.array([0.5, 2.0, 1.9, -1.0], dtype=np.float32)
    sampler = TemperatureSampler(4, 1.5, seed=2, top_p=0.01)
    assert {sampler.draw(logits) for _ in range(50)} == {1}


def test_mass_in_the_last_partial_block_is_reachable():
    logits = np.full(1000, -40.0, dtype=np.float32)
    logits[[998, 999]] = 5.0  # everything sits in block 3 (tokens 768..999), which is short
    seen = frequencies(TemperatureSampler(1000, 1.0, seed=3), logits, 4000)
    assert seen[998] + seen[999] == 1.0 and 0.4 < seen[998] < 0.6


def test_impossible_tokens_are_never_drawn():
    logits = np.full(600, -np.inf, dtype=np.float32)
    logits[[0, 255, 256, 599]] = [1.0, 2.0, 2.0, 1.0]  # block edges on both sides of the boundary
    seen = frequencies(TemperatureSampler(600, 0.8, seed=5), logits, 5000)
    assert set(np.flatnonzero(seen)) == {0, 255, 256, 599}


def test_greedy_takes_the_first_maximum():
    logits = np.array([0.1, 3.0, -2.0, 3.0], dtype=np.float32)
    sampler = TemperatureSampler(4, 0.0, seed=None)
    assert [sampler.draw(logits) for _ in range(5)] == [1] * 5


def test_tiny_temperature_is_argmax_not_nan():
    logits = np.array([0.0, 1.0, 0.999], dtype=np.float32)
    assert {TemperatureSampler(3, 1e-30, seed=s).draw(logits) for s in range(20)} == {1}


def test_a_seed_repeats_and_another_seed_differs():
    logits = np.zeros(5000, dtype=np.float32)  # uniform: every draw is up to the random stream

    def run(seed):
        sampler = TemperatureSampler(5000, 1.0, seed=seed)
        return [sampler.draw(logits) for _ in range(20)]

    assert run(42) == run(42)
    assert run(42) != run(43)


@pytest.mark.parametrize("params", [
    SamplingParams(temperature=0.8, top_p=0.9, presence_penalty=0.5),
    SamplingParams(temperature=0.8, presence_penalty=0.5),
    SamplingParams(temperature=0, frequency_penalty=0.2),
])
def test_filters_and_penalties_keep_the_llama_cpp_chain(params, monkeypatch):
    monkeypatch.setattr("llama_cpp.llama_vocab_n_tokens", lambda vocab: 321)  # the penalties sampler asks
    sampler = make_sampler(None, params)  # no grammar here, so no real vocabulary is needed to build the chain
    try:
        assert isinstance(sampler, SamplerChain)
    finally:
        sampler.free()


def test_plain_requests_get_the_numpy_sampler(monkeypatch):
    monkeypatch.setattr("llama_cpp.llama_vocab_n_tokens", lambda vocab: 321)
    for params in (SamplingParams(temperature=0.8, seed=1), SamplingParams(temperature=0),
                   SamplingParams(temperature=0.8, top_p=0.9)):
        sampler = make_sampler(object(), params)
        assert isinstance(sampler, TemperatureSampler) and sampler.vocab_size == 321
        assert sampler.greedy == (params.temperature == 0) and sampler.top_p == params.top_p
