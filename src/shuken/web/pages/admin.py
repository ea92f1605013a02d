"""Web UI administration: the workspace overview (sovereignty checks), users, API keys and the workspace policy.
Each page checks the viewer's role up front (403 page); the governance services check again on every call."""

from __future__ import annotations

from typing import Annotated, get_args

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse

from shuken.api.report_routes import server_address
from shuken.web.pages.common import Guarded, Viewer, render, require_page
from shuken.errors import InvalidRequest, NotFound, ShukenError
from shuken.reports import doctor
from shuken.governance.identity import DEFAULT_SCOPES, ROLES, SCOPES
from shuken.governance.keys import parse_duration
from shuken.governance.policy import PiiAction
from shuken.localisable import tr

router = APIRouter(prefix="/admin", include_in_schema=False)

RETENTION_FIELDS = ("retention_conversations_days", "retention_audit_content_days", "retention_files_days",
                    "retention_training_days")
PII_FIELDS = ("pii_before_logging", "pii_before_model", "pii_in_answers")
PII_ACTIONS = get_args(PiiAction)
Text = Annotated[str, Form()]


def _services(request: Request):
    return request.app.state.services


def _done(target: str, code: str) -> RedirectResponse:
    """Post/Redirect/Get: the page shows a fixed, translated notice for `code` (never text from the request)."""
    return RedirectResponse(f"{target}?done={code}", status_code=303)


def _groups(text: str) -> list[str]:
    return [group.strip() for group in text.split(",") if group.strip()]


def _whole_number(text: str, param: str) -> int | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise InvalidRequest(tr("%(setting)s must be a whole number (or empty).", setting=param), param=param) from None


# -- overview ---------------------------------------------------------------------------------------------
@router.get("")
def overview(request: Request, viewer: Viewer):
    """Sync route: FastAPI runs it in the threadpool, so the doctor's file walks and chain check don't block."""
    require_page(viewer, "users:manage")
    services, subject = _services(request), viewer.subject
    workspace = services.directory.workspace(subject)
    keys = services.keys.list(subject)
    report = doctor.gather_for(services, subject, verify_models=False, **server_address(request))
    sections = [(name, [check for check in report.checks if check.section == name]) for name in doctor.SECTIONS]
    return render(request, "admin_overview.html.j2", workspace=workspace, report=report,
                  sections=[(name, checks) for name, checks in sections if checks],
                  active_keys=sum(1 for key in keys if key.status == "active"),
                  warnings=sum(1 for check in report.checks if check.level == "warn"))


# -- users ------------------------------------------------------------------------------------------------
def _users_page(request: Request, viewer, status: int = 200, error: str | None = None, form: dict | None = None):
    members = _services(request).directory.members(viewer.subject)
    return render(request, "admin_users.html.j2", status=status, members=members, roles=ROLES, error=error,
                  form=form or {"email": "", "display_name": "", "role": "member", "groups": ""},
                  done=request.query_params.get("done"))


@router.get("/users")
def users(request: Request, viewer: Viewer):
    require_page(viewer, "users:manage")
    return _users_page(request, viewer)


@router.post("/users")
def add_user(request: Request, viewer: Guarded, email: Text = "", display_name: Text = "", role: Text = "member",
             groups: Text = "", password: Text = ""):
    require_page(viewer, "users:manage")
    try:
        _services(request).directory.create_user(viewer.subject, email, role, _groups(groups), display_name.strip(),
                                                 password or None)
    except ShukenError as exc:
        form = {"email": email, "display_name": display_name, "role": role, "groups": groups}
        return _users_page(request, viewer, exc.status, exc.message, form)
    return _done("/admin/users", "added")


@router.post("/users/update")
def update_user(request: Request, viewer: Guarded, email: Text = "", role: Text = "", groups: Text = ""):
    require_page(viewer, "users:manage")
    try:
        _services(request).directory.set_role(viewer.subject, email, role, _groups(groups))
    except ShukenError as exc:
        return _users_page(request, viewer, exc.status, exc.message)
    return _done("/admin/users", "updated")


@router.get("/users/remove")
def confirm_remove_user(request: Request, viewer: Viewer, email: str = ""):
    require_page(viewer, "users:manage")
    member = _services(request).directory.member(viewer.subject.workspace, email)
    return render(request, "admin_confirm.html.j2", kind="user", member=member)


@router.post("/users/remove")
def remove_user(request: Request, viewer: Guarded, email: Text = ""):
    require_page(viewer, "users:manage")
    try:
        _services(request).directory.remove_member(viewer.subject, email)
    except ShukenError as exc:
        return _users_page(request, viewer, exc.status, exc.message)
    return _done("/admin/users", "removed")


# -- API keys ---------------------------------------------------------------------------------------------
def _keys_page(request: Request, viewer, status: int = 200, error: str | None = None, form: dict | None = None,
               created=None, secret: str | None = None):
    services = _services(request)
    response = render(request, "admin_keys.html.j2", status=status, keys=services.keys.list(viewer.subject),
                      members=services.directory.members(viewer.subject), scopes=SCOPES, error=error,
                      form=form or {"user": viewer.email, "name": "", "scopes": list(DEFAULT_SCOPES), "expires": "",
                                    "rpm": "", "tpd": ""},
                      created=created, secret=secret, done=request.query_params.get("done"))
    response.headers["Cache-Control"] = "no-store"  # a page with a secret must not stay in any cache
    return response


@router.get("/keys")
def keys(request: Request, viewer: Viewer):
    require_page(viewer, "keys:manage")
    return _keys_page(request, viewer)


@router.post("/keys")
def create_key(request: Request, viewer: Guarded, user: Text = "", name: Text = "",
               scopes: Annotated[list[str], Form()] = [], expires: Text = "",  # noqa: B006 (FastAPI copies it)
               rpm: Text = "", tpd: Text = ""):
    require_page(viewer, "keys:manage")
    form = {"user": user, "name": name, "scopes": scopes, "expires": expires, "rpm": rpm, "tpd": tpd}
    try:
        if not scopes:
            raise InvalidRequest(tr("Choose at least one scope."), param="scopes")
        lifetime = parse_duration(expires) if expires.strip() else None
        key, secret = _services(request).keys.create(viewer.subject, user, name, scopes, lifetime,
                                                     _whole_number(rpm, "rpm"), _whole_number(tpd, "tpd"))
    except ShukenError as exc:
        return _keys_page(request, viewer, exc.status, exc.message, form)
    # Rendered from the POST itself: the secret is never stored, logged or put in a URL, so it is shown once.
    return _keys_page(request, viewer, created=key, secret=secret)


def _key(request: Request, viewer, ident: int):
    for key in _services(request).keys.list(viewer.subject):
        if key.id == ident:
            return key
    raise NotFound(tr("No API key %(ident)s in this workspace.", ident=ident), code="key_not_found")


@router.get("/keys/{ident}/revoke")
def confirm_revoke_key(request: Request, viewer: Viewer, ident: int):
    require_page(viewer, "keys:manage")
    return render(request, "admin_confirm.html.j2", kind="key", key=_key(request, viewer, ident))


@router.post("/keys/{ident}/revoke")
def revoke_key(request: Request, viewer: Guarded, ident: int):
    require_page(viewer, "keys:manage")
    try:
        _services(request).keys.revoke(viewer.subject, str(ident))
    except ShukenError as exc:
        return _keys_page(request, viewer, exc.status, exc.message)
    return _done("/admin/keys", "revoked")


# -- workspace settings -----------------------------------------------------------------------------------
def _settings_page(request: Request, viewer, status: int = 200, error: str | None = None,
                   values: dict | None = None):
    workspace = _services(request).directory.workspace(viewer.subject)
    return render(request, "admin_settings.html.j2", status=status, workspace=workspace,
                  policy={**workspace["policy"], **(values or {})}, retention_fields=RETENTION_FIELDS,
                  pii_fields=PII_FIELDS, pii_actions=PII_ACTIONS, error=error, done=request.query_params.get("done"))


@router.get("/settings")
def settings(request: Request, viewer: Viewer):
    require_page(viewer, "workspace:settings")
    return _settings_page(request, viewer)


@router.post("/settings")
def save_settings(request: Request, viewer: Guarded, training_capture: Text = "off", audit_content: Text = "",
                  retention_conversations_days: Text = "", retention_audit_content_days: Text = "",
                  retention_files_days: Text = "", retention_training_days: Text = "",
                  pii_before_logging: Text = "", pii_before_model: Text = "", pii_in_answers: Text = "",
                  ai_notice: Text = "", human_oversight: Text = ""):
    require_page(viewer, "workspace:settings")
    retention = {"retention_conversations_days": retention_conversations_days,
                 "retention_audit_content_days": retention_audit_content_days,
                 "retention_files_days": retention_files_days, "retention_training_days": retention_training_days}
    submitted = {"training_capture": training_capture, "audit_content": audit_content == "on",  # ticked box: "on"
                 "pii_before_logging": pii_before_logging, "pii_before_model": pii_before_model,
                 "pii_in_answers": pii_in_answers, "ai_notice": ai_notice.strip(),
                 "human_oversight": human_oversight.strip(), **retention}
    try:
        changes = {**submitted, **{name: _whole_number(text, name) for name, text in retention.items()}}
        _services(request).directory.update_policy(viewer.subject, changes)
    except ShukenError as exc:
        return _settings_page(request, viewer, exc.status, exc.message, submitted)
    return _done("/admin/settings", "saved")
