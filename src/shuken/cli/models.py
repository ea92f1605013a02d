"""`shuken models`: the model registry: list, add, inspect, verify, remove."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from shuken.cli.common import JsonOpt, print_json, app, err, out, services

models_app = typer.Typer(help="The model registry: list, add, inspect, verify, remove.", no_args_is_help=True)
app.add_typer(models_app, name="models")


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
        return print_json([_manifest_dict(m) for m in manifests])
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
        return print_json(_manifest_dict(manifest))
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
        return print_json(data)
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
