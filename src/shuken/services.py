"""Wires the service objects together from one Settings; shared by the app factory and the CLI."""

from __future__ import annotations

from dataclasses import dataclass

from shuken.config import Settings
from shuken.gateway.host import ModelHost
from shuken.governance.keys import KeyService
from shuken.knowledge.service import KnowledgeService
from shuken import native_threads
from shuken.registry import ModelRegistry
from shuken.store import Database


@dataclass
class Services:
    settings: Settings
    db: Database
    keys: KeyService
    registry: ModelRegistry
    host: ModelHost
    knowledge: KnowledgeService

    @classmethod
    def open(cls, settings: Settings) -> "Services":
        native_threads.configure()
        db = Database(settings.database_url)
        db.prepare()
        registry = ModelRegistry(db, settings.models_dir)
        host = ModelHost(registry, settings)
        return cls(settings, db, KeyService(db), registry, host, KnowledgeService(db, settings, host))

    def close(self) -> None:
        self.db.dispose()
