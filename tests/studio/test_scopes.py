"""The scopes list and the per-scope pages: overview, memory entries, store documents with versions."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from scoping.models import Scope
from studio.model_access import optional_model
from studio.selectors import scopes as scope_selectors
from tests.studio.conftest import attrs, q
from tests.studio.factories import Call, Turn

MemoryEntry = optional_model("memory", "MemoryEntry")
StoreDocument = optional_model("stores", "StoreDocument")
StoreDocumentVersion = optional_model("stores", "StoreDocumentVersion")
needs_memory = pytest.mark.skipif(MemoryEntry is None, reason="memory.MemoryEntry is not in this build")
needs_stores = pytest.mark.skipif(StoreDocument is None, reason="stores.StoreDocument is not in this build")


def test_scopes_list_with_activity_sessions_and_cost(staff_client, make_session):
    make_session(scope="tenant-a", turns=[Turn("x", [Call(cost_micros=2_500_000)])])
    make_session(scope="tenant-a", turns=[Turn("x", [Call(cost_micros=500_000)])])
    make_session(scope="", turns=[Turn("x", [Call(cost_micros=None)])])
    content = staff_client.get(reverse("studio:scopes")).content.decode()
    rows = dict(zip(attrs(content, "tr", "data-scope"), attrs(content, "tr", "data-sessions"), strict=True))
    assert rows == {"tenant-a": "2", "": "1"}
    assert "$3.00" in content
    row = re.search(r'<tr data-scope="".*?</tr>', content, re.S).group(0)
    assert "global" in row and "unpriced" in row and "$0" not in row


def test_scopes_search_and_pagination(staff_client, db):
    now = timezone.now()
    for index in range(120):
        Scope.objects.create(scope_id=f"org-{index:03d}")
    Scope.objects.update(last_seen_at=now)  # all equal: the id breaks ties
    Scope.objects.create(scope_id="household-x")
    seen: list[str] = []
    url = reverse("studio:scopes") + "?q=org-"
    while url:
        content = staff_client.get(url).content.decode()
        seen += attrs(content, "tr", "data-scope")
        match = re.search(r'<a rel="next" href="([^"]*)"', content)
        url = reverse("studio:scopes") + html.unescape(match.group(1)) if match else None
    assert len(seen) == len(set(seen)) == 120
    assert "household-x" not in seen
    content = staff_client.get(reverse("studio:scopes") + "?q=global").content.decode()
    assert "No scopes match." in content  # no global Scope row was created here


def test_scope_overview(staff_client, make_session):
    session = make_session(scope="tenant-c", title="Latest talk", turns=[Turn("x", [Call(cost_micros=1_230_000)])])
    content = staff_client.get(reverse("studio:scope") + "?scope=tenant-c").content.decode()
    assert 'id="raw-scope">tenant-c</code>' in content
    assert reverse("studio:replay", args=[session.pk]) in content
    assert "$1.23" in content
    for name in ("studio:scope_memory", "studio:scope_stores"):
        assert f"{reverse(name)}?scope=tenant-c" in content


def test_the_global_scope_has_its_pages(staff_client, make_session):
    make_session(scope="")
    content = staff_client.get(reverse("studio:scope") + "?scope=").content.decode()
    assert "The global scope" in content
    assert staff_client.get(reverse("studio:sessions") + "?scope=").status_code == 200


@needs_memory
def test_memory_entries_of_a_scope_only(staff_client, db):
    now = timezone.now()
    for index in range(130):
        entry = MemoryEntry.all_scopes.create(scope="tenant-m", content=f"fact <{index}>")
        MemoryEntry.all_scopes.filter(pk=entry.pk).update(created_at=now - timedelta(minutes=index))
    MemoryEntry.all_scopes.create(scope="tenant-other", content="someone else's fact")
    url = reverse("studio:scope_memory") + "?scope=tenant-m"
    content = staff_client.get(url).content.decode()
    assert "<strong>130</strong> memory entries" in content
    assert "fact &lt;0&gt;" in content and "someone else" not in content
    found = re.findall(r'<td class="memory-content">fact &lt;(\d+)&gt;</td>', content)
    assert found == [str(n) for n in range(100)], "newest first"
    older = html.unescape(re.search(r'<a rel="next" href="([^"]*)"', content).group(1))
    content = staff_client.get(reverse("studio:scope_memory") + older).content.decode()
    assert re.findall(r'<td class="memory-content">fact &lt;(\d+)&gt;</td>', content) == [
        str(n) for n in range(100, 130)
    ]


@needs_stores
def test_store_documents_with_versions(staff_client, db):
    now = timezone.now()
    document = StoreDocument.all_scopes.create(
        scope="tenant-s",
        store="preferences",
        key="currency",
        data={"key": "currency", "value": "EUR"},
        version=3,
        created_at=now - timedelta(days=2),
        updated_at=now,
        expires_at=now - timedelta(hours=1),
    )
    for version, value in ((1, "USD"), (2, "GBP")):
        StoreDocumentVersion.all_scopes.create(
            scope="tenant-s",
            document=document,
            version=version,
            data={"key": "currency", "value": value},
            created_at=now,
        )
    StoreDocument.all_scopes.create(
        scope="tenant-other", store="preferences", key="secret-key", data={"v": 1}, created_at=now, updated_at=now
    )
    content = staff_client.get(reverse("studio:scope_stores") + "?scope=tenant-s").content.decode()
    assert "currency" in content and "secret-key" not in content
    assert "expired" in content
    assert reverse("studio:document", args=[document.pk]) in content
    content = staff_client.get(reverse("studio:scope_stores") + "?scope=tenant-s&store=nothing").content.decode()
    assert "No documents in this store." in content
    detail = staff_client.get(reverse("studio:document", args=[document.pk])).content.decode()
    assert "version 3" in detail and "&quot;EUR&quot;" in detail
    assert re.findall(r"<summary>version (\d+)", detail) == ["2", "1"]
    assert "&quot;GBP&quot;" in detail and "&quot;USD&quot;" in detail


def test_pages_degrade_when_memory_or_stores_are_missing(staff_client, make_session, monkeypatch):
    make_session(scope="tenant-n")
    monkeypatch.setattr(scope_selectors, "optional_model", lambda app_label, name: None)
    memory = staff_client.get(reverse("studio:scope_memory") + "?scope=tenant-n")
    stores = staff_client.get(reverse("studio:scope_stores") + "?scope=tenant-n")
    overview = staff_client.get(reverse("studio:scope") + "?scope=tenant-n")
    assert memory.status_code == stores.status_code == overview.status_code == 200
    assert b"Memory is not available" in memory.content
    assert b"Stores are not available" in stores.content


def test_scope_ids_in_links_are_encoded(staff_client, make_session):
    scope = "a&b=c?d#e/f +g"
    make_session(scope=scope)
    content = staff_client.get(reverse("studio:scopes")).content.decode()
    assert f"?scope={q(scope).replace('%2F', '/')}" in content
    response = staff_client.get(reverse("studio:scope") + "?scope=" + q(scope))
    assert response.status_code == 200 and html.escape(scope) in response.content.decode()
