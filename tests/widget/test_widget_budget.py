"""The widget tells a user whose scope is over its budget why nothing answered (SPEC §3 "Budgets"): the
stream's `error{budget_exceeded}` message is shown in the conversation, and again once the conversation is
resumed after a reload (from the history API's `error`); the other household, under its cap, is answered as
usual."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta

import pytest

from tests.browser import save_screenshot
from tests.e2e.live import REPO_ROOT, LiveServer
from tests.widget.test_widget_browser import GARCIA, OKAFOR, demo_send, done_of, household, open_demo, text_of

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def budget_server(live_server_factory, live_database, tmp_path_factory) -> LiveServer:
    """The example agent with a daily budget; the Garcias' scope has a cap of 0 (set in admin)."""
    folder = tmp_path_factory.mktemp("budget-agent") / "agent"
    shutil.copytree(REPO_ROOT / "examples" / "finance-agent", folder)
    manifest = json.loads((folder / "amodal.json").read_text())
    manifest["budgets"] = {"period": "day", "scopeCostMicros": 5_000_000}
    (folder / "amodal.json").write_text(json.dumps(manifest))
    live_database.execute(
        "INSERT INTO scoping_scope (scope_id, label, metadata, budget_cost_micros, first_seen_at, last_seen_at)"
        " VALUES (%s, '', '{}', 0, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
        (GARCIA,),
    )
    return live_server_factory(extra_env={"AMODAL_AGENT_DIR": str(folder)})


def test_the_budget_exceeded_message_is_shown_to_the_user(page, budget_server):
    open_demo(page, budget_server)

    garcia = demo_send(page, GARCIA, "/say Are we within budget?")
    okafor = demo_send(page, OKAFOR, "/say Hello Okafors!")

    assert [event["type"] for event in garcia] == ["init", "error", "done"]
    assert done_of(garcia)["reason"] == "budget_exceeded"
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date()
    note = household(page, GARCIA).locator(".amc-note-error").last
    assert note.inner_text() == (
        f"This account has used today's budget ({datetime.now(UTC).date()}, UTC); it resets at {tomorrow} 00:00 UTC."
    )
    assert note.is_visible()
    assert household(page, GARCIA).locator(".amc-msg-user").last.inner_text().endswith("/say Are we within budget?")
    assert done_of(okafor)["reason"] == "model_stop" and text_of(okafor) == "Hello Okafors!"
    save_screenshot(page, "widget-budget-exceeded.png", clip={"x": 0, "y": 0, "width": 1360, "height": 700})

    # Reloaded, the widget resumes the session from the history API, whose message carries only the code.
    page.reload()
    page.wait_for_selector("html[data-demo-ready]")
    log = household(page, GARCIA).get_by_role("log")
    log.get_by_text("/say Are we within budget?", exact=True).wait_for()
    saved = household(page, GARCIA).locator(".amc-note-error")
    assert saved.count() == 1
    assert saved.inner_text() == "Not answered: this account had used its budget for the period."
    save_screenshot(page, "widget-budget-resumed.png", clip={"x": 0, "y": 0, "width": 1360, "height": 700})
