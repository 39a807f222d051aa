"""Scope labels in a real browser (SPEC §10): a label set through `PUT /api/scopes/<scope id>` with a
--manage-scopes key shows on the chips, the sessions table, replay, Cost & Usage and the scope pages, beside
the raw id; the scope searches find the scope by its label. The labels this module sets are put back
afterwards (the live server is shared with the other browser modules)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from urllib.parse import quote

import pytest

from tests.e2e.live import base_env, run_manage
from tests.studio.browser.conftest import data_rows, shoot

pytestmark = [pytest.mark.browser, pytest.mark.live]

LABEL = "Quokka Quarry Works"  # no word of it is in the demo data's ids or labels
METADATA = {"plan": "enterprise", "crm": {"account": "QQ-4411"}}


def scope_url(server, scope_id: str) -> str:
    return f"{server.base_url}/api/scopes/{quote(scope_id, safe='')}"


@pytest.fixture(scope="module")
def manager_headers(studio_server) -> dict[str, str]:
    created = run_manage(["create_api_key", "browser labels", "--manage-scopes"], base_env(studio_server.database.url))
    return {"Authorization": "Bearer " + created.stdout.strip()}


@pytest.fixture
def set_label(studio_server, manager_headers) -> Iterator:
    """`set_label(scope_id, label, metadata)` through the API; every scope's label and metadata are put back
    at the end of the test."""
    originals: dict[str, dict] = {}

    def put(scope_id: str, label: str, metadata: dict | None = None) -> dict:
        with studio_server.client() as client:
            if scope_id not in originals:
                before = client.get(scope_url(studio_server, scope_id), headers=manager_headers)
                assert before.status_code == 200, before.text
                originals[scope_id] = {key: before.json()[key] for key in ("label", "metadata")}
            response = client.put(
                scope_url(studio_server, scope_id),
                json={"label": label, "metadata": metadata or {}},
                headers=manager_headers,
            )
        assert response.status_code == 200, response.text
        return response.json()

    yield put
    with studio_server.client() as client:
        for scope_id, original in originals.items():
            client.put(scope_url(studio_server, scope_id), json=original, headers=manager_headers).raise_for_status()


def busiest_scope(database) -> str:
    """The scope with the most sessions (it has a chip on the sessions page and sessions on its first page)."""
    return database.query(
        "SELECT scope FROM agents_session WHERE scope <> '' GROUP BY scope ORDER BY COUNT(*) DESC, scope LIMIT 1"
    )[0][0]


def test_a_label_set_through_the_api_shows_on_every_page(page, studio_server, set_label):
    database = studio_server.database
    base = studio_server.base_url
    scope = busiest_scope(database)
    answer = set_label(scope, f"  {LABEL} ", METADATA)
    assert (answer["scope_id"], answer["label"], answer["metadata"]) == (scope, LABEL, METADATA)

    # Sessions: the chip and every row of the scope, label first, the raw id beside it.
    page.goto(base + "/studio/sessions/")
    chip = page.locator(f'a.chip[data-scope="{scope}"]')
    assert chip.locator(".chip-label").inner_text() == LABEL
    assert chip.get_attribute("data-label") == LABEL
    assert scope.startswith(chip.locator(".chip-name").inner_text().split("…")[0])
    with page.expect_navigation():
        chip.click()
    rows = page.locator("#sessions-table tbody tr[data-session]")
    assert rows.count() >= 1
    assert set(rows.locator(".scope-label").all_inner_texts()) == {LABEL}
    assert LABEL in page.locator("#session-total").inner_text()
    shoot(page, "studio-sessions-labelled.png")

    # Replay: the label beside the raw id, which the copy button still copies.
    session_id = rows.first.get_attribute("data-session")
    page.goto(f"{base}/studio/sessions/{session_id}/")
    assert page.locator("#scope-label").inner_text() == LABEL
    assert page.locator("#raw-scope").inner_text() == scope
    assert page.locator(".meta button.copy-button").get_attribute("data-copy") == scope

    # Cost & Usage, all time: the ranking row and, once focused, the banner.
    page.goto(base + "/studio/usage/?range=90d&top=100")
    ranked = page.locator(f'#scope-ranking tbody tr[data-scope="{scope}"]')
    assert ranked.locator(".scope-label").inner_text() == LABEL
    with page.expect_navigation():
        ranked.locator("a.scope-id").click()
    assert page.locator(".focus-banner .scope-label").inner_text() == LABEL
    assert all(text == LABEL for text in page.locator("#top-sessions .scope-label").all_inner_texts())

    # The scope page: the label as the title, the raw id and the metadata under it.
    page.goto(f"{base}/studio/scopes/scope/?scope={quote(scope, safe='')}")
    assert page.locator("h1").inner_text() == f"Scope {LABEL}"
    assert page.locator("#raw-scope").inner_text() == scope
    assert page.locator('#scope-details [data-key="plan"] dd').inner_text() == "enterprise"
    shoot(page, "studio-scope-labelled.png")


def test_the_scope_searches_find_a_scope_by_its_label(page, studio_server, set_label):
    database = studio_server.database
    base = studio_server.base_url
    scope = busiest_scope(database)
    set_label(scope, LABEL)
    # The scopes page: part of the label, in other letter case.
    page.goto(base + "/studio/scopes/")
    page.fill("#scope-search", "quarry WORKS")
    with page.expect_navigation():
        page.click("form.filter-row button")
    assert [row["scope"] for row in data_rows(page, "#scopes-table tbody tr")] == [scope]
    assert page.locator("#scopes-table .scope-label").inner_text() == LABEL
    # The chip search on the sessions page.
    page.goto(base + "/studio/sessions/")
    page.fill("#find-scope", "quokka")
    with page.expect_navigation():
        page.click("form.chip-search button")
    assert [chip.get_attribute("data-scope") for chip in page.locator("a.chip[data-scope]").all()] == [scope]
    # Cleared, the label is gone everywhere: the id alone again.
    set_label(scope, "")
    page.reload()
    assert page.locator("a.chip[data-scope]").count() == 0  # the label no longer matches "quokka"
    page.goto(f"{base}/studio/scopes/scope/?scope={quote(scope, safe='')}")
    assert page.locator("#scope-label").count() == 0 and page.locator("#raw-scope").inner_text() == scope


def test_labelled_pages_fit_a_phone(browser, studio_server, page, set_label):
    database = studio_server.database
    scope = busiest_scope(database)
    set_label(scope, "Quokka Quarry Works and Sons International Holdings of the Southern Hemisphere", METADATA)
    session_id = database.query("SELECT id FROM agents_session WHERE scope = %s LIMIT 1", (scope,))[0][0]
    context = browser.new_context(viewport={"width": 390, "height": 844}, storage_state=page.context.storage_state())
    tab = context.new_page()
    try:
        for path in (
            "/studio/",
            f"/studio/sessions/?scope={quote(scope, safe='')}",
            f"/studio/sessions/{uuid.UUID(str(session_id))}/",
            "/studio/usage/?range=90d",
            "/studio/scopes/",
            f"/studio/scopes/scope/?scope={quote(scope, safe='')}",
        ):
            tab.goto(studio_server.base_url + path)
            assert tab.locator(".scope-label, .chip-label, #scope-label").count() >= 1, path
            overflow = tab.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 1, (path, overflow)
        shoot(tab, "studio-scope-labelled-phone.png")
    finally:
        context.close()
