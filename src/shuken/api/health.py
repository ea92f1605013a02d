"""Liveness, readiness and Prometheus metrics (no key needed: scraped by the operator's own tooling)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

router = APIRouter()


@router.get("/healthz")
async def healthz():
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request):
    state = request.app.state
    if state.ready:
        return {"status": "ready", "models_loaded": sorted(state.gateway.host.engines)}
    return JSONResponse({"status": "starting", "detail": state.not_ready_reason}, status_code=503)


@router.get("/metrics")
async def metrics(request: Request):
    return Response(generate_latest(request.app.state.gateway.metrics.registry), media_type=CONTENT_TYPE_LATEST)
