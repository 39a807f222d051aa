"""Editing and deleting a scope's memory entries in Studio (SPEC §8): forms that work without JavaScript,
the model permissions (memory.change_memoryentry, memory.delete_memoryentry) on top of studio.view_studio,
the agent's own validation and budgets, the record of each change (who, when, before, after) shown on the
memory page, 404 for another scope's entry like for a missing one, and a fixed number of queries."""

from __future__ import annotations

import re
import uuid

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from memory.models import MemoryChange, MemoryEntry
from tests.conftest import write_agent_folder
from tests.studio.conftest import attrs, logged_in, q

SCOPE = "tenant-mem"
OTHER = "tenant-other"
# The memory page: session, user, the user's and its groups' permissions, the entries' totals, a page of
# entries, the latest changes. The edit form reads the entry and the totals, the delete form the entry.
# Each counts the scope's label (one query: studio.selectors.labels).
MEMORY_PAGE_QUERIES = 8
FORM_QUERIES = {"edit": 7, "delete": 6}


def grant(user, *names: str) -> None:
    for name in names:
        app_label, codename = name.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))


@pytest.fixture
def editor(make_staff):
    """A Studio viewer who may also change and delete memory entries (not a superuser)."""
    user = make_staff("editor-bob", studio=True)
    grant(user, "memory.change_memoryentry", "memory.delete_memoryentry")
    return user


@pytest.fixture
def editor_client(editor) -> Client:
    return logged_in(editor)


@pytest.fixture
def entries(db) -> list[MemoryEntry]:
    made = [MemoryEntry.all_scopes.create(scope=SCOPE, content=text) for text in ("likes tea", "has a cat named Pixel")]
    MemoryEntry.all_scopes.create(scope=OTHER, content="someone else's fact")
    return made


def memory_url(scope_id: str = SCOPE) -> str:
    return reverse("studio:scope_memory") + "?scope=" + q(scope_id)


def edit_url(entry_id, scope_id: str = SCOPE) -> str:
    return reverse("studio:memory_entry_edit", args=[entry_id]) + "?scope=" + q(scope_id)


def delete_url(entry_id, scope_id: str = SCOPE) -> str:
    return reverse("studio:memory_entry_delete", args=[entry_id]) + "?scope=" + q(scope_id)


def contents(scope_id: str = SCOPE) -> list[str]:
    return sorted(MemoryEntry.all_scopes.filter(scope=scope_id).values_list("content", flat=True))


# --- Who sees the controls, who may post ---------------------------------------------------------------------


def test_a_viewer_sees_no_controls_and_a_forged_post_is_403(staff_client, entries):
    page = staff_client.get(memory_url()).content.decode()
    assert "likes tea" in page and "someone else" not in page
    assert "edit-link" not in page and "delete-link" not in page
    assert "/edit/" not in page and "/delete/" not in page
    tea = entries[0]
    assert staff_client.post(edit_url(tea.public_id), {"content": "pwned"}).status_code == 403
    assert staff_client.post(delete_url(tea.public_id)).status_code == 403
    assert contents() == ["has a cat named Pixel", "likes tea"]
    assert not MemoryChange.all_scopes.exists()


def test_each_control_needs_its_own_permission(make_staff, entries):
    changer = make_staff("changer", studio=True)
    grant(changer, "memory.change_memoryentry")
    page = logged_in(changer).get(memory_url()).content.decode()
    assert attrs(page, "a", "href").count(edit_url(entries[0].public_id)) == 1
    assert "delete-link" not in page
    assert logged_in(changer).post(delete_url(entries[0].public_id)).status_code == 403
    deleter = make_staff("deleter", studio=True)
    grant(deleter, "memory.delete_memoryentry")
    page = logged_in(deleter).get(memory_url()).content.decode()
    assert delete_url(entries[0].public_id) in attrs(page, "a", "href")
    assert "edit-link" not in page
    assert logged_in(deleter).post(edit_url(entries[0].public_id), {"content": "x"}).status_code == 403
    assert contents() == ["has a cat named Pixel", "likes tea"]


def test_a_post_without_the_csrf_token_is_refused(editor, entries):
    client = Client(enforce_csrf_checks=True)
    client.force_login(editor)
    assert client.post(edit_url(entries[0].public_id), {"content": "changed"}).status_code == 403
    assert client.post(delete_url(entries[0].public_id)).status_code == 403
    form = client.get(edit_url(entries[0].public_id)).content.decode()
    assert 'name="csrfmiddlewaretoken"' in form
    assert contents() == ["has a cat named Pixel", "likes tea"]


# --- Editing ---------------------------------------------------------------------------------------------------


def test_edit_saves_records_and_shows_the_change(editor_client, entries):
    tea = entries[0]
    form = editor_client.get(edit_url(tea.public_id)).content.decode()
    assert re.search(r'<textarea[^>]*name="content"[^>]*>likes tea</textarea>', form)
    assert str(tea.public_id) in form
    response = editor_client.post(edit_url(tea.public_id), {"content": "likes  green\ntea"})
    assert response.status_code == 302
    assert response["Location"] == memory_url() + f"#entry-{tea.public_id}"
    assert contents() == ["has a cat named Pixel", "likes green tea"]
    change = MemoryChange.all_scopes.get()
    assert (change.scope, change.entry_id, change.action, change.actor_name) == (
        SCOPE,
        tea.public_id,
        "edited",
        "editor-bob",
    )
    assert (change.content_before, change.content_after) == ("likes tea", "likes green tea")
    page = editor_client.get(response["Location"]).content.decode()
    assert "The memory entry was saved" in page
    (recorded,) = re.findall(r'<li class="change change-edited"[^>]*data-actor="([^"]*)"', page)
    assert recorded == "editor-bob"
    assert '<del class="change-before">likes tea</del>' in page
    assert '<ins class="change-after">likes green tea</ins>' in page


def test_saving_the_same_text_changes_nothing(editor_client, entries):
    response = editor_client.post(edit_url(entries[0].public_id), {"content": " likes tea "}, follow=True)
    assert "Nothing changed" in response.content.decode()
    assert not MemoryChange.all_scopes.exists()


@pytest.mark.parametrize(
    "content, max_chars, message",
    [
        ("", 60, "must be a non-empty string"),
        ("   ", 60, "must be a non-empty string"),
        ("tea\x00time", 60, "must not contain NUL characters"),
        ("x" * 61, 60, "memory holds at most 60 characters in all"),
        # The two entries hold 30 characters; this one would bring them to 59.
        ("likes tea with lemon and honey, always", 40, "Memory would hold 59 of at most 40 characters"),
        ("HAS A CAT NAMED PIXEL", 60, "another entry of this scope already remembers exactly this"),
    ],
)
def test_a_refused_edit_shows_the_error_and_writes_nothing(
    editor_client, entries, tmp_path, use_agent, content, max_chars, message
):
    use_agent(write_agent_folder(tmp_path / "agent", amodal={"memory": {"enabled": True, "maxTotalChars": max_chars}}))
    response = editor_client.post(edit_url(entries[0].public_id), {"content": content})
    assert response.status_code == 200
    page = response.content.decode()
    (error,) = re.findall(r'<p class="errornote" role="alert" id="edit-error">Not saved: (.*?)</p>', page, re.S)
    assert message in error and not error.startswith("content:"), error
    if "\x00" not in content:
        assert re.search(r'<textarea[^>]*name="content"[^>]*>' + re.escape(content) + "</textarea>", page), (
            "what was typed stays in the form"
        )
    assert contents() == ["has a cat named Pixel", "likes tea"]
    assert not MemoryChange.all_scopes.exists()


def test_a_missing_content_field_is_an_error_too(editor_client, entries):
    response = editor_client.post(edit_url(entries[0].public_id), {})
    assert "must be a non-empty string" in response.content.decode()
    assert contents() == ["has a cat named Pixel", "likes tea"]


def test_text_is_escaped_everywhere(editor_client, db):
    entry = MemoryEntry.all_scopes.create(scope=SCOPE, content="<b>bold</b>")
    editor_client.post(edit_url(entry.public_id), {"content": "<script>alert(1)</script>"})
    for url in (memory_url(), edit_url(entry.public_id), delete_url(entry.public_id)):
        page = editor_client.get(url).content.decode()
        assert "<script>alert(1)</script>" not in page and "<b>bold</b>" not in page, url
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page, url


# --- Deleting --------------------------------------------------------------------------------------------------


def test_delete_asks_first_then_deletes_and_records(editor_client, entries):
    cat = entries[1]
    confirm = editor_client.get(delete_url(cat.public_id))
    assert confirm.status_code == 200
    page = confirm.content.decode()
    assert "Delete this memory entry?" in page and "has a cat named Pixel" in page
    assert re.search(
        r'<form method="post" id="memory-delete-form" action="' + re.escape(delete_url(cat.public_id)) + '"', page
    )
    assert contents() == ["has a cat named Pixel", "likes tea"], "asking deletes nothing"
    response = editor_client.post(delete_url(cat.public_id))
    assert response.status_code == 302 and response["Location"] == memory_url()
    assert contents() == ["likes tea"]
    change = MemoryChange.all_scopes.get()
    assert (change.action, change.entry_id, change.content_before, change.actor_name) == (
        "deleted",
        cat.public_id,
        "has a cat named Pixel",
        "editor-bob",
    )
    page = editor_client.get(memory_url()).content.decode()
    assert "The memory entry was deleted" in page
    assert '<li class="change change-deleted"' in page and "has a cat named Pixel" in page
    assert editor_client.post(delete_url(cat.public_id)).status_code == 404, "already gone"


# --- Another scope's entry, missing entries, odd URLs ------------------------------------------------------------


def test_another_scopes_entry_is_404_like_a_missing_one(editor_client, entries):
    theirs = MemoryEntry.all_scopes.get(scope=OTHER)
    missing = uuid.uuid4()
    for make_url in (edit_url, delete_url):
        for method in ("get", "post"):
            answers = [
                getattr(editor_client, method)(make_url(theirs.public_id), {"content": "pwned"}),
                getattr(editor_client, method)(make_url(missing), {"content": "pwned"}),
            ]
            assert [answer.status_code for answer in answers] == [404, 404]
            bodies = [
                a.content.decode().replace(str(theirs.public_id), "X").replace(str(missing), "X") for a in answers
            ]
            assert bodies[0] == bodies[1]
            assert "someone else" not in bodies[0]
    # The entry's own scope opens it; the URL's scope decides.
    assert editor_client.get(edit_url(theirs.public_id, OTHER)).status_code == 200
    assert contents(OTHER) == ["someone else's fact"]
    assert not MemoryChange.all_scopes.exists()


def test_integer_and_malformed_ids_and_a_missing_scope_are_404(editor_client, entries):
    tea = entries[0]
    base = reverse("studio:scope_memory")
    for path in (f"{base}{tea.pk}/edit/", f"{base}{tea.pk}/delete/", f"{base}not-a-uuid/edit/", f"{base}x/delete/"):
        assert editor_client.get(path + "?scope=" + SCOPE).status_code == 404, path
        assert editor_client.post(path + "?scope=" + SCOPE).status_code == 404, path
    no_scope = reverse("studio:memory_entry_edit", args=[tea.public_id])
    assert editor_client.get(no_scope).status_code == 404
    assert editor_client.post(no_scope, {"content": "x"}).status_code == 404
    assert editor_client.post(edit_url(tea.public_id, "bad\x00scope"), {"content": "x"}).status_code == 404
    assert contents() == ["has a cat named Pixel", "likes tea"]


def test_other_methods_are_refused(editor_client, entries):
    assert editor_client.put(edit_url(entries[0].public_id)).status_code == 405
    assert editor_client.delete(delete_url(entries[0].public_id)).status_code == 405


# --- The memory page's budget line and query counts ------------------------------------------------------------


def test_the_memory_page_shows_the_budgets(staff_client, entries, tmp_path, use_agent):
    page = staff_client.get(memory_url()).content.decode()
    assert attrs(page, "span", "data-chars") == ["30"] and "of 8,000 characters" in page
    assert attrs(page, "span", "data-entries") == ["2"] and "of 50 entries" in page
    use_agent(write_agent_folder(tmp_path / "agent", amodal={"memory": {"enabled": False}}))
    assert "Memory is turned off for this agent" in staff_client.get(memory_url()).content.decode()


def add_rows(entries_count: int, changes: int, editor) -> None:
    MemoryEntry.all_scopes.bulk_create(
        [MemoryEntry(scope=SCOPE, content=f"fact {n}", public_id=uuid.uuid4()) for n in range(entries_count)]
    )
    MemoryChange.all_scopes.bulk_create(
        [
            MemoryChange(
                scope=SCOPE,
                entry_id=uuid.uuid4(),
                action="edited",
                content_before=f"b{n}",
                content_after=f"a{n}",
                actor=editor,
                actor_name=editor.username,
            )
            for n in range(changes)
        ]
    )


def queries_of(client, url: str) -> int:
    client.get(url)  # warm: the session row and the user are loaded the same way each time
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_memory_pages_cost_a_fixed_number_of_queries(editor_client, editor, entries):
    tea = entries[0]
    urls = {"memory": memory_url(), "edit": edit_url(tea.public_id), "delete": delete_url(tea.public_id)}
    small = {name: queries_of(editor_client, url) for name, url in urls.items()}
    add_rows(250, 60, editor)
    large = {name: queries_of(editor_client, url) for name, url in urls.items()}
    assert large == small
    assert small == {"memory": MEMORY_PAGE_QUERIES, **FORM_QUERIES}
    page = editor_client.get(memory_url()).content.decode()
    assert len(re.findall(r'<li class="change change-edited"', page)) == 20, "the latest 20 changes"
    assert len(re.findall(r'<tr id="entry-', page)) == 100, "a page of entries"


def test_a_post_costs_a_fixed_number_of_queries(editor_client, editor, entries, django_assert_max_num_queries):
    """An edit: the gate's four reads, the entry, then in one transaction the locked entry, the duplicate
    check, the totals, the UPDATE and the record (and the savepoint pair). A delete: no duplicate check or
    totals. PostgreSQL adds the scope's advisory lock to an edit."""
    add_rows(200, 0, editor)
    with django_assert_max_num_queries(12 + (connection.vendor == "postgresql")):
        assert editor_client.post(edit_url(entries[0].public_id), {"content": "likes coffee"}).status_code == 302
    with django_assert_max_num_queries(10):
        assert editor_client.post(delete_url(entries[1].public_id)).status_code == 302
