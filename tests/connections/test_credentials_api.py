"""Credentials over HTTP (SPEC §4 "Production provisioning"): only an API key with manage_credentials may
PUT, DELETE and list; a scope-restricted key stays in its scope; bad input is a 400 naming the field;
no answer, log line or audit row ever holds a value."""

from __future__ import annotations

import json

import pytest
from django.test import override_settings

from connections import services
from connections.models import CredentialChange, ScopedCredential
from scoping.services import create_api_key, revoke_api_key
from tests.connections.test_secret_hygiene import all_logs, log_text, raw_table_text  # noqa: F401 (a fixture)

pytestmark = pytest.mark.django_db

SECRET = "api-Secret-value-4e5f6a"
OTHER_SECRET = "api-Other-value-9b8c7d"
URL = "/api/credentials"


@pytest.fixture
def manager():
    """`manager(scope_id=None)`: the Authorization header of a key created with --manage-credentials."""

    def header(scope_id: str | None = None, name: str = "provisioner") -> dict[str, str]:
        key = create_api_key(name=name, scope_id=scope_id, manage_credentials=True)
        return {"Authorization": "Bearer " + key.raw_key}

    return header


def send(client, method: str, path: str, body: object = None, headers: dict | None = None, raw: str | None = None):
    data = raw if raw is not None else (None if body is None else json.dumps(body))
    if data is None:
        return getattr(client, method)(path, headers=headers or {})
    return getattr(client, method)(path, data=data, content_type="application/json", headers=headers or {})


def error(response) -> tuple[int, str, str]:
    body = response.json()["error"]
    return response.status_code, body["code"], body["message"]


def stored() -> dict[tuple[str, str], str]:
    return {(c.scope, c.key): c.reveal() for c in ScopedCredential.all_scopes.all()}


def changes() -> list[tuple[str, str, str, str]]:
    return [(c.action, c.scope, c.key, c.actor_name) for c in CredentialChange.objects.order_by("at", "pk")]


# --- the happy paths ------------------------------------------------------------------------------------------


def test_put_creates_replaces_and_reports_unchanged_without_ever_answering_the_value(client, manager, all_logs):  # noqa: F811
    headers = manager()
    created = send(client, "put", f"{URL}/API_TOKEN", {"value": SECRET, "scope_id": "tenant-a"}, headers)
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["key"] == "API_TOKEN" and body["scope_id"] == "tenant-a" and body["result"] == "created"
    assert body["updated_by"] == "api-key:provisioner" and body["updated_at"]
    replaced = send(client, "put", f"{URL}/API_TOKEN", {"value": OTHER_SECRET, "scope_id": "tenant-a"}, headers)
    assert (replaced.status_code, replaced.json()["result"]) == (200, "replaced")
    unchanged = send(client, "put", f"{URL}/API_TOKEN", {"value": OTHER_SECRET, "scope_id": "tenant-a"}, headers)
    assert (unchanged.status_code, unchanged.json()["result"]) == (200, "unchanged")
    listed = client.get(URL, {"scope_id": "tenant-a"}, headers=headers)
    assert stored() == {("tenant-a", "API_TOKEN"): OTHER_SECRET}
    assert changes() == [
        ("created", "tenant-a", "API_TOKEN", "api-key:provisioner"),
        ("replaced", "tenant-a", "API_TOKEN", "api-key:provisioner"),
    ]
    everything = b"".join(r.content for r in (created, replaced, unchanged, listed)).decode() + log_text(all_logs)
    assert SECRET not in everything and OTHER_SECRET not in everything
    assert SECRET not in raw_table_text() and OTHER_SECRET not in raw_table_text()


def test_without_a_scope_an_unrestricted_key_writes_the_global_scope(client, manager):
    assert send(client, "put", f"{URL}/API_TOKEN", {"value": SECRET}, manager()).status_code == 201
    assert stored() == {("", "API_TOKEN"): SECRET}


def test_a_restricted_key_acts_in_its_own_scope(client, manager):
    headers = manager("tenant-a")
    for body in ({"value": SECRET}, {"value": SECRET, "scope_id": "tenant-a"}, {"value": SECRET, "scope_id": ""}):
        assert send(client, "put", f"{URL}/API_TOKEN", body, headers).status_code in (200, 201)
    assert stored() == {("tenant-a", "API_TOKEN"): SECRET}
    listed = client.get(URL, headers=headers).json()["credentials"]
    assert [(item["key"], item["scope_id"]) for item in listed] == [("API_TOKEN", "tenant-a")]


def test_a_restricted_key_cannot_touch_another_scope(client, manager):
    services.set_credential(scope_id="tenant-b", key="API_TOKEN", value=OTHER_SECRET, actor_name="setup")
    headers = manager("tenant-a")
    attempts = [
        send(client, "put", f"{URL}/API_TOKEN", {"value": SECRET, "scope_id": "tenant-b"}, headers),
        send(client, "delete", f"{URL}/API_TOKEN", {"scope_id": "tenant-b"}, headers),
        send(client, "delete", f"{URL}/API_TOKEN?scope_id=tenant-b", None, headers),
        client.get(URL, {"scope_id": "tenant-b"}, headers=headers),
    ]
    for response in attempts:
        assert error(response)[:2] == (403, "scope_forbidden"), response.content
        assert OTHER_SECRET not in response.content.decode()
    assert stored() == {("tenant-b", "API_TOKEN"): OTHER_SECRET}
    assert [action for action, *_ in changes()] == ["created"]


@pytest.mark.parametrize("where", ["body", "query"])
def test_delete_removes_the_credential_and_audits_it(client, manager, where):
    services.set_credential(scope_id="tenant-a", key="API_TOKEN", value=SECRET, actor_name="setup")
    services.set_credential(scope_id="tenant-b", key="API_TOKEN", value=OTHER_SECRET, actor_name="setup")
    if where == "body":
        response = send(client, "delete", f"{URL}/API_TOKEN", {"scope_id": "tenant-a"}, manager())
    else:
        response = send(client, "delete", f"{URL}/API_TOKEN?scope_id=tenant-a", None, manager())
    assert (response.status_code, response.json()) == (200, {"ok": True})
    assert stored() == {("tenant-b", "API_TOKEN"): OTHER_SECRET}
    assert changes()[-1] == ("deleted", "tenant-a", "API_TOKEN", "api-key:provisioner")


def test_deleting_a_missing_credential_is_404(client, manager):
    services.set_credential(scope_id="tenant-b", key="API_TOKEN", value=OTHER_SECRET, actor_name="setup")
    response = send(client, "delete", f"{URL}/API_TOKEN", {"scope_id": "tenant-a"}, manager())
    assert error(response)[:2] == (404, "credential_not_found")
    assert len(stored()) == 1


def test_the_list_is_one_scope_by_key_and_paginated(client, manager):
    for key in ("C_KEY", "A_KEY", "B_KEY"):
        services.set_credential(scope_id="tenant-a", key=key, value=SECRET, actor_name="setup")
    services.set_credential(scope_id="tenant-b", key="OTHER", value=OTHER_SECRET, actor_name="setup")
    headers = manager()
    first = client.get(URL, {"scope_id": "tenant-a", "limit": "2"}, headers=headers).json()
    assert [item["key"] for item in first["credentials"]] == ["A_KEY", "B_KEY"]
    assert first["has_more"] is True and (first["limit"], first["offset"]) == (2, 0)
    assert set(first["credentials"][0]) == {"key", "scope_id", "updated_at", "updated_by"}
    second = client.get(URL, {"scope_id": "tenant-a", "limit": "2", "offset": "2"}, headers=headers).json()
    assert [item["key"] for item in second["credentials"]] == ["C_KEY"] and second["has_more"] is False
    assert client.get(URL, headers=headers).json()["credentials"] == []  # the global scope has none


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"limit": "-1"}, "limit"),
        ({"offset": "-1"}, "offset"),
        ({"offset": "1.5"}, "offset"),
        ({"offset": "9" * 30}, "offset"),
        ({"scope_id": "bad\x01scope"}, "scope_id"),
    ],
)
def test_bad_list_parameters_are_400_naming_the_field(client, manager, params, field):
    status, code, message = error(client.get(URL, params, headers=manager()))
    assert status == 400 and code in ("validation_error", "invalid_scope")
    assert field in message


# --- who may call -------------------------------------------------------------------------------------------------


CALLS = [
    ("get", URL, None),
    ("put", f"{URL}/API_TOKEN", {"value": SECRET, "scope_id": "tenant-a"}),
    ("delete", f"{URL}/API_TOKEN", {"scope_id": "tenant-a"}),
]


@pytest.fixture
def existing():
    services.set_credential(scope_id="tenant-a", key="API_TOKEN", value=OTHER_SECRET, actor_name="setup")


@pytest.mark.parametrize(("method", "path", "body"), CALLS, ids=[call[0] for call in CALLS])
@pytest.mark.parametrize(
    "caller", ["jwt", "api_key", "scoped_api_key", "shared_write_key", "staff", "superuser", "open"]
)
def test_every_other_caller_is_forbidden(client, existing, jwt_header, django_user_model, caller, method, path, body):
    headers: dict[str, str] = {}
    settings_override = {}
    if caller == "jwt":
        headers = jwt_header("tenant-a")
    elif caller in ("api_key", "scoped_api_key", "shared_write_key"):
        key = create_api_key(
            name="plain",
            scope_id="tenant-a" if caller == "scoped_api_key" else None,
            shared_write=caller == "shared_write_key",
        )
        headers = {"Authorization": "Bearer " + key.raw_key}
    elif caller in ("staff", "superuser"):
        user = django_user_model.objects.create_user(
            "ops", password="pw-123456", is_staff=True, is_superuser=caller == "superuser"
        )
        client.force_login(user)
    else:
        settings_override = {"AMODAL_AUTH": "open"}
    with override_settings(**settings_override):
        response = send(client, method, path, body, headers)
    assert error(response)[:2] == (403, "forbidden"), response.content
    assert stored() == {("tenant-a", "API_TOKEN"): OTHER_SECRET}
    assert [action for action, *_ in changes()] == ["created"]
    assert OTHER_SECRET not in response.content.decode()


@pytest.mark.parametrize(("method", "path", "body"), CALLS, ids=[call[0] for call in CALLS])
@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        (None, "authentication_required"),
        ("Bearer ak_not-a-real-key", "invalid_token"),
        ("Bearer not.a.jwt", "invalid_token"),
        ("Basic dXNlcjpwdw==", "invalid_token"),
    ],
)
def test_missing_or_bad_credentials_are_401(client, existing, method, path, body, authorization, code):
    headers = {"Authorization": authorization} if authorization else {}
    response = send(client, method, path, body, headers)
    assert error(response)[:2] == (401, code)
    assert stored() == {("tenant-a", "API_TOKEN"): OTHER_SECRET}


def test_a_revoked_manager_key_is_401(client):
    key = create_api_key(name="old", manage_credentials=True)
    revoke_api_key(api_key=key.api_key)
    response = send(client, "put", f"{URL}/API_TOKEN", {"value": SECRET}, {"Authorization": "Bearer " + key.raw_key})
    assert error(response)[:2] == (401, "invalid_token")
    assert stored() == {}


# --- validation ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "raw"),
    [
        ({}, None),
        ({"value": ""}, None),
        ({"value": None}, None),
        ({"value": 12345678}, None),
        ({"value": [SECRET]}, None),
        ({"value": {"secret": SECRET}}, None),
        ({"value": f"a\x00{SECRET}"}, None),
        ({"value": "x" * 10_001}, None),
        (None, '{"value": "\\ud800' + SECRET + '"}'),  # a lone surrogate
    ],
)
def test_a_bad_value_is_400_naming_the_field_and_never_echoed(client, manager, all_logs, body, raw):  # noqa: F811
    response = send(client, "put", f"{URL}/API_TOKEN", body, manager(), raw=raw)
    status, code, message = error(response)
    assert (status, code) == (400, "validation_error"), response.content
    assert "value" in message
    assert SECRET not in response.content.decode() and SECRET not in log_text(all_logs)
    assert stored() == {} and changes() == []


@pytest.mark.parametrize("key", ["1TOKEN", "API%20TOKEN", "API:TOKEN", "K" * 101, "T%C3%B6ken", "a%0Ab", "-KEY"])
@pytest.mark.parametrize("method", ["put", "delete"])
def test_a_bad_key_is_400_naming_the_field(client, manager, key, method):
    response = send(client, method, f"{URL}/{key}", {"value": SECRET}, manager())
    status, code, message = error(response)
    assert (status, code) == (400, "validation_error"), response.content
    assert message.startswith("key: A credential key is")
    assert stored() == {}


@pytest.mark.parametrize("raw", ["[]", '"a string"', "{not json"])
def test_a_body_that_is_not_an_object_is_400(client, manager, raw):
    response = send(client, "put", f"{URL}/API_TOKEN", None, manager(), raw=raw)
    assert response.status_code == 400
    assert stored() == {}


def test_the_openapi_schema_covers_the_credentials_api(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    assert set(schema["paths"]["/api/credentials"]) >= {"get"}
    detail = schema["paths"]["/api/credentials/{key}"]
    assert set(detail) >= {"put", "delete"}
    assert {"201", "400", "403"} <= set(detail["put"]["responses"])
    assert "value" in json.dumps(detail["put"]["requestBody"]) or "value" in json.dumps(schema["components"])
