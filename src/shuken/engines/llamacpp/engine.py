"""The embedded llama.cpp engine: verified GGUF file → batched, fair, never-interrupted generation."""

from __future__ import annotations

import asyncio

from shuken.config import Settings
from shuken.engines.base import Embeddings, EngineStats, Finished, GenerationRequest
from shuken.engines.llamacpp.outbox import LoopOutbox
from shuken.engines.llamacpp.prompt import chat_prompt_tokens
from shuken.engines.llamacpp.runtime import LlamaRuntime
from shuken.engines.llamacpp.sampling import make_sampler
from shuken.engines.llamacpp.scheduler import BatchScheduler, Sequence
from shuken.engines.llamacpp.worker import LlamaThread
from shuken.engines.text_stream import TextStream
from shuken.errors import ContextLengthExceeded, InvalidRequest, ShukenError, Unavailable
from shuken.localisable import tr
from shuken.registry.manifest import ModelManifest


class LlamaGeneration:
    def __init__(self, seq: Sequence, scheduler: BatchScheduler):
        self._seq = seq
        self._scheduler = scheduler

    async def __aiter__(self):
        while True:
            item = await self._seq.output.get()
            if isinstance(item, ShukenError):
                raise item
            yield item
            if isinstance(item, Finished):
                return

    def cancel(self) -> None:
        if not self._seq.cancelled.is_set():
            self._seq.cancelled.set()
            self._scheduler.wake()


class LlamaCppEngine:
    def __init__(self, manifest: ModelManifest, settings: Settings):
        self.manifest = manifest
        self.settings = settings
        self.runtime: LlamaRuntime | None = None
        self.scheduler: BatchScheduler | None = None
        self._closed = False

    async def start(self) -> None:
        path = self.manifest.path
        if path is None:  # a manifest of another engine's kind (e.g. a remote model) named this engine
            raise Unavailable(tr("The model '%(name)s' has no local file for llama.cpp to load.",
                                 name=self.manifest.name))
        thread = LlamaThread.shared()
        runtime = await asyncio.wrap_future(thread.call(
            lambda: LlamaRuntime(
                path,
                sequences=self.settings.parallel_sequences,
                context_per_sequence=self.settings.context_per_sequence,
                batch_tokens=self.settings.batch_tokens,
                threads=self.settings.threads,
            )
        ))
        self.runtime = runtime
        self.scheduler = BatchScheduler(runtime, self.settings.max_queue, thread)

    async def close(self) -> None:
        self._closed = True  # checked by submit: the vocabulary is about to be freed
        if self.scheduler:
            await asyncio.to_thread(self.scheduler.stop)
        if self.runtime:
            await asyncio.wrap_future(LlamaThread.shared().call(self.runtime.close))

    @property
    def context_length(self) -> int | None:
        return self.runtime.context_per_sequence if self.runtime else None

    def _loaded(self) -> LlamaRuntime:
        if self.runtime is None:
            raise Unavailable(tr("The model '%(name)s' is not loaded; retry in a moment.", name=self.manifest.name))
        return self.runtime

    def stats(self) -> EngineStats:
        if not self.scheduler or not self.runtime:
            return EngineStats(capacity=self.settings.parallel_sequences)
        return EngineStats(self.scheduler.queued, len(self.scheduler.running), self.runtime.sequences)

    def prompt_tokens(self, request: GenerationRequest) -> list[int]:
        if request.messages is not None:
            template = self.manifest.metadata.get("chat_template")
            if not template:
                raise InvalidRequest(
                    tr("The model '%(name)s' has no chat template (it is a base model), so it cannot "
                       "take chat messages. Use /v1/completions with a plain prompt, or pick a chat model.",
                       name=self.manifest.name),
                    param="model", code="model_not_chat_capable",
                )
            return chat_prompt_tokens(self._loaded(), template, request.messages)
        return self._loaded().tokenize(request.prompt or "", add_special=True, parse_special=True)

    async def submit(self, request: GenerationRequest) -> LlamaGeneration:
        if self._closed or self.scheduler is None:
            raise Unavailable(tr("The model '%(name)s' is not loaded; retry in a moment.", name=self.manifest.name))
        tokens = self.prompt_tokens(request)
        if not tokens:
            raise InvalidRequest(tr("The prompt is empty."), param="prompt")
        limit = self._loaded().context_per_sequence
        params = request.params
        param = "messages" if request.messages is not None else "prompt"
        if len(tokens) >= limit:
            raise ContextLengthExceeded(tr(
                "This model's maximum context length is %(limit)s tokens. However, your prompt has "
                "%(prompt)s tokens. Please reduce the length of the prompt.", limit=limit, prompt=len(tokens),
            ), param=param)
        max_tokens = params.max_tokens if params.max_tokens is not None else limit - len(tokens)
        if len(tokens) + max_tokens > limit:
            raise ContextLengthExceeded(tr(
                "This model's maximum context length is %(limit)s tokens. However, you requested "
                "%(total)s tokens (%(prompt)s in the prompt, %(completion)s in the completion). "
                "Please reduce the length of the prompt or max_tokens.",
                limit=limit, total=len(tokens) + max_tokens, prompt=len(tokens), completion=max_tokens,
            ), param="max_tokens")
        sampler = make_sampler(self._loaded().vocab, params)
        seq = Sequence(
            client=request.client, prompt=tokens, max_tokens=max_tokens, sampler=sampler,
            text=TextStream(params.stop), outbox=LoopOutbox.of_running_loop(),
        )
        try:
            self.scheduler.submit(seq)
        except ShukenError:
            sampler.free()
            raise
        return LlamaGeneration(seq, self.scheduler)

    async def embed(self, texts: list[str]) -> Embeddings:
        raise InvalidRequest(tr("The model '%(name)s' does not produce embeddings.", name=self.manifest.name),
                             param="model")
