"""ModelHost: the running engines. Loads a model on first use (after checking its hash), once."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from shuken import plugins
from shuken.config import Settings
from shuken.engines.base import Engine
from shuken.errors import InvalidRequest, Unavailable
from shuken.localisable import Message, tr
from shuken.registry import ModelManifest, ModelRegistry
from shuken.registry.manifest import upstream_address

log = logging.getLogger("shuken.host")

CAPABILITIES = ("chat", "completions", "embeddings")


def unsupported_capability(manifest: ModelManifest, capability: str) -> Message:
    """Why `manifest` cannot serve `capability`, and what to use instead."""
    if capability not in CAPABILITIES:
        raise KeyError(capability)
    name = manifest.name
    if manifest.capabilities == ["embeddings"]:
        return tr("The model '%(name)s' does not support %(capability)s: it is an embedding model; "
                  "use /v1/embeddings.", name=name, capability=capability)
    if capability == "chat" and manifest.format == "gguf":
        status = manifest.metadata.get("chat_template_status", "absent")
        if status == "absent":
            return tr("The model '%(name)s' does not support chat: it has no chat template (it is a base model); "
                      "use /v1/completions with a plain prompt.", name=name)
        return tr("The model '%(name)s' does not support chat: its chat template cannot be used (%(status)s); "
                  "use /v1/completions.", name=name, status=status)
    if capability == "chat":
        return tr("The model '%(name)s' does not support chat: it cannot take chat messages; use /v1/completions.",
                  name=name)
    if capability == "completions":
        return tr("The model '%(name)s' does not support completions: it does not complete text.", name=name)
    return tr("The model '%(name)s' does not support embeddings: it does not produce embeddings; use an embedding "
              "model such as multilingual-e5-small.", name=name)


class ModelHost:
    def __init__(self, registry: ModelRegistry, settings: Settings,
                 on_upstream: Callable[[str], None] | None = None):
        """`on_upstream(host_port)` is told each upstream server a loaded engine will reach (the composition root
        wires it to the egress guard: registering an upstream is the operator's allowance to reach it)."""
        self.registry = registry
        self.settings = settings
        self.on_upstream = on_upstream
        self.engines: dict[str, Engine] = {}
        self._loads: dict[str, asyncio.Task] = {}

    def require_capability(self, manifest: ModelManifest, capability: str) -> None:
        if capability in manifest.capabilities:
            return
        raise InvalidRequest(unsupported_capability(manifest, capability),
                             param="model", code=f"model_not_{capability}_capable")

    async def engine_for(self, model: str, capability: str) -> Engine:
        engine = self.engines.get(model)
        if engine is not None:
            self.require_capability(engine.manifest, capability)
            return engine
        manifest = self.registry.get(model)
        self.require_capability(manifest, capability)
        return await self.load(manifest)

    async def load(self, manifest: ModelManifest) -> Engine:
        """Load once, whoever asks. The load runs as its own task, shielded: a caller that gives up (a
        client disconnecting) must not abandon a half-loaded model, which would leak its memory."""
        if manifest.name in self.engines:
            return self.engines[manifest.name]
        task = self._loads.get(manifest.name)
        if task is None:
            task = self._loads[manifest.name] = asyncio.create_task(self._load(manifest))
            task.add_done_callback(lambda _: self._loads.pop(manifest.name, None))
        return await asyncio.shield(task)

    async def _load(self, manifest: ModelManifest) -> Engine:
        if manifest.engine not in plugins.names(plugins.ENGINES):
            raise Unavailable(tr("No engine '%(engine)s' is installed for model '%(name)s'. "
                                 "Installed engines: %(engines)s.", engine=manifest.engine, name=manifest.name,
                                 engines=", ".join(plugins.names(plugins.ENGINES))))
        started = time.perf_counter()
        await asyncio.to_thread(self.registry.require_intact, manifest)
        engine = plugins.load(plugins.ENGINES, manifest.engine)(manifest, self.settings)
        address = upstream_address(manifest)
        if address and self.on_upstream is not None:  # it may have been registered after start (e.g. by the CLI)
            self.on_upstream(address)
        await engine.start()
        self.engines[manifest.name] = engine
        log.info("model loaded", extra={"model": manifest.name, "engine": manifest.engine,
                                        "seconds": round(time.perf_counter() - started, 3)})
        return engine

    async def close(self) -> None:
        for engine in self.engines.values():
            await engine.close()
        self.engines.clear()
