"""Multipart document uploads for the /v1 API and the web UI alike: the declared size is checked before the
body is spooled to disk, the form is parsed with the file-count limit, and the files go to the knowledge
service. HTTP parsing only; the service decides what is accepted."""

from __future__ import annotations

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile as StarletteUpload
from starlette.formparsers import MultiPartException

from shuken.errors import InvalidRequest, PayloadTooLarge
from shuken.governance.identity import Subject
from shuken.localisable import tr


async def submit_multipart(request: Request, subject: Subject, collection: str) -> dict:
    """Field `files` (repeatable) → the knowledge service's job for them."""
    services = request.app.state.services
    settings = services.settings
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > settings.upload_max_request_bytes:
        raise PayloadTooLarge(tr("The upload is %(size)s bytes; one request may carry at most %(limit)s. "
                                 "Send the files in several requests.", size=declared,
                                 limit=settings.upload_max_request_bytes),
                              param="files")
    try:
        form = await request.form(max_files=settings.upload_max_files + 1, max_fields=50)
    except MultiPartException as exc:
        raise InvalidRequest(tr("Malformed multipart upload: %(error)s", error=exc.message), param="files") from None
    try:
        files = [item for item in form.getlist("files") if isinstance(item, StarletteUpload)]
        uploaded = [(f.filename or "", f.file) for f in files]
        return await run_in_threadpool(services.knowledge.submit_uploads, subject, collection, uploaded)
    finally:
        await form.close()
