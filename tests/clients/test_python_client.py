"""The Python client (clients/python) against an httpx.MockTransport: what each method sends, how each answer
is read into its typed result, every error family raised with its code, status and Retry-After, and the event
stream's parsing (every event type, unknown ones, comments, a stream cut short). Each test runs on the sync
and the async client (tests/clients/flavors.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import amodal_client as ac
import httpx
import httpx_sse
import pytest
from amodal_client.sse import SSEDecoder

from tests.clients.flavors import Flavor

BASE = "http://amodal.test"
TS = "2026-12-06T18:00:00.123Z"
USAGE = {
    "input_tokens": 10,
    "output_tokens": 5,
    "cache_read_tokens": 1,
    "cache_write_tokens": 2,
    "total_tokens": 15,
    "cost_micros": None,
}
EVENTS: list[dict[str, Any]] = [
    {"type": "init", "session_id": "s-1", "scope_id": "household-a", "deploy_id": "d-9"},
    {"type": "text_delta", "content": "Looking "},
    {"type": "tool_call_start", "tool_id": "t1", "tool_name": "request", "parameters": {"token": "[REDACTED]"}},
    {"type": "tool_call_result", "tool_id": "t1", "status": "success", "duration_ms": 12, "result": "[]"},
    {
        "type": "confirmation_required",
        "tool_id": "t2",
        "correlation_id": "t2",
        "connection": "app-api",
        "connection_name": "app-api",
        "method": "POST",
        "endpoint": "/transfers",
        "reason": "Moving money needs the user's approval.",
        "escalated": False,
        "params": {"params": {}, "data": {"amount": "25.00"}},
    },
    {
        "type": "usage",
        "model": "local",
        "input_tokens": 10,
        "output_tokens": 5,
        "cache_read_tokens": 1,
        "cache_write_tokens": 2,
        "cost_micros": 7,
    },
    {"type": "error", "code": "provider_error", "message": "The model provider failed."},
    {"type": "done", "reason": "error", "usage": USAGE, "message_id": "m-1"},
]


def frames(*events: dict[str, Any], extra: str = "") -> bytes:
    body = ": keep-alive\n\n" + "".join(f"data: {json.dumps({**event, 'timestamp': TS})}\n\n" for event in events)
    return (body + extra).encode()


Handler = Callable[[httpx.Request], httpx.Response]


class FakeApi:
    """Answers each (method, path) from a table, and keeps every request it saw."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], httpx.Response | Handler] = {}
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.routes.get((request.method, request.url.raw_path.decode().split("?")[0]))
        if answer is None:
            return httpx.Response(404, json={"error": {"code": "not_found", "message": "No route."}})
        if callable(answer):
            return answer(request)
        # A fresh copy each time: a response object is read once, by one kind of client.
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)

    def on(self, method: str, path: str, answer: httpx.Response | Handler) -> None:
        self.routes[(method, path)] = answer

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]

    def last_json(self) -> Any:
        return json.loads(self.last.content)


def sse(body: bytes, status: int = 200) -> httpx.Response:
    return httpx.Response(status, content=body, headers={"Content-Type": "text/event-stream"})


def error(status: int, code: str, message: str = "Refused.", headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": message}}, headers=headers)


@pytest.fixture
def api() -> FakeApi:
    return FakeApi()


@pytest.fixture(params=["sync", "async"])
def flavor(request, api) -> Flavor:
    return Flavor(request.param, BASE, httpx.MockTransport(api))


# --- the event stream --------------------------------------------------------------------------------------


def test_stream_yields_one_typed_event_per_frame(api, flavor):
    api.on("POST", "/chat/stream", sse(frames(*EVENTS)))

    events = flavor.events("hello", token="user-jwt", session_id="s-1", context={"household_id": "a"})

    assert [type(event) for event in events] == [
        ac.InitEvent,
        ac.TextDeltaEvent,
        ac.ToolCallStartEvent,
        ac.ToolCallResultEvent,
        ac.ConfirmationRequiredEvent,
        ac.UsageEvent,
        ac.ErrorEvent,
        ac.DoneEvent,
    ]
    assert [event.type for event in events] == [event["type"] for event in EVENTS]
    init, delta, start, result, confirmation, usage, failure, done = events
    assert isinstance(init, ac.InitEvent) and (init.session_id, init.scope_id, init.deploy_id) == (
        "s-1",
        "household-a",
        "d-9",
    )
    assert init.timestamp == datetime(2026, 12, 6, 18, 0, 0, 123000, tzinfo=UTC)
    assert isinstance(delta, ac.TextDeltaEvent) and delta.content == "Looking "
    assert isinstance(start, ac.ToolCallStartEvent) and start.parameters == {"token": "[REDACTED]"}
    assert isinstance(result, ac.ToolCallResultEvent) and (result.ok, result.result, result.error) == (True, "[]", None)
    assert isinstance(confirmation, ac.ConfirmationRequiredEvent)
    assert confirmation.approve_message() == "I approve the action (correlation: t2)"
    assert confirmation.deny_message() == "I deny the action (correlation: t2)"
    assert (confirmation.method, confirmation.endpoint, confirmation.escalated) == ("POST", "/transfers", False)
    assert isinstance(usage, ac.UsageEvent) and (usage.model, usage.cost_micros, usage.cache_write_tokens) == (
        "local",
        7,
        2,
    )
    assert isinstance(failure, ac.ErrorEvent) and failure.code == "provider_error"
    assert isinstance(done, ac.DoneEvent) and (done.reason, done.message_id) == ("error", "m-1")
    assert done.usage == ac.MessageUsage(
        input_tokens=10, output_tokens=5, cache_read_tokens=1, cache_write_tokens=2, total_tokens=15, cost_micros=None
    )

    sent = api.last
    assert sent.headers["Authorization"] == "Bearer user-jwt"
    assert sent.headers["Accept"] == "text/event-stream, application/json;q=0.9"
    assert api.last_json() == {"message": "hello", "session_id": "s-1", "context": {"household_id": "a"}}


def test_an_api_key_clients_scope_goes_in_the_chat_body(api, flavor):
    api.on("POST", "/chat/stream", sse(frames(EVENTS[0], EVENTS[-1])))

    flavor.events("hi", token="ak_key", scope_id="household-b", model={"provider": "local", "model": "local"})

    assert api.last_json() == {
        "scope_id": "household-b",
        "message": "hi",
        "model": {"provider": "local", "model": "local"},
    }
    assert "scope_id" not in api.last.url.params


def test_unknown_event_types_and_fields_are_tolerated(api, flavor):
    future = {"type": "thinking_delta", "content": "hmm", "depth": 3}
    delta = {"type": "text_delta", "content": "hi", "added_in_v2": {"x": 1}}
    api.on("POST", "/chat/stream", sse(frames(EVENTS[0], future, delta, EVENTS[-1])))

    events = flavor.events("hello")

    unknown = events[1]
    assert isinstance(unknown, ac.UnknownEvent)
    assert unknown.type == "thinking_delta" and unknown.raw == {**future, "timestamp": TS}
    assert isinstance(events[2], ac.TextDeltaEvent) and events[2].raw["added_in_v2"] == {"x": 1}
    assert isinstance(events[-1], ac.DoneEvent)


def test_the_stream_ends_at_done(api, flavor):
    after = 'data: {"type":"text_delta","content":"late","timestamp":"' + TS + '"}\n\n'
    api.on("POST", "/chat/stream", sse(frames(EVENTS[0], EVENTS[-1], extra=after)))

    events = flavor.events("hello")

    assert [event.type for event in events] == ["init", "done"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (frames(EVENTS[0], EVENTS[1]), "The event stream ended before its done event."),
        (b"data: not json\n\n", "An event is not JSON"),
        (b'data: {"content": "x"}\n\n', "an event has no 'type' field."),
        (b'data: {"type": "text_delta", "content": 5, "timestamp": "' + TS.encode() + b'"}\n\n', "'content' must be"),
        (b'data: {"type": "init", "session_id": "s", "timestamp": "' + TS.encode() + b'"}\n\n', "no 'scope_id' field"),
        (b'data: {"type": "text_delta", "content": "x", "timestamp": "yesterday"}\n\n', "ISO-8601"),
    ],
)
def test_a_broken_stream_raises_a_protocol_error_naming_the_problem(api, flavor, body, message):
    api.on("POST", "/chat/stream", sse(body))

    with pytest.raises(ac.ProtocolError) as raised:
        flavor.events("hello")

    assert message in raised.value.message
    assert raised.value.code == "protocol_error"


def test_an_error_answer_before_the_stream_raises_before_any_event(api, flavor):
    api.on("POST", "/chat/stream", error(404, "session_not_found", "No session with this id."))

    with pytest.raises(ac.NotFound) as raised:
        flavor.events("hello", session_id="another-scopes")

    assert (raised.value.status, raised.value.code, raised.value.message) == (
        404,
        "session_not_found",
        "No session with this id.",
    )


def test_a_stream_that_breaks_off_raises_a_connection_error(api, flavor):
    def broken(request: httpx.Request) -> httpx.Response:
        def chunks():
            yield frames(EVENTS[0])
            raise httpx.ReadError("connection reset")

        return httpx.Response(200, content=chunks(), headers={"Content-Type": "text/event-stream"})

    def broken_async(request: httpx.Request) -> httpx.Response:
        async def chunks():
            yield frames(EVENTS[0])
            raise httpx.ReadError("connection reset")

        return httpx.Response(200, content=chunks(), headers={"Content-Type": "text/event-stream"})

    api.on("POST", "/chat/stream", broken if flavor.name == "sync" else broken_async)

    with pytest.raises(ac.APIConnectionError) as raised:
        flavor.events("hello")

    assert raised.value.status is None and "ReadError" in raised.value.message


def test_leaving_a_stream_early_closes_its_response_and_a_stream_is_read_once(api):
    closed = []

    class Body(httpx.SyncByteStream):
        def __iter__(self):
            yield frames(EVENTS[0])
            yield frames(EVENTS[1], EVENTS[-1])

        def close(self):
            closed.append(True)

    api.on("POST", "/chat/stream", lambda request: httpx.Response(200, stream=Body()))
    client = ac.AmodalClient(BASE, "t", http_client=httpx.Client(transport=httpx.MockTransport(api)))

    with client.chat.stream("hi") as stream:
        events = iter(stream)
        first = next(events)
        assert closed == []
    assert isinstance(first, ac.InitEvent) and stream.session_id == "s-1" and stream.done is None
    assert closed == [True]
    with pytest.raises(RuntimeError, match="A stream is read once"):
        next(iter(stream))


# --- errors ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "cls", "code", "retry_after"),
    [
        (
            error(400, "validation_error", "message: This field is required."),
            ac.ValidationError,
            "validation_error",
            None,
        ),
        (error(401, "invalid_token"), ac.AuthenticationError, "invalid_token", None),
        (error(403, "scope_forbidden"), ac.PermissionDenied, "scope_forbidden", None),
        (error(404, "session_not_found"), ac.NotFound, "session_not_found", None),
        (error(409, "session_busy"), ac.Conflict, "session_busy", None),
        (error(413, "request_too_large"), ac.RequestTooLarge, "request_too_large", None),
        (error(429, "rate_limited", headers={"Retry-After": "7"}), ac.RateLimited, "rate_limited", 7.0),
        (error(429, "budget_exceeded", "Over the day's budget."), ac.BudgetExceeded, "budget_exceeded", None),
        (error(500, "internal_error"), ac.ServerError, "internal_error", None),
        (
            error(503, "service_unavailable", headers={"Retry-After": "5"}),
            ac.ServiceUnavailable,
            "service_unavailable",
            5,
        ),
        (httpx.Response(502, text="<html>Bad gateway</html>"), ac.ServerError, "http_502", None),
        (error(418, "teapot"), ac.AmodalError, "teapot", None),
    ],
)
def test_each_error_answer_raises_its_family_with_code_status_and_retry_after(
    api, flavor, response, cls, code, retry_after
):
    api.on("POST", "/chat/sync", response)

    with pytest.raises(ac.AmodalError) as raised:
        flavor.call(lambda client: client.chat.send("hello"))

    assert type(raised.value) is cls
    assert (raised.value.code, raised.value.status, raised.value.retry_after) == (
        code,
        response.status_code,
        retry_after,
    )
    if code == "http_502":
        assert raised.value.message == "The server answered 502 Bad Gateway without an error body."
    else:
        assert raised.value.message == response.json()["error"]["message"]
    assert str(raised.value).startswith(f"{response.status_code} {code}: ")


def test_service_unavailable_is_a_server_error():
    assert issubclass(ac.ServiceUnavailable, ac.ServerError) and issubclass(ac.ServerError, ac.AmodalError)
    assert not issubclass(ac.BudgetExceeded, ac.RateLimited)


def test_no_answer_raises_a_connection_error(api, flavor):
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    api.on("GET", "/api/memory", refuse)

    with pytest.raises(ac.APIConnectionError) as raised:
        flavor.call(lambda client: client.memory.list())

    assert raised.value.code == "connection_error" and "GET /api/memory" in raised.value.message
    assert isinstance(raised.value.__cause__, httpx.ConnectError)


def test_a_success_that_is_not_json_is_a_protocol_error(api, flavor):
    api.on("GET", "/api/memory", httpx.Response(200, text="<html></html>"))

    with pytest.raises(ac.ProtocolError) as raised:
        flavor.call(lambda client: client.memory.list())

    assert raised.value.status == 200 and "GET /api/memory" in raised.value.message


# --- chat/sync and cancel ----------------------------------------------------------------------------------


def test_send_returns_the_typed_result(api, flavor):
    api.on(
        "POST",
        "/chat/sync",
        httpx.Response(
            200,
            json={
                "session_id": "s-2",
                "response": "Done.",
                "tool_calls": [
                    {
                        "tool_id": "t1",
                        "tool_name": "request",
                        "parameters": {"endpoint": "/accounts"},
                        "status": "error",
                        "error": "HTTP 500",
                        "duration_ms": 3,
                    }
                ],
                "usage": USAGE,
                "stop_reason": "model_stop",
                "message_id": "m-2",
                "errors": [{"code": "max_turns", "message": "Stopped."}],
            },
        ),
    )

    result = flavor.call(lambda client: client.chat.send("hi", session_id="s-2"), token="t", scope_id="h")

    assert (result.session_id, result.response, result.stop_reason, result.message_id) == (
        "s-2",
        "Done.",
        "model_stop",
        "m-2",
    )
    assert result.tool_calls == [
        ac.ToolCall(
            tool_id="t1",
            tool_name="request",
            parameters={"endpoint": "/accounts"},
            status="error",
            result=None,
            error="HTTP 500",
            duration_ms=3,
        )
    ]
    assert result.usage.total_tokens == 15
    assert result.errors == [ac.StreamError(code="max_turns", message="Stopped.")]
    assert api.last_json() == {"scope_id": "h", "message": "hi", "session_id": "s-2"}


def test_cancel_posts_to_the_sessions_cancel_address(api, flavor):
    api.on("POST", "/sessions/a%2Fb/cancel", httpx.Response(200, json={"ok": True, "running": True}))

    result = flavor.call(lambda client: client.chat.cancel("a/b"), scope_id="h")

    assert result == ac.CancelResult(running=True)
    assert api.last_json() == {"scope_id": "h"}


# --- history and feedback ----------------------------------------------------------------------------------

SESSION = {
    "id": "s-1",
    "title": "Groceries",
    "scope_id": "household-a",
    "tags": ["food"],
    "status": "idle",
    "message_count": 2,
    "created_at": "2026-12-06T10:00:00+00:00",
    "updated_at": "2026-12-06T10:01:00+00:00",
    "model": "local",
    "provider": "local",
    "deploy_id": "d-9",
    "token_usage": {"input_tokens": 3, "output_tokens": 4, "total_tokens": 7},
    "cost_micros": 12,
}


def test_sessions_list_reads_the_page_and_its_cursor(api, flavor):
    api.on("GET", "/sessions/history", httpx.Response(200, json=[SESSION], headers={"X-Next-Cursor": "c2"}))

    page = flavor.call(lambda client: client.sessions.list(limit=1, before="c1", tags=["food", "rent"]), scope_id="h")

    assert page.next_cursor == "c2"
    [summary] = page.sessions
    assert (summary.id, summary.title, summary.tags, summary.message_count) == ("s-1", "Groceries", ["food"], 2)
    assert summary.token_usage == ac.TokenUsage(input_tokens=3, output_tokens=4, total_tokens=7)
    assert summary.raw["deploy_id"] == "d-9"
    assert dict(api.last.url.params) == {"limit": "1", "before": "c1", "tags": "food,rent", "scope_id": "h"}


def test_the_last_page_has_no_cursor(api, flavor):
    api.on("GET", "/sessions/history", httpx.Response(200, json=[]))

    assert flavor.call(lambda client: client.sessions.list()) == ac.SessionPage(sessions=[], next_cursor=None)


def test_session_detail_reads_messages_tool_calls_and_feedback(api, flavor):
    detail = {
        **SESSION,
        "messages": [
            {
                "id": "u1",
                "role": "user",
                "type": "user",
                "text": "hi",
                "timestamp": TS,
                "interrupted": False,
                "toolCalls": [],
            },
            {
                "id": "m1",
                "role": "assistant",
                "type": "assistant_text",
                "text": "",
                "timestamp": TS,
                "interrupted": True,
                "toolCalls": [
                    {
                        "toolId": "t1",
                        "toolName": "request",
                        "parameters": {"a": 1},
                        "args": {"a": 1},
                        "status": "success",
                        "result": "ok",
                        "duration_ms": 4,
                    }
                ],
                "error": None,
            },
            {  # refused by the budget: nothing answered it
                "id": "u2",
                "role": "user",
                "type": "user",
                "text": "more?",
                "timestamp": TS,
                "interrupted": False,
                "error": "budget_exceeded",
                "toolCalls": [],
            },
        ],
        "feedback": [{"message_id": "m1", "rating": -1, "comment": "wrong", "user": "u-7", "updated_at": TS}],
    }
    api.on("GET", "/sessions/history/s-1", httpx.Response(200, json=detail))

    session = flavor.call(lambda client: client.sessions.get("s-1"))

    assert isinstance(session, ac.SessionDetail) and session.title == "Groceries"
    # `error` absent (a server from before it) reads as None, like null.
    assert [(m.role, m.text, m.interrupted, m.error) for m in session.messages] == [
        ("user", "hi", False, None),
        ("assistant", "", True, None),
        ("user", "more?", False, "budget_exceeded"),
    ]
    assert session.messages[1].tool_calls == [
        ac.HistoryToolCall(
            tool_id="t1",
            tool_name="request",
            parameters={"a": 1},
            status="success",
            result="ok",
            error=None,
            duration_ms=4,
        )
    ]
    assert session.feedback == [ac.Feedback(message_id="m1", rating=-1, comment="wrong", user="u-7")]


def test_feedback_update_and_delete_send_their_bodies(api, flavor):
    api.on("POST", "/sessions/history/s-1/feedback", httpx.Response(200, json={"ok": True}))
    api.on("PATCH", "/sessions/history/s-1", httpx.Response(200, json={"ok": True}))
    api.on("DELETE", "/sessions/history/s-1", httpx.Response(200, json={"ok": True}))

    flavor.call(lambda client: client.sessions.feedback("s-1", -1, message_id="m-1", comment="wrong total"))
    assert api.last_json() == {"rating": -1, "message_id": "m-1", "comment": "wrong total"}
    flavor.call(lambda client: client.sessions.feedback("s-1", 1))
    assert api.last_json() == {"rating": 1}
    flavor.call(lambda client: client.sessions.update("s-1", title="Renamed", tags=[]))
    assert api.last_json() == {"title": "Renamed", "tags": []}
    assert flavor.call(lambda client: client.sessions.delete("s-1")) is None
    assert api.last.method == "DELETE"


def test_a_wrongly_typed_field_names_itself(api, flavor):
    api.on("GET", "/sessions/history", httpx.Response(200, json=[{**SESSION, "message_count": "2"}]))

    with pytest.raises(ac.ProtocolError, match=r"a session: 'message_count' must be an integer"):
        flavor.call(lambda client: client.sessions.list())


# --- stores, memory, credentials, scopes -------------------------------------------------------------------

DOCUMENT = {
    "key": "currency",
    "data": {"key": "currency", "value": "EUR"},
    "version": 2,
    "created_at": TS,
    "updated_at": TS,
    "expires_at": None,
    "stale": False,
}


def test_stores(api, flavor):
    store = {
        "name": "preferences",
        "description": "Prefs.",
        "shared": False,
        "entity": {"name": "HouseholdPreference", "key": "{key}", "schema": {}},
        "ttl": None,
        "history": {"versions": 5},
        "document_count": 1,
    }
    api.on("GET", "/api/stores", httpx.Response(200, json={"stores": [store]}))
    api.on(
        "GET",
        "/api/stores/preferences",
        httpx.Response(
            200,
            json={
                "store": "preferences",
                "shared": False,
                "documents": [DOCUMENT],
                "limit": 5,
                "offset": 0,
                "has_more": True,
            },
        ),
    )
    api.on("PUT", "/api/stores/preferences/a%2Fb", httpx.Response(201, json=DOCUMENT))
    api.on("POST", "/api/stores/preferences", httpx.Response(200, json=DOCUMENT))
    api.on("GET", "/api/stores/preferences/currency", httpx.Response(200, json=DOCUMENT))
    api.on("DELETE", "/api/stores/preferences/currency", httpx.Response(200, json={"ok": True}))

    [info] = flavor.call(lambda client: client.stores.list())
    assert (info.name, info.shared, info.document_count, info.ttl) == ("preferences", False, 1, None)

    page = flavor.call(
        lambda client: client.stores.query("preferences", filter={"value": "EUR"}, sort="-key", limit=5, offset=0)
    )
    assert page.has_more and page.documents[0].data == {"key": "currency", "value": "EUR"}
    assert dict(api.last.url.params) == {"filter": '{"value":"EUR"}', "sort": "-key", "limit": "5", "offset": "0"}

    written = flavor.call(lambda client: client.stores.put("preferences", "a/b", {"key": "a/b", "value": "x"}))
    assert written.created is True and written.version == 2
    assert api.last_json() == {"data": {"key": "a/b", "value": "x"}}

    replaced = flavor.call(lambda client: client.stores.create("preferences", {"key": "currency", "value": "EUR"}))
    assert replaced.created is False
    assert api.last_json() == {"data": {"key": "currency", "value": "EUR"}}

    assert flavor.call(lambda client: client.stores.get("preferences", "currency")).key == "currency"
    assert flavor.call(lambda client: client.stores.delete("preferences", "currency")) is None


def test_store_batch(api, flavor):
    api.on(
        "POST", "/api/stores/preferences", httpx.Response(201, json={"store": "preferences", "documents": [DOCUMENT]})
    )

    documents = flavor.call(lambda client: client.stores.create_many("preferences", [DOCUMENT["data"]]))

    assert [document.key for document in documents] == ["currency"]
    assert api.last_json() == {"documents": [DOCUMENT["data"]]}


def test_memory(api, flavor):
    entry = {"id": "e-1", "content": "Prefers EUR", "created_at": TS}
    api.on(
        "GET",
        "/api/memory",
        httpx.Response(
            200,
            json={
                "entries": [{**entry, "rank": 0.5}],
                "enabled": True,
                "count": 1,
                "total_chars": 11,
                "max_entries": 50,
                "max_total_chars": 8000,
            },
        ),
    )
    api.on("POST", "/api/memory", httpx.Response(201, json=entry))
    api.on("DELETE", "/api/memory/e-1", httpx.Response(200, json={"ok": True}))

    listing = flavor.call(lambda client: client.memory.list(query="EUR"), scope_id="h")
    assert listing.entries[0].rank == 0.5 and listing.max_entries == 50
    assert dict(api.last.url.params) == {"query": "EUR", "scope_id": "h"}
    added = flavor.call(lambda client: client.memory.add("Prefers EUR"))
    assert (added.id, added.created) == ("e-1", True) and api.last_json() == {"content": "Prefers EUR"}
    flavor.call(lambda client: client.memory.delete("e-1"))
    assert api.last.method == "DELETE"


def test_credentials(api, flavor):
    credential = {"key": "APP_TOKEN", "scope_id": "h", "updated_at": TS, "updated_by": "api-key:ops"}
    api.on(
        "GET",
        "/api/credentials",
        httpx.Response(200, json={"credentials": [credential], "limit": 100, "offset": 0, "has_more": False}),
    )
    api.on("PUT", "/api/credentials/APP_TOKEN", httpx.Response(201, json={**credential, "result": "created"}))
    api.on("DELETE", "/api/credentials/APP_TOKEN", httpx.Response(200, json={"ok": True}))

    page = flavor.call(lambda client: client.credentials.list(), scope_id="h")
    assert [c.key for c in page.credentials] == ["APP_TOKEN"] and page.credentials[0].result is None
    written = flavor.call(lambda client: client.credentials.set("APP_TOKEN", "s3cret"), scope_id="h")
    assert written.result == "created"
    assert api.last_json() == {"value": "s3cret"} and api.last.url.params["scope_id"] == "h"
    flavor.call(lambda client: client.credentials.delete("APP_TOKEN"))


def test_scopes_address_the_scope_in_the_url_only(api, flavor):
    details = {
        "scope_id": "org/1",
        "label": "Org",
        "metadata": {"plan": "pro"},
        "first_seen_at": TS,
        "last_seen_at": TS,
    }
    api.on("PUT", "/api/scopes/org%2F1", httpx.Response(200, json=details))
    api.on("GET", "/api/scopes/", httpx.Response(200, json={**details, "scope_id": ""}))
    api.on(
        "DELETE", "/api/scopes/org%2F1", httpx.Response(200, json={"ok": True, "deleted": {"sessions": 2, "usage": 0}})
    )
    api.on(
        "GET",
        "/api/scopes/org%2F1/export",
        httpx.Response(200, content=b'{"kind":"scope","scope_id":"org/1"}\n{"kind":"session","id":"s"}\n'),
    )

    updated = flavor.call(
        lambda client: client.scopes.update("org/1", label="Org", metadata={"plan": "pro"}), scope_id="x"
    )
    assert (updated.scope_id, updated.label, updated.metadata) == ("org/1", "Org", {"plan": "pro"})
    assert api.last_json() == {"label": "Org", "metadata": {"plan": "pro"}} and "scope_id" not in api.last.url.params
    assert flavor.call(lambda client: client.scopes.get("")).scope_id == ""
    assert flavor.export("org/1", token="ak") == [
        {"kind": "scope", "scope_id": "org/1"},
        {"kind": "session", "id": "s"},
    ]
    assert api.last.headers["Accept"] == "application/x-ndjson, application/json;q=0.9"
    erased = flavor.call(lambda client: client.scopes.erase("org/1"))
    assert erased.deleted == {"sessions": 2, "usage": 0}


def test_with_scope_shares_the_connection_and_changes_only_the_scope(api):
    api.on(
        "GET",
        "/api/memory",
        httpx.Response(
            200,
            json={"entries": [], "enabled": True, "count": 0, "total_chars": 0, "max_entries": 1, "max_total_chars": 1},
        ),
    )
    http = httpx.Client(transport=httpx.MockTransport(api))
    client = ac.AmodalClient(BASE, "ak_x", scope_id="one", http_client=http)

    other = client.with_scope("two")
    other.memory.list()
    client.memory.list()

    assert [request.url.params["scope_id"] for request in api.requests] == ["two", "one"]
    assert other._http is client._http and other.scope_id == "two"
    client.close()
    assert not http.is_closed  # the caller's own httpx client stays theirs to close


# --- the SSE decoder, against httpx-sse on the same bytes --------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "data: one\n\n",
        "data:no-space\n\n",
        "data: a\ndata: b\n\n",
        ": comment\n\ndata: x\n\n: keep-alive\n\n",
        "event: custom\nid: 7\nretry: 10\ndata: y\n\n",
        "data: crlf\r\n\r\n",
        "data: cr\r\rdata: two\r\r",
        "unknown: field\ndata: z\n\n",
        "data\n\n",
        "data:  two spaces\n\n",
    ],
)
def test_the_sse_decoder_agrees_with_httpx_sse(text):
    response = httpx.Response(200, content=text.encode(), headers={"Content-Type": "text/event-stream"})
    expected = [event.data for event in httpx_sse.EventSource(response).iter_sse()]

    assert decode(text) == expected


def test_an_event_without_data_is_not_dispatched():
    # The standard's rule (httpx-sse dispatches it with empty data).
    assert decode("event: only\nid: 3\n\ndata: next\n\n") == ["next"]


def test_data_lines_not_yet_ended_are_pending():
    decoder = SSEDecoder()
    assert decoder.feed("data: half") is None and decoder.pending


def decode(text: str) -> list[str]:
    decoder = SSEDecoder()
    lines = httpx.Response(200, content=text.encode()).iter_lines()
    return [data for line in lines if (data := decoder.feed(line)) is not None]
