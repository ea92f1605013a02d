"""Database access: engine/session creation and schema migrations (SQLite by default, PostgreSQL-ready)."""

from shuken.store.db import Database, SchemaOutOfDate

__all__ = ["Database", "SchemaOutOfDate"]
