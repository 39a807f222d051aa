"""A scope's label and metadata over HTTP (SPEC §10): `GET|PUT /api/scopes/<scope id>`, only for an API key
created with --manage-scopes (a restricted one: its own scope only); every bad input is a 400 naming the field
and changes nothing."""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import quote

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from scoping.labels import MAX_LABEL_CHARS, MAX_METADATA_BYTES
from scoping.models import ApiKey, Scope
from scoping.services import create_api_key, digest_api_key, revoke_api_key, touch_scope

pytestmark = pytest.mark.django_db

TENANT = "tenant_01HZX4Q8ACME"


def url(scope_id: str) -> str:
    return "/api/scopes/" + quote(scope_id, safe="")


@pytest.fixture
def manager():
    """`manager(scope_id=None)`: the Authorization header of a key created with --manage-scopes."""

    def header(scope_id: str | None = None) -> dict[str, str]:
        key = create_api_key(name="crm sync", scope_id=scope_id, manage_scopes=True)
        return {"Authorization": "Bearer " + key.raw_key}

    return header


def put(client, scope_id: str, body: object = None, headers: dict | None = None, raw: str | bytes | None = None):
    data = raw if raw is not None else json.dumps(body)
    return client.put(url(scope_id), data=data, content_type="application/json", headers=headers or {})


def error(response) -> tuple[int, str, str]:
    body = response.json()["error"]
    return response.status_code, body["code"], body["message"]


def details() -> dict[str, tuple[str, dict]]:
    return {scope.scope_id: (scope.label, scope.metadata) for scope in Scope.objects.all()}


# --- the happy paths ---------------------------------------------------------------------------------------------


def test_put_labels_a_scope_and_get_reads_it_back(client, manager):
    touch_scope(scope_id=TENANT)
    headers = manager()
    response = put(client, TENANT, {"label": "  Acme Hotels ", "metadata": {"plan": "pro", "seats": 40}}, headers)
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"scope_id", "label", "metadata", "first_seen_at", "last_seen_at"}
    assert (body["scope_id"], body["label"], body["metadata"]) == (TENANT, "Acme Hotels", {"plan": "pro", "seats": 40})
    assert client.get(url(TENANT), headers=headers).json() == body
    assert details() == {TENANT: ("Acme Hotels", {"plan": "pro", "seats": 40})}


def test_only_the_fields_given_change(client, manager):
    headers = manager()
    put(client, TENANT, {"label": "Acme Hotels", "metadata": {"plan": "pro"}}, headers)
    assert put(client, TENANT, {"label": "Acme Hotels Group"}, headers).json()["metadata"] == {"plan": "pro"}
    assert put(client, TENANT, {"metadata": {"plan": "team"}}, headers).json()["label"] == "Acme Hotels Group"
    assert put(client, TENANT, {}, headers).status_code == 200
    assert details() == {TENANT: ("Acme Hotels Group", {"plan": "team"})}
    cleared = put(client, TENANT, {"label": "", "metadata": {}}, headers).json()
    assert (cleared["label"], cleared["metadata"]) == ("", {})


def test_put_creates_a_scope_never_seen_and_keeps_its_activity_times(client, manager):
    headers = manager()
    before = timezone.now()
    put(client, "tenant-new", {"label": "New Customer"}, headers)
    scope = Scope.objects.get(scope_id="tenant-new")
    assert before <= scope.first_seen_at <= scope.last_seen_at <= timezone.now()
    earlier = timezone.now() - timedelta(days=3)
    Scope.objects.filter(scope_id="tenant-new").update(first_seen_at=earlier, last_seen_at=earlier)
    again = put(client, "tenant-new", {"label": "New Customer Ltd"}, headers).json()
    assert again["first_seen_at"] == again["last_seen_at"] == earlier.isoformat().replace("+00:00", "Z")
    assert Scope.objects.count() == 1


def test_get_of_a_scope_never_seen_is_404_and_creates_nothing(client, manager):
    status, code, _ = error(client.get(url("tenant-unknown"), headers=manager()))
    assert (status, code) == (404, "scope_not_found")
    assert Scope.objects.count() == 0


def test_the_global_scope_is_addressed_by_the_empty_id(client, manager):
    headers = manager()
    assert put(client, "", {"label": "Shared / global"}, headers).json()["scope_id"] == ""
    assert client.get("/api/scopes/", headers=headers).json()["label"] == "Shared / global"
    assert details() == {"": ("Shared / global", {})}


def test_a_scope_id_with_slashes_and_unicode_round_trips(client, manager):
    scope_id = "tenant:acme/eu-west/Zürich ✓"
    headers = manager()
    assert put(client, scope_id, {"label": "Acme Zürich"}, headers).json()["scope_id"] == scope_id
    assert client.get("/api/scopes/" + quote(scope_id, safe="/"), headers=headers).json()["label"] == "Acme Zürich"


def test_a_restricted_key_manages_its_own_scope(client, manager):
    headers = manager(TENANT)
    assert put(client, TENANT, {"label": "Acme Hotels"}, headers).status_code == 200
    assert client.get(url(TENANT), headers=headers).status_code == 200


def test_requirescope_does_not_stop_labelling_the_global_scope(client, manager, tmp_path, use_agent):
    from tests.conftest import write_agent_folder

    use_agent(write_agent_folder(tmp_path / "agent", amodal={"scope": {"requireScope": True}}))
    assert put(client, "", {"label": "Global"}, manager()).status_code == 200


def test_create_api_key_manage_scopes_flag(capsys, client):
    call_command("create_api_key", "crm sync", "--manage-scopes")
    raw_key = capsys.readouterr().out.strip()
    stored = ApiKey.objects.get(key_digest=digest_api_key(raw_key))
    assert (stored.manage_scopes, stored.manage_credentials, stored.shared_write) == (True, False, False)
    response = put(client, TENANT, {"label": "Acme"}, {"Authorization": "Bearer " + raw_key})
    assert response.status_code == 200


def test_an_old_process_inserting_a_scope_without_the_new_columns_still_works():
    """A process of the previous release (during a rolling deploy) creates scopes without label/metadata:
    the database defaults fill them."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO scoping_scope (scope_id, first_seen_at, last_seen_at) VALUES (%s, %s, %s)",
            ["tenant-old", timezone.now(), timezone.now()],
        )
    assert details() == {"tenant-old": ("", {})}


# --- who may call ------------------------------------------------------------------------------------------------


CALLS = [("get", None), ("put", {"label": "Hijacked"})]


@pytest.fixture
def labelled():
    touch_scope(scope_id=TENANT)
    Scope.objects.filter(scope_id=TENANT).update(label="Acme Hotels", metadata={"plan": "pro"})


@pytest.mark.parametrize(("method", "body"), CALLS, ids=[call[0] for call in CALLS])
@pytest.mark.parametrize(
    "caller",
    [
        "jwt_same_scope",
        "api_key",
        "credentials_key",
        "shared_write_key",
        "key_restricted_elsewhere",
        "manager_restricted_elsewhere",
        "staff",
        "superuser",
        "open",
    ],
)
def test_every_other_caller_is_forbidden(client, labelled, jwt_header, django_user_model, caller, method, body):
    headers: dict[str, str] = {}
    settings_override = {}
    keys = {
        "api_key": {},
        "credentials_key": {"manage_credentials": True},
        "shared_write_key": {"shared_write": True},
        "key_restricted_elsewhere": {"scope_id": "tenant-b"},
        "manager_restricted_elsewhere": {"scope_id": "tenant-b", "manage_scopes": True},
    }
    if caller == "jwt_same_scope":
        headers = jwt_header(TENANT)
    elif caller in keys:
        headers = {"Authorization": "Bearer " + create_api_key(name="other", **keys[caller]).raw_key}
    elif caller in ("staff", "superuser"):
        user = django_user_model.objects.create_user(
            "ops", password="pw-123456", is_staff=True, is_superuser=caller == "superuser"
        )
        client.force_login(user)
    else:
        settings_override = {"AMODAL_AUTH": "open"}
    with override_settings(**settings_override):
        response = client.get(url(TENANT), headers=headers) if method == "get" else put(client, TENANT, body, headers)
    assert error(response)[:2] == (403, "forbidden"), response.content
    assert "Acme" not in response.content.decode()
    assert details() == {TENANT: ("Acme Hotels", {"plan": "pro"})}


@pytest.mark.parametrize(("method", "body"), CALLS, ids=[call[0] for call in CALLS])
@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        (None, "authentication_required"),
        ("Bearer ak_not-a-real-key", "invalid_token"),
        ("Bearer not.a.jwt", "invalid_token"),
    ],
)
def test_missing_or_bad_credentials_are_401(client, labelled, method, body, authorization, code):
    headers = {"Authorization": authorization} if authorization else {}
    response = client.get(url(TENANT), headers=headers) if method == "get" else put(client, TENANT, body, headers)
    assert error(response)[:2] == (401, code)
    assert details() == {TENANT: ("Acme Hotels", {"plan": "pro"})}


def test_a_revoked_manager_key_is_401(client, labelled):
    key = create_api_key(name="old", manage_scopes=True)
    revoke_api_key(api_key=key.api_key)
    response = put(client, TENANT, {"label": "Hijacked"}, {"Authorization": "Bearer " + key.raw_key})
    assert error(response)[:2] == (401, "invalid_token")


# --- bad input ---------------------------------------------------------------------------------------------------


def nested(levels: int) -> dict:
    value: dict = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


BAD_BODIES = [
    pytest.param({"label": "Acme\x00Hotels"}, "label", "printable", id="label-nul"),
    pytest.param({"label": "Acme\nHotels"}, "label", "printable", id="label-line-break"),
    pytest.param({"label": "Acme\tHotels"}, "label", "printable", id="label-tab"),
    pytest.param({"label": "Acme\u202eHotels"}, "label", "printable", id="label-bidi-override"),
    pytest.param({"label": "x" * (MAX_LABEL_CHARS + 1)}, "label", f"at most {MAX_LABEL_CHARS}", id="label-too-long"),
    pytest.param({"label": None}, "label", "must be a string", id="label-null"),
    pytest.param({"label": 42}, "label", "must be a string", id="label-number"),
    pytest.param({"label": ["Acme"]}, "label", "must be a string", id="label-array"),
    pytest.param({"label": {"text": "Acme"}}, "label", "must be a string", id="label-object"),
    pytest.param({"metadata": ["plan", "pro"]}, "metadata", "JSON object", id="metadata-array"),
    pytest.param({"metadata": "plan=pro"}, "metadata", "JSON object", id="metadata-string"),
    pytest.param({"metadata": None}, "metadata", "JSON object", id="metadata-null"),
    pytest.param({"metadata": 7}, "metadata", "JSON object", id="metadata-number"),
    pytest.param({"metadata": nested(4)}, "metadata", "at most 3 levels", id="metadata-too-deep"),
    pytest.param({"metadata": {"a": [[["x"]]]}}, "metadata", "at most 3 levels", id="metadata-deep-array"),
    pytest.param(
        {"metadata": {"notes": "x" * MAX_METADATA_BYTES}}, "metadata", f"at most {MAX_METADATA_BYTES} bytes", id="big"
    ),
    pytest.param(
        {"metadata": {"notes": "é" * (MAX_METADATA_BYTES // 2)}}, "metadata", "bytes", id="big-in-utf8-not-in-chars"
    ),
    pytest.param({"metadata": {"crm": {"id": "a\x00b"}}}, "metadata.crm.id", "NUL", id="metadata-nul-value"),
    pytest.param({"metadata": {"tags": ["ok", "a\x00"]}}, "metadata.tags[1]", "NUL", id="metadata-nul-in-list"),
    pytest.param({"metadata": {"a\x00b": 1}}, "metadata", "printable", id="metadata-nul-key"),
    pytest.param({"metadata": {"": 1}}, "metadata", "1 to 100", id="metadata-empty-key"),
    pytest.param({"metadata": {"k" * 101: 1}}, "metadata", "1 to 100", id="metadata-long-key"),
    pytest.param({"metadata": {"x": {"line\nbreak": 1}}}, "metadata.x", "printable", id="metadata-nested-key"),
    pytest.param({"label": "Acme", "scope_id": "tenant-b"}, "body", "unknown field", id="unknown-scope-id"),
    pytest.param({"name": "Acme"}, "body", "unknown field", id="unknown-field"),
    pytest.param(["label", "Acme"], "body", "JSON object", id="body-array"),
    pytest.param("Acme Hotels", "body", "JSON object", id="body-string"),
    pytest.param(None, "body", "JSON object", id="body-null"),
]


@pytest.mark.parametrize(("body", "field", "words"), BAD_BODIES)
def test_a_bad_body_is_400_naming_the_field_and_changes_nothing(client, manager, labelled, body, field, words):
    response = put(client, TENANT, body, manager())
    status, code, message = error(response)
    assert (status, code) == (400, "validation_error"), response.content
    assert message.startswith(field + ":"), message
    assert words in message, message
    assert details() == {TENANT: ("Acme Hotels", {"plan": "pro"})}


def test_a_valid_label_with_a_bad_metadata_changes_neither(client, manager, labelled):
    response = put(client, TENANT, {"label": "Changed", "metadata": nested(5)}, manager())
    assert error(response)[:2] == (400, "validation_error")
    assert details() == {TENANT: ("Acme Hotels", {"plan": "pro"})}


def test_the_limits_themselves_are_accepted(client, manager):
    label = "Ä" * MAX_LABEL_CHARS
    filler = MAX_METADATA_BYTES - len(json.dumps({"notes": ""}, separators=(",", ":")))
    metadata = {"notes": "x" * filler}
    response = put(client, TENANT, {"label": label, "metadata": metadata}, manager())
    assert response.status_code == 200, response.content
    deepest = put(client, TENANT, {"metadata": {"a": {"b": [1, {}]}}}, manager())
    assert deepest.status_code == 400  # {} inside the list is a 4th level
    assert put(client, TENANT, {"metadata": {"a": {"b": [1, 2]}, "c": []}}, manager()).status_code == 200


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        pytest.param(b'{"label": "Acme \xff Hotels"}', "invalid_json", id="not-utf8"),
        pytest.param(b'{"label": "Acme"', "invalid_json", id="truncated"),
        pytest.param(b'{"metadata": {"ratio": NaN}}', "invalid_json", id="nan"),
        pytest.param(b'{"label": "\\ud800"}', "validation_error", id="lone-surrogate"),
        pytest.param(b"[" * 100 + b"]" * 100, "invalid_json", id="nested-100-levels"),
        pytest.param(b"", "validation_error", id="empty-body"),
    ],
)
def test_bodies_that_are_not_clean_json_are_400(client, manager, labelled, raw, code):
    response = put(client, TENANT, raw=raw, headers=manager())
    assert error(response)[:2] == (400, code), response.content
    assert details() == {TENANT: ("Acme Hotels", {"plan": "pro"})}


@override_settings(AMODAL_MAX_BODY_BYTES=64 * 1024)
def test_a_huge_body_is_413(client, manager, labelled):
    raw = json.dumps({"label": "Acme", "metadata": {"notes": "x" * 200_000}})
    response = put(client, TENANT, raw=raw, headers=manager())
    assert error(response)[:2] == (413, "request_too_large")
    assert details() == {TENANT: ("Acme Hotels", {"plan": "pro"})}


def test_a_body_that_is_not_json_is_415(client, manager):
    response = client.put(
        url(TENANT), data="label=Acme", content_type="application/x-www-form-urlencoded", headers=manager()
    )
    assert error(response)[:2] == (415, "unsupported_media_type")
    assert Scope.objects.count() == 0


@pytest.mark.parametrize(
    ("path", "code", "words"),
    [
        pytest.param("/api/scopes/" + "x" * 256, "invalid_scope", "at most 255", id="too-long"),
        pytest.param("/api/scopes/a%0Ab", "invalid_scope", "printable", id="line-break"),
        pytest.param("/api/scopes/a%1Bb", "invalid_scope", "printable", id="escape"),
        # A NUL anywhere in a URL is refused before any view (amodal_site.middleware), naming the path.
        pytest.param("/api/scopes/a%00b", "validation_error", "path: must not contain NUL", id="nul"),
    ],
)
@pytest.mark.parametrize("method", ["get", "put"])
def test_a_bad_scope_id_in_the_path_is_400(client, manager, path, code, words, method):
    headers = manager()
    if method == "get":
        response = client.get(path, headers=headers)
    else:
        response = client.put(path, data='{"label": "x"}', content_type="application/json", headers=headers)
    assert error(response)[:2] == (400, code), response.content
    assert words in error(response)[2]
    assert Scope.objects.count() == 0


def test_the_openapi_schema_documents_the_endpoint(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    operations = schema["paths"]["/api/scopes/{scope_id}"]
    assert set(operations) >= {"get", "put"}
    assert {"200", "400", "401", "403", "413"} <= set(operations["put"]["responses"])
    assert "404" in operations["get"]["responses"]
    body = schema["components"]["schemas"]["ScopeDetailsBody"]
    assert set(body["properties"]) == {"label", "metadata"}
    assert "global scope" in json.dumps(operations["get"]["parameters"])
