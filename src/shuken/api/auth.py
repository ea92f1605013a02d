"""Bearer-key authentication for /v1: a FastAPI dependency that asks the key service."""

from __future__ import annotations

from fastapi import Request

from shuken.governance.keys import ApiKey


def bearer_secret(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    return secret.strip() if scheme.lower() == "bearer" else None


def require_key(request: Request) -> ApiKey:
    key = request.app.state.services.keys.authenticate(bearer_secret(request))
    request.state.api_key = key
    return key
