"""FastAPI app factory: builds the services from one Settings, mounts routers, loads the default model."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from shuken import __version__
from shuken.api import admin_routes, health, knowledge_routes, openai_routes, privacy_routes, report_routes
from shuken.web import pages
from shuken.api.errors import install_error_handlers
from shuken.config import Settings
from shuken.errors import ShukenError
from shuken.services import Services

log = logging.getLogger("shuken.access")


# The web UI loads nothing from elsewhere and runs no inline script: a strict policy costs nothing.
UI_SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                                 b"object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
]


class AccessLog:
    """Pure ASGI middleware (streams pass straight through): one JSON line per request, no bodies."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        request_id = uuid.uuid4().hex[:16]
        status = {"code": 0}

        async def send_with_id(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                headers = message.setdefault("headers", [])
                headers.append((b"x-request-id", request_id.encode()))
                if not scope["path"].startswith("/v1"):
                    headers.extend(UI_SECURITY_HEADERS)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            log.info("request", extra={
                "request_id": request_id, "method": scope["method"], "path": scope["path"],
                "status": status["code"], "duration_ms": round((time.perf_counter() - started) * 1000, 2),
            })


async def every(seconds: float, work) -> None:
    """Run blocking `work` in a thread now and then every `seconds`; a failure is logged, not fatal."""
    while True:
        try:
            await asyncio.to_thread(work)
        except Exception:
            logging.getLogger("shuken").exception("periodic task failed", extra={"task": work.__qualname__})
        await asyncio.sleep(seconds)


def create_app(settings: Settings, services: Services | None = None) -> FastAPI:
    services = services or Services.open(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.ready = False
        app.state.not_ready_reason = f"loading {settings.default_model}"
        try:
            await app.state.gateway.host.load(services.registry.get(settings.default_model))
            app.state.ready = True
        except ShukenError as exc:
            app.state.not_ready_reason = exc.message
            logging.getLogger("shuken").error("default model not loaded", extra={"error": exc.message})
        # Ingestion jobs run in this process: queued ones, and any a crashed process left unfinished.
        jobs = asyncio.create_task(services.knowledge.runner.serve_forever(), name="ingest-jobs")
        periodic = [asyncio.create_task(every(settings.audit_checkpoint_minutes * 60, services.audit.checkpoint),
                                        name="audit-checkpoints")] if settings.audit_checkpoint_minutes else []
        periodic.append(asyncio.create_task(every(settings.retention_sweep_minutes * 60, services.retention.sweep),
                                            name="retention-sweep"))
        yield
        for task in [jobs, *periodic]:
            task.cancel()
        await asyncio.gather(jobs, *periodic, return_exceptions=True)
        await app.state.gateway.host.close()
        services.close()

    # No /docs or /redoc: they load Swagger UI and ReDoc from a CDN and run inline script, which the UI's
    # policy blocks and a sovereign install should not fetch. /openapi.json still describes the API.
    app = FastAPI(title="Shuken", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.services = services
    app.state.gateway = services.gateway
    app.state.chat = services.chat
    app.state.ready = False
    app.state.not_ready_reason = "starting"
    install_error_handlers(app, page_error=pages.page_error)
    app.include_router(health.router)
    app.include_router(openai_routes.router)
    app.include_router(knowledge_routes.router)
    app.include_router(admin_routes.router)
    app.include_router(privacy_routes.router)
    app.include_router(report_routes.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(packages=[("shuken", "web/static")]), name="static")
    app.add_middleware(AccessLog)
    return app
