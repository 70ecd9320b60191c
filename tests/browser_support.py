"""Support of the browser tests (tests/test_web_dashboard.py): the app served by uvicorn in
a thread on a free 127.0.0.1 port, Debian's Chromium driven by Python Playwright (never a
downloaded browser), a page whose every request to anything but 127.0.0.1 is refused and
recorded, and screenshots written as test artifacts.

Without Chromium or Playwright the tests skip with the reason, except under CI=true, where
that is a failure (.ci/run installs Chromium)."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from tests.api_support import free_port
from tests.conftest import IN_CI

CHROMIUM = os.environ.get("OMC_TEST_CHROMIUM", "/usr/bin/chromium")


def require_browser() -> None:
    problem = None
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        problem = "Python Playwright is not installed (pip install -e '.[dev]')"
    if problem is None and not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        problem = f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
    if problem:
        if IN_CI:
            pytest.fail(f"CI=true and {problem}")
        pytest.skip(problem)


@contextmanager
def live_server(app: Any) -> Iterator[str]:
    """Serve `app` on 127.0.0.1:<free port> in a thread; yields the base URL; stops it."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="omc-test-server", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive(), "the test server did not start"
            assert time.monotonic() < deadline, "the test server did not start in 30 s"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)


def artifacts_dir(fallback: Path) -> Path:
    """Where screenshots go: $OMC_TEST_ARTIFACTS/dashboard, else a pytest temp folder."""
    root = os.environ.get("OMC_TEST_ARTIFACTS")
    out = Path(root) / "dashboard" if root else fallback
    out.mkdir(parents=True, exist_ok=True)
    return out


class Guarded:
    """A browser context whose requests to any host but 127.0.0.1 are aborted and listed
    in `outside`; page errors (uncaught JS exceptions, Content-Security-Policy refusals) are
    listed in `errors`."""

    def __init__(self, browser: Any, base: str, shots: Path, **context: Any) -> None:
        self.base, self.shots = base, shots
        self.outside: list[str] = []
        self.errors: list[str] = []
        self.context = browser.new_context(base_url=base, **context)
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.on("console", self._console)
        self.page.set_default_timeout(15000)

    def _console(self, message: Any) -> None:
        """A Content-Security-Policy refusal is a page error too (the page broke its rule)."""
        if "Content Security Policy" in message.text:
            self.errors.append(message.text)

    def _route(self, route: Any) -> None:
        url = route.request.url
        if urlparse(url).hostname != "127.0.0.1" and not url.startswith(("data:", "blob:")):
            self.outside.append(url)
            route.abort()
        else:
            route.continue_()

    def shot(self, name: str, full_page: bool = True) -> Path:
        path = self.shots / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        return path

    def login(self, username: str, password: str) -> None:
        page = self.page
        page.goto("/")
        page.fill("#login-form [name=username]", username)
        page.fill("#login-form [name=password]", password)
        page.click("#login-form button[type=submit]")
        page.wait_for_selector(f"#who:has-text('{username}')")

    def close(self) -> None:
        self.context.close()
        assert not self.outside, f"the page asked for outside resources: {self.outside}"
        assert not self.errors, f"JavaScript errors on the page: {self.errors}"
