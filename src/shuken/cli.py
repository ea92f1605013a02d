"""The `shuken` command: serve, models, chat, db. Knowledge commands live in cli_knowledge, governance commands
(workspaces, users, keys, audit, consent, data) in cli_governance, erase and retention in cli_privacy, doctor
and compliance in cli_reports. Secrets and data go to stdout; messages to stderr."""

from __future__ import annotations

import asyncio
import json
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from shuken.config import Settings
from shuken.errors import ShukenError
from shuken.services import Services

app = typer.Typer(help="Shuken: a sovereign, self-hosted AI platform.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
models_app = typer.Typer(help="The model registry: list, add, inspect, verify, remove.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(models_app, name="models")
app.add_typer(db_app, name="db")

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
        raise typer.Exit(1)
    finally:
        if opened:
            opened.close()


def _print_json(data) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str, ensure_ascii=False) + "\n")


# -- serve --------------------------------------------------------------------------------------------
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

    overrides = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
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


# -- models -------------------------------------------------------------------------------------------
def _manifest_dict(manifest) -> dict:
    data = manifest.model_dump(mode="json")
    data["metadata"] = {k: v for k, v in data["metadata"].items() if k != "chat_template"}
    return data


@models_app.command("list")
def models_list(as_json: JsonOpt = False):
    """List registered models."""
    with services() as svc:
        svc.registry.seed_bundled(show_progress=True)
        manifests = svc.registry.list()
    if as_json:
        return _print_json([_manifest_dict(m) for m in manifests])
    table = Table("name", "engine", "params", "quant", "ctx", "capabilities", "licence", "sha256")
    for m in manifests:
        meta = m.metadata
        table.add_row(m.name, m.engine, str(meta.get("parameters_human", "")), str(meta.get("quantization") or ""),
                      str(meta.get("context_length") or ""), ",".join(m.capabilities), m.license or "",
                      (m.sha256 or "")[:12])
    out.print(table)


@models_app.command("add")
def models_add(
    path: Annotated[Path, typer.Argument(help="A GGUF model file (registered in place; not copied).")],
    name: Annotated[str, typer.Option("--name", help="Name clients use in the 'model' field.")],
    license: Annotated[Optional[str], typer.Option(help="Licence, e.g. Apache-2.0.")] = None,
    source: Annotated[Optional[str], typer.Option(help="Where the file came from (URL or note).")] = None,
    as_json: JsonOpt = False,
):
    """Register a local GGUF file: hash it, read its metadata, check its chat template."""
    with services() as svc:
        manifest = svc.registry.add_file(path, name, license=license, source=source, show_progress=True)
    if as_json:
        return _print_json(_manifest_dict(manifest))
    err.print(f"Added [bold]{manifest.name}[/bold]: {manifest.metadata.get('architecture')} "
              f"{manifest.metadata.get('parameters_human')} {manifest.metadata.get('quantization')}, "
              f"chat template {manifest.metadata.get('chat_template_status')}, sha256 {manifest.sha256[:12]}…")


@models_app.command("add-remote")
def models_add_remote(
    name: Annotated[str, typer.Argument(help="Name clients use in the 'model' field.")],
    base_url: Annotated[str, typer.Option(help="OpenAI-compatible base URL, e.g. http://10.0.0.5:8000/v1.")],
    upstream_model: Annotated[Optional[str], typer.Option(help="Model name on the upstream (default: NAME).")] = None,
    capability: Annotated[Optional[list[str]], typer.Option(help="chat, completions, embeddings (repeat).")] = None,
    license: Annotated[Optional[str], typer.Option(help="Licence of the upstream model.")] = None,
    context_length: Annotated[Optional[int], typer.Option(help="The upstream model's context, if known.")] = None,
):
    """Register a model served by an on-prem OpenAI-compatible server (vLLM, llama-server, ...).

    If the upstream needs a bearer key, give it in SHUKEN_UPSTREAM_KEYS='{"NAME": "key"}' (never stored).
    """
    with services() as svc:
        manifest = svc.registry.add_remote(name, base_url=base_url, upstream_model=upstream_model,
                                           capabilities=capability, license=license, context_length=context_length)
    err.print(f"Added remote model [bold]{manifest.name}[/bold] → {manifest.options['base_url']}")


@models_app.command("info")
def models_info(name: str, as_json: JsonOpt = False):
    """Show a model's manifest."""
    with services() as svc:
        manifest = svc.registry.get(name)
    data = _manifest_dict(manifest)
    if as_json:
        return _print_json(data)
    for key, value in data.items():
        if key == "metadata":
            for meta_key, meta_value in value.items():
                out.print(f"  {meta_key}: {meta_value}")
        else:
            out.print(f"[bold]{key}[/bold]: {value}")


@models_app.command("verify")
def models_verify(name: Annotated[Optional[str], typer.Argument(help="One model; default: all.")] = None):
    """Re-hash model files and compare with their manifests. Exit 1 if any differ."""
    failed = False
    with services() as svc:
        svc.registry.seed_bundled(show_progress=True)
        manifests = [svc.registry.get(name)] if name else svc.registry.list()
        for manifest in manifests:
            ok, reason = svc.registry.verify(manifest, show_progress=True)
            failed |= not ok
            err.print(f"{'[green]ok[/green]  ' if ok else '[red]FAIL[/red]'} {manifest.name}: {reason}")
    if failed:
        raise typer.Exit(1)


@models_app.command("remove")
def models_remove(name: str):
    """Remove a model from the registry. Its file is left on disk; bundled models cannot be removed."""
    with services() as svc:
        manifest = svc.registry.remove(name)
    err.print(f"Removed {manifest.name}" + (f"; its file stays at {manifest.path}" if manifest.path else ""))


# -- db -----------------------------------------------------------------------------------------------
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


# -- chat ---------------------------------------------------------------------------------------------
@app.command()
def chat(
    model: Annotated[Optional[str], typer.Option(help="Chat model (default: the configured default).")] = None,
    system: Annotated[Optional[str], typer.Option(help="A system prompt.")] = None,
    max_tokens: Annotated[int, typer.Option(help="Longest reply, in tokens.")] = 512,
):
    """A quick terminal conversation with a local model (in-process; no server needed). Ctrl-D to leave."""
    from shuken.engines.base import GenerationRequest, SamplingParams, TextDelta
    from shuken.gateway.host import ModelHost

    settings = Settings(parallel_sequences=1)
    with services() as svc:
        svc.registry.seed_bundled(show_progress=True)
        name = model or settings.default_model
        messages = [{"role": "system", "content": system}] if system else []

        async def converse():
            host = ModelHost(svc.registry, settings)
            engine = await host.engine_for(name, "chat")
            err.print(f"Chatting with [bold]{name}[/bold]. Ctrl-D to leave.")
            try:
                while True:
                    try:
                        line = await asyncio.to_thread(err.input, "you> ")  # prompts on stderr: stdout is the reply
                    except EOFError:
                        break
                    if not line.strip():
                        continue
                    messages.append({"role": "user", "content": line})
                    generation = await engine.submit(GenerationRequest(
                        params=SamplingParams(max_tokens=max_tokens, temperature=0.7), messages=messages))
                    reply = []
                    async for event in generation:
                        if isinstance(event, TextDelta):
                            reply.append(event.text)
                            sys.stdout.write(event.text)
                            sys.stdout.flush()
                    sys.stdout.write("\n")
                    messages.append({"role": "assistant", "content": "".join(reply)})
            finally:
                await host.close()

        try:
            asyncio.run(converse())
        except ShukenError as exc:
            err.print(f"[red]error:[/red] {exc.message}")
            raise typer.Exit(1)


# The knowledge and governance commands register themselves on `app` (kept in their own modules for size).
from shuken import cli_governance, cli_knowledge, cli_privacy, cli_reports  # noqa: E402,F401

if __name__ == "__main__":
    # As `python -m shuken.cli` this file is `__main__`, a second copy of the module; the knowledge
    # commands registered themselves on the importable `shuken.cli.app`, so run that one.
    from shuken.cli import app as complete_app

    complete_app()
