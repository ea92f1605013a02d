"""Database access: engine/session creation and schema migrations (SQLite by default, PostgreSQL-ready)."""

from shuken.store.db import Database, SchemaOutOfDate, rows_changed

__all__ = ["Database", "SchemaOutOfDate", "rows_changed"]
