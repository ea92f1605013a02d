"""Dense embeddings for knowledge, through the gateway's model host (the same engine /v1/embeddings serves)."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from shuken.gateway.host import ModelHost

EMBED_BATCH = 16


class Embedder(Protocol):
    async def embed_passages(self, texts: list[str]) -> np.ndarray: ...
    async def embed_query(self, text: str) -> np.ndarray: ...


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.maximum(norms, 1e-12)).astype(np.float32)


class HostEmbedder:
    """e5-style role prefixes: documents are embedded as passages, questions as queries."""

    def __init__(self, host: ModelHost, model: str):
        self.host = host
        self.model = model

    async def _embed(self, texts: list[str]) -> np.ndarray:
        engine = await self.host.engine_for(self.model, "embeddings")
        rows: list[list[float]] = []
        for start in range(0, len(texts), EMBED_BATCH):
            rows.extend((await engine.embed(texts[start:start + EMBED_BATCH])).vectors)
        return _unit_rows(np.asarray(rows, dtype=np.float32))

    async def embed_passages(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        return await self._embed([f"passage: {text}" for text in texts])

    async def embed_query(self, text: str) -> np.ndarray:
        return (await self._embed([f"query: {text}"]))[0]
