"""/v1/admin and /v1/consent routes: workspace settings, users, keys, audit. Routers only parse and shape;
the governance services authorise (through `authz`) and decide."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from shuken.api.auth import Caller
from shuken.errors import InvalidRequest
from shuken.governance.audit import export_audited, parse_since
from shuken.governance.keys import parse_duration
from shuken.localisable import tr

router = APIRouter(prefix="/v1")


def _services(request: Request):
    return request.app.state.services


class NewUser(BaseModel):
    email: str
    role: str = "member"
    groups: list[str] = Field(default_factory=list)
    display_name: str = ""
    password: str | None = Field(default=None, description="Initial web sign-in password (12+ characters).")


class MemberChange(BaseModel):
    role: str | None = None
    groups: list[str] | None = None


class NewKey(BaseModel):
    user: str = Field(description="E-mail of the key's owner, a member of this workspace.")
    name: str
    scopes: list[str] | None = None
    expires: str | None = Field(default=None, description="e.g. 30d, 12h")
    rpm: int | None = None
    tpd: int | None = None


class ConsentChange(BaseModel):
    granted: bool
    delete_captured: bool = False


class NewWorkspace(BaseModel):
    id: str = Field(description="Permanent id: lower-case letters, digits, '-' or '_'.")
    display_name: str = ""


# -- workspaces -------------------------------------------------------------------------------------------
@router.get("/admin/workspaces")
def list_workspaces(request: Request, subject: Caller):
    return {"object": "list", "data": _services(request).directory.workspaces_of(subject)}


@router.post("/admin/workspaces", status_code=201)
def create_workspace(body: NewWorkspace, request: Request, subject: Caller):
    workspace, secret = _services(request).keys.create_workspace(subject, body.id, body.display_name)
    return {**workspace, "owner_key": secret}


@router.get("/admin/workspace")
def get_workspace(request: Request, subject: Caller):
    return _services(request).directory.workspace(subject)


@router.patch("/admin/workspace")
def update_workspace(changes: dict, request: Request, subject: Caller):
    policy = _services(request).directory.update_policy(subject, changes.get("policy", changes))
    return {"id": subject.workspace, "object": "workspace", "policy": policy.model_dump()}


# -- users ------------------------------------------------------------------------------------------------
@router.get("/admin/users")
def list_users(request: Request, subject: Caller):
    return {"object": "list", "data": [m.as_dict() for m in _services(request).directory.members(subject)]}


@router.post("/admin/users", status_code=201)
def create_user(body: NewUser, request: Request, subject: Caller):
    member = _services(request).directory.create_user(subject, body.email, body.role, body.groups, body.display_name,
                                                      body.password)
    return member.as_dict()


@router.patch("/admin/users/{email}")
def change_user(email: str, body: MemberChange, request: Request, subject: Caller):
    directory = _services(request).directory
    if body.role is not None:
        member = directory.set_role(subject, email, body.role, body.groups)
    elif body.groups is not None:
        member = directory.set_groups(subject, email, body.groups)
    else:
        member = directory.member_for(subject, email)
    return member.as_dict()


@router.delete("/admin/users/{email}")
def remove_user(email: str, request: Request, subject: Caller):
    _services(request).directory.remove_member(subject, email)
    return {"email": email, "object": "membership.deleted", "deleted": True}


# -- keys -------------------------------------------------------------------------------------------------
@router.get("/admin/keys")
def list_keys(request: Request, subject: Caller):
    return {"object": "list", "data": [k.as_dict() for k in _services(request).keys.list(subject)]}


@router.post("/admin/keys", status_code=201)
def create_key(body: NewKey, request: Request, subject: Caller):
    expires = parse_duration(body.expires) if body.expires else None
    key, secret = _services(request).keys.create(subject, body.user, body.name, body.scopes, expires, body.rpm,
                                                 body.tpd)
    return {**key.as_dict(), "secret": secret}


@router.delete("/admin/keys/{ident}")
def revoke_key(ident: str, request: Request, subject: Caller):
    return _services(request).keys.revoke(subject, ident).as_dict()


# -- audit ------------------------------------------------------------------------------------------------
@router.get("/admin/audit")
def read_audit(request: Request, subject: Caller, since: str | None = None, action: str | None = None,
               limit: int = Query(default=100, ge=1, le=1000)):
    return {"object": "list", "data": _services(request).audit.read(subject, parse_since(since), action, limit)}


@router.get("/admin/audit/verify")
def verify_audit(request: Request, subject: Caller):
    return _services(request).audit.verify_for(subject).as_dict()


@router.get("/admin/audit/export")
async def export_audit(request: Request, subject: Caller, format: str = "jsonl", since: str | None = None):
    if format not in ("jsonl", "csv"):
        raise InvalidRequest(tr("format must be jsonl or csv."), param="format")
    services = _services(request)
    text, _count = await run_in_threadpool(export_audited, services.audit, services.bus, subject, parse_since(since),
                                           format)
    return Response(text, media_type="application/x-ndjson" if format == "jsonl" else "text/csv")


# -- consent (every user, for themselves) -----------------------------------------------------------------
@router.get("/consent")
def consent_status(request: Request, subject: Caller):
    return _services(request).consent.status(subject)


@router.post("/consent")
def change_consent(body: ConsentChange, request: Request, subject: Caller):
    return _services(request).consent.set(subject, body.granted, body.delete_captured)
