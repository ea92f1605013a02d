"""/v1/admin report routes: the workspace's compliance report (audit:read) and the sovereignty report (admin).
Routers only parse and shape; governance.compliance and governance.doctor authorise and gather."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from shuken.api.auth import Caller
from shuken.errors import InvalidRequest
from shuken.reports import compliance, doctor
from shuken.localisable import tr

router = APIRouter(prefix="/v1/admin")


def server_address(request: Request) -> dict:
    """The address this server was started on (`shuken serve --host` may differ from the services' settings)."""
    settings = request.app.state.gateway.settings
    return {"listen": (settings.host, settings.port), "explicit_host": "host" in settings.model_fields_set}


# verify_models re-hashes every model file (seconds per GB on these machines): callers opt in.
@router.get("/compliance-report")
async def compliance_report(request: Request, subject: Caller, format: str = "html", verify_models: bool = False):
    if format not in ("html", "json"):
        raise InvalidRequest(tr("format must be html or json."), param="format")
    services = request.app.state.services
    address = server_address(request)
    report = await run_in_threadpool(lambda: compliance.build_report(services, subject, fmt=format,
                                                                     verify_models=verify_models, **address))
    if format == "json":
        return report
    html = await run_in_threadpool(compliance.render_html, report)
    disposition = f'inline; filename="compliance-{subject.workspace}.html"'
    return HTMLResponse(html, headers={"Content-Disposition": disposition})


@router.get("/sovereignty")
async def sovereignty(request: Request, subject: Caller, verify_models: bool = False):
    services = request.app.state.services
    report = await run_in_threadpool(lambda: doctor.gather_for(services, subject, verify_models=verify_models,
                                                               **server_address(request)))
    return report.as_dict()
