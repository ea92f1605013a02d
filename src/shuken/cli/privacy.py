"""`shuken erase` and `shuken retention sweep`: the privacy commands of the one Typer app.

The CLI is the local operator on the server's machine. Receipts and reports (JSON) go to stdout, the rest to stderr.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Optional

import typer

from shuken.cli.common import JsonOpt, print_json, app, err, services

retention_app = typer.Typer(help="Retention: enforce each workspace's retention limits.", no_args_is_help=True)
app.add_typer(retention_app, name="retention")


def _run_reindex(svc, job_ids: list[str]) -> None:
    """Re-index, in this process, the documents that had skipped paragraphs as copies of deleted ones (a running
    server may claim a job first; then it does the work)."""
    claimed = [job for job in job_ids if svc.knowledge.jobs.claim(svc.knowledge.runner.worker, job) == job]
    if not claimed:
        return
    err.print(f"Re-indexing documents that shared paragraphs with deleted ones ({len(claimed)} job(s)) …")
    svc.registry.seed_bundled()  # the embedding model must be registered (it is, if anything was indexed)

    async def work():
        try:
            for job in claimed:
                await svc.knowledge.runner.run(job)
        finally:
            await svc.host.close()
    asyncio.run(work())


@app.command("erase")
def erase(
    subject: Annotated[str, typer.Option("--subject", help="E-mail of the person whose content is erased.")],
    workspace: Annotated[Optional[str], typer.Option("--workspace", "-w", help="Only this workspace; default: "
                                                     "every workspace holding anything of theirs.")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    as_json: JsonOpt = False,
):
    """Erase a person's conversations, uploaded documents (chunks, vectors, index entries, stored files),
    captured training records and stored audit content; revoke their keys and, once they belong to no workspace,
    de-identify their account. The audit chain stays intact. Prints a JSON receipt on stdout."""
    if not yes:
        where = f"workspace '{workspace}'" if workspace else "every workspace"
        typer.confirm(f"Erase everything of {subject} in {where}? This cannot be undone.", abort=True, err=True)
    with services() as svc:
        receipt = svc.erasure.erase(subject, workspace=workspace)
        _run_reindex(svc, receipt["reindex_jobs"])
    print_json(receipt)
    if not as_json:
        totals = receipt["totals"]
        err.print(f"Erased {receipt['subject']} in {', '.join(receipt['workspaces'])}: "
                  + ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in totals.items() if n)
                  + f". Account {receipt['account']}.")
        storage = receipt["storage"]
        if storage.get("backend") == "sqlite" and not storage["wal_truncated"]:
            err.print("[yellow]warning:[/yellow] another process kept the database's write-ahead log open, so it "
                      "could not be truncated yet; run `shuken retention sweep` once the server is idle.")


@retention_app.command("sweep")
def retention_sweep(as_json: JsonOpt = False):
    """Delete what is older than each workspace's retention limits now (the server also does this periodically).
    Audited per workspace, even when nothing was old enough."""
    with services() as svc:
        report = svc.retention.sweep(actor="operator")
        _run_reindex(svc, [job for ws in report["workspaces"].values() for job in ws["reindex_jobs"]])
    if as_json:
        return print_json(report)
    if not report["workspaces"]:
        err.print("No workspace has a retention limit; set one with `shuken workspaces set "
                  "retention_conversations_days=90 -w W`.")
    for workspace, result in report["workspaces"].items():
        deleted = ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in result["counts"].items() if n)
        err.print(f"{workspace}: {deleted or 'nothing old enough'} (audit {result['audit_hash'][:12]}…)")
