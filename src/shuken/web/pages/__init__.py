"""The web UI's routes (server-rendered pages and the small JSON endpoints their scripts call)."""

from fastapi import APIRouter

from shuken.web.pages import admin, audit, auth, chat, knowledge

router = APIRouter(include_in_schema=False)
router.include_router(auth.router)
router.include_router(knowledge.router)
router.include_router(chat.router)
router.include_router(admin.router)
router.include_router(audit.router)
