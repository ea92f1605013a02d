"""`shuken serve`: the OpenAI-compatible gateway and the web UI on one port."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from shuken.cli.common import app, err, services
from shuken.config import Settings


@app.command()
def serve(
    host: Annotated[Optional[str], typer.Option(help="Address to bind (default 127.0.0.1).")] = None,
    port: Annotated[Optional[int], typer.Option(help="Port (default 8321).")] = None,
):
    """Start the OpenAI-compatible gateway on the embedded default model."""
    import uvicorn

    from shuken.app import create_app
    from shuken.governance.bootstrap import bootstrap
    from shuken.logs import configure_logging

    overrides: dict[str, Any] = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    settings = Settings(**overrides)
    with services(settings) as svc:
        seeded = svc.registry.seed_bundled(show_progress=True)
        for manifest in seeded:
            err.print(f"Registered bundled model [bold]{manifest.name}[/bold] ({manifest.license})")
        first = bootstrap(svc.directory, svc.keys, settings.bootstrap_admin_email)
        if first:
            err.print(f"[bold yellow]First start: workspace 'default', its owner {settings.bootstrap_admin_email}, "
                      "an admin API key and the owner's web sign-in password were created. Both are shown this "
                      "once on stdout (key, then password); store them now:[/bold yellow]")
            print(first.api_key, flush=True)
            print(first.password, flush=True)
            err.print(f"Sign in at http://{settings.host}:{settings.port}/ as {settings.bootstrap_admin_email}. "
                      "Make more keys with `shuken keys create --user EMAIL --name NAME`; change the password with "
                      "`shuken users set-password EMAIL`.")
        configure_logging(settings.log_level)
        err.print(f"Shuken listening on http://{settings.host}:{settings.port}/ (web) and /v1 (API) "
                  f"(default model {settings.default_model})")
        uvicorn.run(create_app(settings, svc), host=settings.host, port=settings.port, log_config=None,
                    timeout_graceful_shutdown=5)
