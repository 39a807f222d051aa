"""Fixtures of the Studio browser tests: Debian's Chromium through Playwright, against a live daphne server.

The server runs on a database of its own (a temporary SQLite file, or a fresh PostgreSQL database when
this session runs on PostgreSQL), migrated, filled by `generate_demo_data` and given a staff user, all
through `manage.py` in subprocesses (the helpers of tests/e2e/live.py). Every figure the browser shows is
checked against plain SQL on that database. Screenshots of the main pages go to docs/screenshots/.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta

import pytest

from tests.browser import launched_chromium, save_screenshot  # noqa: E402
from tests.e2e.live import (
    LiveDatabase,
    LiveServer,
    base_env,
    migrated_database,
    run_manage,
    start_server,
)

USERNAME = "studio-admin"
PASSWORD = "studio-browser-pw-4f8e"
VIEWPORT = {"width": 1400, "height": 900}
TIMEOUT_MS = 15_000


# --- the live server and its data -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def studio_database(tmp_path_factory) -> Iterator[LiveDatabase]:
    with migrated_database(tmp_path_factory.mktemp("studio-browser-db")) as database:
        run_manage(
            [
                "generate_demo_data",
                "--scopes",
                "60",
                "--sessions",
                "700",
                "--usage-rows",
                "3500",
                "--days",
                "45",
                "--seed",
                "42",
            ],
            base_env(database.url),
        )
        run_manage(
            ["createsuperuser", "--noinput", "--username", USERNAME, "--email", "ops@example.com"],
            base_env(database.url, extra={"DJANGO_SUPERUSER_PASSWORD": PASSWORD}),
        )
        yield database


@pytest.fixture(scope="session")
def studio_server(studio_database, tmp_path_factory) -> Iterator[LiveServer]:
    server = start_server(studio_database, tmp_path_factory.mktemp("studio-browser-logs"))
    yield server
    server.stop()


# Per module, not per session: while Playwright's sync API is open it keeps an asyncio loop running in this
# thread, and every later test of the worker that uses Django's test client then fails ("You cannot use
# AsyncToSync in the same thread as an async event loop").
@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with launched_chromium() as chromium:
        yield chromium


@pytest.fixture
def page(browser, studio_server):
    """A page logged in as staff (through the admin login form, like an operator). Every page it shows
    must work under the Content-Security-Policy: a console message about a blocked inline script or style,
    or anything from elsewhere ("Refused to ..." in older Chromium, "... violates the following Content
    Security Policy directive ..." in newer), fails the test."""
    context = browser.new_context(viewport=VIEWPORT)
    tab = context.new_page()
    tab.set_default_timeout(TIMEOUT_MS)
    refused: list[str] = []
    tab.on(
        "console",
        lambda message: (
            refused.append(f"{tab.url}: {message.text}")
            if "Refused to" in message.text or "Content Security Policy" in message.text
            else None
        ),
    )
    tab.goto(studio_server.base_url + "/studio/")
    assert "/admin/login/" in tab.url, "anonymous users are sent to the admin login"
    tab.fill("#id_username", USERNAME)
    tab.fill("#id_password", PASSWORD)
    with tab.expect_navigation():
        tab.click("[type=submit]")
    assert tab.url.endswith("/studio/"), tab.url
    yield tab
    context.close()
    assert refused == [], "blocked by the Content-Security-Policy"


def shoot(tab, name: str) -> None:
    save_screenshot(tab, name, full_page=True)


# --- reading the database directly ---------------------------------------------------------------------------


def moment(database: LiveDatabase, value: datetime):
    """A timestamp parameter as the column stores it (SQLite: naive UTC text)."""
    if database.vendor == "sqlite":
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    return value


def day_start(days_ago: int) -> datetime:
    return datetime.combine(datetime.now(UTC).date() - timedelta(days=days_ago), time.min, tzinfo=UTC)


def data_rows(tab, selector: str) -> list[dict[str, str]]:
    return tab.eval_on_selector_all(selector, "rows => rows.map(row => ({...row.dataset}))")


def number(value: str | None) -> int | None:
    return None if value in (None, "") else int(value)
