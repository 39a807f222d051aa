"""The chat API against a real daphne process: SSE frames on the wire, sync chat, history, scope
isolation, requireScope, WebSocket, keep-alive frames and a client that goes away mid-stream.

The server runs the bundled finance-agent (requireScope, the offline `local` provider)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from httpx_sse import connect_sse
from websockets.sync.client import connect as ws_connect

from tests.e2e.helpers import (
    check_event,
    check_stream,
    events_of,
    iter_frames,
    poll,
    text_of,
)

pytestmark = pytest.mark.live

GARCIA = "household-garcia"
OKAFOR = "household-okafor"


def household(server, scope_id: str) -> dict[str, str]:
    return server.headers(scope_id, {"household_id": scope_id})


def stream_chat(server, headers: dict[str, str], body: dict[str, Any]):
    """POST /chat/stream and read it to the end: (response, frames)."""
    with server.client() as client, client.stream("POST", "/chat/stream", json=body, headers=headers) as response:
        if response.status_code != 200:
            response.read()
            return response, []
        return response, list(iter_frames(response))


def history(server, headers: dict[str, str], session_id: str | None = None) -> httpx.Response:
    path = "/sessions/history" + (f"/{session_id}" if session_id else "")
    with server.client() as client:
        return client.get(path, headers=headers)


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]


# --- operations ------------------------------------------------------------------------------------


def test_health_reports_database_and_channel_layer(daphne_server):
    with daphne_server.client() as client:
        response = client.get("/health")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] == "ok"
    assert body["channel_layer"] == "ok"
    assert body["row_security"] == ("ok" if daphne_server.database.vendor == "postgresql" else "off")
    assert body["agent"] == "finance-agent"
    assert isinstance(body["deploy_id"], str) and body["deploy_id"]


# --- POST /chat/stream ---------------------------------------------------------------------------------


def test_stream_frames_are_exact_and_ordered(daphne_server):
    response, frames = stream_chat(
        daphne_server, household(daphne_server, GARCIA), {"message": "/say hello from the stream"}
    )

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-accel-buffering"] == "no"
    events = events_of(frames)
    check_stream(events)
    init, done = events[0], events[-1]
    assert init["scope_id"] == GARCIA
    assert init["session_id"]
    assert text_of(events) == "hello from the stream"
    assert [item["type"] for item in events if item["type"] in ("usage", "done")] == ["usage", "done"]
    assert done["reason"] == "model_stop"
    assert done["usage"]["total_tokens"] > 0
    usage = next(item for item in events if item["type"] == "usage")
    assert done["usage"]["input_tokens"] == usage["input_tokens"]
    assert done["usage"]["output_tokens"] == usage["output_tokens"]


def test_stream_read_by_an_independent_sse_parser(daphne_server):
    with (
        daphne_server.client() as client,
        connect_sse(
            client,
            "POST",
            "/chat/stream",
            json={"message": "/say parsed by httpx-sse"},
            headers=household(daphne_server, GARCIA),
        ) as source,
    ):
        assert source.response.status_code == 200
        messages = list(source.iter_sse())

    assert all(message.event == "message" for message in messages)  # `data:` only, no `event:` lines
    events = [check_event(json.loads(message.data)) for message in messages]
    check_stream(events)
    assert text_of(events) == "parsed by httpx-sse"
    assert events[-1]["reason"] == "model_stop"


def test_stream_frames_arrive_one_by_one(daphne_server):
    headers = household(daphne_server, GARCIA)
    with (
        daphne_server.client() as client,
        client.stream(
            "POST", "/chat/stream", json={"message": "/slow 300 one two three four"}, headers=headers
        ) as response,
    ):
        assert response.status_code == 200
        frames = list(iter_frames(response))

    events = events_of(frames)
    check_stream(events)
    assert text_of(events) == "one two three four"
    deltas = [frame for frame in frames if frame.type == "text_delta"]
    done = frames[-1]
    assert len(deltas) == 4
    # Frames received before `done`, in reads of their own: the first word was not held back.
    assert sum(1 for frame in frames if frame.read_index < done.read_index and frame.type == "text_delta") >= 3
    assert len({frame.read_index for frame in deltas}) >= 3


def test_stream_tool_call_against_the_demo_finance_api(daphne_server):
    response, frames = stream_chat(
        daphne_server, household(daphne_server, GARCIA), {"message": "show my recent transactions"}
    )

    assert response.status_code == 200
    events = events_of(frames)
    check_stream(events)
    types = [item["type"] for item in events]
    assert types.index("tool_call_start") < types.index("tool_call_result") < types.index("done")
    start = next(item for item in events if item["type"] == "tool_call_start")
    result = next(item for item in events if item["type"] == "tool_call_result")
    assert start["tool_name"] == "request"
    assert result["tool_id"] == start["tool_id"]
    assert result["status"] == "success", json.dumps(result)
    assert types.count("usage") == 2  # the call that asked for the tool, and the summary
    assert events[-1]["reason"] == "model_stop"

    # History shows the call the way the SDK reads it.
    detail = history(daphne_server, household(daphne_server, GARCIA), events[0]["session_id"]).json()
    calls = [call for message in detail["messages"] for call in message["toolCalls"]]
    assert len(calls) == 1
    call = calls[0]
    assert (call["toolId"], call["toolName"], call["status"]) == (start["tool_id"], "request", "success")
    assert call["parameters"] == call["args"] == start["parameters"]
    assert call["result"] == result["result"]
    assert isinstance(call["duration_ms"], int)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, "validation_error"),
        ({"message": ""}, "validation_error"),
        ({"message": "/say hi", "session_id": "x" * 100}, "validation_error"),
        ({"message": "x" * 100_001}, "validation_error"),
        ({"message": "/say hi", "session_id": "00000000-0000-0000-0000-000000000000"}, "session_not_found"),
        ({"message": "/say hi", "session_id": "not-a-uuid"}, "session_not_found"),
    ],
)
def test_stream_refuses_bad_requests_with_json_errors(daphne_server, body, code):
    with daphne_server.client() as client:
        response = client.post("/chat/stream", json=body, headers=household(daphne_server, GARCIA))

    assert_error(response, 404 if code == "session_not_found" else 400, code)


# --- POST /chat/sync -----------------------------------------------------------------------------------


def test_chat_sync_answers_in_one_json(daphne_server):
    with daphne_server.client() as client:
        response = client.post(
            "/chat/sync", json={"message": "/say a synchronous answer"}, headers=household(daphne_server, GARCIA)
        )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["response"] == "a synchronous answer"
    assert body["tool_calls"] == []
    assert body["session_id"]
    assert body["usage"]["total_tokens"] == body["usage"]["input_tokens"] + body["usage"]["output_tokens"] > 0


def test_chat_sync_reports_tool_calls(daphne_server):
    with daphne_server.client() as client:
        response = client.post(
            "/chat/sync", json={"message": "show my recent transactions"}, headers=household(daphne_server, OKAFOR)
        )

    assert response.status_code == 200, response.text
    [call] = response.json()["tool_calls"]
    assert call["tool_name"] == "request"
    assert call["status"] == "success", json.dumps(call)


# --- history and scope isolation -------------------------------------------------------------------


def test_history_lists_the_scopes_sessions_newest_first(daphne_server):
    scope_id = "household-history-e2e"
    headers = household(daphne_server, scope_id)
    with daphne_server.client() as client:
        first = client.post("/chat/sync", json={"message": "/say alpha"}, headers=headers).json()
        session_id = first["session_id"]
        response, frames = stream_chat(daphne_server, headers, {"message": "/say beta", "session_id": session_id})
        assert response.status_code == 200
        assert events_of(frames)[0]["session_id"] == session_id
        newer = client.post("/chat/sync", json={"message": "/say gamma"}, headers=headers).json()

    listing = history(daphne_server, headers)
    assert listing.status_code == 200
    sessions = listing.json()
    assert [item["id"] for item in sessions] == [newer["session_id"], session_id]
    older = sessions[1]
    assert older["scope_id"] == scope_id
    assert older["title"] == "/say alpha"
    assert older["tags"] == []
    assert older["status"] == "idle"
    assert older["message_count"] == 4
    assert older["token_usage"]["total_tokens"] > 0

    detail = history(daphne_server, headers, session_id)
    assert detail.status_code == 200
    messages = detail.json()["messages"]
    assert [(m["role"], m["type"], m["text"]) for m in messages] == [
        ("user", "user", "/say alpha"),
        ("assistant", "assistant_text", "alpha"),
        ("user", "user", "/say beta"),
        ("assistant", "assistant_text", "beta"),
    ]
    assert all(m["toolCalls"] == [] for m in messages)


def test_one_household_never_sees_anothers_sessions(daphne_server):
    garcia, okafor = household(daphne_server, GARCIA), household(daphne_server, OKAFOR)
    with daphne_server.client() as client:
        session_id = client.post("/chat/sync", json={"message": "/say private to garcia"}, headers=garcia).json()[
            "session_id"
        ]
        # Okafor's token, even with Garcia's scope in the body (claims win, silently).
        continue_response = client.post(
            "/chat/stream", headers=okafor, json={"message": "/say hi", "session_id": session_id, "scope_id": GARCIA}
        )
        cancel_response = client.post(f"/sessions/{session_id}/cancel", headers=okafor)
        patch_response = client.patch(f"/sessions/history/{session_id}", headers=okafor, json={"title": "mine"})
        delete_response = client.delete(f"/sessions/history/{session_id}", headers=okafor)

    assert_error(history(daphne_server, okafor, session_id), 404, "session_not_found")
    assert session_id not in [item["id"] for item in history(daphne_server, okafor).json()]
    assert_error(continue_response, 404, "session_not_found")
    assert_error(cancel_response, 404, "session_not_found")
    assert_error(patch_response, 404, "session_not_found")
    assert_error(delete_response, 404, "session_not_found")
    # Garcia still has it, untouched.
    detail = history(daphne_server, garcia, session_id)
    assert detail.status_code == 200
    assert detail.json()["title"] == "/say private to garcia"
    assert session_id in [item["id"] for item in history(daphne_server, garcia).json()]


# --- one message at a time, and cancel ------------------------------------------------------------


def test_a_second_message_waits_then_gets_409_and_cancel_frees_the_session(daphne_server):
    headers = household(daphne_server, GARCIA)
    words = [f"w{i}" for i in range(1, 41)]  # 8 s of words: longer than the 5 s a second message waits
    received = []
    with (
        daphne_server.client() as client,
        client.stream(
            "POST", "/chat/stream", json={"message": "/slow 200 " + " ".join(words)}, headers=headers
        ) as response,
    ):
        assert response.status_code == 200
        frames = iter_frames(response)
        while not any(frame.type == "text_delta" for frame in received):
            received.append(next(frames))
        session_id = received[0].event["session_id"]
        with daphne_server.client() as other:
            busy = other.post("/chat/sync", json={"message": "/say me too", "session_id": session_id}, headers=headers)
            cancel = other.post(f"/sessions/{session_id}/cancel", headers=headers)
        received += list(frames)

    assert_error(busy, 409, "session_busy")
    assert cancel.status_code == 200
    assert cancel.json() == {"ok": True, "running": True}
    events = events_of(received)
    check_stream(events)
    assert events[-1]["reason"] == "user_abort"
    assert text_of(events).split() == words[: len(text_of(events).split())] != words
    # Nothing of the refused message was saved; the cancelled turn was.
    detail = history(daphne_server, headers, session_id).json()
    assert detail["status"] == "interrupted"
    assert [(m["role"], m["interrupted"]) for m in detail["messages"]] == [("user", False), ("assistant", True)]
    with daphne_server.client() as client:
        again = client.post(
            "/chat/sync", json={"message": "/say after cancel", "session_id": session_id}, headers=headers
        )
        idle_cancel = client.post(f"/sessions/{session_id}/cancel", headers=headers)
    assert again.status_code == 200, again.text
    assert again.json()["response"] == "after cancel"
    assert idle_cancel.json() == {"ok": True, "running": False}


# --- requireScope --------------------------------------------------------------------------------------


@pytest.mark.parametrize("scope_id", [None, ""], ids=["no-scope-claim", "empty-scope-claim"])
def test_a_token_without_a_scope_is_refused_before_anything_is_written(daphne_server, scope_id):
    headers = daphne_server.headers(scope_id)
    sessions_before = daphne_server.database.query("SELECT COUNT(*) FROM agents_session")[0][0]
    with daphne_server.client() as client:
        responses = [
            client.post("/chat/stream", json={"message": "/say hi"}, headers=headers),
            client.post("/chat/sync", json={"message": "/say hi"}, headers=headers),
            client.get("/sessions/history", headers=headers),
        ]

    for response in responses:
        assert_error(response, 400, "scope_required")
    assert daphne_server.database.query("SELECT COUNT(*) FROM agents_session WHERE scope = %s", ("",))[0][0] == 0
    assert daphne_server.database.query("SELECT COUNT(*) FROM agents_session")[0][0] >= sessions_before


def test_requests_without_a_valid_token_get_401(daphne_server):
    with daphne_server.client() as client:
        missing = client.post("/chat/stream", json={"message": "/say hi", "scope_id": GARCIA})
        forged_token = daphne_server.token(GARCIA, secret="a-different-secret-" + "0" * 32)
        forged = client.post(
            "/chat/stream", json={"message": "/say hi"}, headers={"Authorization": f"Bearer {forged_token}"}
        )

    assert missing.status_code == 401, missing.text
    assert_error(forged, 401, forged.json()["error"]["code"])


# --- WebSocket /ws/chat --------------------------------------------------------------------------------


def ws_events_until_done(websocket) -> list[dict[str, Any]]:
    events = []
    while True:
        item = check_event(json.loads(websocket.recv(timeout=15)))
        if item["type"] == "auth_ok":
            continue
        events.append(item)
        if item["type"] == "done":
            return events


@pytest.mark.parametrize("auth", ["first-message", "query-parameter"])
def test_websocket_chat_streams_init_to_done(daphne_server, auth):
    token = daphne_server.token(GARCIA, {"household_id": GARCIA})
    url = f"{daphne_server.ws_url}/ws/chat" + (f"?token={token}" if auth == "query-parameter" else "")
    with ws_connect(url, open_timeout=10, close_timeout=5, proxy=None) as websocket:
        if auth == "first-message":
            websocket.send(json.dumps({"type": "auth", "token": token}))
        websocket.send(json.dumps({"type": "message", "message": "/say over the websocket"}))
        events = ws_events_until_done(websocket)

        check_stream(events)
        assert events[0]["scope_id"] == GARCIA
        assert text_of(events) == "over the websocket"
        assert events[-1]["reason"] == "model_stop"

        # The same connection continues the same session.
        session_id = events[0]["session_id"]
        websocket.send(json.dumps({"type": "message", "message": "/say again", "session_id": session_id}))
        again = ws_events_until_done(websocket)
    check_stream(again)
    assert again[0]["session_id"] == session_id
    assert text_of(again) == "again"


def test_a_websocket_outlives_a_long_message_and_takes_the_next(daphne_server):
    """A connection open for more than 5 s (the length of one blocking Redis read of the channel layer
    that a consumer listens on) keeps working: the message takes 30 x 200 ms."""
    token = daphne_server.token(GARCIA, {"household_id": GARCIA})
    words = [f"w{i}" for i in range(30)]
    with ws_connect(
        f"{daphne_server.ws_url}/ws/chat?token={token}", open_timeout=10, close_timeout=5, proxy=None
    ) as websocket:
        websocket.send(json.dumps({"type": "message", "message": "/slow 200 " + " ".join(words)}))
        long = ws_events_until_done(websocket)
        websocket.send(json.dumps({"type": "message", "message": "/say still here"}))
        after = ws_events_until_done(websocket)

    check_stream(long)
    assert long[-1]["reason"] == "model_stop"
    assert text_of(long).split() == words
    check_stream(after)
    assert text_of(after) == "still here"


def test_websocket_cancel_stops_the_running_message(daphne_server):
    token = daphne_server.token(GARCIA, {"household_id": GARCIA})
    with ws_connect(f"{daphne_server.ws_url}/ws/chat", open_timeout=10, close_timeout=5, proxy=None) as websocket:
        websocket.send(json.dumps({"type": "auth", "token": token}))
        websocket.send(json.dumps({"type": "message", "message": "/slow 200 " + " ".join(f"w{i}" for i in range(40))}))
        events = []
        while True:
            item = check_event(json.loads(websocket.recv(timeout=15)))
            if item["type"] == "auth_ok":
                continue
            events.append(item)
            if item["type"] == "text_delta":
                websocket.send(json.dumps({"type": "cancel"}))
                break
        events += ws_events_until_done(websocket)

    check_stream(events)
    assert events[-1]["reason"] == "user_abort"
    assert len(text_of(events).split()) < 40


def test_websocket_disconnect_saves_the_partial_turn(daphne_server):
    headers = household(daphne_server, GARCIA)
    token = headers["Authorization"].removeprefix("Bearer ")
    with ws_connect(
        f"{daphne_server.ws_url}/ws/chat?token={token}", open_timeout=10, close_timeout=5, proxy=None
    ) as websocket:
        websocket.send(json.dumps({"type": "message", "message": "/slow 200 " + " ".join(f"w{i}" for i in range(40))}))
        events = []
        while sum(1 for item in events if item["type"] == "text_delta") < 2:
            item = json.loads(websocket.recv(timeout=15))
            if item["type"] != "auth_ok":
                events.append(check_event(item))
    session_id = events[0]["session_id"]

    def interrupted_detail():
        detail = history(daphne_server, headers, session_id).json()
        return detail if detail["status"] == "interrupted" else None

    detail = poll(interrupted_detail, timeout=20, what="the session becoming interrupted")
    assistant = detail["messages"][-1]
    assert assistant["role"] == "assistant" and assistant["interrupted"] is True
    assert assistant["text"].startswith("w0 w1")


def test_websocket_with_a_bad_token_is_refused(daphne_server):
    with ws_connect(f"{daphne_server.ws_url}/ws/chat", open_timeout=10, close_timeout=5, proxy=None) as websocket:
        websocket.send(json.dumps({"type": "auth", "token": "not-a-jwt"}))
        item = json.loads(websocket.recv(timeout=15))
    assert item["type"] == "error"
    assert item["code"]


# --- keep-alive -----------------------------------------------------------------------------------------


def test_keep_alive_frames_fill_silent_periods(live_server_factory):
    server = live_server_factory(keepalive_seconds=0.5)
    response, frames = stream_chat(server, household(server, GARCIA), {"message": "/slow 1500 a b"})

    assert response.status_code == 200
    comments = [index for index, frame in enumerate(frames) if frame.is_comment]
    assert comments, [frame.raw for frame in frames]
    assert all(frames[index].raw == ": keep-alive" for index in comments)
    first_delta = next(index for index, frame in enumerate(frames) if frame.type == "text_delta")
    assert any(0 < index < first_delta for index in comments)  # while waiting for the first word
    events = events_of(frames)
    check_stream(events)
    assert text_of(events) == "a b"


# --- client disconnect ---------------------------------------------------------------------------------


def test_client_disconnect_saves_the_partial_turn_and_frees_the_session(daphne_server):
    headers = household(daphne_server, GARCIA)
    words = [f"w{i}" for i in range(1, 41)]
    received = []
    with (
        daphne_server.client() as client,
        client.stream(
            "POST", "/chat/stream", json={"message": "/slow 200 " + " ".join(words)}, headers=headers
        ) as response,
    ):
        assert response.status_code == 200
        frames = iter_frames(response)  # kept open: closing the generator would close the response
        while sum(1 for f in received if f.type == "text_delta") < 3:
            received.append(next(frames))
        session_id = received[0].event["session_id"]
        # Words reach the client while the server is still working on the message (37 words to go).
        running = history(daphne_server, headers, session_id).json()
        assert running["status"] == "running"
        assert [m["role"] for m in running["messages"]] == ["user"]
    # Leaving the block closed the connection mid-stream.
    assert "done" not in [frame.type for frame in received]

    def interrupted_detail():
        detail = history(daphne_server, headers, session_id).json()
        return detail if detail["status"] == "interrupted" else None

    detail = poll(interrupted_detail, timeout=20, what="the session becoming interrupted")
    user, assistant = detail["messages"]
    assert (user["role"], user["text"]) == ("user", "/slow 200 " + " ".join(words))
    assert assistant["role"] == "assistant"
    assert assistant["interrupted"] is True
    assert assistant["text"].startswith("w1 w2 w3")
    assert assistant["text"].split() == words[: len(assistant["text"].split())] != words

    database = daphne_server.database
    session_key = database.uuid_param(session_id)
    [(status, lock_token)] = database.query(
        "SELECT status, lock_token FROM agents_session WHERE id = %s", (session_key,)
    )
    assert (status, lock_token) == ("interrupted", "")
    [(interrupted, text)] = database.query(
        "SELECT interrupted, text FROM agents_message WHERE session_id = %s AND role = 'assistant'", (session_key,)
    )
    assert interrupted and text == assistant["text"]
    usage_rows = database.query(
        "SELECT u.model, u.input_tokens, u.output_tokens FROM agents_usagerecord u "
        "JOIN agents_message m ON m.id = u.message_id WHERE u.session_id = %s AND m.role = 'assistant'",
        (session_key,),
    )
    assert len(usage_rows) == 1
    model, input_tokens, output_tokens = usage_rows[0]
    assert model == "local" and input_tokens > 0 and output_tokens > 0
    assert detail["token_usage"]["total_tokens"] == input_tokens + output_tokens

    # A resend right away is accepted (no 409) and continues the same session.
    response, frames = stream_chat(daphne_server, headers, {"message": "/say resumed", "session_id": session_id})
    assert response.status_code == 200, response.text
    events = events_of(frames)
    check_stream(events)
    assert events[0]["session_id"] == session_id
    assert text_of(events) == "resumed"
    assert history(daphne_server, headers, session_id).json()["status"] == "idle"
