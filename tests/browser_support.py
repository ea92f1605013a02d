"""Driving Debian's chromium with Playwright for the web UI tests: the launch flags that keep the browser off
the network, sign-in, screenshots (under the git-ignored test-artifacts/) and the session's CSRF token."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"
# No background traffic at all: the machines have no route out, and a browser test must not try one.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
LAPTOP = {"width": 1366, "height": 860}
PHONE = {"width": 390, "height": 844}


def sign_in(page, root_url: str, email: str, password: str, workspace: str = "default") -> None:
    page.goto(f"{root_url}/signin")
    page.get_by_label(re.compile("E-mail|メールアドレス")).fill(email)
    page.locator("input[name=password]").fill(password)
    page.locator("input[name=workspace]").fill(workspace)
    page.locator("form[action='/signin'] button[type=submit]").click()
    page.wait_for_url(re.compile(r".*/(chat|knowledge|admin).*"))


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def csrf_token(page) -> str:
    """The session's CSRF token, as the pages carry it (for forcing requests the UI would not offer)."""
    return page.locator("input[name=csrf_token]").first.get_attribute("value")
