"""Bytes each main web UI page transfers (document, stylesheets, scripts) against a running `shuken serve`,
in headless Debian chromium. The budget is 300 KB a page (tests/test_ui_quality.py enforces it).

    .venv/bin/python bench/ui_weight.py http://127.0.0.1:8321 admin@localhost 'PASSWORD'
"""

from __future__ import annotations

import sys

from playwright.sync_api import sync_playwright

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
PAGES = ["/signin", "/chat", "/knowledge", "/admin", "/admin/users", "/admin/keys", "/admin/settings", "/admin/audit"]


def main(root: str, email: str, password: str) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        page = browser.new_page()
        page.goto(f"{root}/signin")
        page.fill("input[name=email]", email)
        page.fill("input[name=password]", password)
        page.click("form[action='/signin'] button[type=submit]")
        page.wait_for_url("**/chat")
        print(f"{'page':<18}{'requests':>9}{'bytes':>10}")
        for path in PAGES:
            sizes: dict[str, int] = {}

            def record(response, sizes=sizes):
                if response.ok:
                    sizes[response.url] = len(response.body())

            page.on("response", record)
            page.goto(f"{root}{path}", wait_until="networkidle")
            page.remove_listener("response", record)
            print(f"{path:<18}{len(sizes):>9}{sum(sizes.values()):>10}")
        browser.close()


if __name__ == "__main__":
    main(*sys.argv[1:4])
