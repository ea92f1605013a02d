"""Shared fixtures: an isolated SHUKEN_HOME for every test, and real Shuken servers started once per session."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from shuken.config import Settings
from shuken.services import Services

REPO = Path(__file__).resolve().parent.parent
SHUKEN = [sys.executable, "-m", "shuken.cli"]


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    """No test touches a real installation: SHUKEN_HOME points at a fresh temp dir."""
    home = tmp_path / "shuken-home"
    monkeypatch.setenv("SHUKEN_HOME", str(home))
    monkeypatch.chdir(tmp_path)  # so no stray shuken.toml is read
    return home


@pytest.fixture
def services(isolated_home):
    svc = Services.open(Settings(home=isolated_home))
    yield svc
    svc.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class RunningServer:
    process: subprocess.Popen
    base_url: str
    api_key: str
    home: Path
    log_path: Path
    admin_password: str | None = None  # the bootstrap owner's web sign-in password (new homes only)

    @property
    def root_url(self) -> str:
        return self.base_url.removesuffix("/v1")

    def client(self, **kwargs):
        import openai

        kwargs.setdefault("max_retries", 0)
        return openai.OpenAI(base_url=self.base_url, api_key=kwargs.pop("api_key", self.api_key), **kwargs)

    def async_client(self, **kwargs):
        import openai

        kwargs.setdefault("max_retries", 0)
        return openai.AsyncOpenAI(base_url=self.base_url, api_key=kwargs.pop("api_key", self.api_key), **kwargs)

    def metric(self, name: str, **labels) -> float | None:
        """The value of one sample from /metrics, matched on its exact label set."""
        from prometheus_client.parser import text_string_to_metric_families

        text = httpx.get(f"{self.root_url}/metrics").text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and sample.labels == labels:
                    return sample.value
        return None

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()


def run_cli(home: Path, *args: str, check: bool = True, input: str | None = None, timeout: float = 600,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`shuken ARGS` in a subprocess on `home`, as an operator runs it next to a server. With `check` a non-zero
    exit fails the test (with its stderr). stdin is empty unless `input` is given, so a command that asks a
    question fails instead of waiting; `env` adds or overrides variables (e.g. COLUMNS, SHUKEN_*)."""
    env = {**os.environ, "SHUKEN_HOME": str(home), "NO_COLOR": "1", **(env or {})}
    result = subprocess.run(SHUKEN + list(args), env=env, capture_output=True, text=True, timeout=timeout, cwd=home,
                            input=input, stdin=None if input is not None else subprocess.DEVNULL)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def start_server(home: Path, api_key: str | None = None, **env_overrides) -> RunningServer:
    """`shuken serve` as a real process on 127.0.0.1. On a new home the admin key is read from its stdout;
    restarting on a home that has one, pass that `api_key` (no key is printed then)."""
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {**os.environ, "SHUKEN_HOME": str(home), "SHUKEN_PORT": str(port), "SHUKEN_HOST": "127.0.0.1",
           **{f"SHUKEN_{k.upper()}": str(v) for k, v in env_overrides.items()}}
    log_path = home / ("server.log" if api_key is None else "server-restarted.log")
    process = subprocess.Popen(SHUKEN + ["serve"], env=env, stderr=log_path.open("w"), text=True, cwd=home,
                               stdout=subprocess.PIPE if api_key is None else subprocess.DEVNULL)
    password = None
    if api_key is None:
        api_key = process.stdout.readline().strip()
        password = process.stdout.readline().strip()
    base_url = f"http://127.0.0.1:{port}/v1"
    server = RunningServer(process, base_url, api_key, home, log_path, password)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"shuken serve exited early:\n{log_path.read_text()[-3000:]}")
        try:
            if httpx.get(f"{server.root_url}/readyz", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"shuken serve did not become ready:\n{log_path.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """The default server: 8 parallel sequences on the bundled smollm2."""
    running = start_server(tmp_path_factory.mktemp("server-home"))
    yield running
    running.stop()


@pytest.fixture(scope="session")
def narrow_server(tmp_path_factory):
    """One sequence slot and a one-request queue: makes queueing, 429 and cancellation observable."""
    running = start_server(tmp_path_factory.mktemp("narrow-home"), parallel_sequences=1, max_queue=1)
    yield running
    running.stop()


# -- web UI: one server and one chromium for all browser tests ----------------------------------------------
@pytest.fixture(scope="session")
def ui_server(tmp_path_factory):
    """A server on its own fresh home for the browser tests; `admin_password` signs in the bootstrap owner."""
    running = start_server(tmp_path_factory.mktemp("ui-home"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def chromium():
    """Per module, not per session: sync Playwright keeps an event loop running on the main thread while it is
    open, and tests after the browser modules call asyncio.run."""
    from browser_support import CHROMIUM, CHROMIUM_ARGS

    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is missing: `make test` installs it (apt-get install chromium).")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # Playwright gives every launch a fresh, empty user-data dir of its own.
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium):
    """A fresh browser context (no cookies, no storage) per test, at laptop size."""
    from browser_support import new_page

    fresh = new_page(chromium)
    yield fresh
    fresh.context.close()
