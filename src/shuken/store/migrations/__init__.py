"""Alembic migrations of the one schema (SQLite and PostgreSQL alike); `shuken db upgrade` runs them."""
