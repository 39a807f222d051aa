"""Bad input is a 400 naming the field, never a 500 or an HTML page, and nothing is written (SPEC §3):
NUL bytes and lone surrogates in anything stored, JSON nested deeper than 64 levels, and non-numeric or
out-of-range `limit` / `offset` / cursors. Runs on SQLite and PostgreSQL (which refuses NUL in text and
jsonb, and cannot encode a lone surrogate)."""

from __future__ import annotations

import base64
import json
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from agents import services
from agents.agent_folder import manifest_of
from agents.models import Session, SessionTag
from core.errors import ValidationFailed
from memory import selectors as memory_selectors
from memory import services as memory_services
from memory.models import MemoryEntry
from scoping.context import scope
from stores import services as store_services
from stores.definitions import stores_of
from stores.documents import DocumentInvalid
from stores.models import StoreDocument
from tests.errors.conftest import assert_error
from tests.stores.conftest import item

# A fixed id: parametrize ids must be the same in every pytest-xdist worker.
SOME_ID = "6f1c2f4e-3b1d-4c55-9a43-2d0c8f3b7e11"

NUL = "\x00"
SURROGATE = "\ud800"
UNSAFE = [pytest.param(NUL, "NUL", id="nul"), pytest.param(SURROGATE, "surrogate", id="surrogate")]


def send(client, method: str, path: str, body: object, headers: dict[str, str]):
    return getattr(client, method)(path, data=json.dumps(body), content_type="application/json", headers=headers)


def make_session(scope_id: str, title: str = "the title", tags: list[str] | None = None) -> Session:
    with scope(scope_id):
        session = Session.objects.create(
            deploy_id="d", title=title, tags=tags or ["a"], provider="local", model="local", updated_at=timezone.now()
        )
        SessionTag.objects.bulk_create([SessionTag(session=session, tag=tag) for tag in session.tags])
        return session


# --- NUL and lone surrogates in what is stored --------------------------------------------------------------

# (changes to a valid document, the field path the 400 must name)
UNSAFE_DOCUMENTS = [
    (lambda bad: {"sku": f"a{bad}1"}, "sku"),
    (lambda bad: {"note": f"note {bad}"}, "note"),
    (lambda bad: {"tags": ["ok", bad]}, "tags[1]"),
    (lambda bad: {"dims": {"w": 1, "h": 2, f"x{bad}": 3}}, "dims"),
    (lambda bad: {f"field{bad}": 1}, "document"),
    (lambda bad: {"kind": bad}, "kind"),
]


@pytest.mark.parametrize("bad, kind", UNSAFE)
@pytest.mark.parametrize("change, field", UNSAFE_DOCUMENTS)
@pytest.mark.parametrize("how", ["put", "post", "batch"])
@pytest.mark.django_db
def test_unsafe_text_in_a_store_document_is_a_400_naming_the_field(
    client, error_agent, jwt_header, bad, kind, change, field, how
):
    document = {**item("a1"), **change(bad)}
    headers = jwt_header("tenant-a")
    if how == "put":
        response = send(client, "put", "/api/stores/items/item-a1", {"data": document}, headers)
    elif how == "post":
        response = send(client, "post", "/api/stores/items", {"data": document}, headers)
    else:
        field = f"documents[1].{field}" if field != "document" else "documents[1]"
        response = send(client, "post", "/api/stores/items", {"documents": [item("ok"), document]}, headers)
    assert_error(response, 400, "validation_error", f"{field}:", kind)
    assert StoreDocument.all_scopes.count() == 0


@pytest.mark.parametrize("bad, kind", UNSAFE)
@pytest.mark.django_db
def test_unsafe_text_in_a_document_written_by_a_tool_or_command_is_refused_too(error_agent, bad, kind):
    with scope("tenant-a"), pytest.raises(DocumentInvalid) as refused:
        store_services.put_document(definition=stores_of(error_agent)["items"], document=item("a1", note=bad))
    assert [problem.field for problem in refused.value.problems] == ["note"]
    assert kind in str(refused.value)
    assert StoreDocument.all_scopes.count() == 0


@pytest.mark.parametrize("bad, kind", UNSAFE)
@pytest.mark.django_db
def test_unsafe_text_in_a_store_filter_is_a_400_naming_the_filter(client, error_agent, jwt_header, bad, kind):
    response = client.get(
        "/api/stores/items", {"filter": json.dumps({"kind": f"tool{bad}"})}, headers=jwt_header("tenant-a")
    )
    assert_error(response, 400, "validation_error", "filter.kind:", kind)


@pytest.mark.parametrize("bad, kind", UNSAFE)
@pytest.mark.parametrize("content", ["{bad}", "milk{bad}", "{bad} and bread"])
@pytest.mark.django_db
def test_unsafe_text_in_memory_content_is_a_400_naming_content(client, error_agent, jwt_header, bad, kind, content):
    response = send(client, "post", "/api/memory", {"content": content.format(bad=bad)}, jwt_header("tenant-a"))
    assert_error(response, 400, "validation_error", "content:", kind)
    assert MemoryEntry.all_scopes.count() == 0


@pytest.mark.parametrize("bad, kind", UNSAFE)
@pytest.mark.django_db
def test_unsafe_text_reaching_the_memory_services_is_refused(error_agent, bad, kind):
    config = manifest_of(error_agent).memory
    with scope("tenant-a"):
        with pytest.raises(ValidationFailed, match=f"^content: .*{kind}"):
            memory_services.add_entry(content=f"milk {bad}", config=config)
        with pytest.raises(ValidationFailed, match=f"^query: .*{kind}"):
            memory_selectors.search_entries(query=f"milk {bad}")
    assert MemoryEntry.all_scopes.count() == 0


@pytest.mark.parametrize("bad, kind", UNSAFE)
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": "t{bad}"}, "title"),
        ({"tags": ["ok", "t{bad}"]}, "tags"),
        ({"title": "fine", "tags": ["{bad}"]}, "tags"),
    ],
)
@pytest.mark.django_db
def test_unsafe_text_in_a_session_title_or_tags_is_a_400_naming_the_field(
    client, error_agent, jwt_header, bad, kind, body, field
):
    session = make_session("tenant-a")
    filled = {
        key: value.format(bad=bad) if isinstance(value, str) else [v.format(bad=bad) for v in value]
        for key, value in body.items()
    }
    response = send(client, "patch", f"/sessions/history/{session.pk}", filled, jwt_header("tenant-a"))
    assert_error(response, 400, "validation_error", f"{field}")
    with scope("tenant-a"):
        saved = Session.objects.get(pk=session.pk)
        assert (saved.title, saved.tags) == ("the title", ["a"])
        assert list(SessionTag.objects.values_list("tag", flat=True)) == ["a"]


@pytest.mark.parametrize("bad, kind", UNSAFE)
@pytest.mark.parametrize(
    ("title", "tags", "field"),
    [
        ("t{bad}", None, "title"),
        (None, ["ok", "t{bad}"], "tags[1]"),
    ],
)
@pytest.mark.django_db
def test_unsafe_text_reaching_update_session_is_refused(error_agent, bad, kind, title, tags, field):
    session = make_session("tenant-a")
    with scope("tenant-a"), pytest.raises(ValidationFailed, match=rf"^{re.escape(field)}: .*{kind}"):
        services.update_session(
            session=session, title=title and title.format(bad=bad), tags=tags and [tag.format(bad=bad) for tag in tags]
        )
    with scope("tenant-a"):
        assert Session.objects.get(pk=session.pk).title == "the title"


@pytest.mark.parametrize("bad, kind", UNSAFE)
@pytest.mark.parametrize("path", ["/chat/stream", "/chat/sync"])
@pytest.mark.django_db(transaction=True)
def test_unsafe_text_in_a_chat_message_is_a_400_naming_message(chat, error_agent, jwt_header, bad, kind, path):
    result = chat.post(path, {"message": f"hello {bad} there"}, jwt_header("tenant-a"))
    assert_error(result, 400, "validation_error", "message:")
    assert Session.all_scopes.count() == 0


@pytest.mark.parametrize("bad, kind", UNSAFE)
@pytest.mark.django_db(transaction=True)
def test_unsafe_text_in_a_chat_context_value_is_a_400_naming_the_key(chat, error_agent, api_key_header, bad, kind):
    body = {"message": "hello", "scope_id": "tenant-a", "context": {"tenant_id": f"t{bad}1"}}
    result = chat.post("/chat/sync", body, api_key_header())
    assert_error(result, 400, "validation_error", "context.tenant_id:")
    assert Session.all_scopes.count() == 0


# --- JSON nested too deeply ---------------------------------------------------------------------------------

DEEP = [
    pytest.param("[" * 100_000 + "]" * 100_000, id="100000-deep"),
    pytest.param('{"message": ' + "[" * 64 + "]" * 64 + "}", id="65-deep"),
]


@pytest.mark.parametrize("raw", DEEP)
@pytest.mark.parametrize("path", ["/chat/stream", "/chat/sync", f"/sessions/{SOME_ID}/cancel"])
@pytest.mark.django_db(transaction=True)
def test_deep_json_to_a_chat_view_is_a_400(chat, error_agent, jwt_header, raw, path):
    result = chat.post(path, headers=jwt_header("tenant-a"), raw=raw)
    assert_error(result, 400, "invalid_json", "64 levels")
    assert Session.all_scopes.count() == 0


@pytest.mark.parametrize("raw", DEEP)
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/api/memory"),
        ("put", "/api/stores/items/item-a1"),
        ("post", "/api/stores/items"),
        ("patch", "/sessions/history/{session}"),
    ],
)
@pytest.mark.django_db
def test_deep_json_to_a_drf_view_is_a_400(client, error_agent, jwt_header, raw, method, path):
    session = make_session("tenant-a")
    response = getattr(client, method)(
        path.format(session=session.pk), data=raw, content_type="application/json", headers=jwt_header("tenant-a")
    )
    assert_error(response, 400, "invalid_json", "64 levels")
    assert MemoryEntry.all_scopes.count() == StoreDocument.all_scopes.count() == 0


@pytest.mark.django_db
def test_json_nested_64_levels_is_accepted(client, error_agent, jwt_header):
    body = '{"content": "milk", "extra": ' + "[" * 63 + "]" * 63 + "}"  # the object is level 1
    response = client.post("/api/memory", data=body, content_type="application/json", headers=jwt_header("t"))
    assert response.status_code == 201, response.content


def test_deep_json_in_a_query_parameter_is_a_400(client, db, error_agent, jwt_header):
    response = client.get("/api/stores/items", {"filter": "[" * 50_000}, headers=jwt_header("tenant-a"))
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"


# --- limit, offset and cursors ----------------------------------------------------------------------------

BAD_NUMBERS = ["²", "١", "-1", "1e3", "0", "1.5", "abc", "+3", "99999999999999999999", "9" * 5000]


@pytest.mark.parametrize("value", BAD_NUMBERS + ["201"])
@pytest.mark.django_db
def test_a_bad_history_limit_is_a_400_naming_limit(client, error_agent, jwt_header, value):
    response = client.get("/sessions/history", {"limit": value}, headers=jwt_header("tenant-a"))
    assert_error(response, 400, "validation_error", "limit:", "200")


@pytest.mark.parametrize("value", BAD_NUMBERS + ["101"])
@pytest.mark.django_db
def test_a_bad_store_limit_is_a_400_naming_limit(client, error_agent, jwt_header, value):
    response = client.get("/api/stores/items", {"limit": value}, headers=jwt_header("tenant-a"))
    assert_error(response, 400, "validation_error", "limit:", "100")


@pytest.mark.parametrize(
    "value", ["²", "-1", "1e3", "1.5", "abc", "99999999999999999999", "1000000001", "9223372036854775808", "9" * 5000]
)
@pytest.mark.django_db
def test_a_bad_store_offset_is_a_400_naming_offset(client, error_agent, jwt_header, value):
    response = client.get("/api/stores/items", {"offset": value}, headers=jwt_header("tenant-a"))
    assert_error(response, 400, "validation_error", "offset:")


@pytest.mark.django_db
def test_the_largest_offset_is_an_empty_page(client, error_agent, jwt_header):
    response = client.get("/api/stores/items", {"offset": "1000000000"}, headers=jwt_header("tenant-a"))
    assert response.status_code == 200
    assert response.json()["documents"] == []


def cursor_of(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "%%%",
        "x" * 5000,
        cursor_of("not a date|" + SOME_ID),
        cursor_of("2024-01-01T00:00:00+00:00|not-a-uuid"),
        cursor_of("2024-01-01T00:00:00|" + SOME_ID),  # no offset
        cursor_of("9999-12-31T23:59:59-23:59|" + SOME_ID),  # past year 9999 in UTC
        cursor_of("0001-01-01T00:00:00+23:59|" + SOME_ID),  # before year 1 in UTC
        cursor_of("99999-01-01T00:00:00+00:00|" + SOME_ID),
        base64.urlsafe_b64encode(b"\xff\xfe\xfd").decode(),
    ],
)
@pytest.mark.django_db
def test_a_bad_history_cursor_is_a_400_naming_before(client, error_agent, jwt_header, cursor):
    response = client.get("/sessions/history", {"before": cursor}, headers=jwt_header("tenant-a"))
    assert_error(response, 400, "validation_error", "before:")


@pytest.mark.django_db
def test_a_cursor_returned_by_the_api_still_pages(client, error_agent, jwt_header):
    for index in range(3):
        make_session("tenant-a", title=f"s{index}")
        with scope("tenant-a"):
            Session.objects.filter(title=f"s{index}").update(updated_at=timezone.now() + timedelta(seconds=index))
    first = client.get("/sessions/history", {"limit": "2"}, headers=jwt_header("tenant-a"))
    assert [s["title"] for s in first.json()] == ["s2", "s1"]
    rest = client.get(
        "/sessions/history", {"limit": "2", "before": first["X-Next-Cursor"]}, headers=jwt_header("tenant-a")
    )
    assert [s["title"] for s in rest.json()] == ["s0"]


@pytest.mark.parametrize(
    "entry_id",
    ["²", "99999999999999999999", "-1", "0", "1", "1e3", "not-a-uuid", "6f1c2a3b-4d5e-4f60-8a7b", "f" * 70],
)
@pytest.mark.django_db
def test_an_odd_memory_entry_id_is_a_404_like_a_missing_one(client, error_agent, jwt_header, entry_id):
    response = client.delete(f"/api/memory/{entry_id}", headers=jwt_header("tenant-a"))
    assert_error(response, 404, "memory_entry_not_found")


@pytest.mark.parametrize("body", ["{not json", '{"scope_id": "tenant-b"}'])
@pytest.mark.parametrize("path", ["/api/memory", "/sessions/history"])
@pytest.mark.django_db
def test_a_get_with_a_body_is_answered_from_its_query_and_token_alone(client, error_agent, api_key_header, body, path):
    """A GET's body is never read: neither refused when malformed nor allowed to choose the scope."""
    response = client.generic(
        "GET", path + "?scope_id=tenant-a", body, content_type="application/json", headers=api_key_header()
    )
    assert response.status_code == 200, response.content
    with scope("tenant-b"):
        MemoryEntry.objects.create(content="tenant-b's secret")
    again = client.generic(
        "GET", path + "?scope_id=tenant-a", body, content_type="application/json", headers=api_key_header()
    )
    assert "tenant-b" not in again.content.decode()


# --- ?format= (found by tests/e2e/test_api_fuzz_live.py) ---------------------------------------------------


@pytest.mark.parametrize("path", ["/api/stores", "/api/memory", "/sessions/history", "/api/stores/items"])
@pytest.mark.parametrize("value", ["xyz", "api", "html", "0\u00d6"])
@pytest.mark.django_db
def test_a_format_parameter_is_no_parameter_of_the_api(client, error_agent, jwt_header, path, value):
    """DRF answered `?format=<anything but json>` with a 404 whose message was empty; the API answers JSON
    whatever the parameter says."""
    headers = jwt_header("tenant-a")
    response = client.get(path, {"format": value}, headers=headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    assert response.json() == client.get(path, headers=headers).json()
