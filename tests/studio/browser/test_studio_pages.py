"""Studio in a real browser: sessions, replay, cost & usage, scopes, no-JavaScript and narrow screens.

The fixtures (a live daphne server on its own database filled by `generate_demo_data`, Chromium, a page
logged in as staff) and the helpers that read that database directly are in conftest.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.studio.browser.conftest import (
    PASSWORD,
    TIMEOUT_MS,
    USERNAME,
    VIEWPORT,
    data_rows,
    day_start,
    moment,
    number,
    shoot,
)

pytestmark = [pytest.mark.browser, pytest.mark.live]


# --- the tests -------------------------------------------------------------------------------------------------


def test_scope_chip_narrows_the_sessions_to_that_scope(page, studio_server):
    database = studio_server.database
    chips = page.locator("a.chip[data-scope]")
    assert chips.count() >= 5
    total = int(page.get_attribute("#session-total [data-total]", "data-total"))
    assert total == database.query("SELECT COUNT(*) FROM agents_session")[0][0]
    chip = chips.nth(2)
    scope, count = chip.get_attribute("data-scope"), int(chip.get_attribute("data-count"))
    assert count == database.query("SELECT COUNT(*) FROM agents_session WHERE scope = %s", (scope,))[0][0]
    with page.expect_navigation():
        chip.click()
    assert "scope=" in page.url
    assert page.locator("a.chip.chip-on[data-scope]").get_attribute("data-scope") == scope
    rows = data_rows(page, "#sessions-table tbody tr[data-session]")
    assert {row["scope"] for row in rows} == {scope}
    assert len(rows) == min(count, 50)
    assert int(page.get_attribute("#session-total [data-total]", "data-total")) == count
    # Back to every scope through the "All scopes" chip.
    with page.expect_navigation():
        page.click("a.chip >> text=All scopes")
    assert len({row["scope"] for row in data_rows(page, "#sessions-table tbody tr[data-session]")}) > 1


def test_model_filter_and_pagination(page, studio_server):
    database = studio_server.database
    page.select_option("#session-filters select[name=model]", "claude-haiku-4-5")
    with page.expect_navigation():
        page.click("#session-filters button[type=submit]")
    expected = database.query("SELECT COUNT(*) FROM agents_session WHERE model = %s", ("claude-haiku-4-5",))[0][0]
    assert int(page.get_attribute("#session-total [data-total]", "data-total")) == expected
    seen: list[str] = []
    while True:
        seen += [row["session"] for row in data_rows(page, "#sessions-table tbody tr[data-session]")]
        older = page.locator("a[rel=next]")
        if not older.count():
            break
        with page.expect_navigation():
            older.click()
    assert len(seen) == len(set(seen)) == expected


def test_replay_steps_through_turns(page, studio_server):
    database = studio_server.database
    session_id, scope = database.query(
        "SELECT id, scope FROM agents_session WHERE status = 'interrupted' AND message_count BETWEEN 6 AND 40 "
        "ORDER BY message_count DESC LIMIT 1"
    )[0]
    session_id = str(session_id)
    if database.vendor == "sqlite":
        session_id = f"{session_id[:8]}-{session_id[8:12]}-{session_id[12:16]}-{session_id[16:20]}-{session_id[20:]}"
    page.goto(f"{studio_server.base_url}/studio/sessions/{session_id}/")
    assert page.locator("#session-id").inner_text() == session_id
    raw_scope = page.locator("#raw-scope")
    assert (raw_scope.inner_text() if raw_scope.count() else "") == scope
    turns = page.locator("section.turn")
    anchors = [turns.nth(i).get_attribute("id") for i in range(turns.count())]
    assert len(anchors) >= 2
    user_messages = database.query(
        "SELECT COUNT(*) FROM agents_message WHERE session_id = %s AND role = 'user'",
        (database.uuid_param(session_id),),
    )[0][0]
    assert len(anchors) == user_messages
    assert page.locator("section.turn-interrupted").count() == 1, "the interrupted turn is marked"
    # Each model call shows its usage; the page shows as many calls as there are usage rows.
    calls = database.query(
        "SELECT COUNT(*) FROM agents_usagerecord WHERE session_id = %s", (database.uuid_param(session_id),)
    )[0][0]
    assert page.locator("ul.usage-line").count() == calls
    shoot(page, "studio-replay.png")
    # Next / previous links.
    page.locator(f"#{anchors[0]} a.turn-next").click()
    page.wait_for_function(f"location.hash === '#{anchors[1]}'")
    page.locator(f"#{anchors[1]} a.turn-prev").click()
    page.wait_for_function(f"location.hash === '#{anchors[0]}'")
    # Keyboard: j / k and the arrow keys.
    assert page.locator(".keyboard-hint").is_visible()
    page.keyboard.press("j")
    page.wait_for_function(f"location.hash === '#{anchors[1]}'")
    assert "current" in page.locator(f"#{anchors[1]}").get_attribute("class")
    page.keyboard.press("k")
    page.wait_for_function(f"location.hash === '#{anchors[0]}'")
    page.keyboard.press("ArrowRight")
    page.wait_for_function(f"location.hash === '#{anchors[1]}'")
    page.keyboard.press("ArrowLeft")
    page.wait_for_function(f"location.hash === '#{anchors[0]}'")
    assert page.locator(".turn-index a.turn-link.current").inner_text() == "1"
    # Tool calls open and close (details/summary).
    details = page.locator("details.tool-call").first
    if details.count():
        details.locator("summary").click()
        assert details.locator("pre").first.is_visible()


def test_cost_and_usage_panels_match_the_database(page, studio_server):
    database = studio_server.database
    base = studio_server.base_url
    page.goto(base + "/studio/usage/")
    with page.expect_navigation():
        page.click(".range-bar a.pill >> text=7 days")
    assert "range=7d" in page.url
    since = moment(database, day_start(6))
    expected = database.query(
        "SELECT SUM(cost_micros), SUM(input_tokens), SUM(output_tokens), COUNT(*), COUNT(*) - COUNT(cost_micros), "
        "(SELECT COUNT(*) FROM agents_session WHERE created_at >= %s) FROM agents_usagerecord WHERE created_at >= %s",
        (since, since),
    )[0]
    shown = {
        name: page.get_attribute(f'[data-stat="{name}"]', "data-value")
        for name in ("cost", "input_tokens", "output_tokens", "calls", "unpriced", "sessions")
    }
    assert [
        number(shown[name]) for name in ("cost", "input_tokens", "output_tokens", "calls", "unpriced", "sessions")
    ] == [value or 0 if i else value for i, value in enumerate(expected)]
    ranking = data_rows(page, "#scope-ranking tbody tr[data-scope]")
    top_scope = ranking[0]["scope"]
    # The share bars (SVG, as the policy allows no style attributes): the top scope's fills its column.
    bars = page.locator("#scope-ranking tbody tr[data-scope] svg.bar")
    top_bar, top_rect = bars.first.bounding_box(), bars.first.locator("rect").bounding_box()
    assert top_bar["width"] > 20 and abs(top_rect["width"] - top_bar["width"]) < 1
    cost, tokens, sessions = database.query(
        "SELECT SUM(cost_micros), SUM(input_tokens) + SUM(output_tokens), "
        "(SELECT COUNT(*) FROM agents_session WHERE created_at >= %s AND scope = %s) "
        "FROM agents_usagerecord WHERE created_at >= %s AND scope = %s",
        (since, top_scope, since, top_scope),
    )[0]
    assert (number(ranking[0]["cost"]), int(ranking[0]["tokens"]), int(ranking[0]["sessions"])) == (
        cost,
        tokens,
        sessions,
    )
    # Focus the panels on the top scope.
    with page.expect_navigation():
        page.locator("#scope-ranking tbody tr[data-scope] a.scope-id").first.click()
    assert page.locator(".focus-banner.focus-on").is_visible()
    by_model = {row["model"]: (number(row["cost"]), int(row["calls"])) for row in data_rows(page, "#by-model tbody tr")}
    expected_models = {
        model: (cost, calls)
        for model, cost, calls in database.query(
            "SELECT model, SUM(cost_micros), COUNT(*) FROM agents_usagerecord WHERE created_at >= %s AND scope = %s "
            "GROUP BY model",
            (since, top_scope),
        )
    }
    assert by_model == expected_models
    by_deploy = {
        row["deploy"]: (number(row["cost"]), int(row["calls"])) for row in data_rows(page, "#by-deploy tbody tr")
    }
    assert by_deploy == {
        deploy: (cost, calls)
        for deploy, cost, calls in database.query(
            "SELECT deploy_id, SUM(cost_micros), COUNT(*) FROM agents_usagerecord "
            "WHERE created_at >= %s AND scope = %s GROUP BY deploy_id",
            (since, top_scope),
        )
    }
    daily = data_rows(page, "#daily tbody tr")
    assert len(daily) == 7
    assert sum(int(row["calls"]) for row in daily) == sum(calls for _, calls in expected_models.values())
    assert page.locator("#daily svg.chart rect.bar-rect").count() == 7
    top = data_rows(page, "#top-sessions tbody tr")
    expected_top = database.query(
        "SELECT MAX(total) FROM (SELECT SUM(cost_micros) AS total FROM agents_usagerecord WHERE created_at >= %s "
        "AND scope = %s GROUP BY session_id) AS per_session",
        (since, top_scope),
    )[0][0]
    assert number(top[0]["cost"]) == expected_top
    # The way back to every scope.
    with page.expect_navigation():
        page.click("#all-scopes-link")
    assert "scope=" not in page.url and not page.locator(".focus-banner.focus-on").count()
    # A custom range from the form.
    start = (datetime.now(UTC).date() - timedelta(days=3)).isoformat()
    page.fill("input[name=from]", start)
    with page.expect_navigation():
        page.click(".range-custom button")
    assert f"from={start}" in page.url
    assert len(data_rows(page, "#daily tbody tr")) == 4


def test_scopes_pages_and_admin_index(page, studio_server):
    database = studio_server.database
    base = studio_server.base_url
    scopes_page = page.goto(base + "/studio/scopes/")
    assert "script-src 'self'" in scopes_page.headers["content-security-policy"]
    rows = data_rows(page, "#scopes-table tbody tr")
    assert len(rows) == 50
    first = rows[0]
    assert (
        int(first["sessions"])
        == database.query("SELECT COUNT(*) FROM agents_session WHERE scope = %s", (first["scope"],))[0][0]
    )
    shoot(page, "studio-scopes.png")
    page.fill("#scope-search", "household")
    with page.expect_navigation():
        page.click("form.filter-row button")
    assert all("household" in row["scope"] for row in data_rows(page, "#scopes-table tbody tr"))
    busiest = database.query("SELECT scope FROM agents_session GROUP BY scope ORDER BY COUNT(*) DESC LIMIT 1")[0][0]
    page.goto(base + "/studio/scopes/")
    page.fill("#scope-search", busiest[:12] if busiest else "global")
    with page.expect_navigation():
        page.click("form.filter-row button")
    with page.expect_navigation():
        page.locator("#scopes-table tbody tr a.scope-id").first.click()
    assert page.locator("h1").inner_text().startswith("Scope")
    with page.expect_navigation():
        page.click("nav.tabs >> text=Memory")
    assert page.locator("#memory-table").count() or page.locator(".notice").count()
    with page.expect_navigation():
        page.click("nav.tabs >> text=Store documents")
    assert page.locator("#documents-table").count() or page.locator(".notice").count()
    # Admin pages with their scripts (actions, date hierarchy, filters, forms) run under the policy too.
    for path in ("/admin/agents/session/", "/admin/scoping/apikey/add/", "/admin/agents/modelprice/add/"):
        assert page.goto(base + path).status == 200, path
        page.wait_for_load_state("load")
    assert page.goto(base + "/admin/agents/feedback/").status == 200
    ratings = database.query("SELECT COUNT(*) FROM agents_feedback")[0][0]
    assert page.locator("#result_list tbody tr").count() == min(ratings, 50)
    shoot(page, "admin-feedback.png")
    admin_index = page.goto(base + "/admin/")
    assert page.locator("#studio-module").is_visible()
    assert "script-src 'self'" in admin_index.headers["content-security-policy"]
    shoot(page, "admin-index.png")
    with page.expect_navigation():
        page.click("#studio-module >> text=Cost & Usage")
    assert page.url.endswith("/studio/usage/")


def test_works_without_javascript(browser, studio_server):
    context = browser.new_context(viewport=VIEWPORT, java_script_enabled=False)
    tab = context.new_page()
    tab.set_default_timeout(TIMEOUT_MS)
    try:
        tab.goto(studio_server.base_url + "/admin/login/?next=/studio/")
        tab.fill("#id_username", USERNAME)
        tab.fill("#id_password", PASSWORD)
        with tab.expect_navigation():
            tab.click("[type=submit]")
        tab.fill("#find-scope", "org_")
        with tab.expect_navigation():
            tab.click("form.chip-search button")
        assert "find=org_" in tab.url
        scopes = [chip.get_attribute("data-scope") for chip in tab.locator("a.chip[data-scope]").all()]
        assert scopes and all("org_" in scope for scope in scopes)
        with tab.expect_navigation():
            tab.locator("a.chip[data-scope]").first.click()
        assert {row["scope"] for row in data_rows(tab, "#sessions-table tbody tr[data-session]")} == {scopes[0]}
        assert tab.locator("button.copy-button:visible").count() == 0, "script-only buttons stay hidden"
    finally:
        context.close()


def test_narrow_screens_do_not_scroll_sideways(browser, studio_server, page):
    context = browser.new_context(viewport={"width": 390, "height": 844}, storage_state=page.context.storage_state())
    tab = context.new_page()
    try:
        for path in ("/studio/", "/studio/usage/", "/studio/scopes/"):
            tab.goto(studio_server.base_url + path)
            overflow = tab.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 1, (path, overflow)
    finally:
        context.close()
