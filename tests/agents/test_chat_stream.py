"""POST /chat/stream (and /chat, /chat/sync): the event stream's shape, usage, tools, limits, validation,
model overrides and the per-session lease (SPEC §3)."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime

import pytest

from agents import services
from agents.models import Message, ModelPrice, Session, SessionStatus, UsageRecord
from agents.runtime.providers.base import TokenUsage
from agents.runtime.providers.local import ScriptedTurn, scripted_turns
from agents.turn import lease as lease_module
from core.tools import Tool, ToolResult
from scoping.context import scope
from scoping.models import Scope
from tests.conftest import write_agent_folder

USAGE_KEYS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")


def make_tool(name, handler):
    return Tool(name=name, description=f"Test tool {name}.", input_schema={"type": "object"}, run=handler)


@pytest.fixture
def tool_calls(register_tools):
    """Test tools: t_echo (returns its arguments as JSON), t_big (60 000 chars), t_boom (raises),
    t_sleep (sleeps 30 s). Returns the list of (name, arguments) each tool was called with."""
    calls: list[tuple[str, dict]] = []

    async def echo(context, arguments):
        calls.append(("t_echo", arguments))
        return ToolResult(json.dumps(arguments, sort_keys=True))

    async def big(context, arguments):
        calls.append(("t_big", arguments))
        return ToolResult("x" * 60_000)

    async def boom(context, arguments):
        calls.append(("t_boom", arguments))
        raise RuntimeError("the tool broke")

    async def sleep(context, arguments):
        calls.append(("t_sleep", arguments))
        await asyncio.sleep(30)
        return ToolResult("never")

    register_tools(
        make_tool("t_echo", echo), make_tool("t_big", big), make_tool("t_boom", boom), make_tool("t_sleep", sleep)
    )
    return calls


def session_of(result) -> Session:
    return Session.all_scopes.get(pk=result.events[0]["session_id"])


# --- The stream's shape --------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_stream_frames_init_first_done_last_with_timestamps_and_headers(test_agent, chat, jwt_header):
    result = chat.stream({"message": "/say one two three four five six"}, jwt_header("tenant-a"))

    assert result.status == 200
    assert result.headers["Content-Type"] == "text/event-stream"
    assert result.headers["Cache-Control"] == "no-cache"
    assert result.headers["X-Accel-Buffering"] == "no"
    assert len(result.frames) >= 4
    for frame in result.frames:
        assert frame.startswith("data: {")
        assert "\n" not in frame  # one line of JSON per frame, frames separated by a blank line
    events = result.events
    assert [e["type"] for e in events][0] == "init"
    assert events[-1]["type"] == "done"
    assert [e["type"] for e in events].count("done") == 1
    for item in events:
        assert isinstance(item["timestamp"], str)
        parsed = datetime.fromisoformat(item["timestamp"])
        assert parsed.tzinfo is not None
    init = events[0]
    session = Session.all_scopes.get(pk=init["session_id"])
    assert init["scope_id"] == "tenant-a" == session.scope
    assert init["deploy_id"] == test_agent.deploy_id == session.deploy_id
    assert events[-1]["reason"] == "model_stop"


@pytest.mark.django_db(transaction=True)
def test_raw_body_is_exactly_data_frames(test_agent, chat, jwt_header):
    result = chat.stream({"message": "/say hi there"}, jwt_header("tenant-a"))
    body = "".join(frame + "\n\n" for frame in result.frames)
    for item, frame in zip(result.events, result.frames, strict=True):
        assert frame == "data: " + json.dumps(item, separators=(",", ":"), ensure_ascii=False)
    assert body.count("data: ") == len(result.events)


@pytest.mark.django_db(transaction=True)
def test_text_deltas_concatenate_to_the_saved_assistant_message(test_agent, chat, jwt_header):
    text = "The quick brown fox jumps over the lazy dog and keeps running far away"
    result = chat.stream({"message": f"/say {text}"}, jwt_header("tenant-a"))

    deltas = [e["content"] for e in result.of_type("text_delta")]
    assert len(deltas) >= 2
    assert "".join(deltas) == text
    session = session_of(result)
    messages = list(Message.all_scopes.filter(session=session).order_by("seq"))
    assert [(m.role, m.text) for m in messages] == [("user", f"/say {text}"), ("assistant", text)]
    assert all(m.scope == "tenant-a" for m in messages)


@pytest.mark.django_db(transaction=True)
def test_done_usage_is_the_sum_of_usage_events_and_of_usage_rows(test_agent, chat, jwt_header, tool_calls):
    ModelPrice.objects.create(model="local", input_micros_per_mtok=1_000_000_000, output_micros_per_mtok=3_000_000_000)
    result = chat.stream({"message": '/tool t_echo {"q": 1}'}, jwt_header("tenant-a"))

    usage_events = result.of_type("usage")
    assert len(usage_events) == 2  # the tool call, then the summary
    done = result.events[-1]
    for key in USAGE_KEYS:
        assert done["usage"][key] == sum(e[key] for e in usage_events)
    assert done["usage"]["total_tokens"] == done["usage"]["input_tokens"] + done["usage"]["output_tokens"]
    assert all(isinstance(e["cost_micros"], int) and e["cost_micros"] > 0 for e in usage_events)
    assert done["usage"]["cost_micros"] == sum(e["cost_micros"] for e in usage_events)

    rows = list(UsageRecord.all_scopes.filter(session_id=result.events[0]["session_id"]))
    assert len(rows) == 2
    for key in USAGE_KEYS:
        assert done["usage"][key] == sum(getattr(row, key) for row in rows)
    assert done["usage"]["cost_micros"] == sum(row.cost_micros for row in rows)
    assert {row.scope for row in rows} == {"tenant-a"}
    assert {row.deploy_id for row in rows} == {test_agent.deploy_id}
    assert {row.model for row in rows} == {"local"}
    session = session_of(result)
    assert session.input_tokens == done["usage"]["input_tokens"]
    assert session.output_tokens == done["usage"]["output_tokens"]
    assert session.cost_micros == done["usage"]["cost_micros"]
    # The per-session latency figure (Studio's latency filter) is kept with each call, like the cost.
    assert session.model_calls == 2
    assert session.model_latency_ms == sum(row.latency_ms for row in rows)


@pytest.mark.django_db(transaction=True)
def test_unpriced_model_gives_null_cost_in_usage_and_done(test_agent, chat, jwt_header):
    result = chat.stream({"message": "/say hi"}, jwt_header("tenant-a"))
    assert [e["cost_micros"] for e in result.of_type("usage")] == [None]
    assert result.events[-1]["usage"]["cost_micros"] is None
    assert UsageRecord.all_scopes.get().cost_micros is None


# --- Tools ---------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_tool_call_events_redact_secret_looking_parameters(test_agent, chat, jwt_header, tool_calls):
    arguments = {
        "api_key": "val-x",
        "nested": {"password": "val-y", "city": "Paris"},
        "items": [{"token": "val-z"}],
        "n": 2,
    }
    with scripted_turns(ScriptedTurn(tool_calls=(("t_echo", arguments),)), ScriptedTurn(text="All done.")):
        result = chat.stream({"message": "go"}, jwt_header("tenant-a"))

    assert tool_calls == [("t_echo", arguments)]  # the tool itself gets the real values
    (start,) = result.of_type("tool_call_start")
    assert start["tool_name"] == "t_echo"
    assert start["parameters"] == {
        "api_key": "[REDACTED]",
        "nested": {"password": "[REDACTED]", "city": "Paris"},
        "items": [{"token": "[REDACTED]"}],
        "n": 2,
    }
    (end,) = result.of_type("tool_call_result")
    assert end["tool_id"] == start["tool_id"]
    assert end["status"] == "success"
    assert isinstance(end["duration_ms"], int) and end["duration_ms"] >= 0
    assert json.loads(end["result"]) == arguments
    assert "error" not in end
    types = [e["type"] for e in result.events]
    assert types.index("tool_call_start") < types.index("tool_call_result") < types.index("done")
    saved = Message.all_scopes.get(session=session_of(result), seq=1)
    assert saved.tool_calls[0]["parameters"] == start["parameters"]
    assert "val-" not in json.dumps(saved.tool_calls[0]["parameters"])
    assert "val-" not in json.dumps(start)


@pytest.mark.django_db(transaction=True)
def test_tool_result_is_capped_at_50000_chars(test_agent, chat, jwt_header, tool_calls):
    with scripted_turns(ScriptedTurn(tool_calls=(("t_big", {}),)), ScriptedTurn(text="ok")):
        result = chat.stream({"message": "go"}, jwt_header("tenant-a"))
    (end,) = result.of_type("tool_call_result")
    assert end["status"] == "success"
    assert len(end["result"]) == 50_000
    saved = Message.all_scopes.get(session=session_of(result), seq=1)
    assert len(saved.tool_calls[0]["result"]) == 50_000


@pytest.mark.parametrize(
    ("tool_name", "error_fragment"),
    [
        ("t_boom", "failed unexpectedly (RuntimeError)"),
        ("t_missing", "no tool named 't_missing'"),
        ("t_sleep", "did not finish within 0.2 seconds"),
    ],
)
@pytest.mark.django_db(transaction=True)
def test_tool_errors_are_fed_back_and_the_loop_continues(
    tmp_path, use_agent, chat, jwt_header, tool_calls, tool_name, error_fragment
):
    use_agent(write_agent_folder(tmp_path / "agent", amodal={"agent": {"toolTimeoutSeconds": 0.2}}))
    turns = (ScriptedTurn(tool_calls=((tool_name, {"a": 1}),)), ScriptedTurn(text="Recovered."))
    with scripted_turns(*turns) as script:
        result = chat.stream({"message": "go"}, jwt_header("tenant-a"))

    (end,) = result.of_type("tool_call_result")
    assert end["status"] == "error"
    assert error_fragment in end["error"]
    assert "result" not in end
    assert result.events[-1]["reason"] == "model_stop"
    assert "".join(e["content"] for e in result.of_type("text_delta")) == "Recovered."
    assert len(script.requests) == 2
    fed_back = script.requests[1].messages[-1]
    assert fed_back["role"] == "user"
    assert fed_back["content"][0]["type"] == "tool_result"
    assert fed_back["content"][0]["tool_use_id"] == end["tool_id"]
    assert fed_back["content"][0]["is_error"] is True
    assert error_fragment in fed_back["content"][0]["content"]
    assert script.turns == []


# --- Limits --------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_max_turns_ends_with_an_error_then_done_max_turns(tmp_path, use_agent, chat, jwt_header, tool_calls):
    use_agent(write_agent_folder(tmp_path / "agent", amodal={"agent": {"maxTurns": 2}}))
    turns = [ScriptedTurn(tool_calls=(("t_echo", {"i": i}),)) for i in range(3)]
    with scripted_turns(*turns) as script:
        result = chat.stream({"message": "loop forever"}, jwt_header("tenant-a"))

    assert len(script.requests) == 2
    assert len(script.turns) == 1  # the third turn was never asked for
    assert len(result.of_type("usage")) == 2
    error, done = result.events[-2:]
    assert error["type"] == "error"
    assert error["code"] == "max_turns"
    assert "2" in error["message"]
    assert done["type"] == "done"
    assert done["reason"] == "max_turns"
    assert UsageRecord.all_scopes.filter(session=session_of(result)).count() == 2


@pytest.mark.django_db(transaction=True)
def test_max_session_tokens_ends_with_budget_exceeded(tmp_path, use_agent, chat, jwt_header, tool_calls):
    use_agent(write_agent_folder(tmp_path / "agent", amodal={"agent": {"maxSessionTokens": 50}}))
    turns = (
        ScriptedTurn(tool_calls=(("t_echo", {}),), usage=TokenUsage(40, 20)),
        ScriptedTurn(text="never"),
    )
    with scripted_turns(*turns) as script:
        result = chat.stream({"message": "spend"}, jwt_header("tenant-a"))
        assert len(script.requests) == 1
        error, done = result.events[-2:]
        assert (error["type"], error["code"]) == ("error", "budget_exceeded")
        assert (done["type"], done["reason"]) == ("done", "budget_exceeded")
        assert done["usage"]["total_tokens"] == 60

        # The next message of the same session stops before any model call.
        session_id = result.events[0]["session_id"]
        again = chat.stream({"message": "more", "session_id": session_id}, jwt_header("tenant-a"))
        assert len(script.requests) == 1
    assert [e["type"] for e in again.events] == ["init", "error", "done"]
    assert again.events[1]["code"] == "budget_exceeded"
    assert again.events[2]["reason"] == "budget_exceeded"
    assert again.events[2]["usage"]["total_tokens"] == 0


# --- Validation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "message"),
        ({"message": ""}, "message"),
        ({"message": "x" * 100_001}, "message"),
        ({"message": 5}, "message"),
        ({"message": 1.5}, "message"),
        ({"message": True}, "message"),
        ({"message": None}, "message"),
        ({"message": ["hi"]}, "message"),
        ({"message": {"text": "hi"}}, "message"),
        ({"message": "hi", "context": {"a": 1}}, "context"),
        ({"message": "hi", "context": "a=b"}, "context"),
        ({"message": "hi", "context": ["a"]}, "context"),
        ({"message": "hi", "context": {"a": None}}, "context"),
        ({"message": "hi", "model": {"provider": "openai", "model": "gpt"}}, "model"),
        ({"message": "hi", "model": "claude"}, "model"),
        ({"message": "hi", "session_id": ["x"]}, "session_id"),
        ({"message": "hi", "session_id": 5}, "session_id"),
    ],
)
@pytest.mark.django_db(transaction=True)
def test_invalid_fields_are_400_validation_error_naming_the_field(test_agent, chat, api_key_header, body, field):
    result = chat.stream(body, api_key_header())
    assert result.status == 400
    error = result.json()["error"]
    assert set(result.json()) == {"error"}
    assert set(error) == {"code", "message"}
    assert error["code"] == "validation_error"
    assert error["message"].startswith(field)
    assert Session.all_scopes.count() == 0
    assert Message.all_scopes.count() == 0


@pytest.mark.parametrize("body", [[1, 2], "message", 5, None, True])
@pytest.mark.django_db(transaction=True)
def test_body_that_is_not_an_object_is_400(test_agent, chat, jwt_header, body):
    result = chat.stream(body, jwt_header("tenant-a"))
    assert result.status == 400
    assert result.json()["error"]["code"] == "validation_error"
    assert "object" in result.json()["error"]["message"]
    assert Session.all_scopes.count() == 0


@pytest.mark.parametrize("raw", ["{not json", '{"message": "hi"', b"\xff\xfe", "{'message': 'hi'}"])
@pytest.mark.django_db(transaction=True)
def test_invalid_json_is_400_invalid_json(test_agent, chat, jwt_header, raw):
    result = chat.stream(None, jwt_header("tenant-a"), raw=raw)
    assert result.status == 400
    assert result.json()["error"]["code"] == "invalid_json"
    assert Session.all_scopes.count() == 0


@pytest.mark.django_db(transaction=True)
def test_message_of_exactly_100000_chars_is_accepted(test_agent, chat, jwt_header):
    result = chat.stream({"message": "y" * 100_000}, jwt_header("tenant-a"))
    assert result.status == 200
    assert result.events[-1]["reason"] == "model_stop"
    assert len(Message.all_scopes.get(seq=0).text) == 100_000


@pytest.mark.django_db(transaction=True)
def test_unknown_fields_are_ignored(test_agent, chat, jwt_header):
    body = {"message": "/say fine", "stream": True, "foo": {"bar": [1]}, "temperature": 2}
    result = chat.stream(body, jwt_header("tenant-a"))
    assert result.status == 200
    assert "".join(e["content"] for e in result.of_type("text_delta")) == "fine"


# --- Model override ------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_model_override_by_a_jwt_caller_is_403(test_agent, chat, jwt_header):
    result = chat.stream(
        {"message": "/say hi", "model": {"provider": "local", "model": "local-big"}}, jwt_header("tenant-a")
    )
    assert result.status == 403
    assert result.json()["error"]["code"] == "model_override_forbidden"
    assert Session.all_scopes.count() == 0


@pytest.mark.django_db(transaction=True)
def test_model_override_by_an_api_key_is_recorded_on_the_session(test_agent, chat, api_key_header):
    body = {"message": "/say hi", "scope_id": "tenant-a", "model": {"provider": "local", "model": "local-big"}}
    result = chat.stream(body, api_key_header())
    assert result.status == 200
    assert result.events[-1]["reason"] == "model_stop"
    session = session_of(result)
    assert (session.provider, session.model) == ("local", "local-big")
    assert session.scope == "tenant-a"


# --- /chat and /chat/sync ------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_chat_is_the_same_endpoint_as_chat_stream(test_agent, chat, jwt_header):
    body = {"message": "/say alpha beta gamma delta"}
    plain = chat.post("/chat", body, jwt_header("tenant-a"))
    stream = chat.stream(body, jwt_header("tenant-a"))
    assert plain.status == stream.status == 200
    assert plain.headers["Content-Type"] == "text/event-stream"
    own = ("timestamp", "session_id", "message_id")  # each answer's own session and message

    def strip(events):
        return [{k: v for k, v in e.items() if k not in own} for e in events]

    assert strip(plain.events) == strip(stream.events)
    assert chat.post("/chat", {}, jwt_header("tenant-a")).status == 400


@pytest.mark.django_db(transaction=True)
def test_chat_sync_returns_the_whole_answer(test_agent, chat, jwt_header, tool_calls):
    result = chat.sync({"message": '/tool t_echo {"q": "paris", "secret": "s3"}'}, jwt_header("tenant-a"))
    assert result.status == 200
    assert result.headers["Content-Type"] == "application/json"
    body = result.json()
    assert {"session_id", "response", "tool_calls", "usage"} <= set(body)
    session = Session.all_scopes.get(pk=body["session_id"])
    assert session.scope == "tenant-a"
    assert body["response"] == "t_echo returned: q paris, secret s3"
    (call,) = body["tool_calls"]
    assert call["tool_name"] == "t_echo"
    assert call["parameters"] == {"q": "paris", "secret": "[REDACTED]"}
    assert call["status"] == "success"
    assert "model_content" not in call
    rows = UsageRecord.all_scopes.filter(session=session)
    assert body["usage"]["input_tokens"] == sum(r.input_tokens for r in rows)
    assert body["usage"]["output_tokens"] == sum(r.output_tokens for r in rows)
    assert body["usage"]["total_tokens"] == body["usage"]["input_tokens"] + body["usage"]["output_tokens"]


@pytest.mark.django_db(transaction=True)
def test_chat_sync_validation_errors_use_the_error_shape(test_agent, chat, jwt_header):
    result = chat.sync({"message": ""}, jwt_header("tenant-a"))
    assert result.status == 400
    assert result.json()["error"]["code"] == "validation_error"


# --- The session lease ---------------------------------------------------------------------------


@pytest.fixture
def lock_attempts(monkeypatch):
    """Count the lease attempts of wait_for_lease; `on_attempt(n)` may act before attempt n runs."""
    attempts: list[int] = []
    hooks: dict[int, object] = {}
    original = services.try_lock_session

    def counting(*, session_id, lock_token, **budget_reserve):
        attempts.append(1)
        hook = hooks.get(len(attempts))
        if hook is not None:
            hook()
        return original(session_id=session_id, lock_token=lock_token, **budget_reserve)

    monkeypatch.setattr(services, "try_lock_session", counting)
    monkeypatch.setattr(lease_module, "POLL_SECONDS", 0.05)
    return attempts, hooks


@pytest.mark.django_db(transaction=True)
def test_second_message_to_a_busy_session_waits_then_gets_409(test_agent, chat, jwt_header, lock_attempts, monkeypatch):
    monkeypatch.setattr(lease_module, "SESSION_BUSY_WAIT_SECONDS", 0.5)  # 5 s in production
    first = chat.stream({"message": "/say first"}, jwt_header("tenant-a"))
    session_id = first.events[0]["session_id"]
    with scope("tenant-a"):
        assert services.try_lock_session(session_id=session_id, lock_token="someone-else")
    attempts, _ = lock_attempts

    result = chat.stream({"message": "/say second", "session_id": session_id}, jwt_header("tenant-a"))

    assert result.status == 409
    assert result.json() == {"error": {"code": "session_busy", "message": result.json()["error"]["message"]}}
    assert len(attempts) >= 2  # it polled instead of failing at once
    session = Session.all_scopes.get(pk=session_id)
    assert session.lock_token == "someone-else"
    assert Message.all_scopes.filter(session=session).count() == 2  # the refused message was not saved


@pytest.mark.django_db(transaction=True)
def test_resend_while_the_first_message_finishes_succeeds(test_agent, chat, jwt_header, lock_attempts):
    first = chat.stream({"message": "/say first"}, jwt_header("tenant-a"))
    session_id = first.events[0]["session_id"]
    with scope("tenant-a"):
        assert services.try_lock_session(session_id=session_id, lock_token="finishing")
    attempts, hooks = lock_attempts
    # The first message finishes (releases its lease) just before the third attempt.
    hooks[3] = lambda: services.release_lock(session_id=session_id, lock_token="finishing", status=SessionStatus.IDLE)

    result = chat.stream({"message": "/say second", "session_id": session_id}, jwt_header("tenant-a"))

    assert result.status == 200
    assert len(attempts) == 3
    assert result.events[0]["session_id"] == session_id
    assert result.events[-1]["reason"] == "model_stop"
    session = Session.all_scopes.get(pk=session_id)
    assert session.lock_token == ""
    assert session.status == SessionStatus.IDLE
    texts = list(Message.all_scopes.filter(session=session).order_by("seq").values_list("text", flat=True))
    assert texts == ["/say first", "first", "/say second", "second"]


@pytest.mark.django_db(transaction=True)
def test_concurrent_messages_to_one_session_are_serialised(test_agent, chat, jwt_header, lock_attempts, monkeypatch):
    monkeypatch.setattr(lease_module, "SESSION_BUSY_WAIT_SECONDS", 0.3)
    first = chat.stream({"message": "/say first"}, jwt_header("tenant-a"))
    session_id = first.events[0]["session_id"]
    headers = jwt_header("tenant-a")
    words = " ".join(f"w{i}" for i in range(100))  # 10 s of words: it is still running when the other is refused

    async def both():
        slow = asyncio.create_task(chat.astream({"message": f"/slow 100 {words}", "session_id": session_id}, headers))
        while not await Session.all_scopes.filter(pk=session_id, lock_token__gt="").aexists():
            await asyncio.sleep(0.01)
        other = await chat.astream({"message": "/say second", "session_id": session_id}, headers)
        cancelled = await chat.apost(f"/sessions/{session_id}/cancel", {}, headers)
        return await slow, other, cancelled

    slow, other, cancelled = asyncio.run(both())
    assert other.status == 409
    assert other.json()["error"]["code"] == "session_busy"
    assert cancelled.json() == {"ok": True, "running": True}
    assert slow.status == 200
    assert slow.events[-1]["reason"] == "user_abort"
    texts = list(Message.all_scopes.filter(session_id=session_id).order_by("seq").values_list("text", flat=True))
    assert "/say second" not in texts


@pytest.mark.django_db(transaction=True)
def test_the_session_and_the_scope_row_are_created_on_first_use(test_agent, chat, jwt_header):
    assert not Scope.objects.filter(scope_id="tenant-new").exists()
    result = chat.stream({"message": "/say hi"}, jwt_header("tenant-new"))
    assert result.status == 200
    assert Scope.objects.filter(scope_id="tenant-new").count() == 1
    session = session_of(result)
    assert session.status == SessionStatus.IDLE
    assert session.lock_token == ""
    assert session.message_count == 2


# --- Failures outside the loop -------------------------------------------------------------------


@pytest.fixture
def broken_tool_factory():
    """A tool factory that fails (e.g. a bug in an app's tools): the message must still end with done."""
    from core import tools as tool_registry

    def factory(agent):
        raise RuntimeError("the tool factory broke")

    tool_registry.register_tool_factory(factory)
    yield
    tool_registry._tool_factories.remove(factory)


@pytest.mark.django_db(transaction=True)
def test_a_failure_while_preparing_the_loop_ends_with_error_then_done(
    test_agent, chat, jwt_header, broken_tool_factory
):
    async def bounded():
        return await asyncio.wait_for(chat.astream({"message": "/say hi"}, jwt_header("tenant-a")), 10)

    result = asyncio.run(bounded())
    assert result.status == 200
    assert [e["type"] for e in result.events] == ["init", "error", "done"]
    assert result.events[1]["code"] == "internal_error"
    assert result.events[2]["reason"] == "error"
    assert result.events[2]["usage"]["total_tokens"] == 0
    session = session_of(result)
    assert session.lock_token == ""
    assert session.status == SessionStatus.ERROR


# --- Keep-alive and client disconnect ------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_keep_alive_comment_frames_fill_silences(test_agent, chat, jwt_header, settings):
    settings.AMODAL_SSE_KEEPALIVE_SECONDS = 0.02
    result = chat.stream({"message": "/slow 300 a b c"}, jwt_header("tenant-a"))
    keep_alives = [frame for frame in result.frames if not frame.startswith("data: ")]
    assert keep_alives
    assert set(keep_alives) == {": keep-alive"}
    assert result.events[0]["type"] == "init"
    assert result.events[-1]["reason"] == "model_stop"
    assert "".join(e["content"] for e in result.of_type("text_delta")) == "a b c"


@pytest.mark.django_db(transaction=True)
def test_client_disconnect_cancels_the_work_and_saves_it_as_interrupted(test_agent, jwt_header, async_db_cleanup):
    from django.test import AsyncClient

    words = "one two three four five six seven eight nine ten"
    received: list[dict] = []

    async def disconnect_after_first_delta():
        response = await AsyncClient().post(
            "/chat/stream",
            data={"message": f"/slow 200 {words}"},
            content_type="application/json",
            headers=jwt_header("tenant-a"),
        )
        first_delta = asyncio.get_running_loop().create_future()

        async def read():
            async for chunk in response.streaming_content:
                for frame in chunk.decode().split("\n\n"):
                    if frame.startswith("data: "):
                        received.append(json.loads(frame[len("data: ") :]))
                        if received[-1]["type"] == "text_delta" and not first_delta.done():
                            first_delta.set_result(None)

        reader = asyncio.create_task(read())
        await first_delta
        reader.cancel()  # what the ASGI server does when the client goes away
        with pytest.raises(asyncio.CancelledError):
            await reader

    asyncio.run(disconnect_after_first_delta())

    assert [e["type"] for e in received][:2] == ["init", "text_delta"]
    assert "done" not in [e["type"] for e in received]
    session = Session.all_scopes.get(pk=received[0]["session_id"])
    assert session.status == SessionStatus.INTERRUPTED
    assert session.lock_token == ""
    user_message, assistant = Message.all_scopes.filter(session=session).order_by("seq")
    assert user_message.text == f"/slow 200 {words}"
    assert assistant.interrupted is True
    assert assistant.text and words.startswith(assistant.text) and assistant.text != words
    assert UsageRecord.all_scopes.filter(session=session).count() == 1
