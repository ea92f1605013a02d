"""`shuken collections|documents|ingest|jobs|search|ask`: the knowledge commands of the one Typer app.

The CLI is the local operator on the server's machine, so it acts as an administrator of the workspace.
"""

from __future__ import annotations

import asyncio
import glob
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from shuken.cli.common import JsonOpt, print_json, app, err, out, services
from shuken.config import Settings
from shuken.governance.identity import Subject

collections_app = typer.Typer(help="Knowledge collections: create, list, delete.", no_args_is_help=True)
documents_app = typer.Typer(help="Documents in a collection: list, delete.", no_args_is_help=True)
jobs_app = typer.Typer(help="Ingestion jobs: list, show, resume.", no_args_is_help=True)
app.add_typer(collections_app, name="collections")
app.add_typer(documents_app, name="documents")
app.add_typer(jobs_app, name="jobs")

CollectionOpt = Annotated[str, typer.Option("--collection", "-c", help="Collection name.")]
OPERATOR = Subject.operator()


def _run(svc, work):
    """Run async work with the services' model host, closing any model it loaded."""
    async def wrapped():
        try:
            return await work
        finally:
            await svc.host.close()
    return asyncio.run(wrapped())


# -- collections ----------------------------------------------------------------------------------------
@collections_app.command("create")
def collections_create(
    name: str,
    description: Annotated[str, typer.Option(help="What the collection holds.")] = "",
    group: Annotated[Optional[list[str]], typer.Option("--group", help="Restrict reading to this group "
                                                        "(repeatable); default: the whole workspace.")] = None,
    as_json: JsonOpt = False,
):
    """Create a collection."""
    with services() as svc:
        created = svc.knowledge.create_collection(OPERATOR, name, description, group or [])
    if as_json:
        return print_json(created)
    err.print(f"Created collection [bold]{name}[/bold]"
              + (f", readable by group(s) {', '.join(created['groups'])}" if created["groups"] else ""))


@collections_app.command("list")
def collections_list(as_json: JsonOpt = False):
    """List collections with their document and chunk counts."""
    with services() as svc:
        rows = svc.knowledge.list_collections(OPERATOR)
    if as_json:
        return print_json(rows)
    table = Table("name", "documents", "chunks", "groups", "description")
    for row in rows:
        table.add_row(row["name"], str(row["documents"]), str(row["chunks"]), ", ".join(row["groups"]) or "(all)",
                      row["description"])
    out.print(table)


@collections_app.command("delete")
def collections_delete(name: str, yes: Annotated[bool, typer.Option("--yes", help="Do not ask.")] = False):
    """Delete a collection with every document, chunk, vector and index entry in it."""
    if not yes:
        typer.confirm(f"Delete collection '{name}' and everything in it?", abort=True, err=True)
    with services() as svc:
        result = svc.knowledge.delete_collection(OPERATOR, name)
    err.print(f"Deleted '{name}': {result['documents']} documents, {result['chunks']} chunks.")


# -- documents ------------------------------------------------------------------------------------------
@documents_app.command("list")
def documents_list(collection: CollectionOpt, as_json: JsonOpt = False):
    """List the documents of a collection."""
    with services() as svc:
        rows = svc.knowledge.list_documents(OPERATOR, collection)
    if as_json:
        return print_json(rows)
    table = Table("id", "name", "language", "pages", "chunks", "duplicates skipped", "updated")
    for row in rows:
        table.add_row(str(row["id"]), row["name"], row["language"] or "", str(row["pages"] or ""),
                      str(row["chunks"]), str(row["duplicates_skipped"]), row["updated_at"][:16])
    out.print(table)


@documents_app.command("delete")
def documents_delete(document_id: int, collection: CollectionOpt):
    """Delete one document with its chunks, vectors and index entries."""
    with services() as svc:
        result = svc.knowledge.delete_document(OPERATOR, collection, document_id)
        if result["reindex_job"]:
            err.print("Re-indexing documents that shared paragraphs with it …")
            svc.knowledge.jobs.claim(svc.knowledge.runner.worker, result["reindex_job"])
            _run(svc, svc.knowledge.runner.run(result["reindex_job"]))
    err.print(f"Deleted document {document_id} ({result['chunks']} chunks).")


# -- ingest ---------------------------------------------------------------------------------------------
def expand_paths(arguments: list[str], suffixes: set[str]) -> tuple[list[tuple[str, Path]], list[str]]:
    """Files, folders (recursively, supported types only) and globs → (document name, path); plus misses."""
    found: dict[Path, str] = {}
    missing: list[str] = []
    for argument in arguments:
        path = Path(argument)
        matches = [Path(m) for m in sorted(glob.glob(argument, recursive=True))] if not path.exists() else [path]
        if not matches:
            missing.append(argument)
        for match in matches:
            if match.is_dir():
                for file in sorted(match.rglob("*")):
                    if file.is_file() and file.suffix.lower() in suffixes and not file.name.startswith("."):
                        found.setdefault(file.resolve(), file.relative_to(match).as_posix())
            elif match.is_file():
                found.setdefault(match.resolve(), match.name)
    return [(name, path) for path, name in found.items()], missing


def _job_summary(view: dict) -> None:
    totals = view["totals"]
    table = Table("", "", title=f"Ingest job {view['id']} — {view['status']}", show_header=False)
    for label, key in (("files", "files"), ("indexed", "indexed"), ("replaced", "replaced"),
                       ("unchanged", "unchanged"), ("pages", "pages"), ("pages read by OCR", "ocr_pages"),
                       ("chunks", "chunks"), ("duplicate paragraphs skipped", "duplicates_skipped"),
                       ("errors", "errors")):
        table.add_row(label, f"[red]{totals[key]}[/red]" if key == "errors" and totals[key] else str(totals[key]))
    err.print(table)
    for file in view["files"]:
        if file["status"] == "error":
            err.print(f"[red]error[/red] {file['name']}: {file['error']}")


def _run_job_with_progress(svc, job_id: str, total: int, done_before: int = 0) -> dict:
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, transient=False) as progress:
        task = progress.add_task("ingesting", total=total, completed=done_before)

        def on_file(job_file, outcome):
            progress.update(task, advance=1, description=f"{outcome.status:9} {job_file.name[-40:]}")

        _run(svc, svc.knowledge.runner.run(job_id, on_file=on_file))
    return svc.knowledge.job(OPERATOR, job_id)


@app.command()
def ingest(
    paths: Annotated[list[str], typer.Argument(help="Files, folders or globs (quote globs: 'docs/**/*.pdf').")],
    collection: CollectionOpt,
    create: Annotated[bool, typer.Option("--create", help="Create the collection if it does not exist.")] = False,
    fail_on_error: Annotated[bool, typer.Option(help="Exit 1 if any file could not be indexed.")] = False,
    as_json: JsonOpt = False,
):
    """Index documents into a collection, as a durable job (safe to interrupt: `shuken jobs resume`)."""
    with services() as svc:
        svc.registry.seed_bundled(show_progress=True)
        knowledge = svc.knowledge
        if create and collection not in {c["name"] for c in knowledge.list_collections(OPERATOR)}:
            knowledge.create_collection(OPERATOR, collection)
        files, missing = expand_paths(paths, set(knowledge.supported_suffixes()))
        for miss in missing:
            err.print(f"[yellow]warning:[/yellow] nothing matches {miss}")
        if not files:
            err.print("[red]error:[/red] no files to ingest. Supported types: "
                      + ", ".join(knowledge.supported_suffixes()))
            raise typer.Exit(1)
        job_id = knowledge.submit_paths(OPERATOR, collection, files)
        knowledge.jobs.claim(knowledge.runner.worker, job_id)  # ours: a running server must not take it
        err.print(f"Job {job_id}: {len(files)} file(s) into '{collection}'")
        view = _run_job_with_progress(svc, job_id, len(files))
    if as_json:
        print_json(view)
    else:
        _job_summary(view)
    if fail_on_error and view["totals"]["errors"]:
        raise typer.Exit(1)


# -- jobs -----------------------------------------------------------------------------------------------
@jobs_app.command("list")
def jobs_list(as_json: JsonOpt = False):
    """Ingestion jobs not yet finished (queued, running, or abandoned by a crashed process)."""
    with services() as svc:
        views = [svc.knowledge.job(OPERATOR, job_id) for job_id in svc.knowledge.jobs.unfinished()]
    if as_json:
        return print_json(views)
    table = Table("id", "collection", "status", "processed", "created")
    for view in views:
        table.add_row(view["id"], view["collection"], view["status"],
                      f"{view['totals']['processed']}/{view['totals']['files']}", view["created_at"][:19])
    out.print(table)


@jobs_app.command("show")
def jobs_show(job_id: str, as_json: JsonOpt = False):
    """One job with its per-file results."""
    with services() as svc:
        view = svc.knowledge.job(OPERATOR, job_id)
    if as_json:
        return print_json(view)
    _job_summary(view)


@jobs_app.command("resume")
def jobs_resume(job_id: Annotated[Optional[str], typer.Argument(help="One job; default: all resumable.")] = None):
    """Finish jobs a crashed or interrupted process left behind (files already recorded are not redone)."""
    with services() as svc:
        svc.registry.seed_bundled(show_progress=True)
        resumed = 0
        while True:
            claimed = svc.knowledge.jobs.claim(svc.knowledge.runner.worker, job_id)
            if claimed is None:
                break
            view = svc.knowledge.job(OPERATOR, claimed)
            err.print(f"Resuming job {claimed} ({view['totals']['processed']}/{view['totals']['files']} done)")
            _job_summary(_run_job_with_progress(svc, claimed, view["totals"]["files"], view["totals"]["processed"]))
            resumed += 1
            if job_id:
                break
    if not resumed:
        err.print("No job to resume (a running job is resumable once it has been silent for "
                  f"{Settings().job_stale_seconds:g} s).")


# -- search and ask -------------------------------------------------------------------------------------
@app.command()
def search(
    query: str,
    collection: Annotated[Optional[list[str]],
                          typer.Option("--collection", "-c", help="Repeatable; default all.")] = None,
    k: Annotated[int, typer.Option("--k", help="How many passages.")] = 10,
    mode: Annotated[str, typer.Option(help="hybrid, keyword or dense.")] = "hybrid",
    as_json: JsonOpt = False,
):
    """Search collections; best passages first."""
    with services() as svc:
        svc.registry.seed_bundled()
        hits = _run(svc, svc.knowledge.search(OPERATOR, collection or None, query, k, mode))
    if as_json:
        return print_json({"object": "list", "data": [hit.as_api() for hit in hits]})
    for rank, hit in enumerate(hits, start=1):
        where = f" p.{hit.page}" if hit.page else ""
        out.print(f"[bold]{rank}. {hit.document_name}{where}[/bold]  [dim]{hit.collection} · {hit.language} · "
                  f"score {hit.score:.4f}[/dim]")
        out.print(f"   {hit.text[:300].replace(chr(10), ' ')}{'…' if len(hit.text) > 300 else ''}", markup=False)
    if not hits:
        err.print("No results.")


@app.command()
def ask(
    question: str,
    collection: Annotated[list[str], typer.Option("--collection", "-c", help="Repeatable.")],
    k: Annotated[int, typer.Option("--k", help="Passages to consider.")] = 5,
    model: Annotated[Optional[str], typer.Option(help="Chat model (default: the configured default).")] = None,
    max_tokens: Annotated[int, typer.Option(help="Longest answer, in tokens.")] = 256,
    as_json: JsonOpt = False,
):
    """Answer a question from documents, with numbered citations."""
    from shuken.gateway.schemas import ChatCompletionRequest, ChatMessage, KnowledgeOptions
    from shuken.knowledge.answering import grounded_answer

    settings = Settings(parallel_sequences=1)
    with services(settings) as svc:
        svc.registry.seed_bundled(show_progress=True)
        request = ChatCompletionRequest(model=model or settings.default_model, max_tokens=max_tokens,
                                        temperature=0, messages=[ChatMessage(role="user", content=question)],
                                        knowledge=KnowledgeOptions(collections=collection, k=k))
        response = _run(svc, grounded_answer(svc.gateway, svc.knowledge, OPERATOR, request, "cli"))
    if as_json:
        return print_json(response)
    sys.stdout.write(response["choices"][0]["message"]["content"].strip() + "\n")
    if response.get("citations"):
        sys.stdout.write("\nSources:\n")
        for citation in response["citations"]:
            page = citation["location"]["page"]
            quote = " ".join(citation["quote"].split())
            sys.stdout.write(f"[{citation['index']}] {citation['document_name']}"
                             f"{f', p. {page}' if page else ''} — {quote[:200]}{'…' if len(quote) > 200 else ''}\n")


__all__ = ["collections_app", "documents_app", "jobs_app"]
