"""Rate limits on every API surface (scoping.ratelimits): the 429 `rate_limited` answer with Retry-After
and CORS on the event stream, /chat/sync, the DRF endpoints and cancel, the WebSocket's error event, and
stream slots released however a message ends. Counted in this process (REDIS_URL unset) on a clock the
tests move; tests/ratelimits/test_limiter.py runs the same algorithms in Redis, tests/e2e/test_rate_limits_live.py
across two servers."""

from __future__ import annotations

import asyncio

import pytest
from channels.testing import WebsocketCommunicator
from django.test import AsyncClient

from agents import services
from agents.models import Message, Session
from amodal_site.asgi import application
from core.ratelimit import LocalLimiter
from scoping.ratelimits import configured
from scoping.services import create_api_key
from scoping.tokens import mint_token
from tests.agents.test_query_counts import asgi_post, handoffs  # noqa: F401  (a fixture)
from tests.ratelimits.test_limiter import closed_port

ORIGIN = "https://app.example.com"
SLOW = "/slow 100 " + " ".join(f"w{i}" for i in range(50))  # five seconds of words, cancelled or cut short
TIMEOUT = 10

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def limit(settings, clock):
    """`limit(AMODAL_RATE_LIMIT_SCOPE="2/minute", ...)`: these limits, counted in this process on `clock`,
    and CORS for ORIGIN. Returns the limiter."""
    settings.CORS_ALLOWED_ORIGINS = [ORIGIN]

    def apply(redis_url: str = "", **values: object) -> LocalLimiter:
        settings.REDIS_URL = redis_url
        for name, value in values.items():
            setattr(settings, name, value)
        limiter = configured().limiter
        local = limiter if isinstance(limiter, LocalLimiter) else limiter.local
        local.clock_ms = clock
        return limiter

    return apply


def held(limiter: LocalLimiter) -> int:
    """Stream slots held in this process (a slot counts once in each of its sets)."""
    return sum(len(members) for members in limiter.slots.values())


def headers_of(result) -> dict[str, str]:
    return {name.lower(): value for name, value in result.headers.items()}


def assert_rate_limited(result, message: str, retry_after: int) -> None:
    assert result.status == 429, result.body
    assert result.json() == {"error": {"code": "rate_limited", "message": message}}
    assert headers_of(result)["retry-after"] == str(retry_after)
    assert headers_of(result)["content-type"] == "application/json"


# --- Requests per scope and per API key, on each surface ----------------------------------------------------


@pytest.mark.parametrize("path", ["/chat/stream", "/chat", "/chat/sync"])
def test_a_scope_over_its_rate_gets_429_with_retry_after_and_cors(test_agent, chat, jwt_header, limit, path):
    limit(AMODAL_RATE_LIMIT_SCOPE="2/minute")
    headers = {**jwt_header("tenant-a"), "Origin": ORIGIN}

    passed = [chat.post(path, {"message": "/say hi"}, headers).status for _ in range(2)]
    refused = chat.post(path, {"message": "/say hi"}, headers)
    other_scope = chat.post(path, {"message": "/say hi"}, jwt_header("tenant-b"))

    assert passed == [200, 200]
    assert_rate_limited(refused, "This scope is over 2 requests a minute; retry in 30 s.", 30)
    assert headers_of(refused)["access-control-allow-origin"] == ORIGIN
    assert "retry-after" in headers_of(refused)["access-control-expose-headers"].lower()
    assert other_scope.status == 200
    assert Session.all_scopes.filter(scope="tenant-a").count() == 2  # the refused message wrote nothing
    assert Message.all_scopes.filter(scope="tenant-a").count() == 4


def test_the_rate_refills_with_time(test_agent, chat, jwt_header, limit, clock):
    limit(AMODAL_RATE_LIMIT_SCOPE="2/minute")
    headers = jwt_header("tenant-a")
    statuses = [chat.sync({"message": "/say hi"}, headers).status for _ in range(3)]
    clock.advance(29)
    refused = chat.sync({"message": "/say hi"}, headers)
    clock.advance(1)
    statuses += [chat.sync({"message": "/say hi"}, headers).status for _ in range(2)]

    assert statuses == [200, 200, 429, 200, 429]
    assert_rate_limited(refused, "This scope is over 2 requests a minute; retry in 1 s.", 1)


def test_an_api_key_over_its_rate_is_refused_in_every_scope_and_jwts_are_not_counted(
    test_agent, chat, jwt_header, limit
):
    limit(AMODAL_RATE_LIMIT_KEY="3/minute")
    key = {"Authorization": "Bearer " + create_api_key(name="backend").raw_key}
    other_key = {"Authorization": "Bearer " + create_api_key(name="other").raw_key}

    statuses = [chat.sync({"message": "/say hi", "scope_id": f"tenant-{i}"}, key).status for i in range(3)]
    refused = chat.sync({"message": "/say hi", "scope_id": "tenant-9"}, key)
    jwt_statuses = [chat.sync({"message": "/say hi"}, jwt_header("tenant-0")).status for _ in range(5)]

    assert statuses == [200, 200, 200]
    assert_rate_limited(refused, "This API key is over 3 requests a minute; retry in 20 s.", 20)
    assert jwt_statuses == [200] * 5
    assert chat.sync({"message": "/say hi", "scope_id": "tenant-9"}, other_key).status == 200


def test_the_scope_limit_counts_api_key_callers_in_the_scope_they_act_in(test_agent, chat, jwt_header, limit):
    limit(AMODAL_RATE_LIMIT_SCOPE="2/minute", AMODAL_RATE_LIMIT_KEY="100/minute")
    key = {"Authorization": "Bearer " + create_api_key(name="backend").raw_key}
    assert chat.sync({"message": "/say hi", "scope_id": "tenant-a"}, key).status == 200
    assert chat.sync({"message": "/say hi"}, jwt_header("tenant-a")).status == 200
    refused = chat.sync({"message": "/say hi", "scope_id": "tenant-a"}, key)
    assert_rate_limited(refused, "This scope is over 2 requests a minute; retry in 30 s.", 30)
    assert chat.sync({"message": "/say hi", "scope_id": "tenant-b"}, key).status == 200


@pytest.mark.parametrize("path", ["/sessions/history", "/api/memory", "/api/stores"])
def test_drf_endpoints_answer_429_with_retry_after_and_cors(test_agent, client, jwt_header, limit, path):
    limit(AMODAL_RATE_LIMIT_SCOPE="1/minute")
    headers = {**jwt_header("tenant-a"), "Origin": ORIGIN}
    first = client.get(path, headers=headers)
    refused = client.get(path, headers=headers)

    assert first.status_code == 200
    assert refused.status_code == 429
    assert refused.json() == {
        "error": {"code": "rate_limited", "message": "This scope is over 1 request a minute; retry in 60 s."}
    }
    assert refused["Retry-After"] == "60"
    assert refused["Access-Control-Allow-Origin"] == ORIGIN
    assert client.get(path, headers=jwt_header("tenant-b")).status_code == 200


def test_chat_and_the_json_api_share_the_scope_count(test_agent, chat, client, jwt_header, limit):
    limit(AMODAL_RATE_LIMIT_SCOPE="2/minute")
    headers = jwt_header("tenant-a")
    session_id = chat.sync({"message": "/say hi"}, headers).json()["session_id"]
    assert client.get(f"/sessions/history/{session_id}", headers=headers).status_code == 200
    assert (
        client.patch(f"/sessions/history/{session_id}", {"title": "x"}, "application/json", headers=headers).status_code
        == 429
    )
    cancel = chat.post(f"/sessions/{session_id}/cancel", {}, headers)
    assert_rate_limited(cancel, "This scope is over 2 requests a minute; retry in 30 s.", 30)


def test_an_api_key_is_limited_on_the_json_api(test_agent, client, limit):
    limit(AMODAL_RATE_LIMIT_KEY="2/hour")
    key = {"Authorization": "Bearer " + create_api_key(name="backend").raw_key}
    statuses = [client.get("/api/memory", {"scope_id": f"s{i}"}, headers=key).status_code for i in range(3)]
    assert statuses == [200, 200, 429]


# --- WebSocket ----------------------------------------------------------------------------------------------


async def ws_connect(token: str) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, f"/ws/chat?token={token}")
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    assert connected
    assert (await communicator.receive_json_from(timeout=TIMEOUT))["type"] == "auth_ok"
    return communicator


async def ws_until_done(communicator: WebsocketCommunicator) -> list[dict]:
    events = []
    while not events or events[-1]["type"] != "done":
        events.append(await communicator.receive_json_from(timeout=TIMEOUT))
    return events


def test_a_websocket_message_over_the_limit_gets_an_error_event_and_the_socket_stays_open(test_agent, limit, clock):
    limit(AMODAL_RATE_LIMIT_SCOPE="1/minute")

    async def talk():
        communicator = await ws_connect(mint_token(scope_id="tenant-a"))
        await communicator.send_json_to({"type": "message", "message": "/say one"})
        first = await ws_until_done(communicator)
        await communicator.send_json_to({"type": "message", "message": "/say two"})
        refused = await communicator.receive_json_from(timeout=TIMEOUT)
        clock.advance(60)
        await communicator.send_json_to({"type": "message", "message": "/say three"})
        third = await ws_until_done(communicator)
        await communicator.disconnect()
        return first, refused, third

    first, refused, third = asyncio.run(talk())
    assert first[-1]["reason"] == "model_stop"
    assert {k: v for k, v in refused.items() if k != "timestamp"} == {
        "type": "error",
        "code": "rate_limited",
        "message": "This scope is over 1 request a minute; retry in 60 s.",
    }
    assert third[-1]["reason"] == "model_stop"
    assert Session.all_scopes.count() == 2


# --- Streams open at once -------------------------------------------------------------------------------------


async def until_init(chat, body, headers) -> tuple[asyncio.Task, str]:
    """Start a stream and return it (running) once `init` has arrived, with its session id."""
    init = asyncio.get_running_loop().create_future()

    def on_event(item):
        if item["type"] == "init" and not init.done():
            init.set_result(item["session_id"])

    task = asyncio.create_task(chat.astream(body, headers, on_event=on_event))
    return task, await asyncio.wait_for(init, TIMEOUT)


def test_a_scope_at_its_streams_limit_gets_429_until_a_stream_ends(test_agent, chat, jwt_header, limit):
    limiter = limit(AMODAL_STREAMS_PER_SCOPE=1)
    headers = {**jwt_header("tenant-a"), "Origin": ORIGIN}

    async def scenario():
        running, session_id = await until_init(chat, {"message": "/slow 50 a b c"}, headers)
        refused = await chat.astream({"message": "/say no"}, headers)
        sync_refused = await chat.async_({"message": "/say no"}, headers)
        other_scope = await chat.astream({"message": "/say yes"}, jwt_header("tenant-b"))
        finished = await running
        after = await chat.astream({"message": "/say after"}, headers)
        return refused, sync_refused, other_scope, finished, after

    refused, sync_refused, other_scope, finished, after = asyncio.run(scenario())
    message = "This scope already has 1 stream open, the most it may; retry in 2 s."
    assert_rate_limited(refused, message, 2)
    assert_rate_limited(sync_refused, message, 2)
    assert headers_of(refused)["access-control-allow-origin"] == ORIGIN
    assert other_scope.status == 200
    assert finished.events[-1]["reason"] == "model_stop"
    assert after.status == 200 and after.events[-1]["reason"] == "model_stop"
    assert held(limiter) == 0


def test_an_api_key_at_its_streams_limit_is_refused_in_another_scope(test_agent, chat, limit):
    limit(AMODAL_STREAMS_PER_KEY=1, AMODAL_STREAMS_PER_SCOPE=5)
    key = {"Authorization": "Bearer " + create_api_key(name="backend").raw_key}

    async def scenario():
        running, _ = await until_init(chat, {"message": "/slow 50 a b c", "scope_id": "tenant-a"}, key)
        refused = await chat.astream({"message": "/say no", "scope_id": "tenant-b"}, key)
        await running
        return refused

    assert_rate_limited(
        asyncio.run(scenario()), "This API key already has 1 stream open, the most it may; retry in 2 s.", 2
    )


def test_a_client_disconnect_releases_the_stream_slot(test_agent, jwt_header, limit):
    limiter = limit(AMODAL_STREAMS_PER_SCOPE=1)
    headers = jwt_header("tenant-a")

    async def disconnect_after_first_delta():
        response = await AsyncClient().post(
            "/chat/stream", data={"message": SLOW}, content_type="application/json", headers=headers
        )
        first_delta = asyncio.get_running_loop().create_future()

        async def read():
            async for chunk in response.streaming_content:
                if b"text_delta" in chunk and not first_delta.done():
                    first_delta.set_result(held(limiter))

        reader = asyncio.create_task(read())
        during = await first_delta
        reader.cancel()  # what the ASGI server does when the client goes away
        with pytest.raises(asyncio.CancelledError):
            await reader
        return during

    assert asyncio.run(disconnect_after_first_delta()) == 1
    assert held(limiter) == 0
    session = Session.all_scopes.get()
    assert session.status == "interrupted"


def test_a_cancel_releases_the_stream_slot(test_agent, chat, jwt_header, limit):
    limiter = limit(AMODAL_STREAMS_PER_SCOPE=1)
    headers = jwt_header("tenant-a")

    async def scenario():
        running, session_id = await until_init(chat, {"message": SLOW}, headers)
        cancelled = await chat.apost(f"/sessions/{session_id}/cancel", {}, headers)
        stopped = await running
        after = await chat.astream({"message": "/say after"}, headers)
        return cancelled, stopped, after

    cancelled, stopped, after = asyncio.run(scenario())
    assert cancelled.json() == {"ok": True, "running": True}
    assert stopped.events[-1]["reason"] == "user_abort"
    assert after.status == 200
    assert held(limiter) == 0


def test_a_failed_message_releases_the_stream_slot(test_agent, chat, jwt_header, limit, monkeypatch):
    limiter = limit(AMODAL_STREAMS_PER_SCOPE=1)
    headers = jwt_header("tenant-a")
    ok = chat.stream({"message": "/say first"}, headers)

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(services, "start_message", broken)
    failed = chat.stream({"message": "/say second", "session_id": ok.events[0]["session_id"]}, headers)
    assert [e["type"] for e in failed.events] == ["init", "error", "done"]
    assert held(limiter) == 0
    missing = chat.stream({"message": "/say x", "session_id": "0b0e7a52-5e8f-4ad4-9d3c-2d3f7a1c9e11"}, headers)
    assert missing.status == 404  # refused before its stream: the slot taken for it is given back
    assert held(limiter) == 0


def test_a_running_websocket_message_holds_a_slot_until_it_ends_or_is_cancelled(test_agent, chat, jwt_header, limit):
    limiter = limit(AMODAL_STREAMS_PER_SCOPE=1)

    async def talk():
        communicator = await ws_connect(mint_token(scope_id="tenant-a"))
        await communicator.send_json_to({"type": "message", "message": SLOW})
        assert (await communicator.receive_json_from(timeout=TIMEOUT))["type"] == "init"
        refused = await chat.async_({"message": "/say no"}, jwt_header("tenant-a"))
        await communicator.send_json_to({"type": "cancel"})
        stopped = await ws_until_done(communicator)
        after = await chat.async_({"message": "/say yes"}, jwt_header("tenant-a"))
        await communicator.disconnect()
        return refused, stopped, after

    refused, stopped, after = asyncio.run(talk())
    assert refused.status == 429
    assert stopped[-1]["reason"] == "user_abort"
    assert after.status == 200
    assert held(limiter) == 0


def test_a_stream_renews_its_slot_while_it_runs(test_agent, chat, jwt_header, limit, settings, clock):
    settings.AMODAL_LEASE_SECONDS = 0.3  # renewed every 0.1 s
    limiter = limit(AMODAL_STREAMS_PER_SCOPE=1)
    renewals: list[float] = []
    renew = limiter.arenew

    async def counted(slots, member, lease_ms):
        renewals.append(lease_ms)
        await renew(slots, member, lease_ms)

    limiter.arenew = counted
    result = chat.stream({"message": "/slow 100 a b c d e f"}, jwt_header("tenant-a"))
    assert result.events[-1]["reason"] == "model_stop"
    assert len(renewals) >= 2 and set(renewals) == {300.0}
    assert held(limiter) == 0


# --- Redis unreachable: limits per process, the chat keeps working ---------------------------------------------


def test_with_redis_unreachable_the_limits_hold_per_process(test_agent, chat, jwt_header, limit):
    limiter = limit(redis_url=f"redis://127.0.0.1:{closed_port()}/9", AMODAL_RATE_LIMIT_SCOPE="2/minute")
    headers = jwt_header("tenant-a")
    statuses = [chat.sync({"message": "/say hi"}, headers).status for _ in range(3)]
    assert statuses == [200, 200, 429]
    assert limiter.down_until > 0


# --- The chat path's cost -----------------------------------------------------------------------------------------


def test_limits_add_no_hand_off_to_a_chat_message(test_agent, chat, jwt_header, limit, handoffs):  # noqa: F811
    headers = jwt_header("tenant-a")
    session_id = chat.sync({"message": "/say first"}, headers).json()["session_id"]

    def one_message() -> list[str]:
        start = len(handoffs)
        status, body = asyncio.run(
            asgi_post("/chat/stream", {"message": "/say counted", "session_id": session_id}, headers)
        )
        assert status == 200, body
        return handoffs[start:]

    without = one_message()
    limit(AMODAL_RATE_LIMIT_SCOPE="100/minute", AMODAL_STREAMS_PER_SCOPE=10)
    with_limits = one_message()
    assert with_limits == without
    assert held(configured().limiter) == 0
