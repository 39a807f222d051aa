"""An operator adds and replaces a scoped credential in Django admin, in a real browser against a live
daphne server: the value is never shown back, and the server's database holds only ciphertext."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from cryptography.fernet import Fernet

from tests.browser import launched_chromium, save_screenshot  # noqa: E402
from tests.e2e.live import (
    LiveServer,
    base_env,
    migrated_database,
    run_manage,
    start_server,
)

pytestmark = [pytest.mark.browser, pytest.mark.live]

ADMIN_USER = "ops-browser"
ADMIN_PASSWORD = "ops-browser-" + secrets.token_hex(6)
CREDENTIALS_KEY = Fernet.generate_key().decode()
PAGE_TIMEOUT_MS = 20_000


@pytest.fixture(scope="module")
def admin_server(tmp_path_factory) -> Iterator[LiveServer]:
    """daphne on a fresh migrated database with a superuser, and a known credentials key."""
    with migrated_database(tmp_path_factory.mktemp("admin-browser-db")) as database:
        env = base_env(
            database.url, extra={"DJANGO_SUPERUSER_PASSWORD": ADMIN_PASSWORD, "AMODAL_CREDENTIALS_KEY": CREDENTIALS_KEY}
        )
        run_manage(["createsuperuser", "--noinput", "--username", ADMIN_USER, "--email", "ops@example.com"], env)
        server = start_server(
            database,
            tmp_path_factory.mktemp("admin-browser-logs"),
            extra_env={"AMODAL_CREDENTIALS_KEY": CREDENTIALS_KEY},
        )
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture
def browser_page() -> Iterator:
    with launched_chromium(timeout=PAGE_TIMEOUT_MS) as browser:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.set_default_timeout(PAGE_TIMEOUT_MS)
        page.set_default_navigation_timeout(PAGE_TIMEOUT_MS)
        yield page


def test_admin_adds_and_replaces_a_credential_without_ever_showing_it(admin_server, browser_page):
    page = browser_page
    base = admin_server.base_url
    first_value = "browser-first-secret-" + secrets.token_hex(8)
    second_value = "browser-second-secret-" + secrets.token_hex(8)

    page.goto(f"{base}/admin/login/?next=/admin/")
    page.fill("#id_username", ADMIN_USER)
    page.fill("#id_password", ADMIN_PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{base}/admin/")

    page.goto(f"{base}/admin/connections/scopedcredential/add/")
    assert page.get_attribute("#id_new_value", "type") == "password"
    page.fill("#id_scope", "browser-tenant")
    page.fill("#id_key", "CRM_TOKEN")
    page.fill("#id_new_value", first_value)
    page.click("input[name=_save]")
    page.wait_for_url(f"{base}/admin/connections/scopedcredential/")
    list_html = page.content()
    assert first_value not in list_html
    assert f"({len(first_value)} characters)" in list_html

    page.click("text=CRM_TOKEN")
    page.wait_for_url("**/change/")
    change_url = page.url
    change_html = page.content()
    assert first_value not in change_html
    assert "Replace value" in change_html
    assert page.input_value("#id_new_value") == ""
    assert page.is_disabled("#id_scope")

    page.fill("#id_new_value", second_value)
    page.click("input[name=_continue]")
    page.wait_for_url(change_url)
    replaced_html = page.content()
    assert first_value not in replaced_html and second_value not in replaced_html
    assert f"({len(second_value)} characters)" in replaced_html
    save_screenshot(page, "admin-credential.png", full_page=True)

    history_html = page.goto(change_url.replace("/change/", "/history/")).text()
    assert first_value not in history_html and second_value not in history_html

    database = admin_server.database
    rows = database.query(
        "SELECT scope, encrypted_value, value_length, updated_by FROM connections_scopedcredential WHERE key = %s",
        ("CRM_TOKEN",),
    )
    assert len(rows) == 1
    scope_id, stored, length, updated_by = rows[0]
    assert (scope_id, length, updated_by) == ("browser-tenant", len(second_value), ADMIN_USER)
    assert first_value not in stored and second_value not in stored
    assert Fernet(CREDENTIALS_KEY.encode()).decrypt(stored.encode()).decode() == second_value

    changes = database.query("SELECT action, scope, key, actor_name FROM connections_credentialchange ORDER BY at, id")
    assert changes == [
        ("created", "browser-tenant", "CRM_TOKEN", ADMIN_USER),
        ("replaced", "browser-tenant", "CRM_TOKEN", ADMIN_USER),
    ]
    for table in ("connections_credentialchange", "django_admin_log"):
        dump = repr(database.query(f"SELECT * FROM {table}"))
        assert first_value not in dump and second_value not in dump
    assert first_value not in admin_server.log() and second_value not in admin_server.log()
