"""Operators' edits and deletes of memory entries (memory.services.edit_entry / remove_entry with
`changed_by`): the agent's validation and budgets apply, nothing is written when they refuse, and every change
is recorded as a MemoryChange in its own transaction, with who, when and the content before and after."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from memory import services
from memory.config import MemoryConfig
from memory.errors import MemoryBudgetExceeded, MemoryEntryNotFound
from memory.models import MemoryChange, MemoryEntry
from scoping.context import scope
from tests.conftest import write_agent_folder

CONFIG = MemoryConfig(enabled=True, max_entries=5, max_total_chars=40)


@pytest.fixture
def operator(django_user_model):
    return django_user_model.objects.create_user(username="ops-alice", password="ops-pw-7a1f3c", is_staff=True)


def remember(scope_id: str, *facts: str) -> list[MemoryEntry]:
    with scope(scope_id):
        return [services.add_entry(content=fact, config=CONFIG).entry for fact in facts]


def stored(scope_id: str) -> list[str]:
    return list(
        MemoryEntry.all_scopes.filter(scope=scope_id).order_by("created_at", "id").values_list("content", flat=True)
    )


@pytest.mark.django_db
def test_an_edit_is_saved_and_recorded_with_who_and_what(operator):
    (tea,) = remember("tenant-a", "likes tea")
    with scope("tenant-a"):
        result = services.edit_entry(
            entry_id=str(tea.public_id), content="  likes   green tea ", config=CONFIG, changed_by=operator
        )
    assert result.changed and result.entry.content == "likes green tea"
    assert stored("tenant-a") == ["likes green tea"]
    change = MemoryChange.all_scopes.get()
    assert (change.scope, change.entry_id, change.action) == ("tenant-a", tea.public_id, "edited")
    assert (change.content_before, change.content_after) == ("likes tea", "likes green tea")
    assert (change.actor, change.actor_name) == (operator, "ops-alice")
    assert change.at is not None
    operator.delete()  # the record outlives the account, with the name it had
    change.refresh_from_db()
    assert (change.actor, change.actor_name) == (None, "ops-alice")


@pytest.mark.django_db
def test_the_same_content_is_no_change_and_no_record(operator):
    (tea,) = remember("tenant-a", "likes tea")
    with scope("tenant-a"):
        result = services.edit_entry(
            entry_id=str(tea.public_id), content="likes  tea", config=CONFIG, changed_by=operator
        )
    assert not result.changed
    assert not MemoryChange.all_scopes.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "content, error, message",
    [
        ("", Exception, "content: must be a non-empty string"),
        ("   \n ", Exception, "content: must be a non-empty string"),
        (None, Exception, "content: must be a non-empty string"),
        ("tea\x00", Exception, "content: must not contain NUL characters"),
        ("tea \ud800", Exception, "content: must not contain a lone surrogate"),
        ("x" * 41, MemoryBudgetExceeded, "at most 40 characters in all"),
        ("has a cat named Pixel, who is 9 years", MemoryBudgetExceeded, "shorten this entry by at least"),
        ("HAS A CAT", Exception, "another entry of this scope already remembers exactly this"),
    ],
)
def test_a_refused_edit_writes_nothing(operator, content, error, message):
    tea, _ = remember("tenant-a", "likes tea", "has a cat")
    with scope("tenant-a"), pytest.raises(error, match=message):
        services.edit_entry(entry_id=str(tea.public_id), content=content, config=CONFIG, changed_by=operator)
    assert stored("tenant-a") == ["likes tea", "has a cat"]
    assert not MemoryChange.all_scopes.exists()


@pytest.mark.django_db
def test_an_edit_that_shortens_is_allowed_even_over_a_lowered_budget(operator):
    tea, _ = remember("tenant-a", "likes tea with lemon", "has a cat")
    smaller = MemoryConfig(enabled=True, max_entries=5, max_total_chars=20)  # 29 characters are stored
    with scope("tenant-a"):
        services.edit_entry(
            entry_id=str(tea.public_id), content="likes tea, lemon", config=smaller, changed_by=operator
        )
        with pytest.raises(MemoryBudgetExceeded, match="Memory would hold 26 of at most 20 characters"):
            services.edit_entry(
                entry_id=str(tea.public_id), content="likes tea, lemons", config=smaller, changed_by=operator
            )
    assert stored("tenant-a") == ["likes tea, lemon", "has a cat"]
    assert MemoryChange.all_scopes.count() == 1


@pytest.mark.django_db
def test_another_scopes_entry_is_missing_for_edit_and_delete(operator):
    (tea,) = remember("tenant-a", "likes tea")
    with scope("tenant-b"):
        with pytest.raises(MemoryEntryNotFound):
            services.edit_entry(entry_id=str(tea.public_id), content="pwned", config=CONFIG, changed_by=operator)
        with pytest.raises(MemoryEntryNotFound):
            services.remove_entry(entry_id=str(tea.public_id), changed_by=operator)
    assert stored("tenant-a") == ["likes tea"]
    assert not MemoryChange.all_scopes.exists()


@pytest.mark.django_db
def test_an_operators_delete_is_recorded_and_the_agents_own_is_not(operator):
    tea, cat = remember("tenant-a", "likes tea", "has a cat")
    with scope("tenant-a"):
        services.remove_entry(entry_id=str(tea.public_id), changed_by=operator)
        services.remove_entry(entry_id=str(cat.public_id))  # the agent's tool or an end user's API call
    assert stored("tenant-a") == []
    change = MemoryChange.all_scopes.get()
    assert (change.action, change.entry_id, change.content_before, change.content_after) == (
        "deleted",
        tea.public_id,
        "likes tea",
        "",
    )
    assert change.actor == operator


@pytest.mark.django_db
def test_changes_are_scoped_like_the_entries(operator):
    (tea,) = remember("tenant-a", "likes tea")
    with scope("tenant-a"):
        services.remove_entry(entry_id=str(tea.public_id), changed_by=operator)
        assert MemoryChange.objects.count() == 1
    with scope("tenant-b"):
        assert MemoryChange.objects.count() == 0


@pytest.mark.django_db
def test_a_delete_through_the_api_by_a_staff_session_is_recorded(operator, tmp_path, use_agent, jwt_header):
    use_agent(write_agent_folder(tmp_path / "agent", amodal={"memory": {"enabled": True}}))
    tea, cat = remember("tenant-a", "likes tea", "has a cat")
    operator.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label__in=["memory", "studio"], codename__in=["delete_memoryentry", "view_studio"]
        )
    )
    staff = Client()
    staff.force_login(operator)
    response = staff.delete(f"/api/memory/{tea.public_id}?scope_id=tenant-a")
    assert response.status_code == 200, response.content
    response = Client().delete(f"/api/memory/{cat.public_id}", headers=jwt_header("tenant-a"))
    assert response.status_code == 200
    change = MemoryChange.all_scopes.get()
    assert (change.entry_id, change.actor_name, change.scope) == (tea.public_id, "ops-alice", "tenant-a")


@pytest.mark.django_db
def test_admin_shows_entries_and_changes_read_only(admin_client, operator):
    from django.urls import reverse

    (tea,) = remember("tenant-a", "likes tea")
    with scope("tenant-a"):
        services.edit_entry(entry_id=str(tea.public_id), content="likes coffee", config=CONFIG, changed_by=operator)
    change = MemoryChange.all_scopes.get()
    listing = admin_client.get(reverse("admin:memory_memoryentry_changelist")).content.decode()
    assert "likes coffee" in listing
    assert reverse("studio:scope_memory") + "?scope=tenant-a" in listing
    for query in ("likes", str(tea.public_id), "not-a-uuid"):
        assert admin_client.get(reverse("admin:memory_memoryentry_changelist"), {"q": query}).status_code == 200
        assert admin_client.get(reverse("admin:memory_memorychange_changelist"), {"q": query}).status_code == 200
    detail = admin_client.get(reverse("admin:memory_memorychange_change", args=[change.pk])).content.decode()
    assert "likes tea" in detail and "likes coffee" in detail and "ops-alice" in detail
    assert 'name="content_after"' not in detail, "no editable fields"
    entry = MemoryEntry.all_scopes.get()
    for url in (
        reverse("admin:memory_memoryentry_add"),
        reverse("admin:memory_memoryentry_delete", args=[entry.pk]),
        reverse("admin:memory_memorychange_add"),
        reverse("admin:memory_memorychange_delete", args=[change.pk]),
    ):
        assert admin_client.post(url, {"post": "yes", "content": "x"}).status_code == 403, url
    response = admin_client.post(
        reverse("admin:memory_memoryentry_changelist"), {"action": "delete_selected", "_selected_action": [entry.pk]}
    )
    assert response.status_code in (200, 302)
    assert MemoryEntry.all_scopes.filter(pk=entry.pk).exists(), "no bulk delete either"
    assert MemoryChange.all_scopes.count() == 1
