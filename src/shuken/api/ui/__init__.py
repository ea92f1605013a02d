"""The web UI's routes (server-rendered pages and the small JSON endpoints their scripts call)."""

from fastapi import APIRouter

from shuken.api.ui import auth_pages

router = APIRouter(include_in_schema=False)
router.include_router(auth_pages.router)
