"""The `shuken` command. Each command group is a module of this package that registers itself on the one Typer
app (`cli.common.app`); importing the package registers them all. Secrets and data go to stdout; messages to
stderr."""

# Imported for their registrations, in the order `shuken --help` lists them.
from shuken.cli import server, models, db, chat, governance, knowledge, privacy, reports  # noqa: F401
from shuken.cli.common import app

__all__ = ["app"]
