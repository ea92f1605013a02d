"""Build a llama.cpp sampler chain from OpenAI-style sampling parameters (grammar first, then filters)."""

from __future__ import annotations

import json
import random

import llama_cpp
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


class SamplerChain:
    """Owns a llama_sampler chain; free() must be called once the sequence ends."""

    def __init__(self, vocab, params: SamplingParams):
        grammar = grammar_for(params.response_format)  # first: it may refuse, and then nothing is allocated
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
            self._add(llama_cpp.llama_sampler_init_penalties(64, 1.0, params.frequency_penalty,
                                                             params.presence_penalty))
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
