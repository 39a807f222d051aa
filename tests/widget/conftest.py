"""Fixtures for the chat widget's browser tests.

- `widget_server`: a real daphne (tests/e2e's live server fixtures: its own migrated database, DEBUG and
  the demo API on) whose AMODAL_ALLOWED_ORIGINS holds the origin of one host page server.
- `host_pages`: two plain `http.server`s on other local ports standing for a SaaS's own pages, one origin
  allowed and one not; their files are written by the test module (`host_pages.write(name, html)`).
- `browser` / `page`: Playwright driving Debian's Chromium (/usr/bin/chromium), never a downloaded one.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.browser import launched_chromium
from tests.e2e.conftest import live_database, live_server_factory  # noqa: F401  (fixtures reused here)
from tests.e2e.live import LiveServer

DEFAULT_TIMEOUT_MS = 20_000


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002  (the base class's signature)
        pass

    def end_headers(self):
        self.send_header("Cache-Control", "no-store")
        super().end_headers()


@dataclass
class StaticHost:
    """One plain static HTTP server on 127.0.0.1 serving `root`."""

    root: Path
    server: ThreadingHTTPServer
    thread: threading.Thread

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def url(self, name: str) -> str:
        return f"{self.origin}/{name}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def start_static_host(root: Path) -> StaticHost:
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, name=f"static-host-{server.server_address[1]}", daemon=True)
    thread.start()
    return StaticHost(root, server, thread)


@dataclass
class HostPages:
    """The same files served from two origins: `allowed` (in AMODAL_ALLOWED_ORIGINS) and `refused`."""

    root: Path
    allowed: StaticHost
    refused: StaticHost
    written: list[str] = field(default_factory=list)

    def write(self, name: str, html: str) -> None:
        (self.root / name).write_text(html)
        self.written.append(name)


@pytest.fixture(scope="module")
def host_pages(tmp_path_factory) -> Iterator[HostPages]:
    root = tmp_path_factory.mktemp("host-pages")
    allowed, refused = start_static_host(root), start_static_host(root)
    try:
        yield HostPages(root, allowed, refused)
    finally:
        allowed.stop()
        refused.stop()


@pytest.fixture(scope="module")
def widget_server(live_server_factory, host_pages) -> LiveServer:  # noqa: F811  (a fixture argument)
    """daphne with the bundled finance agent; the `allowed` host page origin may call it cross-origin."""
    return live_server_factory(extra_env={"AMODAL_ALLOWED_ORIGINS": host_pages.allowed.origin})


@pytest.fixture(scope="module")
def browser():
    with launched_chromium() as browser:
        yield browser


@pytest.fixture
def page(browser):
    """A fresh browser context (own localStorage) per test; page errors fail the test."""
    context = browser.new_context(viewport={"width": 1360, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(DEFAULT_TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.page_errors = errors
    try:
        yield page
    finally:
        context.close()
    assert not errors, f"uncaught errors in the page: {errors}"
