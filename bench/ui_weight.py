"""Bytes each main web UI page transfers (document, stylesheets, scripts) against a running `shuken serve`,
in headless Debian chromium. The budget is 300 KB a page (tests/test_ui_quality.py enforces it). The browser
flags, the sign-in and the list of pages are the browser tests' own (tests/browser_support.py).

    .venv/bin/python bench/ui_weight.py http://127.0.0.1:8321 admin@localhost 'PASSWORD'
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from browser_support import CHROMIUM, CHROMIUM_ARGS, OWNER, PAGES, new_page, sign_in  # noqa: E402


def main(root: str, email: str, password: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        page = new_page(browser)
        sign_in(page, root, email, password)
        print(f"{'page':<18}{'requests':>9}{'bytes':>10}")
        for path in ["/signin", *PAGES]:
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
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", help="the server's address, e.g. http://127.0.0.1:8321")
    parser.add_argument("email", nargs="?", default=OWNER, help=f"who signs in (default: {OWNER})")
    parser.add_argument("password", help="their web sign-in password")
    args = parser.parse_args()
    main(args.root.rstrip("/"), args.email, args.password)
