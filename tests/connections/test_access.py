"""access.json and intents (SPEC §4): templated patterns, `never`, read intent on a mutating method, and
the confirmation round trip through the chat stream (preview, approve or deny, confirmed_write once)."""

from __future__ import annotations

import json

import pytest

from agents.runtime.providers.local import ScriptedTurn, scripted_turns
from connections.access import matching_rule
from connections.models import PendingAction
from connections.specs import connections_of

ACCESS = {
    "endpoints": {
        "POST /transfers": {"confirm": True, "reason": "Moves money between accounts"},
        "DELETE /accounts/{id}": {"confirm": "never", "reason": "accounts are closed by support"},
        "PUT /accounts/{id}/limits": {"confirm": True},
        "PATCH /profile": {"confirm": False},
    }
}
TRANSFER = {
    "connection": "bank",
    "method": "POST",
    "endpoint": "/transfers",
    "data": {"amount": 100, "to": "acc-2"},
    "intent": "write",
}


@pytest.fixture
def agent(make_agent, api):
    return make_agent(
        {
            "bank": {
                "baseUrl": api.base_url,
                "timeoutSeconds": 5,
                "auth": {"type": "bearer", "token": "bank-token-1234"},
            }
        },
        access={"bank": ACCESS},
    )


def tool_message(arguments: dict) -> str:
    return "/tool request " + json.dumps(arguments)


def approve(correlation_id: str) -> str:
    return f"I approve the action (correlation: {correlation_id})"


def deny(correlation_id: str) -> str:
    return f"I deny the action (correlation: {correlation_id})"


# --- patterns and refusals -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "endpoint", "expected"),
    [
        ("DELETE", "/accounts/acc-1", "DELETE /accounts/{id}"),
        ("DELETE", "/accounts/acc-1/", "DELETE /accounts/{id}"),
        ("DELETE", "/accounts/acc-1?force=true", "DELETE /accounts/{id}"),
        ("PUT", "/accounts/acc-9/limits", "PUT /accounts/{id}/limits"),
        ("POST", "/transfers", "POST /transfers"),
        ("DELETE", "/accounts/acc-1/cards", None),
        ("DELETE", "/accounts", None),
        ("GET", "/accounts/acc-1", None),
        ("POST", "/transfers/123", None),
        ("POST", "/transfers;x", "POST /transfers"),
        ("POST", "/transfers/;x", "POST /transfers"),
        ("POST", "/transfers%3bx", "POST /transfers"),
        ("DELETE", "/accounts/acc-1/;x", "DELETE /accounts/{id}"),
        ("DELETE", "/accounts;v=2/acc-1", "DELETE /accounts/{id}"),
        ("POST", "/trans;x/fers", None),
    ],
)
def test_patterns_match_templated_paths(agent, method, endpoint, expected):
    rule = matching_rule(connections_of(agent)["bank"], method, endpoint)
    assert (f"{rule.method} {rule.path_pattern}" if rule else None) == expected


@pytest.mark.parametrize(
    "endpoint",
    [
        "/accounts/acc-1",
        "/accounts/acc-1/",
        "/accounts/acc-1?force=true",
        "/accounts/%61cc-1",  # percent-encoded letters: the API decodes them to the same path
        "/%61ccounts/acc-1",
        "/accounts%2Facc-1",
        "/ACCOUNTS/acc-1",
        "/accounts/acc-1/;x",  # `;` path parameters are dropped by many servers
        "/accounts;v=1/acc-1",
        "/accounts/acc-1/%3bx",
        "/;x/accounts/acc-1",
    ],
)
@pytest.mark.parametrize("intent", ["write", "confirmed_write", None])
def test_confirm_never_is_refused_and_nothing_is_sent(agent, api, request_tool, endpoint, intent):
    arguments = {"connection": "bank", "method": "DELETE", "endpoint": endpoint}
    if intent:
        arguments["intent"] = intent
    result = request_tool(agent, arguments)
    assert result.is_error, f"{endpoint} was sent"
    assert "never" in result.content and "bank" in result.content
    assert api.received == []


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_a_mutating_method_with_intent_read_is_refused(agent, api, request_tool, method):
    result = request_tool(
        agent, {"connection": "bank", "method": method, "endpoint": "/notes", "data": {}, "intent": "read"}
    )
    assert result.is_error
    assert "read" in result.content
    assert api.received == []


def test_an_unknown_intent_is_refused(agent, api, request_tool):
    result = request_tool(agent, {"connection": "bank", "method": "GET", "endpoint": "/x", "intent": "admin"})
    assert result.is_error
    assert api.received == []


def test_writes_without_a_confirm_rule_are_sent(agent, api, request_tool):
    for arguments in [
        {"method": "PATCH", "endpoint": "/profile", "data": {"name": "A"}},
        {"method": "POST", "endpoint": "/notes", "data": {"n": 1}, "intent": "write"},
    ]:
        assert not request_tool(agent, {"connection": "bank", **arguments}).is_error
    assert [(r.method, r.path) for r in api.received] == [("PATCH", "/profile"), ("POST", "/notes")]


@pytest.mark.django_db(transaction=True)
def test_a_confirmed_write_without_a_preview_is_refused(agent, api, request_tool):
    result = request_tool(agent, {**TRANSFER, "intent": "confirmed_write"})
    assert result.is_error
    assert "approved preview" in result.content
    assert api.received == []


# --- the round trip through the chat stream ---------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_preview_then_approval_executes_exactly_once(agent, api, chat, jwt_header):
    headers = jwt_header("tenant-a")
    first = chat.stream({"message": tool_message(TRANSFER)}, headers)
    assert first.status == 200
    session_id = first.of_type("init")[0]["session_id"]
    (start,) = first.of_type("tool_call_start")
    (confirmation,) = first.of_type("confirmation_required")
    assert confirmation == {
        "type": "confirmation_required",
        "tool_id": start["tool_id"],
        "correlation_id": start["tool_id"],
        "connection": "bank",
        "connection_name": "bank",
        "method": "POST",
        "endpoint": "/transfers",
        "reason": "Moves money between accounts",
        "escalated": False,
        "params": {"params": {}, "data": {"amount": 100, "to": "acc-2"}},
        "timestamp": confirmation["timestamp"],
    }
    types = [item["type"] for item in first.events]
    assert types.index("tool_call_start") < types.index("confirmation_required") < types.index("tool_call_result")
    (preview,) = first.of_type("tool_call_result")
    assert preview["status"] == "success" and "approval" in preview["result"]
    assert api.received == []  # nothing sent before the user approves

    correlation_id = confirmation["correlation_id"]
    second = chat.stream({"message": approve(correlation_id), "session_id": session_id}, headers)
    (call,) = second.of_type("tool_call_start")
    assert call["parameters"]["intent"] == "confirmed_write"
    (result,) = second.of_type("tool_call_result")
    assert result["status"] == "success", result
    received = api.only()
    assert (received.method, received.path, received.json) == ("POST", "/transfers", {"amount": 100, "to": "acc-2"})
    assert received.header("Authorization") == "Bearer bank-token-1234"

    # The same approval again, or the same confirmed call again: refused, nothing more is sent.
    third = chat.stream({"message": approve(correlation_id), "session_id": session_id}, headers)
    assert [item["status"] for item in third.of_type("tool_call_result")] == ["error"]
    fourth = chat.stream(
        {"message": tool_message({**TRANSFER, "intent": "confirmed_write"}), "session_id": session_id}, headers
    )
    assert [item["status"] for item in fourth.of_type("tool_call_result")] == ["error"]
    assert len(api.received) == 1
    with_scope = PendingAction.all_scopes.get(correlation_id=correlation_id)
    assert with_scope.scope == "tenant-a" and with_scope.executed_at is not None


@pytest.mark.django_db(transaction=True)
def test_a_confirmed_write_before_approval_is_refused(agent, api, chat, jwt_header):
    headers = jwt_header("tenant-a")
    first = chat.stream({"message": tool_message(TRANSFER)}, headers)
    session_id = first.of_type("init")[0]["session_id"]
    early = chat.stream(
        {"message": tool_message({**TRANSFER, "intent": "confirmed_write"}), "session_id": session_id}, headers
    )
    (result,) = early.of_type("tool_call_result")
    assert result["status"] == "error"
    assert "not approved" in result["error"]
    assert api.received == []


@pytest.mark.django_db(transaction=True)
def test_an_approval_covers_only_the_same_call(agent, api, chat, jwt_header):
    headers = jwt_header("tenant-a")
    first = chat.stream({"message": tool_message(TRANSFER)}, headers)
    session_id = first.of_type("init")[0]["session_id"]
    correlation_id = first.of_type("confirmation_required")[0]["correlation_id"]
    changed = [
        {**TRANSFER, "data": {"amount": 100000, "to": "acc-2"}, "intent": "confirmed_write"},
        {**TRANSFER, "data": {"amount": 100, "to": "acc-666"}, "intent": "confirmed_write"},
        {**TRANSFER, "params": {"dry_run": "false"}, "intent": "confirmed_write"},
        {**TRANSFER, "endpoint": "/transfers?x=1", "intent": "confirmed_write"},
        {**TRANSFER, "method": "PUT", "endpoint": "/accounts/a/limits", "intent": "confirmed_write"},
    ]
    # The user approves, but the model then tries other calls under that approval.
    with scripted_turns(ScriptedTurn(tool_calls=tuple(("request", arguments) for arguments in changed))):
        second = chat.stream({"message": approve(correlation_id), "session_id": session_id}, headers)
    assert [item["status"] for item in second.of_type("tool_call_result")] == ["error"] * len(changed)
    assert api.received == []
    # The approved call itself still runs, once.
    third = chat.stream(
        {"message": tool_message({**TRANSFER, "intent": "confirmed_write"}), "session_id": session_id}, headers
    )
    assert [item["status"] for item in third.of_type("tool_call_result")] == ["success"]
    assert api.only().json == {"amount": 100, "to": "acc-2"}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("other_scope", ["tenant-a", "tenant-b"])
def test_an_approval_from_another_session_does_nothing(agent, api, chat, jwt_header, other_scope):
    first = chat.stream({"message": tool_message(TRANSFER)}, jwt_header("tenant-a"))
    correlation_id = first.of_type("confirmation_required")[0]["correlation_id"]
    other = jwt_header(other_scope)
    # A new session approves the other session's correlation id, then tries the confirmed call.
    approval = chat.stream({"message": approve(correlation_id)}, other)
    other_session = approval.of_type("init")[0]["session_id"]
    assert approval.of_type("tool_call_start") == []
    with scripted_turns(ScriptedTurn(tool_calls=(("request", {**TRANSFER, "intent": "confirmed_write"}),))):
        attempt = chat.stream({"message": approve(correlation_id), "session_id": other_session}, other)
    (result,) = attempt.of_type("tool_call_result")
    assert result["status"] == "error"
    assert api.received == []
    pending = PendingAction.all_scopes.get(correlation_id=correlation_id, scope="tenant-a")
    assert pending.approved_at is None and pending.executed_at is None


@pytest.mark.django_db(transaction=True)
def test_a_denied_action_is_never_sent(agent, api, chat, jwt_header):
    headers = jwt_header("tenant-a")
    first = chat.stream({"message": tool_message(TRANSFER)}, headers)
    session_id = first.of_type("init")[0]["session_id"]
    correlation_id = first.of_type("confirmation_required")[0]["correlation_id"]
    denied = chat.stream({"message": deny(correlation_id), "session_id": session_id}, headers)
    assert denied.of_type("tool_call_start") == []
    assert denied.of_type("done")[0]["reason"] == "model_stop"
    late_approval = chat.stream({"message": approve(correlation_id), "session_id": session_id}, headers)
    retry = chat.stream(
        {"message": tool_message({**TRANSFER, "intent": "confirmed_write"}), "session_id": session_id}, headers
    )
    for response in (late_approval, retry):
        assert [item["status"] for item in response.of_type("tool_call_result")] == ["error"]
    assert api.received == []
    pending = PendingAction.all_scopes.get(correlation_id=correlation_id)
    assert pending.denied_at is not None and pending.executed_at is None


@pytest.mark.django_db(transaction=True)
def test_the_preview_redacts_secret_looking_params(agent, api, chat, jwt_header):
    arguments = {
        **TRANSFER,
        "params": {"api_token": "tok-in-params-123"},
        "data": {"amount": 5, "password": "hunter2-in-data"},
    }
    response = chat.stream({"message": tool_message(arguments)}, jwt_header("tenant-a"))
    (confirmation,) = response.of_type("confirmation_required")
    assert confirmation["params"] == {
        "params": {"api_token": "[REDACTED]"},
        "data": {"amount": 5, "password": "[REDACTED]"},
    }
    (start,) = response.of_type("tool_call_start")
    assert start["parameters"]["data"]["password"] == "[REDACTED]"
    stream_text = "\n".join(response.frames)
    assert "tok-in-params-123" not in stream_text and "hunter2-in-data" not in stream_text
    assert api.received == []


@pytest.mark.django_db(transaction=True)
def test_sync_endpoint_reports_the_preview_without_sending(agent, api, chat, jwt_header):
    response = chat.sync({"message": tool_message(TRANSFER)}, jwt_header("tenant-a"))
    assert response.status == 200
    (call,) = response.json()["tool_calls"]
    assert call["status"] == "success" and "approval" in call["result"]
    assert api.received == []


@pytest.mark.parametrize(
    "endpoint",
    [
        "/%74ransfers",
        "/Transfers",
        "/transfers/",
        "/transfers?via=x",
        "/transfers;x",
        "/transfers;jsessionid=1",
        "/transfers/;x",
        "/Transfers;x",
        "/transfers%3bx",
        "/transfers%3Bjsessionid=1",
        "/transfers%253bx",
        "/;x/transfers",
        "/transfers;x/",
        "/transfers;x?via=y",
    ],
)
@pytest.mark.django_db(transaction=True)
def test_an_encoded_or_recased_path_still_needs_confirmation(agent, api, request_tool, endpoint):
    result = request_tool(agent, {**TRANSFER, "endpoint": endpoint})
    assert not result.is_error
    assert result.extra_events and result.extra_events[0]["type"] == "confirmation_required"
    assert api.received == []


@pytest.mark.django_db(transaction=True)
def test_an_approved_write_with_an_author_field_runs(agent, api, chat, jwt_header):
    headers = jwt_header("tenant-a")
    arguments = {**TRANSFER, "data": {"amount": 1, "author": "Bob"}}
    first = chat.stream({"message": tool_message(arguments)}, headers)
    session_id = first.of_type("init")[0]["session_id"]
    correlation_id = first.of_type("confirmation_required")[0]["correlation_id"]
    second = chat.stream({"message": approve(correlation_id), "session_id": session_id}, headers)
    assert [item["status"] for item in second.of_type("tool_call_result")] == ["success"]
    assert api.only().json == {"amount": 1, "author": "Bob"}
