"""Fixtures of the Studio browser tests: Debian's Chromium through Playwright, against a live daphne server.

The server runs on a database of its own (a temporary SQLite file, or a fresh PostgreSQL database when
this session runs on PostgreSQL), migrated, filled by `generate_demo_data` and given a staff user, all
through `manage.py` in subprocesses (the helpers of tests/e2e/live.py). Its agent is the example agent with
a monthly budget per scope (`budget_cap`), so Cost & Usage shows budget use. Every figure the browser shows is
checked against plain SQL on that database. Screenshots of the main pages go to docs/screenshots/.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

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
EXAMPLE_AGENT = Path(__file__).resolve().parents[3] / "examples" / "finance-agent"
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


def month_spends(database: LiveDatabase) -> list[tuple[str, int]]:
    """Each scope's spend this UTC month, most first (the usage rollup's month rows)."""
    month = datetime.now(UTC).date().replace(day=1)
    rows = database.query(
        "SELECT scope, SUM(cost_micros) FROM agents_usagescopemonth WHERE month = %s GROUP BY scope ORDER BY 2 DESC, 1",
        (month if database.vendor == "postgresql" else month.isoformat(),),
    )
    return [(scope, int(spent)) for scope, spent in rows]


def agent_with_budgets(folder: Path, cap: int) -> Path:
    """The example agent with a monthly budget of `cap` per scope."""
    shutil.copytree(EXAMPLE_AGENT, folder)
    manifest = json.loads((folder / "amodal.json").read_text())
    manifest["budgets"] = {"period": "month", "scopeCostMicros": cap}
    (folder / "amodal.json").write_text(json.dumps(manifest, indent=2))
    return folder


@pytest.fixture(scope="session")
def budget_cap(studio_database) -> int:
    """The monthly cap of the server's agent: the fifth-highest spend of this month, so that a few scopes
    are over their budget (and some near it) on Cost & Usage."""
    spends = [spent for _, spent in month_spends(studio_database)]
    return spends[min(4, len(spends) - 1)] if spends else 1


@pytest.fixture(scope="session")
def studio_server(studio_database, budget_cap, tmp_path_factory) -> Iterator[LiveServer]:
    folder = agent_with_budgets(tmp_path_factory.mktemp("studio-agent") / "agent", budget_cap)
    server = start_server(
        studio_database, tmp_path_factory.mktemp("studio-browser-logs"), extra_env={"AMODAL_AGENT_DIR": str(folder)}
    )
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
