"""Qualities of every main page in a real browser: no axe-core accessibility violations (axe ships inside
axe-playwright-python, so this runs offline) in English and Japanese, under 300 KB of assets, no sideways
scrolling at phone width, usable from the keyboard alone, and the language chosen from the browser or the
switch, with localised dates."""

from __future__ import annotations

import re

import pytest

from browser_support import LAPTOP, OWNER, PAGES, PHONE, assert_accessible, new_page, screenshot, sign_in_owner

pytestmark = [pytest.mark.slow, pytest.mark.browser]
ASSET_BUDGET = 300 * 1024


@pytest.fixture(scope="module")
def conversation_url(chromium, ui_server):
    """A conversation with one answer, so the chat page is checked with messages on it."""
    context = chromium.new_context()
    page = context.new_page()
    sign_in_owner(page, ui_server)
    page.locator("#prompt").fill("Say hello in one sentence.")
    page.locator("#prompt").press("Enter")
    page.wait_for_selector("li.message.assistant:not(.streaming) .message-actions", timeout=90_000)
    url = page.url
    context.close()
    return url


def signed_in_page(chromium, ui_server, language: str, viewport=LAPTOP):
    page = new_page(chromium, viewport, locale=language, extra_http_headers={"Accept-Language": language})
    sign_in_owner(page, ui_server)
    return page.context, page


@pytest.mark.parametrize("language", ["en", "ja"])
def test_every_main_page_passes_axe_and_stays_under_the_asset_budget(chromium, ui_server, conversation_url,
                                                                     language):
    context, page = signed_in_page(chromium, ui_server, language)
    try:
        for url in ["/signin", *PAGES, conversation_url.removeprefix(ui_server.root_url)]:
            if url == "/signin":
                anonymous = chromium.new_context(extra_http_headers={"Accept-Language": language})
                target = anonymous.new_page()
            else:
                target = page
            sizes: dict[str, int] = {}

            def record(response, sizes=sizes):
                if response.ok:
                    sizes[response.url] = len(response.body())

            target.on("response", record)
            response = target.goto(f"{ui_server.root_url}{url}", wait_until="networkidle")
            assert response.status == 200, url
            assert target.locator("html").get_attribute("lang") == language
            assert_accessible(target)
            total = sum(sizes.values())
            assert 0 < total < ASSET_BUDGET, (url, sizes)
            assert all(u.startswith(ui_server.root_url) for u in sizes), "a page loaded something from elsewhere"
            target.remove_listener("response", record)  # the next page's responses are the next listener's
            name = url.strip("/").replace("/", "-") or "start"
            screenshot(target, f"{language}-{re.sub(r'[^a-z0-9-]', '', name)}")
            if url == "/signin":
                anonymous.close()
    finally:
        context.close()


def test_pages_fit_a_phone_screen(chromium, ui_server, conversation_url):
    context, page = signed_in_page(chromium, ui_server, "en", viewport=PHONE)
    try:
        for url in [*PAGES, conversation_url.removeprefix(ui_server.root_url)]:
            page.goto(f"{ui_server.root_url}{url}")
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= PHONE["width"], f"{url} scrolls sideways at phone width ({width}px)"
        screenshot(page, "phone-chat")
    finally:
        context.close()


def test_sign_in_and_chat_work_from_the_keyboard_alone(page, ui_server):
    page.goto(f"{ui_server.root_url}/signin")
    # The form is ready to type into. Chromium applies `autofocus` at a rendering update after the load event,
    # so wait for it (a busy machine delays that frame); without autofocus this times out and fails.
    page.wait_for_function("document.activeElement && document.activeElement.name === 'email'", timeout=10_000)
    page.keyboard.type(OWNER)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.name") == "password"
    page.keyboard.type(ui_server.admin_password)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*/chat$"))
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"  # first stop: skip to content
    # From the composer's model picker, Tab reaches the message box; Enter sends.
    page.locator("#model").focus()
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "prompt":
            break
    assert page.evaluate("document.activeElement.id") == "prompt"
    page.keyboard.type("Say hi.")
    page.keyboard.press("Enter")
    page.wait_for_selector("li.message.assistant:not(.streaming) .message-actions", timeout=90_000)
    # While the answer streams the Stop button takes focus; afterwards focus is back in the message box.
    assert page.evaluate("document.activeElement.id") == "prompt"


def test_language_follows_the_browser_and_the_switch_with_localised_dates(chromium, ui_server):
    context = chromium.new_context(extra_http_headers={"Accept-Language": "ja-JP,ja;q=0.9,en;q=0.5"})
    page = context.new_page()
    try:
        page.goto(f"{ui_server.root_url}/signin")
        assert page.locator("html").get_attribute("lang") == "ja"
        assert "サインイン" in page.locator("h1").inner_text()
        sign_in_owner(page, ui_server)
        # Services' own messages read in Japanese too: an error page, and the sovereignty checks' texts.
        page.goto(f"{ui_server.root_url}/chat/987654321")
        message = page.locator("[role=alert]").inner_text()
        assert re.search(r"[\u3040-\u30ff]", message) and not re.search(r"[a-z]{4}", message), message
        page.goto(f"{ui_server.root_url}/admin")
        checks = page.locator("table.checks").inner_text()
        assert re.search(r"[\u3040-\u30ff]", checks), checks
        page.goto(f"{ui_server.root_url}/admin/audit")
        first_time = page.locator("table.data tbody tr td").nth(1).inner_text()
        assert re.search(r"\d{4}/\d{1,2}/\d{1,2}", first_time), first_time  # CLDR ja: 2026/11/23 9:05:00
        screenshot(page, "ja-audit")

        page.get_by_role("link", name="English").click()
        page.wait_for_load_state()
        assert page.locator("html").get_attribute("lang") == "en"
        assert page.url.endswith("/admin/audit")  # the switch returns to the same page
        assert re.search(r"[A-Z][a-z]{2} \d{1,2}, \d{4}", page.locator("table.data tbody tr td").nth(1).inner_text())
        page.goto(f"{ui_server.root_url}/chat")
        assert page.get_by_role("button", name="Send").is_visible()  # the choice sticks (cookie)
    finally:
        context.close()
