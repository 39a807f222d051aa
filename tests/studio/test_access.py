"""Who sees Studio (SPEC §8): staff with `studio.view_studio` (directly, through the "Studio viewers" group,
or as superusers). Other staff get a 403 page; anonymous users and non-staff are sent to the admin login."""

from __future__ import annotations

import importlib
from types import SimpleNamespace

import pytest
from django.apps import apps
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from agents.models import ModelPrice, Session
from memory.models import MemoryEntry
from stores.models import StoreDocument
from studio import urls as studio_urls
from tests.studio.conftest import logged_in, q

viewers_migration = importlib.import_module("studio.migrations.0002_studio_viewers_group")

URL_NAMES = [pattern.name for pattern in studio_urls.urlpatterns]
# Pages that change something: each needs a model permission besides studio.view_studio.
CHANGE_PAGES = {
    "memory_entry_edit": "memory.change_memoryentry",
    "memory_entry_delete": "memory.delete_memoryentry",
}
READ_NAMES = [name for name in URL_NAMES if name not in CHANGE_PAGES]


@pytest.fixture
def studio_urls_by_name(make_session, db) -> dict[str, str]:
    """A working URL for each Studio URL name, on real rows."""
    session = make_session(scope="tenant-a")
    make_session(scope="")
    now = timezone.now()
    document = StoreDocument.all_scopes.create(
        scope="tenant-a",
        store="preferences",
        key="currency",
        data={"key": "currency", "value": "EUR"},
        created_at=now,
        updated_at=now,
    )
    entry = MemoryEntry.all_scopes.create(scope="tenant-a", content="prefers EUR")
    entry_query = "?scope=tenant-a"
    return {
        "memory_entry_edit": reverse("studio:memory_entry_edit", args=[entry.public_id]) + entry_query,
        "memory_entry_delete": reverse("studio:memory_entry_delete", args=[entry.public_id]) + entry_query,
        "index": reverse("studio:index"),
        "sessions": reverse("studio:sessions") + "?scope=" + q("tenant-a"),
        "sessions_csv": reverse("studio:sessions_csv") + "?scope=" + q("tenant-a"),
        "replay": reverse("studio:replay", args=[session.pk]),
        "usage": reverse("studio:usage") + "?range=7d&scope=tenant-a",
        "usage_csv": reverse("studio:usage_csv", args=["scopes"]) + "?range=7d",
        "scopes": reverse("studio:scopes"),
        "scope": reverse("studio:scope") + "?scope=tenant-a",
        "scope_memory": reverse("studio:scope_memory") + "?scope=tenant-a",
        "scope_stores": reverse("studio:scope_stores") + "?scope=tenant-a",
        "document": reverse("studio:document", args=[document.pk]),
    }


@pytest.fixture
def pages(studio_urls_by_name) -> list[str]:
    """The pages that only read."""
    return [
        *(studio_urls_by_name[name] for name in READ_NAMES),
        reverse("studio:sessions"),
        reverse("studio:usage"),
        reverse("studio:scope") + "?scope=",
    ]


@pytest.fixture
def every_page(pages, studio_urls_by_name) -> list[str]:
    return [*pages, *(studio_urls_by_name[name] for name in CHANGE_PAGES)]


def test_every_studio_url_name_has_a_url_in_these_tests(studio_urls_by_name):
    assert sorted(studio_urls_by_name) == sorted(URL_NAMES)


@pytest.mark.parametrize("name", READ_NAMES)
def test_staff_with_the_permission_see_every_page(staff_client, studio_urls_by_name, name):
    response = staff_client.get(studio_urls_by_name[name])
    assert response.status_code == 200
    if response.streaming:  # a download
        assert response["Content-Type"].startswith("text/csv")
        assert "tenant-a" in b"".join(response.streaming_content).decode()
        return
    content = response.content.decode()
    assert 'id="header"' in content, "inside the admin's chrome"
    assert 'class="breadcrumbs"' in content
    assert reverse("studio:usage") in content and reverse("studio:scopes") in content, "Studio navigation"


@pytest.mark.parametrize("name", URL_NAMES)
def test_staff_without_the_permission_get_a_403_page(plain_staff_client, studio_urls_by_name, name):
    response = plain_staff_client.get(studio_urls_by_name[name])
    assert response.status_code == 403
    content = response.content.decode()
    assert 'id="header"' in content, "a page inside the admin's chrome, not a blank"
    assert "studio.view_studio" in content and "Studio viewers" in content, "says what to ask for"
    assert "tenant-a" not in content and "currency" not in content
    assert f'href="{reverse("studio:usage")}"' not in content, "no Studio navigation"


@pytest.mark.parametrize("name", READ_NAMES)
def test_the_permission_through_the_studio_viewers_group(make_staff, studio_urls_by_name, name):
    viewers_migration.create_viewers_group(apps, SimpleNamespace(connection=connection))
    user = make_staff("group-member")
    user.groups.add(Group.objects.get(name="Studio viewers"))
    assert logged_in(user).get(studio_urls_by_name[name]).status_code == 200


@pytest.mark.parametrize("name", URL_NAMES)
def test_superusers_see_every_page(admin_client, studio_urls_by_name, name):
    assert admin_client.get(studio_urls_by_name[name]).status_code == 200


@pytest.mark.parametrize("name", URL_NAMES)
def test_users_who_are_not_staff_are_sent_to_the_login_even_with_the_permission(make_staff, studio_urls_by_name, name):
    client = logged_in(make_staff("not-staff", studio=True, is_staff=False))
    response = client.get(studio_urls_by_name[name])
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login") + "?next=")


@pytest.mark.parametrize("name", CHANGE_PAGES)
def test_a_change_page_needs_its_model_permission_too(make_staff, studio_urls_by_name, name):
    """A Studio viewer without the change's permission gets a 403 page naming it (for the form and for a
    POST alike); with it, the page opens."""
    viewer = make_staff("viewer", studio=True)
    for method in ("get", "post"):
        response = getattr(logged_in(viewer), method)(studio_urls_by_name[name], {"content": "pwned"})
        assert response.status_code == 403
        content = response.content.decode()
        assert CHANGE_PAGES[name] in content and "Studio viewers" not in content
        assert "prefers EUR" not in content
    app_label, codename = CHANGE_PAGES[name].split(".")
    viewer.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    assert logged_in(viewer).get(studio_urls_by_name[name]).status_code == 200
    assert MemoryEntry.all_scopes.get().content == "prefers EUR"


def test_anonymous_users_are_sent_to_the_admin_login(client, every_page):
    for url in every_page:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("admin:login") + "?next="), url


def test_logged_in_users_who_are_not_staff_get_no_access(user_client, every_page):
    for url in every_page:
        response = user_client.get(url)
        assert response.status_code in (302, 403), url
        if response.status_code == 302:
            assert response["Location"].startswith(reverse("admin:login")), url
        assert b"tenant-a" not in response.content


def test_studio_pages_only_read(staff_client, pages):
    for url in pages:
        assert staff_client.post(url, {"scope": "tenant-a"}).status_code == 405, url
        assert staff_client.head(url).status_code == 200, url


def test_pages_are_not_cached(staff_client, pages):
    response = staff_client.get(pages[0])
    assert "no-cache" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]


@pytest.mark.django_db
def test_unknown_session_and_missing_scope_are_404(staff_client):
    assert staff_client.get(reverse("studio:replay", args=["00000000-0000-4000-8000-000000000000"])).status_code == 404
    assert staff_client.get(reverse("studio:scope")).status_code == 404
    assert staff_client.get(reverse("studio:scope") + "?scope=" + q("bad\x00id")).status_code == 404
    assert staff_client.get(reverse("studio:document", args=["999999"])).status_code == 404


@pytest.mark.django_db
def test_studio_links_in_the_admin_only_for_users_with_the_permission(staff_client, plain_staff_client, admin_client):
    for client in (staff_client, admin_client):
        index = client.get(reverse("admin:index")).content.decode()
        assert 'id="studio-module"' in index
        for name in ("studio:sessions", "studio:usage", "studio:scopes"):
            assert f'href="{reverse(name)}"' in index
        assert f'href="{reverse("studio:sessions")}" class="studio-link"' in index
    changelist = admin_client.get(reverse("admin:scoping_apikey_changelist")).content.decode()
    assert f'href="{reverse("studio:sessions")}" class="studio-link"' in changelist
    for url in (reverse("admin:index"), reverse("admin:password_change")):
        response = plain_staff_client.get(url)
        assert response.status_code == 200, url
        content = response.content.decode()
        assert 'id="studio-module"' not in content and 'class="studio-link"' not in content, url
        assert reverse("studio:usage") not in content, url


def test_the_migration_makes_the_studio_viewers_group_idempotently_and_reversibly(db):
    editor = SimpleNamespace(connection=connection)
    viewers_migration.create_viewers_group(apps, editor)
    viewers_migration.create_viewers_group(apps, editor)
    group = Group.objects.get(name="Studio viewers")
    assert [f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.all()] == ["studio.view_studio"]
    assert Permission.objects.filter(codename="view_studio").count() == 1
    viewers_migration.remove_viewers_group(apps, editor)
    assert not Group.objects.filter(name="Studio viewers").exists()
    assert not Permission.objects.filter(codename="view_studio").exists()
    viewers_migration.create_viewers_group(apps, editor)
    assert Group.objects.get(name="Studio viewers").permissions.get().codename == "view_studio"


def test_the_demo_login_sees_studio(db, capsys):
    call_command("demo_setup")
    assert "login: demo / amodal-demo" in capsys.readouterr().out
    client = Client()
    assert client.login(username="demo", password="amodal-demo")
    assert client.get(reverse("studio:sessions")).status_code == 200
    assert 'id="studio-module"' in client.get(reverse("admin:index")).content.decode()


def test_session_admin_is_read_only_and_links_to_replay(admin_client, make_session):
    session = make_session(scope="tenant-b", title="Budget talk")
    listing = admin_client.get(reverse("admin:agents_session_changelist"))
    assert listing.status_code == 200
    assert reverse("studio:replay", args=[session.pk]) in listing.content.decode()
    detail = admin_client.get(reverse("admin:agents_session_change", args=[session.pk]))
    assert detail.status_code == 200
    assert b'name="title"' not in detail.content, "no editable fields"
    assert admin_client.get(reverse("admin:agents_session_add")).status_code == 403
    response = admin_client.post(reverse("admin:agents_session_delete", args=[session.pk]), {"post": "yes"})
    assert response.status_code == 403
    assert Session.all_scopes.filter(pk=session.pk).exists()


@pytest.mark.django_db
def test_model_prices_are_editable_in_admin(admin_client):
    response = admin_client.post(
        reverse("admin:agents_modelprice_add"),
        {
            "model": "local",
            "input_micros_per_mtok": "1000000",
            "output_micros_per_mtok": "2000000",
            "cache_read_micros_per_mtok": "",
            "cache_write_micros_per_mtok": "",
        },
    )
    assert response.status_code == 302
    price = ModelPrice.objects.get(model="local")
    assert price.input_micros_per_mtok == 1_000_000
    listing = admin_client.get(reverse("admin:agents_modelprice_changelist")).content.decode()
    assert "$1.00" in listing and "$2.00" in listing
