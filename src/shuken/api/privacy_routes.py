"""/v1/admin/erasure: a workspace administrator erases a person's content in that workspace. Routers only parse
and shape; `governance.erasure` authorises (`data:erase`) and deletes."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from shuken.api.auth import Caller

router = APIRouter(prefix="/v1")


class ErasureRequest(BaseModel):
    subject: str = Field(description="E-mail of the person whose content is erased in the caller's workspace.")


@router.post("/admin/erasure")
def erase_subject(body: ErasureRequest, request: Request, subject: Caller):
    """Returns the erasure receipt: counts per kind, time, and the audit record hash."""
    return request.app.state.services.erasure.erase(body.subject, caller=subject)
