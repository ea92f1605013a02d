"""The web UI's routes (server-rendered pages and the small JSON endpoints their scripts call)."""

from fastapi import APIRouter

from shuken.web.pages import admin, audit, auth, chat, knowledge
from shuken.web.pages.common import page_error

__all__ = ["page_error", "router"]

router = APIRouter(include_in_schema=False)
router.include_router(auth.router)
router.include_router(knowledge.router)
router.include_router(chat.router)
router.include_router(admin.router)
router.include_router(audit.router)
