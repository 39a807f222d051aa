"""Credential values never reach a Studio page (names may, values never)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from connections.models import ScopedCredential
from tests.studio.conftest import q

SECRET = "sk-live-VERY-SECRET-7f3a9c"


@pytest.fixture
def credential(make_session, db):
    session = make_session(scope="tenant-k")
    credential = ScopedCredential(scope="tenant-k", key="FINANCE_API_TOKEN")
    credential.set_value(SECRET)
    credential.save()
    return session, credential


def test_no_studio_page_shows_a_credential_value(staff_client, admin_client, credential):
    session, stored = credential
    studio_urls = [
        reverse("studio:sessions"),
        reverse("studio:sessions") + "?scope=tenant-k",
        reverse("studio:replay", args=[session.pk]),
        reverse("studio:usage"),
        reverse("studio:usage") + "?scope=tenant-k",
        reverse("studio:scopes"),
        reverse("studio:scope") + "?scope=" + q("tenant-k"),
        reverse("studio:scope_memory") + "?scope=tenant-k",
        reverse("studio:scope_stores") + "?scope=tenant-k",
    ]
    admin_urls = [
        reverse("admin:index"),
        reverse("admin:connections_scopedcredential_changelist"),
        reverse("admin:connections_scopedcredential_change", args=[stored.pk]),
    ]
    for client, url in [(staff_client, url) for url in studio_urls] + [(admin_client, url) for url in admin_urls]:
        response = client.get(url)
        assert response.status_code == 200, url
        content = response.content.decode()
        assert SECRET not in content, url
        assert stored.encrypted_value not in content, url
    overview = staff_client.get(reverse("studio:scope") + "?scope=tenant-k").content.decode()
    assert "FINANCE_API_TOKEN" in overview, "the name is shown, so operators know it exists"
