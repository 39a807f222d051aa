"""WebSocket /ws/chat: auth by first message or ?token=, the same events as SSE, cancel (SPEC §3)."""

from __future__ import annotations

import asyncio
from urllib.parse import quote

import pytest
from channels.testing import WebsocketCommunicator
from django.db import InterfaceError, OperationalError

from agents.models import Message, Session, SessionStatus, SessionTag, UsageRecord
from amodal_site.asgi import application
from scoping.models import Scope
from scoping.services import create_api_key
from scoping.tokens import mint_token
from tests.conftest import write_agent_folder
from tests.errors.test_unavailable import database_down_everywhere

TIMEOUT = 10

pytestmark = pytest.mark.usefixtures("async_db_cleanup")


async def connect(path: str = "/ws/chat") -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, path)
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    assert connected
    return communicator


async def receive_until_done(communicator: WebsocketCommunicator, on_event=None) -> list[dict]:
    events = []
    while True:
        item = await communicator.receive_json_from(timeout=TIMEOUT)
        events.append(item)
        if on_event is not None:
            await on_event(item, communicator)
        if item["type"] == "done":
            return events


async def expect_close(communicator: WebsocketCommunicator) -> int:
    output = await communicator.receive_output(timeout=TIMEOUT)
    assert output["type"] == "websocket.close"
    return output["code"]


def without_volatile(events: list[dict]) -> list[dict]:
    own = ("timestamp", "session_id", "message_id")  # each message's own session and assistant message
    return [{k: v for k, v in item.items() if k not in own} for item in events]


def assert_nothing_written() -> None:
    assert Session.all_scopes.count() == 0
    assert Message.all_scopes.count() == 0
    assert UsageRecord.all_scopes.count() == 0
    assert SessionTag.all_scopes.count() == 0
    assert Scope.objects.count() == 0


# --- Auth ----------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_auth_by_first_message_then_a_message_streams_init_to_done(test_agent):
    token = mint_token(scope_id="tenant-a")

    async def talk():
        communicator = await connect()
        await communicator.send_json_to({"type": "auth", "token": token})
        auth = await communicator.receive_json_from(timeout=TIMEOUT)
        await communicator.send_json_to({"type": "message", "message": "/say hello over the socket"})
        events = await receive_until_done(communicator)
        await communicator.disconnect()
        return auth, events

    auth, events = asyncio.run(talk())
    assert auth["type"] == "auth_ok"
    assert events[0]["type"] == "init"
    assert events[0]["scope_id"] == "tenant-a"
    assert events[-1]["type"] == "done"
    assert events[-1]["reason"] == "model_stop"
    assert all("timestamp" in item for item in events)
    assert "".join(e["content"] for e in events if e["type"] == "text_delta") == "hello over the socket"
    assert Session.all_scopes.get(pk=events[0]["session_id"]).scope == "tenant-a"


@pytest.mark.parametrize("kind", ["jwt", "api_key"])
@pytest.mark.django_db(transaction=True)
def test_auth_by_query_token(test_agent, kind):
    token = mint_token(scope_id="tenant-q") if kind == "jwt" else create_api_key(name="ws").raw_key
    body = {"type": "message", "message": "/say hi"}
    if kind == "api_key":
        body["scope_id"] = "tenant-q"

    async def talk():
        communicator = await connect(f"/ws/chat?token={quote(token)}")
        auth = await communicator.receive_json_from(timeout=TIMEOUT)
        await communicator.send_json_to(body)
        events = await receive_until_done(communicator)
        await communicator.disconnect()
        return auth, events

    auth, events = asyncio.run(talk())
    assert auth["type"] == "auth_ok"
    assert events[0]["scope_id"] == "tenant-q"
    assert events[-1]["reason"] == "model_stop"


@pytest.mark.parametrize(
    ("token", "code"),
    [("not-a-jwt", "invalid_token"), ("ak_unknown", "invalid_token"), ("", "authentication_required")],
)
@pytest.mark.django_db(transaction=True)
def test_bad_token_in_the_query_is_an_error_then_close_4401(test_agent, token, code):
    async def talk():
        communicator = await connect(f"/ws/chat?token={token}")
        if not token:  # an empty query token is no token: the first message is refused
            await communicator.send_json_to({"type": "message", "message": "/say hi", "scope_id": "x"})
        error = await communicator.receive_json_from(timeout=TIMEOUT)
        close_code = await expect_close(communicator)
        return error, close_code

    error, close_code = asyncio.run(talk())
    assert error["type"] == "error"
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    assert close_code == 4401
    assert_nothing_written()


@pytest.mark.parametrize("token", ["not-a-jwt", None, 42, ""])
@pytest.mark.django_db(transaction=True)
def test_bad_token_in_the_first_message_is_an_error_then_close_4401(test_agent, token):
    expired = token is None

    async def talk():
        communicator = await connect()
        sent = mint_token(scope_id="tenant-a", ttl_seconds=-60) if expired else token
        await communicator.send_json_to({"type": "auth", "token": sent})
        error = await communicator.receive_json_from(timeout=TIMEOUT)
        return error, await expect_close(communicator)

    error, close_code = asyncio.run(talk())
    assert error["type"] == "error"
    assert error["code"] in ("invalid_token", "authentication_required")
    assert close_code == 4401


@pytest.mark.django_db(transaction=True)
def test_a_message_without_any_auth_is_refused(test_agent):
    async def talk():
        communicator = await connect()
        await communicator.send_json_to({"type": "message", "message": "/say hi"})
        error = await communicator.receive_json_from(timeout=TIMEOUT)
        return error, await expect_close(communicator)

    error, close_code = asyncio.run(talk())
    assert error["code"] == "authentication_required"
    assert close_code == 4401
    assert_nothing_written()


# --- Messages ------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_websocket_sends_the_same_events_as_the_sse_stream(test_agent, chat, jwt_header):
    message = "/say the same events on both transports"
    sse = chat.stream({"message": message}, jwt_header("tenant-a"))
    token = mint_token(scope_id="tenant-a")

    async def talk():
        communicator = await connect(f"/ws/chat?token={token}")
        await communicator.receive_json_from(timeout=TIMEOUT)  # auth_ok
        await communicator.send_json_to({"type": "message", "message": message})
        events = await receive_until_done(communicator)
        await communicator.disconnect()
        return events

    ws_events = asyncio.run(talk())
    assert without_volatile(ws_events) == without_volatile(sse.events)
    assert ws_events[0]["session_id"] != sse.events[0]["session_id"]


@pytest.mark.django_db(transaction=True)
def test_follow_up_messages_continue_the_session_on_one_connection(test_agent):
    token = mint_token(scope_id="tenant-a")

    async def talk():
        communicator = await connect(f"/ws/chat?token={token}")
        await communicator.receive_json_from(timeout=TIMEOUT)
        await communicator.send_json_to({"type": "message", "message": "/say first"})
        first = await receive_until_done(communicator)
        await communicator.send_json_to(
            {"type": "message", "message": "/say second", "session_id": first[0]["session_id"]}
        )
        second = await receive_until_done(communicator)
        await communicator.disconnect()
        return first, second

    first, second = asyncio.run(talk())
    assert first[0]["session_id"] == second[0]["session_id"]
    texts = list(Message.all_scopes.order_by("seq").values_list("text", flat=True))
    assert texts == ["/say first", "first", "/say second", "second"]


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ({"type": "message"}, "validation_error"),
        ({"type": "message", "message": ""}, "validation_error"),
        ({"type": "message", "message": 5}, "validation_error"),
        (
            {"type": "message", "message": "hi", "session_id": "00000000-0000-0000-0000-000000000000"},
            "session_not_found",
        ),
        ({"type": "nonsense"}, "validation_error"),
        (["not", "an", "object"], "validation_error"),
    ],
)
@pytest.mark.django_db(transaction=True)
def test_bad_frames_get_an_error_and_the_connection_stays_usable(test_agent, frame, code):
    token = mint_token(scope_id="tenant-a")

    async def talk():
        communicator = await connect(f"/ws/chat?token={token}")
        await communicator.receive_json_from(timeout=TIMEOUT)
        await communicator.send_json_to(frame)
        error = await communicator.receive_json_from(timeout=TIMEOUT)
        await communicator.send_json_to({"type": "message", "message": "/say still here"})
        events = await receive_until_done(communicator)
        await communicator.disconnect()
        return error, events

    error, events = asyncio.run(talk())
    assert error["type"] == "error"
    assert error["code"] == code
    assert events[-1]["reason"] == "model_stop"
    assert Session.all_scopes.count() == 1


@pytest.mark.django_db(transaction=True)
def test_cancel_stops_a_slow_message_with_user_abort(test_agent):
    token = mint_token(scope_id="tenant-a")
    words = "one two three four five six seven eight nine ten"

    async def cancel_on_first_delta(item, communicator):
        if item["type"] == "text_delta" and not cancelled:
            cancelled.append(True)
            await communicator.send_json_to({"type": "cancel"})

    cancelled: list[bool] = []

    async def talk():
        communicator = await connect(f"/ws/chat?token={token}")
        await communicator.receive_json_from(timeout=TIMEOUT)
        await communicator.send_json_to({"type": "message", "message": f"/slow 200 {words}"})
        events = await receive_until_done(communicator, cancel_on_first_delta)
        # The connection takes the next message.
        await communicator.send_json_to(
            {"type": "message", "message": "/say after", "session_id": events[0]["session_id"]}
        )
        after = await receive_until_done(communicator)
        await communicator.disconnect()
        return events, after

    events, after = asyncio.run(talk())
    assert events[-1]["reason"] == "user_abort"
    streamed = "".join(e["content"] for e in events if e["type"] == "text_delta")
    assert streamed and words.startswith(streamed) and streamed != words
    assert after[-1]["reason"] == "model_stop"
    session = Session.all_scopes.get(pk=events[0]["session_id"])
    interrupted = Message.all_scopes.get(session=session, seq=1)
    assert interrupted.interrupted is True
    assert interrupted.text == streamed
    assert session.status == SessionStatus.IDLE  # the later message finished normally


@pytest.mark.django_db(transaction=True)
def test_disconnect_mid_message_saves_the_partial_answer(test_agent):
    token = mint_token(scope_id="tenant-a")

    async def talk():
        communicator = await connect(f"/ws/chat?token={token}")
        await communicator.receive_json_from(timeout=TIMEOUT)
        await communicator.send_json_to({"type": "message", "message": "/slow 200 a b c d e f g h i j"})
        init = await communicator.receive_json_from(timeout=TIMEOUT)
        first_delta = await communicator.receive_json_from(timeout=TIMEOUT)
        await communicator.disconnect()
        return init, first_delta

    init, first_delta = asyncio.run(talk())
    assert first_delta["type"] == "text_delta"
    session = Session.all_scopes.get(pk=init["session_id"])
    assert session.status == SessionStatus.INTERRUPTED
    assert session.lock_token == ""
    assistant = Message.all_scopes.get(session=session, role="assistant")
    assert assistant.interrupted is True
    assert assistant.text.startswith(first_delta["content"])
    assert UsageRecord.all_scopes.filter(session=session).count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_second_message_while_one_runs_is_refused(test_agent):
    token = mint_token(scope_id="tenant-a")

    async def talk():
        communicator = await connect(f"/ws/chat?token={token}")
        await communicator.receive_json_from(timeout=TIMEOUT)
        await communicator.send_json_to({"type": "message", "message": "/slow 150 a b c d e f"})
        assert (await communicator.receive_json_from(timeout=TIMEOUT))["type"] == "init"
        await communicator.send_json_to({"type": "message", "message": "/say other"})
        events = await receive_until_done(communicator)
        await communicator.disconnect()
        return events

    events = asyncio.run(talk())
    errors = [e for e in events if e["type"] == "error"]
    assert [e["code"] for e in errors] == ["session_busy"]
    assert events[-1]["reason"] == "model_stop"
    assert Session.all_scopes.count() == 1


# --- requireScope --------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["jwt-global", "api-key-no-scope", "api-key-empty-scope"])
@pytest.mark.django_db(transaction=True)
def test_require_scope_refuses_a_message_and_writes_nothing(tmp_path, use_agent, how):
    use_agent(write_agent_folder(tmp_path / "agent", amodal={"scope": {"requireScope": True}}))
    token = mint_token(scope_id="") if how == "jwt-global" else create_api_key(name="k").raw_key
    frame = {"type": "message", "message": "/say hi"}
    if how == "api-key-empty-scope":
        frame["scope_id"] = ""

    async def talk():
        communicator = await connect()
        await communicator.send_json_to({"type": "auth", "token": token})
        assert (await communicator.receive_json_from(timeout=TIMEOUT))["type"] == "auth_ok"
        await communicator.send_json_to(frame)
        error = await communicator.receive_json_from(timeout=TIMEOUT)
        quiet = await communicator.receive_nothing(timeout=0.2)
        await communicator.disconnect()
        return error, quiet

    error, quiet = asyncio.run(talk())
    assert error["type"] == "error"
    assert error["code"] == "scope_required"
    assert quiet
    assert_nothing_written()


# --- Frames that are not JSON objects, and token expiry (SPEC §2, §3) -------------------------------


@pytest.mark.parametrize(
    ("send", "code"),
    [
        ({"text_data": "not json"}, "invalid_json"),
        ({"text_data": '{"type": "message", "message": "hi"'}, "invalid_json"),
        ({"bytes_data": b"\x00\x01binary"}, "invalid_json"),
        ({"text_data": "[" * 100_000 + "]" * 100_000}, "invalid_json"),
        ({"text_data": '{"a":' * 65 + "1" + "}" * 65}, "invalid_json"),
        ({"text_data": '"a string"'}, "validation_error"),
        ({"text_data": "null"}, "validation_error"),
    ],
    ids=["text", "truncated", "binary", "deep-100000", "deep-65", "string", "null"],
)
@pytest.mark.django_db(transaction=True)
def test_frames_that_are_not_json_objects_get_an_error_and_the_socket_stays_open(test_agent, send, code):
    token = mint_token(scope_id="tenant-a")

    async def talk():
        communicator = await connect(f"/ws/chat?token={token}")
        await communicator.receive_json_from(timeout=TIMEOUT)  # auth_ok
        await communicator.send_to(**send)
        error = await communicator.receive_json_from(timeout=TIMEOUT)
        await communicator.send_json_to({"type": "message", "message": "/say still here"})
        events = await receive_until_done(communicator)
        await communicator.disconnect()
        return error, events

    error, events = asyncio.run(talk())
    assert error["type"] == "error" and error["code"] == code
    assert error["message"]
    assert events[-1] == {**events[-1], "type": "done", "reason": "model_stop"}


@pytest.mark.django_db(transaction=True)
def test_an_expired_token_closes_the_socket_with_4401_after_the_running_message(test_agent):
    token = mint_token(scope_id="tenant-a", ttl_seconds=1)

    async def talk():
        communicator = await connect(f"/ws/chat?token={token}")
        assert (await communicator.receive_json_from(timeout=TIMEOUT))["type"] == "auth_ok"
        await communicator.send_json_to({"type": "message", "message": "/slow 250 one two three four five six"})
        events = await receive_until_done(communicator)
        expired = await communicator.receive_json_from(timeout=TIMEOUT)
        code = await expect_close(communicator)
        return events, expired, code

    events, expired, code = asyncio.run(talk())
    # The message outlived the token (6 words x 250 ms > 1 s) and still finished whole.
    assert events[-1]["reason"] == "model_stop"
    assert "".join(e["content"] for e in events if e["type"] == "text_delta").split() == [
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
    ]
    assert expired["type"] == "error" and expired["code"] == "token_expired"
    assert code == 4401


@pytest.mark.django_db(transaction=True)
def test_an_idle_socket_is_closed_when_its_token_expires(test_agent):
    token = mint_token(scope_id="tenant-a", ttl_seconds=1)

    async def talk():
        communicator = await connect()
        await communicator.send_json_to({"type": "auth", "token": token})
        assert (await communicator.receive_json_from(timeout=TIMEOUT))["type"] == "auth_ok"
        expired = await communicator.receive_json_from(timeout=TIMEOUT)
        return expired, await expect_close(communicator)

    expired, code = asyncio.run(talk())
    assert expired["code"] == "token_expired"
    assert code == 4401


@pytest.mark.django_db(transaction=True)
def test_a_fresh_token_sent_before_expiry_keeps_the_socket_open(test_agent):
    short = mint_token(scope_id="tenant-a", ttl_seconds=1)
    fresh = mint_token(scope_id="tenant-a", ttl_seconds=3600)

    async def talk():
        communicator = await connect(f"/ws/chat?token={short}")
        await communicator.receive_json_from(timeout=TIMEOUT)
        await communicator.send_json_to({"type": "auth", "token": fresh})
        assert (await communicator.receive_json_from(timeout=TIMEOUT))["type"] == "auth_ok"
        await asyncio.sleep(1.5)  # past the first token's expiry
        await communicator.send_json_to({"type": "message", "message": "/say still open"})
        events = await receive_until_done(communicator)
        await communicator.disconnect()
        return events

    events = asyncio.run(talk())
    assert events[-1]["reason"] == "model_stop"


@pytest.mark.django_db(transaction=True)
def test_an_api_key_socket_has_no_expiry(test_agent):
    raw_key = create_api_key(name="server").raw_key

    async def talk():
        communicator = await connect(f"/ws/chat?token={quote(raw_key)}")
        await communicator.receive_json_from(timeout=TIMEOUT)
        assert await communicator.receive_nothing(timeout=1.2)
        await communicator.disconnect()

    asyncio.run(talk())


# --- The database down (SPEC §3 "Durability": the stream still ends) ---------------------------------


@pytest.mark.parametrize(
    "error", [OperationalError("could not connect to server"), InterfaceError("connection already closed")]
)
@pytest.mark.django_db(transaction=True)
def test_a_message_started_while_the_database_is_down_ends_with_error_then_done_and_the_socket_lives(test_agent, error):
    token = mint_token(scope_id="tenant-a")

    async def talk():
        communicator = await connect(f"/ws/chat?token={token}")
        assert (await communicator.receive_json_from(timeout=TIMEOUT))["type"] == "auth_ok"
        with database_down_everywhere(error):
            await communicator.send_json_to({"type": "message", "message": "/say lost"})
            failed = await receive_until_done(communicator)
        await communicator.send_json_to({"type": "message", "message": "/say back again"})
        events = await receive_until_done(communicator)
        await communicator.disconnect()
        return failed, events

    failed, events = asyncio.run(talk())
    assert [item["type"] for item in failed] == ["error", "done"]
    assert failed[0]["code"] == "service_unavailable"
    assert "try again" in failed[0]["message"]
    assert failed[1]["reason"] == "error"
    assert failed[1]["usage"] == {
        "input_tokens": 0,
        "output_tokens": 0,
        "cache_read_tokens": 0,
        "cache_write_tokens": 0,
        "total_tokens": 0,
        "cost_micros": 0,
    }
    assert failed[1]["message_id"] is None
    # The socket stayed open and serves the next message once the database is back.
    assert events[-1]["reason"] == "model_stop"
    assert Message.all_scopes.filter(text="/say lost").count() == 0
    assert list(Message.all_scopes.order_by("seq").values_list("text", flat=True)) == ["/say back again", "back again"]


@pytest.mark.django_db(transaction=True)
def test_an_api_key_that_cannot_be_checked_while_the_database_is_down_closes_with_1013(test_agent):
    key = create_api_key(name="ws-down").raw_key

    async def talk():
        communicator = await connect()
        with database_down_everywhere(OperationalError("could not connect to server")):
            await communicator.send_json_to({"type": "auth", "token": key})
            error = await communicator.receive_json_from(timeout=TIMEOUT)
            code = await expect_close(communicator)
        return error, code

    error, code = asyncio.run(talk())
    assert error["type"] == "error" and error["code"] == "service_unavailable"
    assert code == 1013
