"""A scope's memory in Studio, in Chromium: edit an entry, delete one after confirming (also without
JavaScript), a refused edit, and a viewer without the change permissions.

Each test works in a scope of its own, made here (entries and users through `manage.py shell` on the live
server's database, which the other browser modules share: nothing of theirs is touched, and no Scope row
is made, so the scopes list and its order stay as they expect). Results are checked with plain SQL.
"""

from __future__ import annotations

import json
import secrets

import pytest

from tests.e2e.live import base_env, run_manage
from tests.studio.browser.conftest import TIMEOUT_MS, VIEWPORT, shoot

pytestmark = [pytest.mark.browser, pytest.mark.live]

VIEWER = "memory-viewer"
VIEWER_PASSWORD = "memory-viewer-pw-2c9d"
DEMO_SCOPE = "household_garcia_demo"
DEMO_FACTS = [
    "The household budgets monthly, from the 1st",
    "Prefers amounts in EUR",
    "Saving for a bike for Lucia (about 600 EUR by June)",
    "Pays rent on the 3rd from the joint checking account",
    "Does not want alerts for transfers under 50 EUR",
    "Ana handles the utility bills",
]


def shell(studio_server, code: str) -> None:
    run_manage(["shell", "-c", code], base_env(studio_server.database.url))


def seed(studio_server, *facts: str, scope: str | None = None, days_apart: int = 0) -> str:
    """A new scope holding `facts` (oldest first, the last one made now, each `days_apart` after the one
    before); its id."""
    scope = scope or f"memory-browser-{secrets.token_hex(4)}"
    shell(
        studio_server,
        "from datetime import timedelta\n"
        "from django.utils import timezone\n"
        "from memory.models import MemoryEntry\n"
        f"facts = {json.dumps(list(facts))}\n"
        "for index, fact in enumerate(facts):\n"
        f"    entry = MemoryEntry.all_scopes.create(scope={json.dumps(scope)}, content=fact)\n"
        f"    moment = timezone.now() - timedelta(days={days_apart} * (len(facts) - 1 - index))\n"
        "    MemoryEntry.all_scopes.filter(pk=entry.pk).update(created_at=moment)\n",
    )
    return scope


def stored(studio_server, scope: str) -> list[str]:
    rows = studio_server.database.query(
        "SELECT content FROM agents_memoryentry WHERE scope = %s ORDER BY created_at, id", (scope,)
    )
    return [row[0] for row in rows]


def changes(studio_server, scope: str) -> list[tuple]:
    return studio_server.database.query(
        "SELECT action, actor_name, content_before, content_after FROM memory_memorychange WHERE scope = %s "
        "ORDER BY at, id",
        (scope,),
    )


def memory_page(tab, studio_server, scope: str) -> None:
    tab.goto(f"{studio_server.base_url}/studio/scopes/scope/memory/?scope={scope}")


def row(tab, text: str):
    return tab.locator("#memory-table tr[data-entry]", has_text=text)


def test_edit_an_entry(page, studio_server):
    scope = seed(studio_server, "likes tea", "has a cat")
    memory_page(page, studio_server, scope)
    assert page.locator("#memory-changes li.empty").is_visible(), "no changes yet"
    with page.expect_navigation():
        row(page, "likes tea").locator("a.edit-link").click()
    assert page.locator("h2#edit-title").inner_text() == "Edit memory entry"
    assert page.input_value("#memory-content") == "likes tea"
    page.fill("#memory-content", "likes green tea, no sugar")
    with page.expect_navigation():
        page.click("#save-entry")
    assert stored(studio_server, scope) == ["likes green tea, no sugar", "has a cat"]
    assert changes(studio_server, scope) == [("edited", "studio-admin", "likes tea", "likes green tea, no sugar")]
    assert "The memory entry was saved" in page.locator(".messagelist").inner_text()
    entry_id = row(page, "likes green tea").get_attribute("data-entry")
    assert page.url.endswith(f"#entry-{entry_id}")
    change = page.locator("#memory-changes li.change")
    assert change.count() == 1
    assert change.get_attribute("data-actor") == "studio-admin" and change.get_attribute("data-entry") == entry_id
    assert change.locator("del").inner_text() == "likes tea"
    assert change.locator("ins").inner_text() == "likes green tea, no sugar"


def test_delete_after_confirming_with_and_without_javascript(page, browser, studio_server):
    scope = seed(studio_server, "likes tea", "has a cat", "walks daily")
    memory_page(page, studio_server, scope)
    with page.expect_navigation():
        row(page, "has a cat").locator("a.delete-link").click()
    assert page.locator("#entry-content").inner_text() == "has a cat"
    with page.expect_navigation():
        page.click("text=No, keep it")
    assert stored(studio_server, scope) == ["likes tea", "has a cat", "walks daily"], "asking deletes nothing"
    with page.expect_navigation():
        row(page, "has a cat").locator("a.delete-link").click()
    with page.expect_navigation():
        page.click("button.delete-button")
    assert stored(studio_server, scope) == ["likes tea", "walks daily"]
    assert row(page, "has a cat").count() == 0
    assert "The memory entry was deleted" in page.locator(".messagelist").inner_text()
    assert page.locator("#memory-changes li.change-deleted del").inner_text() == "has a cat"

    context = browser.new_context(
        viewport=VIEWPORT, java_script_enabled=False, storage_state=page.context.storage_state()
    )
    tab = context.new_page()
    tab.set_default_timeout(TIMEOUT_MS)
    try:
        memory_page(tab, studio_server, scope)
        with tab.expect_navigation():
            row(tab, "walks daily").locator("a.delete-link").click()
        with tab.expect_navigation():
            tab.click("button.delete-button")
        assert row(tab, "walks daily").count() == 0
    finally:
        context.close()
    assert stored(studio_server, scope) == ["likes tea"]
    assert [change[:3] for change in changes(studio_server, scope)] == [
        ("deleted", "studio-admin", "has a cat"),
        ("deleted", "studio-admin", "walks daily"),
    ]


def test_a_refused_edit_shows_the_error_and_changes_nothing(page, studio_server):
    scope = seed(studio_server, "likes tea", "has a cat")
    memory_page(page, studio_server, scope)
    with page.expect_navigation():
        row(page, "likes tea").locator("a.edit-link").click()
    for typed, error in (
        ("   ", "must be a non-empty string"),
        ("Has a  cat", "another entry of this scope already remembers exactly this"),
        ("x" * 8001, "memory holds at most 8000 characters in all"),  # the example agent's maxTotalChars
    ):
        page.fill("#memory-content", typed)
        with page.expect_navigation():
            page.click("#save-entry")
        assert error in page.locator("#edit-error").inner_text(), typed[:20]
        assert page.input_value("#memory-content") == typed, "what was typed stays in the form"
    assert stored(studio_server, scope) == ["likes tea", "has a cat"]
    assert changes(studio_server, scope) == []


@pytest.fixture(scope="module")
def viewer(studio_server) -> str:
    """A staff user with studio.view_studio only (no memory permissions)."""
    shell(
        studio_server,
        "from django.contrib.auth.models import Permission, User\n"
        f"user = User.objects.create_user({VIEWER!r}, password={VIEWER_PASSWORD!r}, is_staff=True)\n"
        "user.user_permissions.add(Permission.objects.get(codename='view_studio'))\n",
    )
    return VIEWER


def test_a_viewer_without_the_permissions_sees_no_controls(browser, studio_server, viewer):
    scope = seed(studio_server, "likes tea")
    context = browser.new_context(viewport=VIEWPORT)
    tab = context.new_page()
    tab.set_default_timeout(TIMEOUT_MS)
    try:
        tab.goto(studio_server.base_url + "/admin/login/?next=/studio/")
        tab.fill("#id_username", viewer)
        tab.fill("#id_password", VIEWER_PASSWORD)
        with tab.expect_navigation():
            tab.click("[type=submit]")
        memory_page(tab, studio_server, scope)
        assert row(tab, "likes tea").count() == 1
        assert tab.locator("a.edit-link, a.delete-link, .row-actions").count() == 0
        entry_id = row(tab, "likes tea").get_attribute("data-entry")
        token = next(cookie["value"] for cookie in context.cookies() if cookie["name"] == "csrftoken")
        base = f"{studio_server.base_url}/studio/scopes/scope/memory/{entry_id}"
        for action, form in (("edit", {"content": "pwned"}), ("delete", {})):
            forged = tab.request.post(
                f"{base}/{action}/?scope={scope}",
                form={**form, "csrfmiddlewaretoken": token},
                headers={"Referer": tab.url},
            )
            assert forged.status == 403, action
            assert "memory." in forged.text() and "_memoryentry" in forged.text()
    finally:
        context.close()
    assert stored(studio_server, scope) == ["likes tea"]
    assert changes(studio_server, scope) == []


def test_memory_page_screenshot_and_narrow_screens(page, browser, studio_server):
    scope = seed(studio_server, *DEMO_FACTS, scope=DEMO_SCOPE, days_apart=4)
    memory_page(page, studio_server, scope)
    with page.expect_navigation():
        row(page, "Prefers amounts in EUR").locator("a.edit-link").click()
    page.fill("#memory-content", "Prefers amounts in EUR, rounded to whole euros")
    with page.expect_navigation():
        page.click("#save-entry")
    with page.expect_navigation():
        row(page, "Ana handles").locator("a.delete-link").click()
    with page.expect_navigation():
        page.click("button.delete-button")
    assert len(changes(studio_server, scope)) == 2
    shoot(page, "studio-memory.png")

    narrow = browser.new_context(viewport={"width": 390, "height": 844}, storage_state=page.context.storage_state())
    tab = narrow.new_page()
    try:
        entry_id = row(page, "Saving for a bike").get_attribute("data-entry")
        base = f"{studio_server.base_url}/studio/scopes/scope/memory/"
        for path in (f"?scope={scope}", f"{entry_id}/edit/?scope={scope}", f"{entry_id}/delete/?scope={scope}"):
            tab.goto(base + path)
            overflow = tab.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 1, (path, overflow)
    finally:
        narrow.close()
