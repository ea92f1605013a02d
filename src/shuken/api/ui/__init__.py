"""The web UI's routes (server-rendered pages and the small JSON endpoints their scripts call)."""

from fastapi import APIRouter

from shuken.api.ui import auth_pages, chat_pages
from shuken.api.ui import knowledge_pages
from shuken.api.ui import admin_pages, audit_pages

router = APIRouter(include_in_schema=False)
router.include_router(auth_pages.router)
router.include_router(knowledge_pages.router)
router.include_router(chat_pages.router)
router.include_router(admin_pages.router)
router.include_router(audit_pages.router)
