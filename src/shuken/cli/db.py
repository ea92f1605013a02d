"""`shuken db`: the database schema."""

from __future__ import annotations

import typer

from shuken.cli.common import app, err
from shuken.config import Settings

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade():
    """Migrate the database to this version's schema (back it up first)."""
    from shuken.store import Database

    settings = Settings()
    db = Database(settings.database_url)
    before = db.current_revision()
    db.upgrade()
    err.print(f"Database at {settings.home_dir / 'shuken.db'}: {before} → {db.current_revision()}")
    db.dispose()
