"""Authentication and scope resolution at the chat and history entry points (SPEC §2)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client, override_settings

from agents.models import Message, Session, SessionTag, UsageRecord
from core.tools import Tool, ToolResult
from scoping.models import ApiKey, Scope
from scoping.services import create_api_key, revoke_api_key
from scoping.tokens import mint_token
from tests.conftest import write_agent_folder

CHAT_PATHS = ["/chat/stream", "/chat/sync"]


def claims(**overrides):
    now = int(time.time())
    base = {"sub": "user-1", "scope_id": "tenant-a", "scopeContext": {}, "iat": now, "exp": now + 600}
    base.update(overrides)
    return base


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def expired_token(db):
    return bearer(mint_token(scope_id="tenant-a", ttl_seconds=-60))


def unsigned_token(db):
    return bearer(jwt.encode(claims(), None, algorithm="none"))


def wrong_key_token(db):
    return bearer(jwt.encode(claims(), "another-secret-that-is-long-enough-0123456789", algorithm="HS256"))


def no_exp_token(db):
    payload = claims()
    del payload["exp"]
    return bearer(jwt.encode(payload, settings.AMODAL_JWT_SECRET, algorithm="HS256"))


def tampered_token(db):
    token = mint_token(scope_id="tenant-a")
    header, payload, signature = token.split(".")
    other_payload = mint_token(scope_id="tenant-b").split(".")[1]
    return bearer(f"{header}.{other_payload}.{signature}")


def revoked_key(db):
    key = create_api_key(name="revoked")
    revoke_api_key(api_key=key.api_key)
    return bearer(key.raw_key)


def unknown_key(db):
    return bearer("ak_" + "x" * 43)


BAD_CREDENTIALS = {
    "expired": (expired_token, "invalid_token"),
    "alg-none": (unsigned_token, "invalid_token"),
    "wrong-key": (wrong_key_token, "invalid_token"),
    "no-exp": (no_exp_token, "invalid_token"),
    "tampered": (tampered_token, "invalid_token"),
    "malformed": (lambda db: bearer("not-a-jwt"), "invalid_token"),
    "malformed-dots": (lambda db: bearer("a.b.c"), "invalid_token"),
    "empty-bearer": (lambda db: {"Authorization": "Bearer "}, "invalid_token"),
    "missing": (lambda db: {}, "authentication_required"),
    "basic": (lambda db: {"Authorization": "Basic dXNlcjpwYXNz"}, "invalid_token"),
    "token-scheme": (lambda db: {"Authorization": "Token abc"}, "invalid_token"),
    "revoked-key": (revoked_key, "invalid_token"),
    "unknown-key": (unknown_key, "invalid_token"),
}


def assert_error(body: dict, code: str) -> None:
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"].endswith(".")


def assert_nothing_written() -> None:
    assert Session.all_scopes.count() == 0
    assert Message.all_scopes.count() == 0
    assert UsageRecord.all_scopes.count() == 0
    assert SessionTag.all_scopes.count() == 0
    assert Scope.objects.count() == 0


@pytest.fixture
def context_seen(register_tools):
    """A tool `t_context` that records the scope and context it ran with."""
    seen: list[tuple[str, dict]] = []

    async def handler(context, arguments):
        seen.append((context.scope_id, dict(context.scope_context)))
        return ToolResult("ok")

    register_tools(Tool("t_context", "Shows its context.", {"type": "object"}, handler))
    return seen


# --- 401 -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", CHAT_PATHS)
@pytest.mark.parametrize("case", list(BAD_CREDENTIALS))
@pytest.mark.django_db(transaction=True)
def test_bad_credentials_are_401_on_chat(test_agent, chat, case, path):
    make_headers, code = BAD_CREDENTIALS[case]
    result = chat.post(path, {"message": "/say hi", "scope_id": "tenant-a"}, make_headers(None))
    assert result.status == 401
    assert_error(result.json(), code)
    assert_nothing_written()


@pytest.mark.parametrize("case", list(BAD_CREDENTIALS))
@pytest.mark.django_db(transaction=True)
def test_bad_credentials_are_401_on_history(test_agent, case):
    make_headers, code = BAD_CREDENTIALS[case]
    response = Client().get("/sessions/history", headers=make_headers(None))
    assert response.status_code == 401
    assert_error(response.json(), code)


@pytest.mark.django_db(transaction=True)
def test_the_same_request_with_a_good_token_is_accepted(test_agent, chat, jwt_header):
    result = chat.stream({"message": "/say hi"}, jwt_header("tenant-a"))
    assert result.status == 200
    assert Client().get("/sessions/history", headers=jwt_header("tenant-a")).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_an_api_key_that_is_revoked_later_stops_working(test_agent, chat):
    key = create_api_key(name="later")
    assert chat.stream({"message": "/say hi"}, bearer(key.raw_key)).status == 200
    assert ApiKey.objects.get(pk=key.api_key.pk).last_used_at is not None
    revoke_api_key(api_key=key.api_key)
    result = chat.stream({"message": "/say hi"}, bearer(key.raw_key))
    assert result.status == 401
    assert_error(result.json(), "invalid_token")


# --- Resolution ----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_jwt_scope_wins_over_the_body_scope(test_agent, chat, jwt_header):
    result = chat.stream({"message": "/say hi", "scope_id": "tenant-b"}, jwt_header("tenant-a"))
    assert result.status == 200
    assert result.events[0]["scope_id"] == "tenant-a"
    session = Session.all_scopes.get(pk=result.events[0]["session_id"])
    assert session.scope == "tenant-a"
    assert set(Message.all_scopes.values_list("scope", flat=True)) == {"tenant-a"}
    assert set(UsageRecord.all_scopes.values_list("scope", flat=True)) == {"tenant-a"}
    assert list(Scope.objects.values_list("scope_id", flat=True)) == ["tenant-a"]
    assert not Session.all_scopes.filter(scope="tenant-b").exists()


@pytest.mark.parametrize(
    ("claims_context", "body_context"),
    [
        ({"tenant": "t1"}, {"tenant": "evil", "extra": "x"}),
        ({}, {"tenant": "evil"}),
        ({"a": "1", "b": "2"}, None),
    ],
)
@pytest.mark.django_db(transaction=True)
def test_claims_context_replaces_the_body_context_whole(
    test_agent, chat, jwt_header, context_seen, claims_context, body_context
):
    body = {"message": "/tool t_context {}", "scope_id": "tenant-b", "context": body_context}
    result = chat.stream(body, jwt_header("tenant-a", claims_context))
    assert result.status == 200
    assert context_seen == [("tenant-a", claims_context)]


@pytest.mark.django_db(transaction=True)
def test_jwt_caller_with_a_malformed_body_context_is_not_an_error(test_agent, chat, jwt_header, context_seen):
    body = {"message": "/tool t_context {}", "context": {"n": 1}}
    result = chat.stream(body, jwt_header("tenant-a", {"k": "v"}))
    assert result.status == 200
    assert context_seen == [("tenant-a", {"k": "v"})]


@pytest.mark.django_db(transaction=True)
def test_api_key_acts_in_the_body_scope_with_the_body_context(test_agent, chat, api_key_header, context_seen):
    body = {"message": "/tool t_context {}", "scope_id": "tenant-b", "context": {"user": "u1"}}
    result = chat.stream(body, api_key_header())
    assert result.status == 200
    assert result.events[0]["scope_id"] == "tenant-b"
    assert context_seen == [("tenant-b", {"user": "u1"})]
    assert Session.all_scopes.get().scope == "tenant-b"


@pytest.mark.django_db(transaction=True)
def test_api_key_without_body_scope_acts_in_the_global_scope(test_agent, chat, api_key_header):
    result = chat.stream({"message": "/say hi"}, api_key_header())
    assert result.status == 200
    assert result.events[0]["scope_id"] == ""
    assert Session.all_scopes.get().scope == ""
    assert list(Scope.objects.values_list("scope_id", flat=True)) == [""]


@pytest.mark.parametrize("path", CHAT_PATHS)
@pytest.mark.django_db(transaction=True)
def test_scope_restricted_api_key_cannot_act_in_another_scope(test_agent, chat, api_key_header, path):
    headers = api_key_header(scope_id="tenant-a")
    result = chat.post(path, {"message": "/say hi", "scope_id": "tenant-b"}, headers)
    assert result.status == 403
    assert_error(result.json(), "scope_forbidden")
    assert_nothing_written()


@pytest.mark.parametrize("body_scope", ["tenant-a", None, ""])
@pytest.mark.django_db(transaction=True)
def test_scope_restricted_api_key_acts_in_its_own_scope(test_agent, chat, api_key_header, body_scope):
    body = {"message": "/say hi"} if body_scope is None else {"message": "/say hi", "scope_id": body_scope}
    result = chat.stream(body, api_key_header(scope_id="tenant-a"))
    assert result.status == 200
    assert result.events[0]["scope_id"] == "tenant-a"
    assert Session.all_scopes.get().scope == "tenant-a"


@pytest.mark.django_db(transaction=True)
def test_scope_restricted_api_key_cannot_read_another_scopes_history(test_agent, api_key_header):
    response = Client().get("/sessions/history", {"scope_id": "tenant-b"}, headers=api_key_header("tenant-a"))
    assert response.status_code == 403
    assert_error(response.json(), "scope_forbidden")


@pytest.mark.parametrize(
    "scope_id",
    ["x" * 256, "a\nb", "tab\there", "nul\x00", "bell\x07", "\u2028", 5, 0, True, ["a"], {"a": "b"}],
)
@pytest.mark.django_db(transaction=True)
def test_invalid_body_scope_ids_are_400_invalid_scope(test_agent, chat, api_key_header, scope_id):
    result = chat.stream({"message": "/say hi", "scope_id": scope_id}, api_key_header())
    assert result.status == 400
    assert_error(result.json(), "invalid_scope")
    assert_nothing_written()


@pytest.mark.parametrize("scope_id", ["x" * 255, "a", "tenant with spaces", "ünïcødé-租户", "a/b:c|d"])
@pytest.mark.django_db(transaction=True)
def test_valid_scope_ids_are_used_verbatim(test_agent, chat, api_key_header, scope_id):
    result = chat.stream({"message": "/say hi", "scope_id": scope_id}, api_key_header())
    assert result.status == 200
    assert result.events[0]["scope_id"] == scope_id
    assert Session.all_scopes.get().scope == scope_id
    assert Scope.objects.filter(scope_id=scope_id).count() == 1


# --- requireScope --------------------------------------------------------------------------------


@pytest.fixture
def scoped_agent(tmp_path, use_agent):
    return use_agent(write_agent_folder(tmp_path / "agent", amodal={"scope": {"requireScope": True}}))


def global_jwt(db):
    return bearer(mint_token(scope_id=""))


def key_without_scope(db):
    return bearer(create_api_key(name="k").raw_key)


GLOBAL_CALLERS = {"jwt-global-scope": global_jwt, "api-key-no-body-scope": key_without_scope}


@pytest.mark.parametrize("path", CHAT_PATHS)
@pytest.mark.parametrize("caller", list(GLOBAL_CALLERS))
@pytest.mark.django_db(transaction=True)
def test_require_scope_refuses_chat_without_a_scope_and_writes_nothing(scoped_agent, chat, path, caller):
    result = chat.post(path, {"message": "/say hi"}, GLOBAL_CALLERS[caller](None))
    assert result.status == 400
    assert_error(result.json(), "scope_required")
    assert_nothing_written()


@pytest.mark.django_db(transaction=True)
def test_require_scope_refuses_chat_with_an_explicit_empty_body_scope(scoped_agent, chat, api_key_header):
    result = chat.stream({"message": "/say hi", "scope_id": ""}, api_key_header())
    assert result.status == 400
    assert_error(result.json(), "scope_required")
    assert_nothing_written()


@pytest.mark.django_db(transaction=True)
def test_require_scope_refuses_an_open_caller_without_scope(scoped_agent, chat):
    with override_settings(AMODAL_AUTH="open"):
        result = chat.stream({"message": "/say hi"})
    assert result.status == 400
    assert_error(result.json(), "scope_required")
    assert_nothing_written()


@pytest.mark.parametrize("caller", list(GLOBAL_CALLERS))
@pytest.mark.django_db(transaction=True)
def test_require_scope_refuses_history_without_a_scope(scoped_agent, caller):
    headers = GLOBAL_CALLERS[caller](None)
    client = Client()
    for response in (
        client.get("/sessions/history", headers=headers),
        client.get("/sessions/history/00000000-0000-0000-0000-000000000000", headers=headers),
        client.patch(
            "/sessions/history/00000000-0000-0000-0000-000000000000",
            {"title": "x"},
            content_type="application/json",
            headers=headers,
        ),
        client.delete("/sessions/history/00000000-0000-0000-0000-000000000000", headers=headers),
    ):
        assert response.status_code == 400
        assert_error(response.json(), "scope_required")
    assert_nothing_written()


@pytest.mark.usefixtures("async_db_cleanup")
@pytest.mark.django_db(transaction=True)
def test_require_scope_refuses_a_websocket_message_without_a_scope(scoped_agent):
    from amodal_site.asgi import application

    async def talk():
        communicator = WebsocketCommunicator(application, "/ws/chat")
        connected, _ = await communicator.connect()
        assert connected
        await communicator.send_json_to({"type": "auth", "token": mint_token(scope_id="")})
        assert (await communicator.receive_json_from(timeout=5))["type"] == "auth_ok"
        await communicator.send_json_to({"type": "message", "message": "/say hi"})
        reply = await communicator.receive_json_from(timeout=5)
        assert await communicator.receive_nothing(timeout=0.1)
        await communicator.disconnect()
        return reply

    reply = asyncio.run(talk())
    assert reply["type"] == "error"
    assert reply["code"] == "scope_required"
    assert_nothing_written()


@pytest.mark.django_db(transaction=True)
def test_require_scope_accepts_a_scoped_caller(scoped_agent, chat, jwt_header):
    result = chat.stream({"message": "/say hi"}, jwt_header("tenant-a"))
    assert result.status == 200
    assert result.events[0]["scope_id"] == "tenant-a"
    assert Client().get("/sessions/history", headers=jwt_header("tenant-a")).status_code == 200


# --- AMODAL_AUTH=open ----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_open_auth_lets_a_request_without_token_choose_its_scope(test_agent, chat, context_seen):
    with override_settings(AMODAL_AUTH="open"):
        body = {"message": "/tool t_context {}", "scope_id": "open-scope", "context": {"k": "v"}}
        result = chat.stream(body)
        history = Client().get("/sessions/history", {"scope_id": "open-scope"})
    assert result.status == 200
    assert result.events[0]["scope_id"] == "open-scope"
    assert context_seen == [("open-scope", {"k": "v"})]
    assert Session.all_scopes.get().scope == "open-scope"
    assert history.status_code == 200
    assert [item["id"] for item in history.json()] == [result.events[0]["session_id"]]


@pytest.mark.django_db(transaction=True)
def test_open_auth_without_scope_uses_the_global_scope(test_agent, chat):
    with override_settings(AMODAL_AUTH="open"):
        result = chat.stream({"message": "/say hi"})
    assert result.status == 200
    assert result.events[0]["scope_id"] == ""


@pytest.mark.django_db(transaction=True)
def test_open_auth_still_verifies_a_token_that_is_sent(test_agent, chat):
    with override_settings(AMODAL_AUTH="open"):
        result = chat.stream({"message": "/say hi"}, bearer("not-a-jwt"))
        jwt_result = chat.stream({"message": "/say hi", "scope_id": "b"}, bearer(mint_token(scope_id="a")))
    assert result.status == 401
    assert jwt_result.status == 200
    assert jwt_result.events[0]["scope_id"] == "a"


@pytest.mark.django_db(transaction=True)
def test_token_auth_refuses_a_request_without_token(test_agent, chat):
    result = chat.stream({"message": "/say hi", "scope_id": "open-scope"})
    assert result.status == 401
    assert_error(result.json(), "authentication_required")
    assert_nothing_written()


# --- Scopes are created on first use -------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_scope_is_created_on_first_use_and_its_last_activity_updated(test_agent, chat, jwt_header):
    assert Scope.objects.count() == 0
    first = chat.stream({"message": "/say hi"}, jwt_header("tenant-a"))
    assert first.status == 200
    row = Scope.objects.get(scope_id="tenant-a")
    first_seen = row.first_seen_at
    assert row.last_seen_at >= first_seen
    long_ago = datetime(2000, 1, 1, tzinfo=UTC)
    Scope.objects.filter(pk=row.pk).update(last_seen_at=long_ago)

    second = chat.stream({"message": "/say again"}, jwt_header("tenant-a"))
    assert second.status == 200
    row.refresh_from_db()
    assert row.first_seen_at == first_seen
    assert row.last_seen_at > long_ago + timedelta(days=365)
    assert Scope.objects.count() == 1
