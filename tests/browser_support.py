"""Driving Debian's chromium with Playwright for the web UI tests (and bench/ui_weight.py): the launch flags
that keep the browser off the network, pages, sign-in (the bootstrap owner's too), screenshots (under the
git-ignored test-artifacts/), the session's CSRF token, the axe-core check, and the owner's API for setting up
users next to the browser. Waiting for an ingestion job is knowledge_support.wait_for_job."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import httpx

from shuken.config import Settings

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"
# No background traffic at all: the machines have no route out, and a browser test must not try one.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
LAPTOP = {"width": 1366, "height": 860}
PHONE = {"width": 390, "height": 844}
PASSWORD = "correct horse battery staple"  # every user the UI tests create signs in with it
OWNER = Settings.model_fields["bootstrap_admin_email"].default  # the owner a new home starts with
# The main pages a signed-in owner sees (the quality test and the page-weight bench both walk them).
PAGES = ["/chat", "/knowledge", "/admin", "/admin/users", "/admin/keys", "/admin/settings", "/admin/audit"]


def new_page(chromium, viewport=LAPTOP, **context_options):
    """A page in a fresh browser context: no cookies, no storage."""
    context = chromium.new_context(viewport=viewport, **{"locale": "en-GB", **context_options})
    context.set_default_timeout(20_000)
    return context.new_page()


def sign_in(page, root_url: str, email: str, password: str, workspace: str = "default") -> None:
    page.goto(f"{root_url}/signin")
    page.get_by_label(re.compile("E-mail|メールアドレス")).fill(email)
    page.locator("input[name=password]").fill(password)
    page.locator("input[name=workspace]").fill(workspace)
    page.locator("form[action='/signin'] button[type=submit]").click()
    page.wait_for_url(re.compile(r".*/(chat|knowledge|admin).*"))


def sign_in_owner(page, server) -> None:
    """Sign in as the bootstrap owner of `server` (a RunningServer started on a new home)."""
    sign_in(page, server.root_url, OWNER, server.admin_password)


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def csrf_token(page) -> str:
    """The session's CSRF token, as the pages carry it (for forcing requests the UI would not offer)."""
    return page.locator("input[name=csrf_token]").first.get_attribute("value")


def assert_accessible(page) -> None:
    """No axe-core violations (axe ships inside axe-playwright-python: no network needed)."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    assert results.violations_count == 0, f"{page.url}:\n{results.generate_report()}"


def owner_api(server) -> httpx.Client:
    """The bootstrap owner's admin key over real HTTP."""
    return httpx.Client(base_url=server.root_url, timeout=120, headers={"Authorization": f"Bearer {server.api_key}"})


def new_user(server, role: str = "member", groups: tuple[str, ...] = (), email: str | None = None) -> str:
    """A user of workspace `default` who can sign in with PASSWORD; their e-mail (unique unless given)."""
    email = email or f"{role}-{uuid.uuid4().hex[:8]}@example.org"
    with owner_api(server) as api:
        response = api.post("/v1/admin/users", json={"email": email, "role": role, "groups": list(groups),
                                                     "password": PASSWORD})
    assert response.status_code == 201, response.text
    return email
