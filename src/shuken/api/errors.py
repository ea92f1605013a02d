"""The one place exceptions become OpenAI error objects with the right HTTP status."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from shuken.errors import InvalidRequest, NotFound, ShukenError
from shuken.localisable import tr

log = logging.getLogger("shuken.api")
# pydantic appends the tried type to a union member's location ("prompt.str"); clients know "prompt".
_TYPE_TAG = re.compile(r"^(str|int|float|bool|none|[\w-]+\[.*\])$")
ENDPOINTS = "/v1/models, /v1/chat/completions, /v1/completions, /v1/embeddings"


def error_response(error: ShukenError) -> JSONResponse:
    headers = {"Retry-After": str(getattr(error, "retry_after", 1))} if error.status == 429 else None
    return JSONResponse(error.to_openai(), status_code=error.status, headers=headers)


def _validation_message(exc: RequestValidationError) -> InvalidRequest:
    errors = exc.errors()
    first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    loc = [str(part) for part in first.get("loc", ()) if part != "body" and not _TYPE_TAG.match(str(part))]
    param = ".".join(loc) or None
    if first.get("type") == "json_invalid":
        return InvalidRequest(tr("The request body is not valid JSON."), code="invalid_json")
    message = first.get("msg", "invalid value")
    if first.get("type") == "missing":
        return InvalidRequest(tr("Missing required parameter: '%(param)s'.", param=param), param=param,
                              code="missing_required_parameter")
    text = (tr("Invalid value for '%(param)s': %(message)s.", param=param, message=message) if param
            else tr("Invalid request: %(message)s.", message=message))
    return InvalidRequest(text, param=param, code="invalid_value")


# The web UI's pages show an error as a page; the app wires that in (the UI sits above this layer).
PageError = Callable[[Request, ShukenError], Response | None]


def install_error_handlers(app: FastAPI, page_error: PageError | None = None) -> None:
    """Every exception becomes the API's error object, or the page `page_error` returns for a UI request."""

    def _respond(request: Request, error: ShukenError) -> Response:
        page = page_error(request, error) if page_error is not None else None
        return page if page is not None else error_response(error)

    @app.exception_handler(ShukenError)
    async def _shuken(request: Request, exc: ShukenError):
        if exc.status >= 500:
            log.warning("request failed", extra={"status": exc.status, "code": exc.code, "error": exc.message})
        return _respond(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        return _respond(request, _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        if exc.status_code == 404:
            return _respond(request, NotFound(
                tr("No route %(method)s %(path)s. Shuken's OpenAI-compatible API: %(endpoints)s.",
                   method=request.method, path=request.url.path, endpoints=ENDPOINTS),
                code="unknown_url"))
        error = ShukenError(str(exc.detail))
        error.status, error.type, error.code = exc.status_code, "invalid_request_error", None
        return _respond(request, error)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("unexpected error")
        return _respond(request, ShukenError(tr("The server hit an unexpected error; it has been logged.")))
