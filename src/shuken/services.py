"""Wires the service objects together from one Settings; shared by the app factory and the CLI."""

from __future__ import annotations

from dataclasses import dataclass

from shuken.config import Settings
from shuken.governance.keys import KeyService
from shuken.registry import ModelRegistry
from shuken.store import Database


@dataclass
class Services:
    settings: Settings
    db: Database
    keys: KeyService
    registry: ModelRegistry

    @classmethod
    def open(cls, settings: Settings) -> "Services":
        db = Database(settings.database_url)
        db.prepare()
        return cls(settings, db, KeyService(db), ModelRegistry(db, settings.models_dir))

    def close(self) -> None:
        self.db.dispose()
