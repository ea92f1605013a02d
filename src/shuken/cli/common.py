"""What every `shuken` command shares: the one Typer app, the two consoles (data on stdout, messages on stderr),
`--json`, and `services()`, which opens the services and turns any ShukenError into one line and exit code 1."""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.console import Console

from shuken.config import Settings
from shuken.errors import ShukenError
from shuken.services import Services

app = typer.Typer(help="Shuken: a sovereign, self-hosted AI platform.", no_args_is_help=True,
                  pretty_exceptions_enable=False)

out = Console(soft_wrap=True)  # data for scripts
err = Console(stderr=True, soft_wrap=True)  # everything else; soft_wrap: never break lines into a log
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


@contextmanager
def services(settings: Settings | None = None):
    """Open the services; turn any ShukenError into a one-line message and exit code 1."""
    opened = None
    try:
        opened = Services.open(settings or Settings())
        yield opened
    except ShukenError as exc:
        err.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(1) from None
    finally:
        if opened:
            opened.close()


def print_json(data) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str, ensure_ascii=False) + "\n")
