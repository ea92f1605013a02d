"""What every web-UI route shares: the signed-in viewer (session cookie), CSRF checks, the page renderer with
the viewer's language, and HTML error pages. Routes only parse, call a service and render; no business logic.

CSRF: every state-changing request must carry the session's token (form field `csrf_token` or header
`X-CSRF-Token`) and, when the browser sends one, an Origin equal to ours. The sign-in form, which has no
session yet, uses a double-submit cookie instead.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, StrictUndefined
from starlette.concurrency import run_in_threadpool

from shuken import __version__
from shuken.api.errors import error_response
from shuken.errors import Forbidden, ShukenError, Unauthorized
from shuken.governance.authz import permits
from shuken.governance.sessions import WebSession
from shuken.localisable import tr
from shuken.web.i18n import LANGUAGES, Localiser, choose_language

SESSION_COOKIE = "shuken_session"
LANGUAGE_COOKIE = "shuken_lang"
SIGNIN_COOKIE = "shuken_signin"
API_PREFIX = "/ui/api"  # JSON endpoints the pages' scripts call; everything else under the UI is HTML

templates = Environment(loader=PackageLoader("shuken", "web/templates"), autoescape=True,
                        undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


class SignInRequired(ShukenError):
    """A page was asked for without a valid session: the handler redirects to the sign-in page."""

    status = 401
    type = "invalid_request_error"
    code = "not_signed_in"


def localiser(request: Request) -> Localiser:
    return Localiser(choose_language(request.cookies.get(LANGUAGE_COOKIE), request.headers.get("accept-language")))


def is_api(request: Request) -> bool:
    return request.url.path.startswith(API_PREFIX)


def _cookie_secure(request: Request) -> bool:
    return request.app.state.services.settings.web_secure_cookies


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int | None = None,
               http_only: bool = True) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", secure=_cookie_secure(request), httponly=http_only,
                        samesite="lax")


# -- the viewer ---------------------------------------------------------------------------------------------
async def current_session(request: Request) -> WebSession:
    sessions = request.app.state.services.sessions
    try:
        viewer = await run_in_threadpool(sessions.resolve, request.cookies.get(SESSION_COOKIE))
    except Unauthorized as exc:
        if is_api(request):
            raise
        raise SignInRequired(exc.message) from None
    request.state.viewer = viewer
    return viewer


def _same_origin(request: Request) -> bool:
    """Browsers send Origin on every cross-site POST (and Sec-Fetch-Site); a client sending neither is not a
    browser acting for someone else, and still needs the token."""
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None:
        return True
    ours, theirs = urlsplit(str(request.base_url)), urlsplit(origin)
    return (theirs.scheme, theirs.netloc) == (ours.scheme, ours.netloc)


async def same_site_only(request: Request) -> None:
    """For downloads that are recorded in the audit log (GET, so a plain link works): refused when another
    site makes the browser ask, so nobody can write "exported" records into the chain with a link."""
    if not _same_origin(request):
        raise Forbidden(tr("This download must be started from Shuken's own pages."), code="cross_site")


async def _submitted_token(request: Request) -> str:
    header = request.headers.get("x-csrf-token")
    if header:
        return header
    # Only small HTML forms carry the token in the body. A multipart upload must send the header: parsing its
    # body here would spool files to disk before the route has checked their size and count.
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        form = await request.form(max_files=0, max_fields=200)  # cached; the route reads the same form
        value = form.get("csrf_token")
        return value if isinstance(value, str) else ""
    return ""


async def csrf_protected(request: Request, viewer: Annotated[WebSession, Depends(current_session)]) -> WebSession:
    submitted = await _submitted_token(request)
    if not _same_origin(request) or not hmac.compare_digest(submitted.encode(), viewer.csrf_token.encode()):
        raise Forbidden(tr("This form has expired or came from another site. Reload the page and try again."),
                        code="csrf_failed")
    return viewer


async def signin_csrf(request: Request) -> None:
    submitted = await _submitted_token(request)
    expected = request.cookies.get(SIGNIN_COOKIE, "")
    if not expected or not _same_origin(request) or not hmac.compare_digest(submitted.encode(), expected.encode()):
        raise Forbidden(tr("The sign-in form has expired. Reload the page and try again."), code="csrf_failed")


Viewer = Annotated[WebSession, Depends(current_session)]
Guarded = Annotated[WebSession, Depends(csrf_protected)]  # the viewer of a state-changing request


def can(viewer: WebSession | None, action: str) -> bool:
    """For showing or hiding controls only: the services check again on every request."""
    return viewer is not None and permits(viewer.subject, action)


def require_page(viewer: WebSession, action: str) -> None:
    if not can(viewer, action):
        raise Forbidden(tr("Your role in this workspace does not allow this page."), code="forbidden_page")


# -- rendering ----------------------------------------------------------------------------------------------
def render(request: Request, template: str, status: int = 200, **context) -> HTMLResponse:
    loc = localiser(request)
    viewer: WebSession | None = getattr(request.state, "viewer", None)
    page = templates.get_template(template).render(
        request=request, path=request.url.path, viewer=viewer, csrf_token=viewer.csrf_token if viewer else "",
        _=loc.gettext, ngettext=loc.ngettext, fmt=loc, lang=loc.language, languages=LANGUAGES,
        can=lambda action: can(viewer, action), version=__version__, **context)
    response = HTMLResponse(page, status_code=status)
    if viewer is not None:
        # Signed-in pages hold conversations and audit records: not for the Back button of a shared computer.
        response.headers["Cache-Control"] = "no-store"
    return response


def sign_in_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/signin?next={quote(target, safe='')}", status_code=303)


def safe_next(target: str | None) -> str:
    """Only a path on this site: never an open redirect to another host."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/chat"
    return target


def new_signin_token() -> str:
    return secrets.token_urlsafe(24)


def html_error(request: Request, error: ShukenError) -> Response:
    """Errors on pages are pages (in the viewer's language); on the UI's JSON endpoints, the API error object."""
    if isinstance(error, SignInRequired) and request.method == "GET":
        return sign_in_redirect(request)
    if is_api(request):
        api = error_response(error)  # the API's status and headers (Retry-After on 429)
        payload = error.to_openai()
        payload["error"]["message"] = localiser(request).text(error.message)  # shown to the user by the page's script
        retry_after = api.headers.get("retry-after")
        return JSONResponse(payload, status_code=api.status_code,
                            headers={"Retry-After": retry_after} if retry_after else None)
    return render(request, "error.html.j2", status=error.status, error=error)


def page_error(request: Request, error: ShukenError) -> Response | None:
    """The UI's rendering of an error, or None for the API's paths (they keep the API's error object)."""
    return html_error(request, error) if wants_html(request) else None


def wants_html(request: Request) -> bool:
    path = request.url.path
    return not path.startswith(("/v1", "/healthz", "/readyz", "/metrics"))
