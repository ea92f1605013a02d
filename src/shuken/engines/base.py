"""The engine protocol: what every inference backend implements, and the values that cross it.

An engine turns a prompt (or messages) into a stream of events. It never sees HTTP or OpenAI JSON;
translation lives in shuken.gateway.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable
from collections.abc import AsyncIterator

from shuken.config import Settings
from shuken.registry.manifest import ModelManifest


@dataclass
class SamplingParams:
    max_tokens: int | None = None
    temperature: float = 1.0
    top_p: float = 1.0
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    response_format: dict[str, Any] | None = None  # OpenAI shape: {"type": "json_object"} / json_schema


@dataclass
class GenerationRequest:
    """A completion (prompt) or chat (messages) request, already validated for shape."""

    params: SamplingParams
    prompt: str | None = None
    messages: list[dict[str, Any]] | None = None
    client: str = "anonymous"  # fairness key: requests are admitted round-robin across clients
    stream: bool = True  # False: the caller wants only the whole text, so an engine may fetch it in one piece


@dataclass
class TextDelta:
    text: str


@dataclass
class Finished:
    reason: str  # "stop" | "length"
    prompt_tokens: int
    completion_tokens: int


Event = TextDelta | Finished


class Generation(Protocol):
    """A submitted request: iterate its events (the last, Finished, carries the token counts);
    cancel() frees its slot at once."""

    def __aiter__(self) -> AsyncIterator[Event]: ...

    def cancel(self) -> None: ...


@dataclass
class Embeddings:
    vectors: list[list[float]]
    prompt_tokens: int


@dataclass
class EngineStats:
    queued: int = 0
    running: int = 0
    capacity: int = 1


@runtime_checkable
class Engine(Protocol):
    """Entry points in the `shuken.engines` group name classes implementing this protocol."""

    manifest: ModelManifest

    def __init__(self, manifest: ModelManifest, settings: Settings) -> None: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    @property
    def context_length(self) -> int | None: ...

    def stats(self) -> EngineStats: ...

    async def submit(self, request: GenerationRequest) -> Generation:
        """Validate and enqueue; raise ShukenError (e.g. ContextLengthExceeded, QueueFull) before any output."""
        ...

    async def embed(self, texts: list[str]) -> Embeddings: ...
