"""Debian's Chromium driven by Playwright (never a browser Playwright downloads), and screenshots."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.e2e.live import REPO_ROOT

CHROMIUM = Path("/usr/bin/chromium")
# As root Chromium needs --no-sandbox; the rest keep it from reaching for the (closed) network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOT_DIR = REPO_ROOT / "docs" / "screenshots"
UPDATE_SCREENSHOTS_ENV = "AMODAL_UPDATE_SCREENSHOTS"


@contextmanager
def launched_chromium(**launch_options) -> Iterator:
    if not CHROMIUM.exists():
        pytest.skip(f"Debian's Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright (Python) is not installed")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, **launch_options)
        try:
            yield browser
        finally:
            browser.close()


def save_screenshot(page, name: str, **kwargs) -> Path:
    """Take the screenshot (so rendering it is part of the test); with AMODAL_UPDATE_SCREENSHOTS=1 it
    also replaces docs/screenshots/<name>, so ordinary test runs leave the tracked files alone."""
    import os

    path = Path(tempfile.mkdtemp(prefix="amodal-shot-")) / name
    page.screenshot(path=str(path), **kwargs)
    if os.environ.get(UPDATE_SCREENSHOTS_ENV) == "1":
        SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, SCREENSHOT_DIR / name)
    return path
