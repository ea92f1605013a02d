"""Web UI audit viewer (auditors, admins, owners): the chain's verification status, filtered pages of records,
the audited exports and the compliance report download. The audit and compliance services authorise each call."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from shuken.api.report_routes import server_address
from shuken.web.pages.common import Viewer, render, require_page, same_site_only
from shuken.errors import InvalidRequest
from shuken.reports import compliance
from shuken.governance import events as ev
from shuken.governance.audit import export_audited, parse_since
from shuken.reports.doctor import latest_checkpoint
from shuken.localisable import tr

router = APIRouter(prefix="/admin", include_in_schema=False)

PAGE_SIZE = 50
ACTIONS = sorted({ev.RequestServed.action, *(kind.action for kind in ev.Event.__subclasses__())})


def _attachment(body: str, media_type: str, filename: str) -> Response:
    return Response(body, media_type=media_type, headers={"Content-Disposition": f'attachment; filename="{filename}"',
                                                          "Cache-Control": "no-store"})


@router.get("/audit")
def audit(request: Request, viewer: Viewer, action: str = "", actor: str = "", since: str = "", page: int = 1):
    """Sync route (threadpool): verifying the chain reads every record of the workspace."""
    require_page(viewer, "audit:read")
    services, subject = request.app.state.services, viewer.subject
    chain = services.audit.verify_for(subject)
    checkpoint = latest_checkpoint(services.db, subject.workspace)
    filters = {"action": action.strip(), "actor": actor.strip(), "since": since.strip()}
    error = None
    try:
        moment = parse_since(filters["since"])
    except InvalidRequest as exc:
        error, moment, filters["since"] = exc.message, None, ""
    page = max(1, page)
    records, total = services.audit.search(subject, action=filters["action"] or None, actor=filters["actor"] or None,
                                           since=moment, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE)
    pages = max(1, -(-total // PAGE_SIZE))
    active = {name: value for name, value in filters.items() if value}
    link = lambda number: "/admin/audit?" + urlencode({**active, "page": number})  # noqa: E731
    exports = {fmt: "/admin/audit/export?" + urlencode({"format": fmt, **({"since": filters["since"]}
                                                                           if filters["since"] else {})})
               for fmt in ("jsonl", "csv")}
    return render(request, "admin_audit.html.j2", chain=chain, checkpoint=checkpoint, records=records, total=total,
                  page=page, pages=pages, first=(page - 1) * PAGE_SIZE + 1, filters=filters, actions=ACTIONS,
                  newer=link(page - 1) if page > 1 else None, older=link(page + 1) if page < pages else None,
                  exports=exports, filtered=bool(active), error=error)


@router.get("/audit/export", dependencies=[Depends(same_site_only)])
async def export(request: Request, viewer: Viewer, format: str = "jsonl", since: str = ""):
    """The same audited export as GET /v1/admin/audit/export: the download itself becomes an audit record."""
    require_page(viewer, "audit:read")
    if format not in ("jsonl", "csv"):
        raise InvalidRequest(tr("format must be jsonl or csv."), param="format")
    services = request.app.state.services
    text, _count = await run_in_threadpool(export_audited, services.audit, services.bus, viewer.subject,
                                           parse_since(since), format)
    media = "application/x-ndjson" if format == "jsonl" else "text/csv; charset=utf-8"
    return _attachment(text, media, f"audit-{viewer.subject.workspace}.{format}")


@router.get("/compliance-report", dependencies=[Depends(same_site_only)])
async def compliance_report(request: Request, viewer: Viewer, format: str = "html"):
    """The regulator's report, as GET /v1/admin/compliance-report builds it (models are not re-hashed here:
    that takes seconds per GB; `shuken compliance report` does it)."""
    require_page(viewer, "audit:read")
    if format not in ("html", "json"):
        raise InvalidRequest(tr("format must be html or json."), param="format")
    services = request.app.state.services
    report = await run_in_threadpool(lambda: compliance.build_report(services, viewer.subject, fmt=format,
                                                                     verify_models=False, **server_address(request)))
    name = f"compliance-{viewer.subject.workspace}"
    if format == "json":
        return _attachment(compliance.render_json(report), "application/json", f"{name}.json")
    html = await run_in_threadpool(compliance.render_html, report)
    return _attachment(html, "text/html; charset=utf-8", f"{name}.html")
