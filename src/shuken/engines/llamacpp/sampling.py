"""Turn OpenAI-style sampling parameters into a sampler for one sequence.

Temperature, top_p and greedy decoding (the common requests) draw from the logits in NumPy; a grammar or
penalties build a llama.cpp sampler chain, grammar first, then filters.

Why two: llama.cpp's samplers walk the whole vocabulary in scalar code (a 12-byte candidate per token, then
exp and a running sum; top_p sorts it all): for SmolLM2's 49k tokens ~350 µs per token, ~2.7 ms with top_p,
on the llama thread while both cores' decode threads wait. With 8 streams that was ~9% of every batch step
(top_p: most of it). Vectorised, the same draws take ~50 µs, and 0.1–0.5 ms with top_p (measured here).
"""

from __future__ import annotations

import json
import random
from typing import Protocol

import llama_cpp
import numpy as np
from llama_cpp.llama_grammar import JSON_GBNF, json_schema_to_gbnf

from shuken.engines.base import SamplingParams
from shuken.errors import InvalidRequest
from shuken.localisable import tr


def grammar_for(response_format: dict | None) -> str | None:
    """GBNF grammar for an OpenAI response_format, or None for free text."""
    if not response_format:
        return None
    kind = response_format.get("type")
    if kind in (None, "text"):
        return None
    if kind == "json_object":
        return JSON_GBNF
    if kind == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
        if not isinstance(schema, dict):
            raise InvalidRequest(tr("response_format.json_schema.schema must be a JSON Schema object."),
                                 param="response_format")
        try:
            return json_schema_to_gbnf(json.dumps(schema))
        except Exception as exc:  # the converter raises bare errors on schemas it cannot express
            raise InvalidRequest(tr("This JSON schema cannot be enforced: %(error)s", error=str(exc)),
                                 param="response_format") from exc
    raise InvalidRequest(tr("Unsupported response_format type %(kind)s; use text, json_object or json_schema.",
                            kind=repr(kind)), param="response_format")


class Sampler(Protocol):
    def sample(self, ctx, batch_index: int) -> int: ...  # the next token, from the logits of that batch row

    def free(self) -> None: ...  # once the sequence ends; idempotent


def make_sampler(vocab, params: SamplingParams) -> Sampler:
    """The cheapest sampler that draws exactly what `params` ask for."""
    grammar = grammar_for(params.response_format)  # first: it may refuse, and then nothing is allocated
    if grammar is None and not params.presence_penalty and not params.frequency_penalty:
        return TemperatureSampler(llama_cpp.llama_vocab_n_tokens(vocab), params.temperature, params.seed,
                                  top_p=params.top_p)
    return SamplerChain(vocab, params, grammar)


class TemperatureSampler:
    """Softmax(logits / temperature) over the vocabulary, or argmax when temperature is 0; with top_p < 1,
    over the nucleus only, chosen as llama.cpp's chain (top_p, then temperature) chooses it: the most likely
    tokens at temperature 1 until their probabilities add up to at least top_p.

    The whole-vocabulary draw is inverse-CDF sampling done in two levels so that no pass over the vocabulary
    is scalar Python: sums of fixed-size blocks locate the block holding the drawn point, then a cumulative
    sum of that one block locates the token. A seed gives a reproducible stream of tokens (NumPy's PCG64, so
    not the same tokens as llama.cpp's own dist sampler for that seed).
    """

    BLOCK = 256
    NUCLEUS_GUESS = 64  # candidates ranked first; the nucleus is usually far smaller

    def __init__(self, vocab_size: int, temperature: float, seed: int | None, top_p: float = 1.0):
        self.vocab_size = vocab_size
        self.greedy = temperature <= 0
        self.top_p = top_p
        # Capped so that (logit - max) * scale never meets inf * 0 for absurdly small temperatures.
        self._scale = np.float32(min(1.0 / temperature, 1e30)) if not self.greedy else np.float32(1)
        self._rng = np.random.default_rng(seed if seed is not None else random.getrandbits(64))
        self._block_starts = np.arange(0, vocab_size, self.BLOCK)
        self._weights = np.empty(vocab_size, dtype=np.float32)

    def sample(self, ctx, batch_index: int) -> int:
        row = llama_cpp.llama_get_logits_ith(ctx, batch_index)
        if not row:
            raise ValueError(f"llama.cpp has no logits for batch row {batch_index}")
        return self.draw(np.ctypeslib.as_array(row, shape=(self.vocab_size,)))

    def draw(self, logits: np.ndarray) -> int:
        if self.greedy:  # the nucleus always holds the most likely token, so top_p changes nothing here
            return int(np.argmax(logits))  # the first of equal maxima, as llama.cpp's greedy sampler
        if self.top_p < 1.0:
            nucleus = self._nucleus(logits)
            weights = np.exp((logits[nucleus] - logits[nucleus[0]]) * self._scale, dtype=np.float64)
            cumulative = np.cumsum(weights)
            pick = int(np.searchsorted(cumulative, self._rng.random() * cumulative[-1], side="right"))
            return int(nucleus[min(pick, len(nucleus) - 1)])
        weights = self._weights
        np.subtract(logits, logits.max(), out=weights)
        np.multiply(weights, self._scale, out=weights)
        np.exp(weights, out=weights)  # in (0, 1]; the most likely token weighs 1, so the total is >= 1
        cumulative = np.cumsum(np.add.reduceat(weights, self._block_starts), dtype=np.float64)
        point = self._rng.random() * cumulative[-1]
        # side="right": the first block whose running total exceeds the point; empty blocks are never hit.
        block = min(int(np.searchsorted(cumulative, point, side="right")), len(cumulative) - 1)
        start = int(self._block_starts[block])
        within = np.cumsum(weights[start:start + self.BLOCK], dtype=np.float64)
        point -= cumulative[block - 1] if block else 0.0
        return start + min(int(np.searchsorted(within, point, side="right")), len(within) - 1)

    def _nucleus(self, logits: np.ndarray) -> np.ndarray:
        """Token ids of the nucleus, most likely first. Ranks only the top few candidates (an O(n) partition)
        and ranks more only when they do not reach top_p."""
        size = len(logits)
        top = float(logits.max())
        total = float(np.exp(logits - top, dtype=np.float64).sum())  # the temperature-1 normaliser
        ranked = min(self.NUCLEUS_GUESS, size)
        while True:
            candidates = np.argpartition(logits, size - ranked)[size - ranked:] if ranked < size else np.arange(size)
            candidates = candidates[np.argsort(-logits[candidates], kind="stable")]
            reached = np.cumsum(np.exp(logits[candidates] - top, dtype=np.float64)) / total
            cut = int(np.searchsorted(reached, self.top_p, side="left"))  # the first rank at or past top_p
            if cut < ranked or ranked == size:
                return candidates[: min(cut, ranked - 1) + 1]
            ranked = min(size, ranked * 8)

    def free(self) -> None:
        pass  # nothing native to release


class SamplerChain:
    """Owns a llama_sampler chain; free() must be called once the sequence ends."""

    def __init__(self, vocab, params: SamplingParams, grammar: str | None = None):
        """`grammar`: GBNF text from grammar_for(params.response_format), or None for free text."""
        chain_params = llama_cpp.llama_sampler_chain_default_params()
        chain_params.no_perf = True
        self.handle = llama_cpp.llama_sampler_chain_init(chain_params)
        if grammar is not None:
            sampler = llama_cpp.llama_sampler_init_grammar(vocab, grammar.encode(), b"root")
            if not sampler:
                self.free()
                raise InvalidRequest(tr("The response_format could not be compiled to a grammar."),
                                     param="response_format")
            self._add(sampler)
        if params.presence_penalty or params.frequency_penalty:
            # Over the last 64 tokens; no repeat penalty (1.0), which OpenAI's API does not have.
            self._add(llama_cpp.llama_sampler_init_penalties(llama_cpp.llama_vocab_n_tokens(vocab), 64, 1.0,
                                                             params.frequency_penalty, params.presence_penalty))
        if params.temperature <= 0:
            self._add(llama_cpp.llama_sampler_init_greedy())
            return
        if params.top_p < 1.0:
            self._add(llama_cpp.llama_sampler_init_top_p(params.top_p, 1))
        self._add(llama_cpp.llama_sampler_init_temp(params.temperature))
        seed = params.seed if params.seed is not None else random.getrandbits(32)
        self._add(llama_cpp.llama_sampler_init_dist(seed & 0xFFFFFFFF))

    def _add(self, sampler) -> None:
        llama_cpp.llama_sampler_chain_add(self.handle, sampler)

    def sample(self, ctx, batch_index: int) -> int:
        return llama_cpp.llama_sampler_sample(self.handle, ctx, batch_index)

    def free(self) -> None:
        if self.handle:
            llama_cpp.llama_sampler_free(self.handle)
            self.handle = None
