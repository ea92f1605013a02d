"""/v1 knowledge routes: collections, documents (multipart upload → durable job), jobs and search.
Routers only parse and shape; the knowledge service decides and checks permission."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from shuken.api.auth import Caller
from shuken.api.uploads import submit_multipart
from shuken.gateway.schemas import MAX_K
from shuken.knowledge.retrieval import Mode

router = APIRouter(prefix="/v1")


# Routes that call the (synchronous, database-bound) service are plain `def`: FastAPI runs them in its
# thread pool, so they never block the event loop that streams answers.
def _knowledge(request: Request):
    return request.app.state.services.knowledge


class NewCollection(BaseModel):
    name: str
    description: str = ""
    groups: list[str] = Field(default_factory=list, description="Restrict reading to these groups.")


class SearchRequest(BaseModel):
    query: str = Field(min_length=1, max_length=4000)
    k: int = Field(default=10, ge=1, le=MAX_K)
    mode: Mode = "hybrid"


@router.post("/collections", status_code=201)
def create_collection(body: NewCollection, request: Request, subject: Caller):
    return _knowledge(request).create_collection(subject, body.name, body.description, body.groups)


@router.get("/collections")
def list_collections(request: Request, subject: Caller):
    return {"object": "list", "data": _knowledge(request).list_collections(subject)}


@router.get("/collections/{name}")
def get_collection(name: str, request: Request, subject: Caller):
    return _knowledge(request).get_collection(subject, name)


@router.delete("/collections/{name}")
def delete_collection(name: str, request: Request, subject: Caller):
    return _knowledge(request).delete_collection(subject, name)


@router.post("/collections/{name}/documents", status_code=202)
async def upload_documents(name: str, request: Request, subject: Caller):
    """Multipart form, field `files` (repeatable). The body is parsed here, after its declared size has been
    checked, so an oversized upload is refused before it is spooled to disk."""
    return await submit_multipart(request, subject, name)


@router.get("/collections/{name}/documents")
def list_documents(name: str, request: Request, subject: Caller):
    return {"object": "list", "data": _knowledge(request).list_documents(subject, name)}


@router.delete("/collections/{name}/documents/{document_id}")
def delete_document(name: str, document_id: int, request: Request, subject: Caller):
    return _knowledge(request).delete_document(subject, name, document_id)


@router.get("/jobs/{job_id}")
def get_job(job_id: str, request: Request, subject: Caller):
    return _knowledge(request).job(subject, job_id)


@router.post("/collections/{name}/search")
async def search(name: str, body: SearchRequest, request: Request, subject: Caller):
    hits = await _knowledge(request).search(subject, [name], body.query, body.k, body.mode)
    return {"object": "list", "data": [hit.as_api() for hit in hits]}
