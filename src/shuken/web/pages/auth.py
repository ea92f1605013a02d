"""Web UI: sign-in, sign-out, the language switch and the front door. Passwords, lock-out and their audit
records are the directory's; sessions are the session service's."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from shuken.web.pages.common import (
    LANGUAGE_COOKIE, SESSION_COOKIE, SIGNIN_COOKIE, csrf_protected, current_session, new_signin_token, render,
    safe_next, set_cookie, signin_csrf,
)
from shuken.errors import ShukenError, Unauthorized
from shuken.governance.identity import DEFAULT_WORKSPACE
from shuken.web.i18n import LANGUAGES

router = APIRouter(include_in_schema=False)


@router.get("/")
async def front_door(request: Request):
    try:
        await current_session(request)
    except ShukenError:
        return RedirectResponse("/signin", status_code=303)
    return RedirectResponse("/chat", status_code=303)


def _signin_page(request: Request, status: int = 200, failed: bool = False, email: str = "",
                 workspace: str = DEFAULT_WORKSPACE, next: str | None = None):
    token = new_signin_token()
    response = render(request, "signin.html.j2", status=status, signin_token=token, failed=failed, email=email,
                      workspace=workspace, next=safe_next(next or request.query_params.get("next")))
    response.headers["Cache-Control"] = "no-store"
    set_cookie(request, response, SIGNIN_COOKIE, token, max_age=3600)
    return response


@router.get("/signin")
async def signin_form(request: Request):
    return _signin_page(request)


@router.post("/signin", dependencies=[Depends(signin_csrf)])
async def signin(request: Request, email: Annotated[str, Form()] = "", password: Annotated[str, Form()] = "",
                 workspace: Annotated[str, Form()] = DEFAULT_WORKSPACE, next: Annotated[str, Form()] = "/chat"):
    sessions = request.app.state.services.sessions
    try:
        token = await run_in_threadpool(sessions.sign_in, workspace.strip() or DEFAULT_WORKSPACE, email, password)
    except Unauthorized:
        # One message for every failure, locked accounts included: the page must not tell who has an account.
        return _signin_page(request, status=401, failed=True, email=email, workspace=workspace, next=next)
    # A sign-in replaces whatever session this browser had (no two sessions behind one cookie jar).
    await run_in_threadpool(sessions.sign_out, request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse(safe_next(next), status_code=303)
    set_cookie(request, response, SESSION_COOKIE, token)
    response.delete_cookie(SIGNIN_COOKIE, path="/")
    return response


@router.post("/signout")
async def signout(request: Request):
    """Ends the session if the form carries its token; a session that has already ended just goes to sign-in."""
    try:
        await csrf_protected(request, await current_session(request))
    except ShukenError as exc:
        if exc.status == 403:
            raise
    else:
        await run_in_threadpool(request.app.state.services.sessions.sign_out, request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/signin", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/language/{language}")
async def switch_language(language: str, request: Request):
    """A plain link (no state on the server): remembers the choice in a cookie for a year."""
    target = safe_next(request.query_params.get("next"))
    response = RedirectResponse(target, status_code=303)
    if language in LANGUAGES:
        set_cookie(request, response, LANGUAGE_COOKIE, language, max_age=365 * 24 * 3600, http_only=False)
    return response
