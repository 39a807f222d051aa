"""The admin page of missing credentials (SPEC §4): per connection, the `scope:KEY` references its auth
needs and which known scopes lack them, each a link to the add form filled in; a bounded number of
queries whatever the number of scopes; only for admins who may view credentials."""

from __future__ import annotations

import html

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from connections import services
from connections.selectors import FIRST_MISSING
from scoping.models import Scope
from scoping.services import touch_scope

pytestmark = pytest.mark.django_db

PAGE = "/admin/connections/scopedcredential/missing/"
ADD_URL = "/admin/connections/scopedcredential/add/"
STORED_SECRET = "stored-Secret-value-2b3c4d"
DEV_SECRET = "dev-file-Secret-5e6f7a"
CONNECTIONS = {
    "crm": {"baseUrl": "http://127.0.0.1:9/crm", "auth": {"type": "bearer", "token": "scope:CRM_TOKEN"}},
    "legacy": {
        "baseUrl": "http://127.0.0.1:9/legacy",
        "auth": {"type": "basic", "username": "scope:LEGACY_USER", "password": "scope:LEGACY_PASS"},
    },
    "metrics": {
        "baseUrl": "http://127.0.0.1:9/metrics",
        "auth": {"type": "query", "param": "key", "token": "scope:CRM_TOKEN"},
    },
    "public": {"baseUrl": "http://127.0.0.1:9/public"},
    "static": {"baseUrl": "http://127.0.0.1:9/static", "auth": {"type": "api_key", "token": "literal-token-1"}},
}
DEV_FILE = {".amodal/scopes.json": {"tenant-02": {"credentials": {"CRM_TOKEN": DEV_SECRET}}}}


@pytest.fixture
def agent(make_agent):
    return make_agent(CONNECTIONS, files=DEV_FILE)


@pytest.fixture
def superuser(client, django_user_model):
    user = django_user_model.objects.create_superuser("ops-admin", "ops@example.com", "ops-password-1")
    client.force_login(user)
    return user


def make_scopes(count: int, start: int = 0) -> None:
    for number in range(start, start + count):
        touch_scope(scope_id=f"tenant-{number:02d}")


def rows(page: str) -> dict[str, str]:
    """reference -> the text of its table row, tags stripped."""
    import re

    found = {}
    for row in re.findall(r"<tr>(.*?)</tr>", page, re.S):
        text = html.unescape(re.sub(r"<[^>]+>", " ", row))
        match = re.search(r"scope:\S+", text)
        if match:
            found.setdefault(match.group(), " ".join(text.split()))
    return found


def test_the_page_lists_each_connections_references_and_the_scopes_lacking_them(client, superuser, agent):
    make_scopes(4)
    services.set_credential(scope_id="tenant-00", key="CRM_TOKEN", value=STORED_SECRET, actor_name="setup")
    services.set_credential(scope_id="tenant-01", key="LEGACY_USER", value=STORED_SECRET, actor_name="setup")
    services.set_credential(scope_id="tenant-01", key="LEGACY_PASS", value=STORED_SECRET, actor_name="setup")
    services.set_credential(scope_id="not-a-known-scope", key="CRM_TOKEN", value=STORED_SECRET, actor_name="setup")
    response = client.get(PAGE)
    assert response.status_code == 200
    page = response.content.decode()
    assert STORED_SECRET not in page and DEV_SECRET not in page
    for name in ("crm", "legacy", "metrics", "public", "static"):
        assert f"<h2>{name}</h2>" in page
    assert page.count("Needs no <code>scope:KEY</code> credential.") == 2  # public and static
    found = rows(page)
    # DEBUG is off in tests: the dev file does not count.
    assert found["scope:CRM_TOKEN"] == "scope:CRM_TOKEN 3 tenant-03 , tenant-02 , tenant-01"
    assert found["scope:LEGACY_USER"] == "scope:LEGACY_USER 3 tenant-03 , tenant-02 , tenant-00"
    assert page.count("scope:CRM_TOKEN") == 2  # needed by crm and by metrics
    assert f'href="{ADD_URL}?scope=tenant-03&amp;key=CRM_TOKEN"' in page
    assert f'href="{ADD_URL}?scope=tenant-00&amp;key=LEGACY_PASS"' in page


def test_in_development_the_dev_file_counts_as_having_the_credential(client, superuser, agent):
    make_scopes(4)
    with override_settings(DEBUG=True):
        page = client.get(PAGE).content.decode()
    assert rows(page)["scope:CRM_TOKEN"] == "scope:CRM_TOKEN 3 tenant-03 , tenant-01 , tenant-00"
    assert ".amodal/scopes.json" in page
    assert DEV_SECRET not in page


def test_the_global_scope_and_odd_scope_ids_are_linked_safely(client, superuser, agent):
    touch_scope(scope_id="")
    touch_scope(scope_id="a&b=<c> d")
    page = client.get(PAGE).content.decode()
    assert f'href="{ADD_URL}?scope=&amp;key=CRM_TOKEN">global</a>' in page
    assert f'href="{ADD_URL}?scope=a%26b%3D%3Cc%3E%20d&amp;key=CRM_TOKEN">a&amp;b=&lt;c&gt; d</a>' in page
    assert "<c>" not in page


def test_a_link_opens_the_add_form_filled_in(client, superuser, agent):
    form = client.get(ADD_URL, {"scope": "tenant-07", "key": "CRM_TOKEN"}).content.decode()
    assert 'name="scope" value="tenant-07"' in form
    assert 'name="key" value="CRM_TOKEN"' in form


def test_the_changelist_links_to_the_page(client, superuser, agent):
    assert f'href="{PAGE}"' in client.get("/admin/connections/scopedcredential/").content.decode()


def test_the_query_count_does_not_grow_with_the_number_of_scopes(client, superuser, agent):
    make_scopes(3)
    client.get(PAGE)  # warm up (session, content types)
    with CaptureQueriesContext(connection) as few:
        first = client.get(PAGE).content.decode()
    make_scopes(27, start=3)
    services.set_credential(scope_id="tenant-29", key="CRM_TOKEN", value=STORED_SECRET, actor_name="setup")
    with CaptureQueriesContext(connection) as many:
        second = client.get(PAGE).content.decode()
    assert Scope.objects.count() == 30
    assert len(many.captured_queries) == len(few.captured_queries), [q["sql"] for q in many.captured_queries]
    assert rows(first)["scope:CRM_TOKEN"].startswith("scope:CRM_TOKEN 3 ")
    crm = rows(second)["scope:CRM_TOKEN"]
    assert crm.startswith("scope:CRM_TOKEN 29 tenant-28 , tenant-27")  # most recently active first
    assert "tenant-29" not in crm
    assert crm.count("tenant-") == FIRST_MISSING
    assert crm.endswith(f"and {29 - FIRST_MISSING} more")


def test_a_viewer_without_add_permission_sees_the_page_without_links(client, django_user_model, agent):
    make_scopes(2)
    user = django_user_model.objects.create_user("viewer", password="pw-123456", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_scopedcredential"))
    client.force_login(user)
    response = client.get(PAGE)
    assert response.status_code == 200
    page = response.content.decode()
    assert "tenant-01" in page and ADD_URL not in page


def test_staff_without_the_view_permission_is_refused(client, django_user_model, agent):
    user = django_user_model.objects.create_user("staff", password="pw-123456", is_staff=True)
    client.force_login(user)
    assert client.get(PAGE).status_code == 403


def test_non_staff_users_are_sent_to_the_login_page(client, django_user_model, agent):
    client.force_login(django_user_model.objects.create_user("plain", password="pw-123456"))
    response = client.get(PAGE)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
