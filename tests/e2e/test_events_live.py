"""Every event type and every `done` reason, driven on a real daphne process and validated against the
published JSON Schemas (docs/schemas/events.schema.json; tests.e2e.helpers.check_event validates each
parsed event, here and in every other live test).

Two servers: the bundled finance-agent on the offline `local` provider (text, tool calls, a confirmation,
a cancel, the WebSocket), and a test agent on the fake Claude API with one model call per message and a
budget (a model error, max_turns, budget_exceeded)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.sync.client import connect as ws_connect

from tests.conftest import claude_agent_folder
from tests.e2e.helpers import check_event, check_stream, events_schema, iter_frames
from tests.e2e.live import LiveServer
from tests.fakes.anthropic_api import FakeAnthropic

pytestmark = pytest.mark.live

GARCIA = "household-garcia"
BROKE = "tenant-over-budget"
SLOW = "/slow 150 " + " ".join(f"w{index}" for index in range(40))  # 6 s
TRANSFER = {"connection": "app-api", "method": "POST", "endpoint": "/transfers", "data": {"amount": 5}}


@pytest.fixture(scope="module")
def fake_claude() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as fake:
        yield fake


@pytest.fixture(scope="module")
def scripted_server(live_server_factory, fake_claude, tmp_path_factory) -> LiveServer:
    folder = claude_agent_folder(
        tmp_path_factory.mktemp("events-agent") / "agent",
        fake_claude.base_url,
        model="claude-fake",
        amodal={"agent": {"maxTurns": 1}, "budgets": {"period": "day", "scopeCostMicros": 10**12}},
    )
    return live_server_factory(extra_env={"AMODAL_AGENT_DIR": str(folder)})


def stream(server: LiveServer, scope_id: str, message: str, *, cancel_after_first_delta: bool = False) -> list[dict]:
    """POST /chat/stream and read it to `done` (every frame validated by iter_frames); optionally cancel
    the message through POST /sessions/<id>/cancel once its text has started."""
    headers = server.headers(scope_id, {"household_id": scope_id})
    events: list[dict] = []
    with (
        server.client(timeout=30) as client,
        client.stream("POST", "/chat/stream", json={"message": message}, headers=headers) as response,
    ):
        assert response.status_code == 200, response.read()
        for frame in iter_frames(response):
            if frame.event is None:
                continue
            events.append(frame.event)
            if (
                cancel_after_first_delta
                and frame.type == "text_delta"
                and [e["type"] for e in events].count("text_delta") == 1
            ):
                cancel = client.post(f"/sessions/{events[0]['session_id']}/cancel", headers=headers)
                assert cancel.status_code == 200, cancel.text
    check_stream(events)
    return events


def types_of(events: list[dict[str, Any]]) -> list[str]:
    return [item["type"] for item in events]


def only(events: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (item,) = [item for item in events if item["type"] == kind]
    return item


def test_every_event_type_and_done_reason_is_sent_and_valid(daphne_server, scripted_server, fake_claude, live_database):
    seen: list[dict[str, Any]] = []

    # Text: init, text_delta, usage, done{model_stop}.
    said = stream(daphne_server, GARCIA, "/say every event is checked")
    assert types_of(said)[0] == "init" and "text_delta" in types_of(said) and "usage" in types_of(said)
    assert said[-1]["reason"] == "model_stop" and said[-1]["message_id"]
    seen += said

    # A tool call that succeeds, one that fails, and one that needs the user's approval.
    tools = stream(daphne_server, GARCIA, "show my recent transactions")
    assert only(tools, "tool_call_result")["status"] == "success"
    failed = stream(daphne_server, GARCIA, "/tool no_such_tool {}")
    assert only(failed, "tool_call_result")["status"] == "error" and "error" in only(failed, "tool_call_result")
    confirm = stream(daphne_server, GARCIA, f"/tool request {json.dumps(TRANSFER)}")
    asked = only(confirm, "confirmation_required")
    assert (asked["method"], asked["endpoint"], asked["correlation_id"]) == ("POST", "/transfers", asked["tool_id"])
    seen += tools + failed + confirm

    # Stopped from outside: done{user_abort}.
    stopped = stream(daphne_server, GARCIA, SLOW, cancel_after_first_delta=True)
    assert stopped[-1]["reason"] == "user_abort"
    seen += stopped

    # A model error: error{model_request_invalid}, done{error}.
    fake_claude.queue_error(400, "invalid_request_error", "Bad request")
    broken = stream(scripted_server, GARCIA, "hello")
    assert types_of(broken) == ["init", "usage", "error", "done"], broken  # the failed call's usage: none
    assert (broken[2]["code"], broken[-1]["reason"]) == ("model_request_invalid", "error")

    # One model call allowed, and it asked for a tool: error{max_turns}, done{max_turns}.
    fake_claude.queue_tool_use("no_such_tool", {"x": 1}, text_before="Looking.")
    limited = stream(scripted_server, GARCIA, "hello")
    assert types_of(limited)[-2:] == ["error", "done"] and limited[-1]["reason"] == "max_turns"
    assert only(limited, "usage")["cost_micros"] is None  # claude-fake has no price
    seen += broken + limited

    # A scope at its cap: init, error{budget_exceeded}, done{budget_exceeded}.
    fake_claude.queue_text("First and last.")
    assert stream(scripted_server, BROKE, "hello")[-1]["reason"] == "model_stop"  # the scope now exists
    live_database.execute("UPDATE scoping_scope SET budget_cost_micros = 0 WHERE scope_id = %s", (BROKE,))
    refused = stream(scripted_server, BROKE, "hello")
    assert types_of(refused) == ["init", "error", "done"], refused
    assert refused[1]["code"] == refused[-1]["reason"] == "budget_exceeded"
    seen += refused

    # The WebSocket: auth_ok, an error for a frame that is not JSON (the socket stays open), a message.
    token = daphne_server.token(GARCIA, {"household_id": GARCIA})
    with ws_connect(f"{daphne_server.ws_url}/ws/chat?token={token}", open_timeout=10, proxy=None) as websocket:
        assert check_event(json.loads(websocket.recv(timeout=15)))["type"] == "auth_ok"
        websocket.send("not json")
        refused_frame = check_event(json.loads(websocket.recv(timeout=15)))
        assert (refused_frame["type"], refused_frame["code"]) == ("error", "invalid_json")
        websocket.send(json.dumps({"type": "message", "message": "/say over the socket"}))
        socket_events = []
        while not socket_events or socket_events[-1]["type"] != "done":
            socket_events.append(check_event(json.loads(websocket.recv(timeout=15))))
        check_stream(socket_events)
    seen += [{"type": "auth_ok"}, refused_frame, *socket_events]

    schema = events_schema()
    assert {item["type"] for item in seen} == set(schema["discriminator"]["mapping"])
    reasons = schema["$defs"]["DoneEvent"]["properties"]["reason"]["enum"]
    assert {item["reason"] for item in seen if item["type"] == "done"} == set(reasons)


def test_a_broken_event_is_caught_by_the_check():
    """The check every live test relies on fails on what breaks the schema (it can fail)."""
    good = {"type": "text_delta", "content": "hi", "timestamp": "2026-01-31T12:00:00.000Z"}
    assert check_event(dict(good)) == good
    for broken in (
        {**good, "extra": 1},
        {key: value for key, value in good.items() if key != "timestamp"},
        {**good, "type": "text_deltas"},
        {
            "type": "tool_call_result",
            "tool_id": "t",
            "status": "success",
            "duration_ms": 1,
            "error": "x",
            "timestamp": "2026-01-31T12:00:00.000Z",
        },
    ):
        with pytest.raises(AssertionError):
            check_event(broken)
