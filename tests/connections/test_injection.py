"""Context injection on the wire (SPEC §4): header, query, path and body targets; the scope context
overrides the model; required keys; line breaks; no body on GET."""

from __future__ import annotations

import json

import pytest

CONTEXT = {"tenant_id": "tenant-42", "region": "eu-west", "account": "acc-1", "org": "org-7"}


def injecting_spec(api, **overrides):
    spec = {
        "baseUrl": api.base_url,
        "contextInjection": {
            "tenant_id": {"in": "header", "field": "X-Tenant-Id", "required": True},
            "region": {"in": "query", "field": "region"},
            "account": {"in": "path", "field": "account"},
            "org": {"in": "body", "field": "org_id"},
        },
        "timeoutSeconds": 5,
    }
    spec.update(overrides)
    return spec


@pytest.fixture
def agent(api, make_agent):
    return make_agent({"app-api": injecting_spec(api)})


def test_get_injects_header_query_and_path_and_no_body(agent, api, request_tool):
    result = request_tool(
        agent,
        {"connection": "app-api", "method": "GET", "endpoint": "/accounts/{account}/items", "params": {"limit": 5}},
        context=CONTEXT,
    )
    assert not result.is_error, result.content
    received = api.only()
    assert received.method == "GET"
    assert received.path == "/accounts/acc-1/items"
    assert received.header("X-Tenant-Id") == "tenant-42"
    assert received.query == {"limit": ["5"], "region": ["eu-west"]}
    assert received.body == b""  # body injection is skipped for GET
    assert received.header("Content-Length") in (None, "0")
    assert "org-7" not in received.text


def test_post_injects_all_four_targets(agent, api, request_tool):
    result = request_tool(
        agent,
        {
            "connection": "app-api",
            "method": "POST",
            "endpoint": "/accounts/{account}/notes",
            "data": {"text": "hello"},
            "intent": "write",
        },
        context=CONTEXT,
    )
    assert not result.is_error, result.content
    received = api.only()
    assert (received.method, received.path) == ("POST", "/accounts/acc-1/notes")
    assert received.header("X-Tenant-Id") == "tenant-42"
    assert received.query == {"region": ["eu-west"]}
    assert received.json == {"text": "hello", "org_id": "org-7"}
    assert received.header("Content-Type") == "application/json"


def test_post_without_data_gets_a_body_with_the_injected_field(agent, api, request_tool):
    result = request_tool(agent, {"connection": "app-api", "method": "PUT", "endpoint": "/settings"}, context=CONTEXT)
    assert not result.is_error, result.content
    assert api.only().json == {"org_id": "org-7"}


@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_body_injection_is_skipped_for_methods_without_a_body(agent, api, request_tool, method):
    result = request_tool(
        agent,
        {"connection": "app-api", "method": method, "endpoint": "/things/1", "data": {"org_id": "model-org"}},
        context=CONTEXT,
    )
    assert not result.is_error, result.content
    received = api.only()
    assert received.method == method
    assert received.body == b""
    assert "org" not in received.text.split("\n\n", 1)[1]


def test_injected_values_override_what_the_model_supplied(agent, api, request_tool):
    result = request_tool(
        agent,
        {
            "connection": "app-api",
            "method": "POST",
            "endpoint": "/accounts/{account}/notes?region=model-region",
            "params": {"region": "model-region-2", "page": "2"},
            "data": {"org_id": "model-org", "text": "hi"},
            "headers": {"X-Tenant-Id": "model-tenant"},  # not a parameter of the tool: ignored
            "intent": "write",
        },
        context=CONTEXT,
    )
    assert not result.is_error, result.content
    received = api.only()
    assert received.header("X-Tenant-Id") == "tenant-42"
    assert received.query == {"region": ["eu-west"], "page": ["2"]}
    assert received.json == {"org_id": "org-7", "text": "hi"}
    assert "model-" not in received.text


def test_the_model_cannot_set_the_injected_header_through_params(agent, api, request_tool):
    result = request_tool(
        agent,
        {"connection": "app-api", "method": "GET", "endpoint": "/items", "params": {"X-Tenant-Id": "model-tenant"}},
        context=CONTEXT,
    )
    assert not result.is_error, result.content
    received = api.only()
    assert received.header("X-Tenant-Id") == "tenant-42"  # the params only ever become query parameters
    assert received.query["X-Tenant-Id"] == ["model-tenant"]


def test_a_missing_required_key_fails_before_any_traffic(agent, api, request_tool):
    context = {key: value for key, value in CONTEXT.items() if key != "tenant_id"}
    result = request_tool(agent, {"connection": "app-api", "method": "GET", "endpoint": "/items"}, context=context)
    assert result.is_error
    assert "tenant_id" in result.content
    assert "app-api" in result.content
    assert api.received == []


def test_missing_optional_keys_are_omitted(agent, api, request_tool):
    result = request_tool(
        agent,
        {"connection": "app-api", "method": "POST", "endpoint": "/notes", "data": {"text": "x"}},
        context={"tenant_id": "tenant-42"},
    )
    assert not result.is_error, result.content
    received = api.only()
    assert received.query == {}
    assert received.json == {"text": "x"}
    assert received.header("X-Tenant-Id") == "tenant-42"


def test_an_unfilled_path_placeholder_is_refused(agent, api, request_tool):
    result = request_tool(
        agent,
        {"connection": "app-api", "method": "GET", "endpoint": "/accounts/{account}"},
        context={"tenant_id": "tenant-42"},
    )
    assert result.is_error
    assert "account" in result.content
    assert api.received == []


@pytest.mark.parametrize("key", ["tenant_id", "region", "account", "org"])
@pytest.mark.parametrize("line_break", ["\r\n", "\n", "\r"])
def test_values_with_line_breaks_are_refused_and_nothing_is_sent(agent, api, request_tool, key, line_break):
    context = {**CONTEXT, key: f"value{line_break}X-Injected: 1"}
    result = request_tool(
        agent,
        {"connection": "app-api", "method": "POST", "endpoint": "/accounts/{account}/x", "data": {}},
        context=context,
    )
    assert result.is_error
    assert key in result.content
    assert api.received == []


def test_a_path_value_is_one_encoded_segment(agent, api, request_tool):
    result = request_tool(
        agent,
        {"connection": "app-api", "method": "GET", "endpoint": "/accounts/{account}"},
        context={**CONTEXT, "account": "a/b?c=d#e f"},
    )
    assert not result.is_error, result.content
    received = api.only()
    assert received.target.startswith("/accounts/a%2Fb%3Fc%3Dd%23e%20f?")
    assert received.query == {"region": ["eu-west"]}


@pytest.mark.parametrize("value", ["..", "."])
def test_a_dot_segment_path_value_cannot_climb_out_of_the_base_path(api, make_agent, request_tool, value):
    agent = make_agent({"app-api": injecting_spec(api, baseUrl=api.url("/api/v1"))})
    result = request_tool(
        agent,
        {"connection": "app-api", "method": "GET", "endpoint": "/{account}/x"},
        context={**CONTEXT, "account": value},
    )
    # The HTTP client would resolve /api/v1/.. to /api/ (outside the base path): refused before sending.
    assert result.is_error, result.content
    assert "'.' or '..'" in result.content
    assert api.received == []


@pytest.mark.django_db(transaction=True)
def test_injection_end_to_end_from_the_jwt_scope_context(agent, api, chat, jwt_header):
    arguments = {
        "connection": "app-api",
        "method": "POST",
        "endpoint": "/accounts/{account}/notes",
        "params": {"region": "model"},
        "data": {"org_id": "model", "n": 1},
        "intent": "write",
    }
    response = chat.sync({"message": "/tool request " + json.dumps(arguments)}, jwt_header("tenant-a", CONTEXT))
    assert response.status == 200, response.body
    body = response.json()
    assert [call["status"] for call in body["tool_calls"]] == ["success"]
    received = api.only()
    assert received.path == "/accounts/acc-1/notes"
    assert received.header("X-Tenant-Id") == "tenant-42"
    assert received.query == {"region": ["eu-west"]}
    assert received.json == {"org_id": "org-7", "n": 1}


@pytest.mark.django_db(transaction=True)
def test_a_body_context_without_the_required_key_sends_nothing(agent, api, chat, api_key_header):
    """An API-key caller may send the context in the body; a missing required key still stops the call."""
    arguments = {"connection": "app-api", "method": "GET", "endpoint": "/items"}
    response = chat.sync(
        {"message": "/tool request " + json.dumps(arguments), "scope_id": "tenant-a", "context": {"region": "eu"}},
        api_key_header(),
    )
    assert response.status == 200, response.body
    calls = response.json()["tool_calls"]
    assert calls[0]["status"] == "error"
    assert "tenant_id" in calls[0]["error"] and "app-api" in calls[0]["error"]
    assert api.received == []


CONTROL_CHARACTERS = ["\x00", "\x0b", "\x0c", "\x1b", "\t", "\x7f", "\x85", "\x9b", "\u2028", "\u2029"]


@pytest.mark.parametrize("key", ["tenant_id", "region", "account", "org"])
@pytest.mark.parametrize("character", CONTROL_CHARACTERS, ids=[f"U+{ord(c):04X}" for c in CONTROL_CHARACTERS])
def test_values_with_control_characters_are_refused_without_echoing_them(agent, api, request_tool, key, character):
    context = {**CONTEXT, key: f"marker-7c1e{character}X-Injected: 1"}
    result = request_tool(
        agent,
        {"connection": "app-api", "method": "POST", "endpoint": "/accounts/{account}/x", "data": {}},
        context=context,
    )
    assert result.is_error
    assert f"'{key}'" in result.content and "control character" in result.content
    assert "marker-7c1e" not in result.content and "X-Injected" not in result.content
    assert api.received == []


@pytest.mark.parametrize("value", ["租户-42", "tenant-\U0001f600", "ħ-tenant"])
def test_a_header_value_beyond_latin_1_is_refused_cleanly(agent, api, request_tool, value):
    result = request_tool(
        agent, {"connection": "app-api", "method": "GET", "endpoint": "/items"}, context={**CONTEXT, "tenant_id": value}
    )
    assert result.is_error
    assert "'tenant_id'" in result.content and "header" in result.content
    assert value not in result.content
    assert api.received == []


def test_a_latin_1_header_value_is_sent(agent, api, request_tool):
    result = request_tool(
        agent,
        {"connection": "app-api", "method": "GET", "endpoint": "/items"},
        context={**CONTEXT, "tenant_id": "café-42"},
    )
    assert not result.is_error, result.content
    assert api.only().header("X-Tenant-Id") == "café-42"  # http.server reads headers as Latin-1


def test_non_latin_1_values_are_encoded_in_query_path_and_body(agent, api, request_tool):
    context = {"tenant_id": "tenant-42", "region": "東京", "account": "账户/1", "org": "组织-\U0001f600"}
    result = request_tool(
        agent,
        {"connection": "app-api", "method": "POST", "endpoint": "/accounts/{account}/x", "data": {}},
        context=context,
    )
    assert not result.is_error, result.content
    received = api.only()
    assert received.target.startswith("/accounts/%E8%B4%A6%E6%88%B7%2F1/x?")
    assert received.query == {"region": ["東京"]}
    assert received.json == {"org_id": "组织-\U0001f600"}


@pytest.mark.parametrize("value", ["..;", "..;x", ".;x", "%2e%2e", "..%3B"])
def test_a_path_value_that_is_a_disguised_dot_segment_is_refused(api, make_agent, request_tool, value):
    agent = make_agent({"app-api": injecting_spec(api, baseUrl=api.url("/api/v1"))})
    result = request_tool(
        agent,
        {"connection": "app-api", "method": "GET", "endpoint": "/{account}/x"},
        context={**CONTEXT, "account": value},
    )
    assert result.is_error, result.content
    assert api.received == []
