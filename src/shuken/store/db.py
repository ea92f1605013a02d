"""Engine, sessions and schema state. A new database is created at head; an old one refuses to start."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from collections.abc import Iterator

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, event, inspect
from sqlalchemy.engine import CursorResult, Engine
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.dml import Delete, Update

from shuken.errors import ShukenError
from shuken.localisable import tr

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def rows_changed(session: Session, statement: Update | Delete) -> int:
    """How many rows an UPDATE or DELETE (without RETURNING) matched. `Session.execute` is typed as returning a
    plain `Result` (a session cannot promise a cursor for every statement), but for these it returns a
    `CursorResult`, which carries the count."""
    result = session.execute(statement)
    if not isinstance(result, CursorResult):
        raise TypeError(f"{type(result).__name__} carries no row count")
    return result.rowcount


class SchemaOutOfDate(ShukenError):
    status = 503
    code = "schema_out_of_date"


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the server read while the CLI writes; a busy timeout avoids spurious "database is locked".
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    # Deleted rows are overwritten with zeros instead of lingering in free pages and cells, so erased or expired
    # text cannot be read back from the file (governance.erasure scrubs the WAL and the FTS5 segments too).
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()


class Database:
    def __init__(self, url: str):
        self.url = url
        self.engine: Engine = create_engine(url, future=True)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def alembic_config(self) -> Config:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        config.set_main_option("sqlalchemy.url", self.url)
        config.attributes["engine"] = self.engine
        return config

    def head_revision(self) -> str | None:
        return ScriptDirectory.from_config(self.alembic_config()).get_current_head()

    def current_revision(self) -> str | None:
        with self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    def upgrade(self) -> None:
        command.upgrade(self.alembic_config(), "head")

    def prepare(self) -> None:
        """Create a brand-new database at head; refuse a database on an older schema."""
        with self.engine.connect() as connection:
            is_empty = not inspect(connection).get_table_names()
        if is_empty:
            self.upgrade()
            return
        current, head = self.current_revision(), self.head_revision()
        if current != head:
            raise SchemaOutOfDate(tr(
                "The database schema is at revision %(current)s, this Shuken needs %(head)s. "
                "Back up the database, then run `shuken db upgrade`.", current=current, head=head))

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
