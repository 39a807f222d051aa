"""Studio is for staff only, inside the admin: every page answers staff, sends others to the admin login."""

from __future__ import annotations

import pytest
from django.urls import reverse

from agents.models import ModelPrice, Session
from tests.studio.conftest import q


@pytest.fixture
def pages(make_session, db) -> list[str]:
    session = make_session(scope="tenant-a")
    make_session(scope="")
    return [
        reverse("studio:index"),
        reverse("studio:sessions"),
        reverse("studio:sessions") + "?scope=" + q("tenant-a"),
        reverse("studio:replay", args=[session.pk]),
        reverse("studio:usage"),
        reverse("studio:usage") + "?range=7d&scope=tenant-a",
        reverse("studio:scopes"),
        reverse("studio:scope") + "?scope=tenant-a",
        reverse("studio:scope") + "?scope=",
        reverse("studio:scope_memory") + "?scope=tenant-a",
        reverse("studio:scope_stores") + "?scope=tenant-a",
    ]


def test_every_page_answers_staff(staff_client, pages):
    for url in pages:
        response = staff_client.get(url)
        assert response.status_code == 200, url
        content = response.content.decode()
        assert 'id="header"' in content, "inside the admin's chrome"
        assert 'class="breadcrumbs"' in content
        assert reverse("studio:usage") in content and reverse("studio:scopes") in content, "Studio navigation"


def test_anonymous_users_are_sent_to_the_admin_login(client, pages):
    for url in pages:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("admin:login") + "?next="), url


def test_logged_in_users_who_are_not_staff_get_no_access(user_client, pages):
    for url in pages:
        response = user_client.get(url)
        assert response.status_code in (302, 403), url
        if response.status_code == 302:
            assert response["Location"].startswith(reverse("admin:login")), url
        assert b"tenant-a" not in response.content


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
def test_admin_index_has_a_studio_entry_and_every_admin_page_links_to_studio(staff_client):
    index = staff_client.get(reverse("admin:index")).content.decode()
    assert 'id="studio-module"' in index
    for name in ("studio:sessions", "studio:usage", "studio:scopes"):
        assert f'href="{reverse(name)}"' in index
    changelist = staff_client.get(reverse("admin:scoping_apikey_changelist")).content.decode()
    assert f'href="{reverse("studio:sessions")}" class="studio-link"' in changelist


def test_session_admin_is_read_only_and_links_to_replay(staff_client, make_session):
    session = make_session(scope="tenant-b", title="Budget talk")
    listing = staff_client.get(reverse("admin:agents_session_changelist"))
    assert listing.status_code == 200
    assert reverse("studio:replay", args=[session.pk]) in listing.content.decode()
    detail = staff_client.get(reverse("admin:agents_session_change", args=[session.pk]))
    assert detail.status_code == 200
    assert b'name="title"' not in detail.content, "no editable fields"
    assert staff_client.get(reverse("admin:agents_session_add")).status_code == 403
    response = staff_client.post(reverse("admin:agents_session_delete", args=[session.pk]), {"post": "yes"})
    assert response.status_code == 403
    assert Session.all_scopes.filter(pk=session.pk).exists()


@pytest.mark.django_db
def test_model_prices_are_editable_in_admin(staff_client):
    response = staff_client.post(reverse("admin:agents_modelprice_add"), {
        "model": "local", "input_micros_per_mtok": "1000000", "output_micros_per_mtok": "2000000",
        "cache_read_micros_per_mtok": "", "cache_write_micros_per_mtok": "",
    })
    assert response.status_code == 302
    price = ModelPrice.objects.get(model="local")
    assert price.input_micros_per_mtok == 1_000_000
    listing = staff_client.get(reverse("admin:agents_modelprice_changelist")).content.decode()
    assert "$1.00" in listing and "$2.00" in listing
