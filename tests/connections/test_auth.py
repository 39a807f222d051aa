"""Auth types and credential references on the wire (SPEC §4): bearer, api_key, basic, header, query;
`env:NAME`, `scope:KEY` (ScopedCredential rows, then `.amodal/scopes.json` in development only)."""

from __future__ import annotations

import base64

import pytest
from django.test import override_settings

from connections.models import ScopedCredential
from scoping.context import scope

GET_ITEMS = {"connection": "app-api", "method": "GET", "endpoint": "/items"}


def auth_agent(make_agent, api, auth, **extra):
    return make_agent({"app-api": {"baseUrl": api.base_url, "auth": auth, "timeoutSeconds": 5}}, **extra)


def store_credential(scope_id: str, key: str, value: str) -> ScopedCredential:
    with scope(scope_id):
        credential = ScopedCredential(key=key)
        credential.set_value(value)
        credential.save()
    return credential


@pytest.mark.parametrize(
    ("auth", "header", "expected"),
    [
        ({"type": "bearer", "token": "tok-bearer-123"}, "Authorization", "Bearer tok-bearer-123"),
        (
            {"type": "bearer", "token": "tok-bearer-123", "header": "X-Auth", "prefix": "Token"},
            "X-Auth",
            "Token tok-bearer-123",
        ),
        ({"type": "api_key", "token": "key-abc-123"}, "X-API-Key", "key-abc-123"),
        ({"type": "api_key", "token": "key-abc-123", "header": "X-Service-Key"}, "X-Service-Key", "key-abc-123"),
        ({"type": "header", "header": "X-Raw-Secret", "token": "raw-secret-9"}, "X-Raw-Secret", "raw-secret-9"),
        (
            {"type": "basic", "username": "svc-user", "password": "p@ss:w0rd"},
            "Authorization",
            "Basic " + base64.b64encode(b"svc-user:p@ss:w0rd").decode(),
        ),
    ],
    ids=["bearer", "bearer-custom", "api_key", "api_key-custom", "header", "basic"],
)
def test_header_auth_types_on_the_wire(make_agent, api, request_tool, auth, header, expected):
    agent = auth_agent(make_agent, api, auth)
    result = request_tool(agent, GET_ITEMS)
    assert not result.is_error, result.content
    received = api.only()
    assert received.header(header) == expected
    if header != "Authorization":
        assert received.header("Authorization") is None
    assert received.query == {}


def test_basic_auth_is_base64_of_username_colon_password(make_agent, api, request_tool):
    agent = auth_agent(make_agent, api, {"type": "basic", "username": "ünïcode-user", "password": "pw-1234"})
    assert not request_tool(agent, GET_ITEMS).is_error
    scheme, _, encoded = api.only().header("Authorization").partition(" ")
    assert scheme == "Basic"
    assert base64.b64decode(encoded).decode() == "ünïcode-user:pw-1234"


def test_query_auth_puts_the_token_in_its_parameter(make_agent, api, request_tool):
    agent = auth_agent(make_agent, api, {"type": "query", "param": "access_key", "token": "q-token-77"})
    result = request_tool(agent, {**GET_ITEMS, "params": {"page": "1", "access_key": "from-the-model"}})
    assert not result.is_error, result.content
    received = api.only()
    assert received.query == {"page": ["1"], "access_key": ["q-token-77"]}
    assert received.header("Authorization") is None


def test_env_references_are_resolved_at_each_call(make_agent, api, request_tool, monkeypatch):
    monkeypatch.setenv("APP_API_TOKEN", "env-token-1")
    agent = auth_agent(make_agent, api, {"type": "bearer", "token": "env:APP_API_TOKEN"})
    assert not request_tool(agent, GET_ITEMS).is_error
    monkeypatch.setenv("APP_API_TOKEN", "env-token-2")  # rotated without reloading the agent
    assert not request_tool(agent, GET_ITEMS).is_error
    assert [request.header("Authorization") for request in api.received] == ["Bearer env-token-1", "Bearer env-token-2"]
    assert "env:" not in api.all_text()


def test_an_env_reference_unset_at_call_time_is_a_tool_error(make_agent, api, request_tool, monkeypatch):
    monkeypatch.setenv("APP_API_TOKEN", "env-token-1")
    agent = auth_agent(make_agent, api, {"type": "api_key", "token": "env:APP_API_TOKEN"})
    monkeypatch.delenv("APP_API_TOKEN")
    result = request_tool(agent, GET_ITEMS)
    assert result.is_error
    assert "env:APP_API_TOKEN" in result.content
    assert api.received == []


@pytest.mark.django_db(transaction=True)
def test_scope_references_resolve_per_scope(make_agent, api, request_tool):
    store_credential("tenant-a", "API_TOKEN", "secret-of-tenant-a")
    store_credential("tenant-b", "API_TOKEN", "secret-of-tenant-b")
    agent = auth_agent(make_agent, api, {"type": "bearer", "token": "scope:API_TOKEN"})
    assert not request_tool(agent, GET_ITEMS, scope_id="tenant-a").is_error
    assert not request_tool(agent, GET_ITEMS, scope_id="tenant-b").is_error
    assert not request_tool(agent, GET_ITEMS, scope_id="tenant-a").is_error
    assert [request.header("Authorization") for request in api.received] == [
        "Bearer secret-of-tenant-a",
        "Bearer secret-of-tenant-b",
        "Bearer secret-of-tenant-a",
    ]


@pytest.mark.django_db(transaction=True)
def test_scope_references_in_basic_auth(make_agent, api, request_tool):
    store_credential("tenant-a", "USER", "user-a")
    store_credential("tenant-a", "PASS", "pass-a-123")
    agent = auth_agent(make_agent, api, {"type": "basic", "username": "scope:USER", "password": "scope:PASS"})
    assert not request_tool(agent, GET_ITEMS, scope_id="tenant-a").is_error
    assert api.only().header("Authorization") == "Basic " + base64.b64encode(b"user-a:pass-a-123").decode()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("debug", [True, False])
def test_an_unknown_scope_reference_names_the_reference_and_sends_nothing(make_agent, api, request_tool, debug):
    store_credential("tenant-b", "API_TOKEN", "secret-of-tenant-b")
    store_credential("", "API_TOKEN", "secret-of-the-global-scope")
    agent = auth_agent(make_agent, api, {"type": "bearer", "token": "scope:API_TOKEN"})
    with override_settings(DEBUG=debug):
        result = request_tool(agent, GET_ITEMS, scope_id="tenant-a")
    assert result.is_error
    assert "scope:API_TOKEN" in result.content
    assert "secret-of" not in result.content
    assert api.received == []


DEV_SCOPES = {
    ".amodal/scopes.json": {
        "tenant-c": {"credentials": {"API_TOKEN": "dev-file-token-c"}},
        "tenant-a": {"credentials": {"API_TOKEN": "dev-file-token-a"}},
    }
}


@pytest.mark.django_db(transaction=True)
def test_dev_scopes_file_is_the_fallback_when_debug_is_on(make_agent, api, request_tool):
    store_credential("tenant-a", "API_TOKEN", "db-token-a")
    agent = auth_agent(make_agent, api, {"type": "bearer", "token": "scope:API_TOKEN"}, files=DEV_SCOPES)
    with override_settings(DEBUG=True):
        assert not request_tool(agent, GET_ITEMS, scope_id="tenant-c").is_error
        assert not request_tool(agent, GET_ITEMS, scope_id="tenant-a").is_error  # the table comes first
        missing = request_tool(agent, GET_ITEMS, scope_id="tenant-z")
    assert [request.header("Authorization") for request in api.received] == [
        "Bearer dev-file-token-c",
        "Bearer db-token-a",
    ]
    assert missing.is_error and "scope:API_TOKEN" in missing.content


@pytest.mark.django_db(transaction=True)
def test_dev_scopes_file_is_ignored_when_debug_is_off(make_agent, api, request_tool):
    agent = auth_agent(make_agent, api, {"type": "bearer", "token": "scope:API_TOKEN"}, files=DEV_SCOPES)
    with override_settings(DEBUG=False):
        result = request_tool(agent, GET_ITEMS, scope_id="tenant-c")
    assert result.is_error
    assert "scope:API_TOKEN" in result.content
    assert "dev-file-token" not in result.content
    assert api.received == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("value", ["line\r\nX-Injected: 1", "line\nbreak"])
def test_a_credential_with_a_line_break_is_refused(make_agent, api, request_tool, value):
    store_credential("tenant-a", "API_TOKEN", value)
    agent = auth_agent(make_agent, api, {"type": "header", "header": "X-Key", "token": "scope:API_TOKEN"})
    result = request_tool(agent, GET_ITEMS, scope_id="tenant-a")
    assert result.is_error
    assert "line break" in result.content
    assert "X-Injected" not in result.content
    assert api.received == []


HEADER_AUTHS = {
    "bearer": {"type": "bearer", "token": "scope:API_TOKEN"},
    "api_key": {"type": "api_key", "token": "scope:API_TOKEN"},
    "header": {"type": "header", "header": "X-Key", "token": "scope:API_TOKEN"},
    "query": {"type": "query", "param": "key", "token": "scope:API_TOKEN"},
    "basic": {"type": "basic", "username": "svc", "password": "scope:API_TOKEN"},
}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("auth", HEADER_AUTHS.values(), ids=HEADER_AUTHS.keys())
@pytest.mark.parametrize("character", ["\x00", "\x0b", "\x85", "\u2028", "\x1b"], ids=repr)
def test_a_credential_with_a_control_character_is_refused(make_agent, api, request_tool, auth, character):
    store_credential("tenant-a", "API_TOKEN", f"cred-marker-51f{character}X-Injected: 1")
    agent = auth_agent(make_agent, api, auth)
    result = request_tool(agent, GET_ITEMS, scope_id="tenant-a")
    assert result.is_error
    assert "control character" in result.content
    assert "cred-marker-51f" not in result.content and "X-Injected" not in result.content
    assert api.received == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "auth", [HEADER_AUTHS[name] for name in ("bearer", "api_key", "header")], ids=["bearer", "api_key", "header"]
)
def test_a_credential_beyond_latin_1_is_refused_for_a_header(make_agent, api, request_tool, auth):
    store_credential("tenant-a", "API_TOKEN", "токен-секрет-42")
    agent = auth_agent(make_agent, api, auth)
    result = request_tool(agent, GET_ITEMS, scope_id="tenant-a")
    assert result.is_error
    assert "auth.token" in result.content and "header" in result.content
    assert "токен" not in result.content
    assert api.received == []


@pytest.mark.django_db(transaction=True)
def test_a_credential_beyond_latin_1_works_where_it_is_encoded(make_agent, api, request_tool):
    store_credential("tenant-a", "API_TOKEN", "токен-секрет-42")
    for name in ("query", "basic"):
        assert not request_tool(
            auth_agent(make_agent, api, HEADER_AUTHS[name]), GET_ITEMS, scope_id="tenant-a"
        ).is_error
    query, basic = api.received
    assert query.query == {"key": ["токен-секрет-42"]}
    assert base64.b64decode(basic.header("Authorization").split()[1]).decode() == "svc:токен-секрет-42"


def test_a_bearer_prefix_beyond_latin_1_is_refused(make_agent, api, request_tool):
    agent = auth_agent(make_agent, api, {"type": "bearer", "token": "tok-123456", "prefix": "Токен"})
    result = request_tool(agent, GET_ITEMS)
    assert result.is_error and "auth.prefix" in result.content
    assert api.received == []


@pytest.mark.django_db(transaction=True)
def test_the_scope_comes_from_the_session_not_from_the_model(make_agent, api, chat, jwt_header):
    """Through the chat API: tenant-b's token is used for tenant-b's JWT, whatever the body says."""
    import json

    store_credential("tenant-a", "API_TOKEN", "secret-of-tenant-a")
    store_credential("tenant-b", "API_TOKEN", "secret-of-tenant-b")
    auth_agent(make_agent, api, {"type": "bearer", "token": "scope:API_TOKEN"})
    message = "/tool request " + json.dumps({**GET_ITEMS, "scope_id": "tenant-a"})
    response = chat.sync({"message": message, "scope_id": "tenant-a"}, jwt_header("tenant-b"))
    assert response.status == 200, response.body
    assert api.only().header("Authorization") == "Bearer secret-of-tenant-b"
