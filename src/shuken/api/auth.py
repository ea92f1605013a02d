"""Bearer-key authentication for /v1: a FastAPI dependency that asks the key service for the caller's Subject
(401 for a bad, revoked or expired key; 429 with Retry-After over quota)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from shuken.governance.identity import Subject


def bearer_secret(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    return secret.strip() if scheme.lower() == "bearer" else None


async def require_key(request: Request) -> Subject:
    # The lookup and quota update touch the database: keep them off the event loop.
    subject = await run_in_threadpool(request.app.state.services.keys.authenticate, bearer_secret(request))
    request.state.subject = subject
    return subject


Caller = Annotated[Subject, Depends(require_key)]
