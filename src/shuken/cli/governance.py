"""`shuken workspaces|users|keys|audit|consent|data`: the governance commands of the one Typer app.

The CLI is the local operator on the server's machine: it acts as an owner of the workspace it names.
Secrets and data go to stdout; messages to stderr.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from shuken.cli.common import JsonOpt, print_json, app, err, out, services
from shuken.errors import NotFound
from shuken.governance.audit import export_audited, parse_since
from shuken.governance.identity import DEFAULT_WORKSPACE, ROLES, SCOPES, Subject
from shuken.governance.keys import parse_duration
from shuken.localisable import tr

workspaces_app = typer.Typer(help="Workspaces (tenants): create, list, show, set policy.", no_args_is_help=True)
users_app = typer.Typer(help="Users and their role and groups in a workspace.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys: create (secret shown once), list, revoke.", no_args_is_help=True)
audit_app = typer.Typer(help="The tamper-evident audit log: verify, export, checkpoint.", no_args_is_help=True)
consent_app = typer.Typer(help="A user's consent to training-data capture.", no_args_is_help=True)
data_app = typer.Typer(help="Data that leaves Shuken: training-data export.", no_args_is_help=True)
for sub, name in ((workspaces_app, "workspaces"), (users_app, "users"), (keys_app, "keys"), (audit_app, "audit"),
                  (consent_app, "consent"), (data_app, "data")):
    app.add_typer(sub, name=name)

WorkspaceOpt = Annotated[str, typer.Option("--workspace", "-w", help="Workspace id.")]


# -- workspaces -------------------------------------------------------------------------------------------
@workspaces_app.command("create")
def workspaces_create(slug: str, name: Annotated[str, typer.Option(help="Display name.")] = "",
                      as_json: JsonOpt = False):
    """Create a workspace. Its data is never visible from any other workspace."""
    with services() as svc:
        created = svc.directory.create_workspace(slug, name)
    if as_json:
        return print_json(created)
    err.print(f"Created workspace [bold]{slug}[/bold]. Add people with `shuken users create EMAIL -w {slug} "
              "--role owner`.")


@workspaces_app.command("list")
def workspaces_list(as_json: JsonOpt = False):
    """List workspaces with their member counts and main settings."""
    with services() as svc:
        rows = svc.directory.list_workspaces()
    if as_json:
        return print_json(rows)
    table = Table("id", "name", "members", "training capture", "audit content", "created")
    for row in rows:
        policy = row["policy"]
        table.add_row(row["id"], row["display_name"], str(row["members"]), policy["training_capture"],
                      "kept" if policy["audit_content"] else "not kept", row["created_at"][:16])
    out.print(table)


@workspaces_app.command("set")
def workspaces_set(settings: Annotated[list[str], typer.Argument(help="KEY=VALUE (value as JSON or text), e.g. "
                                                                        "training_capture=opt-in")],
                   workspace: WorkspaceOpt = DEFAULT_WORKSPACE, as_json: JsonOpt = False):
    """Change a workspace's policy (retention, consent mode, PII actions, audit content). Audited."""
    changes = {}
    for item in settings:
        key, sep, raw = item.partition("=")
        if not sep:
            err.print(f"[red]error:[/red] {item!r} is not KEY=VALUE")
            raise typer.Exit(2)
        try:
            changes[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            changes[key.strip()] = raw
    with services() as svc:
        policy = svc.directory.update_policy(Subject.operator(workspace), changes)
    if as_json:
        return print_json(policy.model_dump())
    for key in changes:
        err.print(f"{workspace}: {key} = {getattr(policy, key)!r}")


# -- users ------------------------------------------------------------------------------------------------
@users_app.command("create")
def users_create(
    email: str,
    workspace: WorkspaceOpt = DEFAULT_WORKSPACE,
    role: Annotated[str, typer.Option(help=f"One of {', '.join(ROLES)}.")] = "member",
    group: Annotated[Optional[list[str]], typer.Option("--group", help="A group (repeatable).")] = None,
    name: Annotated[str, typer.Option(help="Display name.")] = "",
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read a sign-in password from stdin.")]
    = False,
    as_json: JsonOpt = False,
):
    """Add a user to a workspace with a role (creating the account if new)."""
    password = sys.stdin.readline().rstrip("\n") if password_stdin else None
    with services() as svc:
        member = svc.directory.create_user(Subject.operator(workspace), email, role, group or [], name, password)
    if as_json:
        return print_json(member.as_dict())
    err.print(f"{member.email} is {member.role} of '{workspace}'" +
              (f", in group(s) {', '.join(member.groups)}" if member.groups else ""))


@users_app.command("list")
def users_list(workspace: WorkspaceOpt = DEFAULT_WORKSPACE, as_json: JsonOpt = False):
    """List a workspace's members, roles and groups."""
    with services() as svc:
        members = svc.directory.members(Subject.operator(workspace))
    if as_json:
        return print_json([m.as_dict() for m in members])
    table = Table("id", "email", "role", "groups")
    for m in members:
        table.add_row(str(m.user_id), m.email, m.role, ", ".join(m.groups))
    out.print(table)


@users_app.command("set-role")
def users_set_role(email: str, role: Annotated[str, typer.Option(help=f"One of {', '.join(ROLES)}.")],
                   workspace: WorkspaceOpt = DEFAULT_WORKSPACE,
                   group: Annotated[Optional[list[str]], typer.Option("--group", help="Replace the groups.")] = None):
    """Change a member's role (and, if given, their groups). Audited."""
    with services() as svc:
        member = svc.directory.set_role(Subject.operator(workspace), email, role, group)
    err.print(f"{member.email} is now {member.role} of '{workspace}'")


@users_app.command("set-password")
def users_set_password(email: str):
    """Set a user's sign-in password, read from stdin (at least 12 characters)."""
    password = sys.stdin.readline().rstrip("\n")
    with services() as svc:
        svc.directory.set_password(email, password)
    err.print(f"Password set for {email}.")


# -- keys -------------------------------------------------------------------------------------------------
@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option("--name", help="Who or what uses the key.")],
    user: Annotated[str, typer.Option("--user", help="E-mail of the key's owner (a member of the workspace).")],
    workspace: WorkspaceOpt = DEFAULT_WORKSPACE,
    scopes: Annotated[Optional[list[str]], typer.Option("--scopes", help=f"Scopes (repeatable or comma-separated) "
                                                         f"from {', '.join(SCOPES)}; default chat,knowledge:read.")]
    = None,
    expires: Annotated[Optional[str], typer.Option(help="Lifetime, e.g. 30d, 12h, 2w.")] = None,
    rpm: Annotated[Optional[int], typer.Option(help="Requests per minute.")] = None,
    tpd: Annotated[Optional[int], typer.Option(help="Tokens per day (prompt + completion).")] = None,
):
    """Create a key. The secret is printed once, alone on stdout; only its hash is stored."""
    wanted = [s.strip() for item in scopes or [] for s in item.split(",") if s.strip()]
    with services() as svc:
        key, secret = svc.keys.create(Subject.operator(workspace), user, name, wanted or None,
                                      parse_duration(expires) if expires else None, rpm, tpd)
    err.print(f"Created key {key.id} '{key.name}' for {key.email} in '{workspace}' (scopes {', '.join(key.scopes)}"
              + (f", expires {key.expires_at:%Y-%m-%d %H:%M} UTC" if key.expires_at else "") +
              "). It is shown only now; store it safely.")
    print(secret)


@keys_app.command("list")
def keys_list(workspace: WorkspaceOpt = DEFAULT_WORKSPACE, as_json: JsonOpt = False):
    """List a workspace's keys (never their secrets)."""
    with services() as svc:
        keys = svc.keys.list(Subject.operator(workspace))
    if as_json:
        return print_json([k.as_dict() for k in keys])
    table = Table("id", "name", "user", "prefix", "scopes", "quotas", "expires", "status")
    for k in keys:
        quotas = ", ".join(f"{v} {label}" for v, label in ((k.rpm, "rpm"), (k.tpd, "tpd")) if v)
        table.add_row(str(k.id), k.name, k.email, k.prefix + "…", ", ".join(k.scopes), quotas,
                      k.expires_at.strftime("%Y-%m-%d") if k.expires_at else "", k.status)
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(key: Annotated[str, typer.Argument(help="Key id, name or prefix.")],
                workspace: WorkspaceOpt = DEFAULT_WORKSPACE):
    """Revoke a key; calls with it fail with 401 from now on. Audited."""
    with services() as svc:
        revoked = svc.keys.revoke(Subject.operator(workspace), key)
    err.print(f"Revoked key {revoked.id} '{revoked.name}'.")


# -- audit ------------------------------------------------------------------------------------------------
@audit_app.command("verify")
def audit_verify(workspace: Annotated[Optional[str], typer.Option("--workspace", "-w", help="One workspace; "
                                                                  "default: every chain.")] = None,
                 as_json: JsonOpt = False):
    """Recompute every chain. Exit 0 if intact; otherwise exit 1 naming the first bad record."""
    with services() as svc:
        chains = svc.audit.chains()
        if workspace and workspace not in chains \
                and workspace not in {w["id"] for w in svc.directory.list_workspaces()}:
            # A mistyped name must not read as "intact, 0 records".
            raise NotFound(tr("No workspace or audit chain named '%(workspace)s'; see `shuken workspaces list`.",
                              workspace=workspace),
                           code="workspace_not_found")
        reports = [svc.audit.verify(chain) for chain in ([workspace] if workspace else chains)]
    if as_json:
        print_json([r.as_dict() for r in reports])
    else:
        for r in reports:
            if r.ok:
                err.print(f"[green]intact[/green] {r.workspace}: {r.records} records, {r.checkpoints} signed "
                          "checkpoint(s) checked")
            else:
                err.print(f"[red]BROKEN[/red] {r.workspace}: {r.problem}")
        if not reports:
            err.print("No audit records yet.")
    if not all(r.ok for r in reports):
        raise typer.Exit(1)


@audit_app.command("export")
def audit_export(workspace: WorkspaceOpt = DEFAULT_WORKSPACE,
                 format: Annotated[str, typer.Option(help="jsonl or csv.")] = "jsonl",
                 since: Annotated[Optional[str], typer.Option(help="ISO-8601 time; only records at or after it.")]
                 = None,
                 out_file: Annotated[Optional[Path], typer.Option("--out", help="File (default stdout).")] = None):
    """Export a workspace's audit records for a SIEM (the export itself is audited)."""
    if format not in ("jsonl", "csv"):
        err.print("[red]error:[/red] --format must be jsonl or csv")
        raise typer.Exit(2)
    with services() as svc:
        text, count = export_audited(svc.audit, svc.bus, Subject.operator(workspace), parse_since(since), format)
    if out_file:
        out_file.write_text(text, encoding="utf-8")
        err.print(f"Wrote {count} records to {out_file}")
    else:
        sys.stdout.write(text)


@audit_app.command("checkpoint")
def audit_checkpoint():
    """Sign the head of every chain that moved since its last checkpoint (Ed25519). Keep the key and checkpoints
    file off this machine's DB."""
    with services() as svc:
        made = svc.audit.checkpoint()
        key_path, checkpoint_file = svc.settings.signing_key_path, svc.audit.checkpoint_file
    for checkpoint in made:
        err.print(f"signed {checkpoint['workspace']} at record {checkpoint['seq']}")
    if not made:
        err.print("Every chain's head is signed already: nothing new to sign.")
    err.print(f"Key: {key_path}; checkpoints also appended to {checkpoint_file}")


# -- consent ----------------------------------------------------------------------------------------------
def _user_subject(svc, workspace: str, email: str) -> Subject:
    member = svc.directory.member(workspace, email)
    with svc.db.session() as session:
        return svc.directory.subject_for(session, workspace, member.user_id)


@consent_app.command("grant")
def consent_grant(email: str, workspace: WorkspaceOpt = DEFAULT_WORKSPACE, as_json: JsonOpt = False):
    """Record that the user grants consent (as told by them, e.g. on a signed form). Audited."""
    with services() as svc:
        status = svc.consent.set(_user_subject(svc, workspace, email), True, recorded_by="operator")
    print_json(status) if as_json else err.print(f"{email}: consent granted in '{workspace}'")


@consent_app.command("withdraw")
def consent_withdraw(email: str, workspace: WorkspaceOpt = DEFAULT_WORKSPACE,
                     delete: Annotated[bool, typer.Option("--delete", help="Also delete what was captured.")] = False,
                     as_json: JsonOpt = False):
    """Withdraw the user's consent: capture stops at once. Audited."""
    with services() as svc:
        status = svc.consent.set(_user_subject(svc, workspace, email), False, delete_captured=delete,
                                 recorded_by="operator")
    print_json(status) if as_json else err.print(
        f"{email}: consent withdrawn in '{workspace}'" + (f"; {status['deleted_records']} captured record(s) deleted"
                                                         if delete else ""))


@consent_app.command("status")
def consent_status(email: str, workspace: WorkspaceOpt = DEFAULT_WORKSPACE):
    """Show a user's consent state and how many records were captured."""
    with services() as svc:
        print_json(svc.consent.status(_user_subject(svc, workspace, email)))


# -- data -------------------------------------------------------------------------------------------------
@data_app.command("export-training")
def data_export_training(*, workspace: WorkspaceOpt = DEFAULT_WORKSPACE,
                         out_file: Annotated[Path, typer.Option("--out", help="JSONL file to write.")]):
    """Export only consented conversations, each with its lineage (user, consent grant, model). Audited."""
    with services() as svc:
        result = svc.consent.export_training(Subject.operator(workspace), out_file)
    err.print(f"Wrote {result['records']} consented record(s) to {result['path']}")
