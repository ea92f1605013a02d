"""Web UI: the Knowledge pages (collections, their documents, uploads with live job progress, originals).
Routes only parse, call the knowledge service (which checks permission) and render."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from babel import Locale, UnknownLocaleError
from fastapi import APIRouter, Form, Request
from fastapi.responses import FileResponse, RedirectResponse

from shuken.api.uploads import submit_multipart
from shuken.web.pages.common import API_PREFIX, Guarded, Viewer, localiser, render, require_page
from shuken.errors import ShukenError

router = APIRouter(include_in_schema=False)

# Short notices after a redirect: the query names one of these, so no text from the URL is ever shown.
NOTICES = {"collection_deleted", "document_deleted", "reindexing"}


def _knowledge(request: Request):
    return request.app.state.services.knowledge


def _collection_url(name: str) -> str:
    return f"/knowledge/{quote(name, safe='')}"


def _language_namer(request: Request):
    """A document's detected language (ISO code) as a name in the viewer's language, e.g. ja → Japanese."""
    ui = localiser(request).locale

    def name(code: str) -> str:
        if code == "und":  # Babel would expand "undetermined" to its likeliest locale, en-US
            return ""
        try:
            return Locale.parse(code).get_display_name(ui) or code
        except (ValueError, UnknownLocaleError):
            return code
    return name


def _notice(request: Request) -> str | None:
    notice = request.query_params.get("notice")
    return notice if notice in NOTICES else None


def _list_page(request: Request, viewer, status: int = 200, error: str | None = None, form: dict | None = None):
    collections = _knowledge(request).list_collections(viewer.subject)
    return render(request, "knowledge.html.j2", status=status, collections=collections, error=error,
                  form=form or {"name": "", "description": "", "groups": ""}, notice=_notice(request))


@router.get("/knowledge")
def knowledge_list(request: Request, viewer: Viewer):
    require_page(viewer, "knowledge:read")
    return _list_page(request, viewer)


@router.post("/knowledge")
def create_collection(request: Request, viewer: Guarded, name: Annotated[str, Form()] = "",
                      description: Annotated[str, Form()] = "", groups: Annotated[str, Form()] = ""):
    name, description = name.strip(), description.strip()
    try:
        created = _knowledge(request).create_collection(viewer.subject, name, description, groups.split(","))
    except ShukenError as exc:
        if exc.status >= 500:
            raise
        return _list_page(request, viewer, status=exc.status, error=exc.message,
                          form={"name": name, "description": description, "groups": groups})
    return RedirectResponse(_collection_url(created["name"]), status_code=303)


@router.get("/knowledge/{name}")
def collection_page(name: str, request: Request, viewer: Viewer):
    knowledge = _knowledge(request)
    collection = knowledge.get_collection(viewer.subject, name)  # NotFound / Forbidden become error pages
    documents = knowledge.list_documents(viewer.subject, name)
    return render(request, "knowledge_collection.html.j2", collection=collection, documents=documents,
                  notice=_notice(request), suffixes=knowledge.supported_suffixes(),
                  upload_url=f"{API_PREFIX}/collections/{quote(name, safe='')}/documents",
                  max_file_bytes=request.app.state.services.settings.upload_max_bytes,
                  language_name=_language_namer(request))


@router.post("/knowledge/{name}/delete")
def delete_collection(name: str, request: Request, viewer: Guarded):
    _knowledge(request).delete_collection(viewer.subject, name)
    return RedirectResponse("/knowledge?notice=collection_deleted", status_code=303)


@router.post("/knowledge/{name}/documents/{document_id}/delete")
def delete_document(name: str, document_id: int, request: Request, viewer: Guarded):
    result = _knowledge(request).delete_document(viewer.subject, name, document_id)
    notice = "reindexing" if result.get("reindex_job") else "document_deleted"
    return RedirectResponse(f"{_collection_url(name)}?notice={notice}", status_code=303)


@router.get("/ui/files/{document_id}")
def original_file(document_id: int, request: Request, viewer: Viewer):
    """Always a download: Chrome's PDF viewer does not run under the UI's CSP (object-src 'none'), and an
    uploaded HTML file must never render on our origin. nosniff comes with every UI response."""
    path, download_name, media_type = _knowledge(request).document_file(viewer.subject, document_id)
    return FileResponse(path, media_type=media_type, filename=download_name,
                        headers={"Cache-Control": "private, no-store"})


# -- JSON endpoints for knowledge.js --------------------------------------------------------------------------
@router.post(f"{API_PREFIX}/collections/{{name}}/documents", status_code=202)
async def upload_documents(name: str, request: Request, viewer: Guarded):
    """Multipart, field `files` (repeatable), as on /v1: the declared size is checked before the body is
    spooled to disk. The CSRF token comes in the X-CSRF-Token header, so the body is parsed only here."""
    return await submit_multipart(request, viewer.subject, name)


@router.get(f"{API_PREFIX}/jobs/{{job_id}}")
def job_status(job_id: str, request: Request, viewer: Viewer):
    """The job as on /v1, with each file's error in the viewer's language (the page shows it beside the file)."""
    view = _knowledge(request).job(viewer.subject, job_id)
    loc = localiser(request)
    return {**view, "files": [{**f, "error": f["error"] and loc.text(f["error"])} for f in view["files"]]}
