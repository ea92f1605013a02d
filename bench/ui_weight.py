"""Bytes each main web UI page transfers (document, stylesheets, scripts) against a running `shuken serve`,
in headless Debian chromium. The budget is 300 KB a page (tests/test_ui_quality.py enforces it). The browser
flags, the sign-in and the list of pages are the browser tests' own (tests/browser_support.py).

    .venv/bin/python bench/ui_weight.py http://127.0.0.1:8321 admin@localhost 'PASSWORD'
    .venv/bin/python bench/ui_weight.py            # starts `shuken serve` on a fresh temporary home

Without a server address it starts one on a fresh temporary home (as the browser tests do) and signs in as
its bootstrap owner. `--quick` is the same walk (there is no data to shrink: a walk takes seconds); it is
accepted so that every bench script has one. Exit status 1 if a page fails to load.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from browser_support import CHROMIUM, CHROMIUM_ARGS, OWNER, PAGES, new_page, sign_in  # noqa: E402


def main(root: str, email: str, password: str) -> int:
    from playwright.sync_api import sync_playwright

    failed = []
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
            document = page.goto(f"{root}{path}", wait_until="networkidle")
            page.remove_listener("response", record)
            print(f"{path:<18}{len(sizes):>9}{sum(sizes.values()):>10}")
            if document is None or not document.ok:
                failed.append(f"{path}: {document.status if document else 'no response'}")
        browser.close()
    if failed:
        print(f"Pages that failed to load: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def on_fresh_server() -> int:
    """Start `shuken serve` on a new temporary home, as the browser tests do, and measure it."""
    # The tests' own launcher: 127.0.0.1, a free port, the owner's password read from the new home's output.
    from conftest import start_server

    with tempfile.TemporaryDirectory(prefix="shuken-ui-weight-") as home:
        server = start_server(Path(home))
        try:
            return main(server.root_url, OWNER, server.admin_password)
        finally:
            server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("server", nargs="*", metavar="ROOT [EMAIL] PASSWORD",
                        help=f"a running server's address (e.g. http://127.0.0.1:8321), who signs in (default: "
                             f"{OWNER}) and their web sign-in password; none: start a server on a fresh home")
    parser.add_argument("--quick", action="store_true", help="accepted for uniformity: the walk is already quick")
    args = parser.parse_args()
    if not args.server:
        sys.exit(on_fresh_server())
    if len(args.server) not in (2, 3):
        parser.error("give ROOT and PASSWORD, or ROOT EMAIL PASSWORD, or nothing (a fresh server)")
    root, *who, password = args.server
    sys.exit(main(root.rstrip("/"), who[0] if who else OWNER, password))
