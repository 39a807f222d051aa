"""/api/docs/ in Debian's Chromium against a live daphne: Swagger UI renders every operation from files
this server serves (any other request is refused, as offline), with no Content-Security-Policy violation
or script error. Saves docs/screenshots/api-docs.png with AMODAL_UPDATE_SCREENSHOTS=1."""

from __future__ import annotations

import pytest

from tests.browser import launched_chromium, save_screenshot

pytestmark = [pytest.mark.browser, pytest.mark.live]

TIMEOUT_MS = 20_000


def statuses_of(page, operation: str) -> list[str]:
    """Open the operation (by its element id) and list the statuses of its documented responses."""
    page.locator(f"{operation} .opblock-summary").first.click()
    responses = page.locator(f"{operation} .responses-table .response")
    responses.first.wait_for()
    return [responses.nth(index).get_attribute("data-code") for index in range(responses.count())]


def test_the_docs_page_renders_every_operation_offline_under_its_csp(daphne_server):
    expect = pytest.importorskip("playwright.sync_api").expect
    origin = daphne_server.base_url
    with daphne_server.client() as client:
        paths = client.get("/api/schema/?format=json").json()["paths"]
    operations = sum(len(item) for item in paths.values())
    assert operations >= 27
    foreign, problems = [], []
    with launched_chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 1400})
        page.set_default_timeout(TIMEOUT_MS)

        def only_this_server(route):
            if route.request.url.startswith(origin + "/"):
                route.continue_()
            else:
                foreign.append(route.request.url)
                route.abort()

        page.route("**/*", only_this_server)
        page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.goto(f"{origin}/api/docs/")
        # (no wait_for_function: evaluating a string is what the page's CSP forbids, as it should)
        expect(page.locator(".opblock")).to_have_count(operations)
        assert page.locator(".info .title").inner_text().startswith("amodal runtime API")

        tags = page.locator(".opblock-tag-section h3").all_inner_texts()
        assert [tag.split()[0] for tag in tags][:7] == [  # in amodal_site.schema.TAGS's order
            "chat",
            "sessions",
            "stores",
            "memory",
            "credentials",
            "scopes",
            "operations",
        ]
        assert statuses_of(page, "#operations-sessions-sessions_history_feedback") == [
            "200",
            "400",
            "401",
            "403",
            "404",
            "406",  # DRF negotiates its answer's type; the plain chat views below do not
            "413",
            "429",
            "503",
        ]
        assert "message_not_found" in page.locator("#operations-sessions-sessions_history_feedback").inner_text()
        page.locator("#operations-sessions-sessions_history_feedback .opblock-summary").first.click()  # fold it
        sync = "#operations-chat-chat_sync"
        assert statuses_of(page, sync) == ["200", "400", "401", "403", "404", "409", "413", "429", "503"]
        assert "budget_exceeded" in page.locator(sync).inner_text()
        page.mouse.wheel(0, -100_000)
        save_screenshot(page, "api-docs.png")
    assert foreign == []
    assert problems == []
