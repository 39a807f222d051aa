"""The `local` provider: deterministic, offline, scriptable (SPEC §7), on its own and through the loop."""

from __future__ import annotations

import asyncio
import json

import pytest

from agents.models import Message, UsageRecord
from agents.runtime.providers.base import ModelRequest, ProviderError, TextDelta, TokenUsage, ToolUse, TurnEnd
from agents.runtime.providers.local import LocalProvider, ScriptedTurn, scripted_turns, split_for_streaming
from agents.runtime.wire import CHARS_PER_TOKEN, encode_json, estimate_tokens
from core.tools import Tool, ToolResult


def run_provider(request: ModelRequest) -> list:
    async def collect():
        return [item async for item in LocalProvider().stream(request)]

    return asyncio.run(collect())


def user(text: str) -> dict:
    return {"role": "user", "content": text}


def request_for(text: str, *, tools: list[dict] | None = None, history: list[dict] | None = None) -> ModelRequest:
    return ModelRequest(
        model="local", system="You are a test agent.", messages=[*(history or []), user(text)], tools=tools or []
    )


def tool_spec(name: str) -> dict:
    return {"name": name, "description": name, "input_schema": {"type": "object"}}


@pytest.fixture
def calls(register_tools):
    """t_echo and t_write record their arguments; t_write asks for confirmation like a mutating call."""
    seen: list[tuple[str, dict]] = []

    async def echo(context, arguments):
        seen.append(("t_echo", arguments))
        return ToolResult("echo " + json.dumps(arguments, sort_keys=True))

    async def write(context, arguments):
        seen.append(("t_write", arguments))
        if arguments.get("intent") == "confirmed_write":
            return ToolResult("written")
        return ToolResult("This write needs the user's confirmation.")

    register_tools(
        Tool("t_echo", "Echo.", {"type": "object"}, echo), Tool("t_write", "Write.", {"type": "object"}, write)
    )
    return seen


def text_of(result) -> str:
    return "".join(e["content"] for e in result.of_type("text_delta"))


def shape(result) -> list[str]:
    """The event types, with each run of text deltas shown once."""
    types: list[str] = []
    for item in result.events:
        if not (item["type"] == "text_delta" and types and types[-1] == "text_delta"):
            types.append(item["type"])
    return types


# --- The provider on its own ---------------------------------------------------------------------


def test_say_streams_several_deltas_then_ends():
    items = run_provider(request_for("/say one two three four five six seven"))
    deltas = [item.text for item in items if isinstance(item, TextDelta)]
    assert len(deltas) == 3
    assert "".join(deltas) == "one two three four five six seven"
    end = items[-1]
    assert isinstance(end, TurnEnd)
    assert (end.stop_reason, end.model) == ("end_turn", "local")
    assert not any(isinstance(item, ToolUse) for item in items)


@pytest.mark.parametrize(("text", "pieces"), [("one", 1), ("one two", 2), ("a b c d e f g h i", 3), ("", 0)])
def test_split_for_streaming_keeps_the_text(text, pieces):
    parts = split_for_streaming(text)
    assert len(parts) == pieces
    assert "".join(parts) == text


def test_tool_command_calls_exactly_that_tool_with_exactly_those_arguments():
    arguments = {"city": "Rome", "n": [1, 2, {"deep": None}], "flag": False, "unicode": "ü"}
    items = run_provider(request_for(f"/tool any_name {json.dumps(arguments)}"))
    uses = [item for item in items if isinstance(item, ToolUse)]
    assert len(uses) == 1
    assert uses[0].name == "any_name"
    assert uses[0].input == arguments
    assert uses[0].id == "toolu_local_0001"
    assert not any(isinstance(item, TextDelta) for item in items)
    assert items[-1].stop_reason == "tool_use"


def test_tool_command_without_arguments_calls_with_an_empty_object():
    uses = [item for item in run_provider(request_for("/tool t_echo")) if isinstance(item, ToolUse)]
    assert [(u.name, u.input) for u in uses] == [("t_echo", {})]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("/tool t_echo {not json", "not valid JSON"),
        ("/tool t_echo {'a': 1}", "not valid JSON"),
        ("/tool t_echo [1, 2]", "must be a JSON object"),
        ('/tool t_echo "text"', "must be a JSON object"),
    ],
)
def test_tool_command_with_bad_arguments_answers_in_words(text, fragment):
    items = run_provider(request_for(text))
    assert not any(isinstance(item, ToolUse) for item in items)
    answer = "".join(item.text for item in items if isinstance(item, TextDelta))
    assert fragment in answer
    assert "t_echo" in answer
    assert items[-1].stop_reason == "end_turn"


def test_summary_after_a_tool_result_is_one_line():
    history = [
        user("/tool t_echo {}"),
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "toolu_local_0001", "name": "t_echo", "input": {}}],
        },
    ]
    result = {
        "role": "user",
        "content": [
            {
                "type": "tool_result",
                "tool_use_id": "toolu_local_0001",
                "content": "line one\nline two\n\n  three",
                "is_error": False,
            }
        ],
    }
    request = ModelRequest(model="local", system="s", messages=[*history, result])
    items = run_provider(request)
    answer = "".join(item.text for item in items if isinstance(item, TextDelta))
    assert answer == "t_echo returned: line one line two three"
    assert "\n" not in answer


def test_usage_is_about_four_characters_a_token_and_deterministic():
    request = request_for("/say hello", tools=[tool_spec("t_echo")])
    first, second = run_provider(request), run_provider(request)
    end = first[-1]
    prompt = request.system + encode_json(request.messages) + encode_json(request.tools)
    assert end.usage == TokenUsage(
        input_tokens=-(-len(prompt) // CHARS_PER_TOKEN),
        output_tokens=-(-len("hello" + json.dumps([])) // CHARS_PER_TOKEN),
    )
    assert end.model == "local"
    assert second[-1] == end
    assert [estimate_tokens(t) for t in ("", "a", "abcd", "abcde", "x" * 400)] == [1, 1, 1, 2, 100]


@pytest.mark.parametrize(
    ("text", "tools", "expected"),
    [
        ("remember that I like tea", ["memory"], ("memory", {"action": "add", "content": "I like tea"})),
        ("what do you remember?", ["memory"], ("memory", {"action": "list"})),
        ("show my preferences", ["query_store"], ("query_store", {"store": "preferences"})),
        ("remember that I like tea", [], None),
        ("show my preferences", [], None),
    ],
)
def test_rule_based_answers_use_only_tools_the_agent_has(text, tools, expected):
    items = run_provider(request_for(text, tools=[tool_spec(name) for name in tools]))
    uses = [(u.name, u.input) for u in items if isinstance(u, ToolUse)]
    assert uses == ([expected] if expected else [])
    if expected is None:
        assert any(isinstance(item, TextDelta) for item in items)


def test_approval_reissues_the_remembered_call_with_confirmed_write():
    history = [
        user('/tool t_write {"amount": 5}'),
        {
            "role": "assistant",
            "content": [
                {
                    "type": "tool_use",
                    "id": "toolu_local_0001",
                    "name": "t_write",
                    "input": {"amount": 5, "intent": "write"},
                }
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_local_0001", "content": "confirm?", "is_error": False}
            ],
        },
        {"role": "assistant", "content": [{"type": "text", "text": "Please confirm."}]},
    ]
    items = run_provider(request_for("I approve the action (correlation: toolu_local_0001)", history=history))
    uses = [u for u in items if isinstance(u, ToolUse)]
    assert [(u.name, u.input) for u in uses] == [("t_write", {"amount": 5, "intent": "confirmed_write"})]
    assert uses[0].id == "toolu_local_0002"

    # The same history already serialised (as the runtime sends it): the same answer, the same new id.
    serialised = ModelRequest(
        model="local",
        system="s",
        history_json=",".join(encode_json(message) for message in history),
        messages=[user("I approve the action (correlation: toolu_local_0001)")],
    )
    assert [(u.id, u.name, u.input) for u in run_provider(serialised) if isinstance(u, ToolUse)] == [
        (uses[0].id, uses[0].name, uses[0].input)
    ]

    denied = run_provider(request_for("I deny the action (correlation: toolu_local_0001)", history=history))
    assert not any(isinstance(u, ToolUse) for u in denied)
    unknown = run_provider(request_for("I approve the action (correlation: toolu_nope)", history=history))
    assert not any(isinstance(u, ToolUse) for u in unknown)
    assert "toolu_nope" in "".join(i.text for i in unknown if isinstance(i, TextDelta))


def test_scripted_error_turn_raises_a_provider_error():
    turn = ScriptedTurn(error="model_overloaded", usage=TokenUsage(3, 0))
    with scripted_turns(turn) as script, pytest.raises(ProviderError) as raised:
        run_provider(request_for("hi"))
    assert raised.value.code == "model_overloaded"
    assert raised.value.usage == TokenUsage(3, 0)
    assert len(script.requests) == 1


# --- Through the loop ----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_tool_command_runs_the_tool_once_then_summarises_in_one_line(test_agent, chat, jwt_header, calls):
    result = chat.stream({"message": '/tool t_echo {"a": 1, "b": "two"}'}, jwt_header("tenant-a"))
    assert calls == [("t_echo", {"a": 1, "b": "two"})]
    # Each model call's usage is reported (and saved) when that call ends, before its tools run.
    assert shape(result) == ["init", "usage", "tool_call_start", "tool_call_result", "text_delta", "usage", "done"]
    assert len(result.of_type("text_delta")) >= 2
    answer = text_of(result)
    assert answer == 't_echo returned: echo {"a": 1, "b": "two"}'
    assert "\n" not in answer
    assert result.events[-1]["reason"] == "model_stop"


@pytest.mark.django_db(transaction=True)
def test_invalid_tool_json_gives_a_readable_answer_and_no_tool_call(test_agent, chat, jwt_header, calls):
    result = chat.stream({"message": "/tool t_echo {oops"}, jwt_header("tenant-a"))
    assert calls == []
    assert result.of_type("tool_call_start") == []
    assert "not valid JSON" in text_of(result)
    assert result.events[-1]["reason"] == "model_stop"


@pytest.mark.django_db(transaction=True)
def test_approval_round_trip_reissues_the_call_with_confirmed_write(test_agent, chat, jwt_header, calls):
    headers = jwt_header("tenant-a")

    async def conversation():
        first = await chat.astream({"message": '/tool t_write {"amount": 5, "to": "savings"}'}, headers)
        session_id = first.events[0]["session_id"]
        tool_id = first.of_type("tool_call_start")[0]["tool_id"]
        approved = await chat.astream(
            {"message": f"I approve the action (correlation: {tool_id})", "session_id": session_id}, headers
        )
        denied = await chat.astream(
            {"message": f"I deny the action (correlation: {tool_id})", "session_id": session_id}, headers
        )
        return first, approved, denied

    first, approved, denied = asyncio.run(conversation())
    assert calls == [
        ("t_write", {"amount": 5, "to": "savings"}),
        ("t_write", {"amount": 5, "to": "savings", "intent": "confirmed_write"}),
    ]
    (start,) = approved.of_type("tool_call_start")
    assert start["tool_name"] == "t_write"
    assert start["tool_id"] != first.of_type("tool_call_start")[0]["tool_id"]
    assert approved.of_type("tool_call_result")[0]["result"] == "written"
    assert denied.of_type("tool_call_start") == []
    assert text_of(denied) == "Understood: I won't do that."


@pytest.mark.django_db(transaction=True)
def test_usage_through_the_loop_is_deterministic_under_model_local(test_agent, chat, jwt_header):
    first = chat.stream({"message": "/say same words"}, jwt_header("tenant-a"))
    second = chat.stream({"message": "/say same words"}, jwt_header("tenant-b"))
    strip = [{k: v for k, v in e.items() if k != "timestamp"} for e in first.of_type("usage")]
    assert strip == [{k: v for k, v in e.items() if k != "timestamp"} for e in second.of_type("usage")]
    (usage,) = first.of_type("usage")
    assert usage["model"] == "local"
    assert usage["output_tokens"] == estimate_tokens("same words" + "[]")
    assert usage["input_tokens"] > 0
    assert (usage["cache_read_tokens"], usage["cache_write_tokens"], usage["cost_micros"]) == (0, 0, None)
    assert set(UsageRecord.all_scopes.values_list("model", "provider")) == {("local", "local")}


@pytest.mark.django_db(transaction=True)
def test_scripted_turns_drive_the_loop_in_order(test_agent, chat, jwt_header, calls):
    turns = (
        ScriptedTurn(
            text="Looking it up. ", tool_calls=(("t_echo", {"n": 1}), ("t_echo", {"n": 2})), usage=TokenUsage(7, 3)
        ),
        ScriptedTurn(text="Both done.", usage=TokenUsage(11, 2, cache_read_tokens=5)),
    )
    with scripted_turns(*turns) as script:
        result = chat.stream({"message": "anything"}, jwt_header("tenant-a"))

    assert script.turns == []
    assert len(script.requests) == 2
    assert calls == [("t_echo", {"n": 1}), ("t_echo", {"n": 2})]
    assert shape(result) == [
        "init",
        "text_delta",
        "usage",
        "tool_call_start",
        "tool_call_result",
        "tool_call_start",
        "tool_call_result",
        "text_delta",
        "usage",
        "done",
    ]
    assert text_of(result) == "Looking it up. Both done."
    usage = result.of_type("usage")
    assert [(u["input_tokens"], u["output_tokens"], u["cache_read_tokens"]) for u in usage] == [(7, 3, 0), (11, 2, 5)]
    done = result.events[-1]
    assert done["reason"] == "model_stop"
    assert (done["usage"]["input_tokens"], done["usage"]["output_tokens"], done["usage"]["total_tokens"]) == (18, 5, 23)
    # The second call sees the first one's tool results, in order.
    results = script.requests[1].messages[-1]["content"]
    assert [r["content"] for r in results] == ['echo {"n": 1}', 'echo {"n": 2}']
    assert script.requests[0].messages[-1] == {"role": "user", "content": "anything"}
    saved = list(Message.all_scopes.order_by("seq").values_list("role", "text"))
    assert saved == [("user", "anything"), ("assistant", "Looking it up. "), ("assistant", "Both done.")]


@pytest.mark.django_db(transaction=True)
def test_scripted_error_turn_ends_the_message_with_an_error(test_agent, chat, jwt_header, calls):
    turns = (
        ScriptedTurn(tool_calls=(("t_echo", {}),), usage=TokenUsage(4, 1)),
        ScriptedTurn(error="model_overloaded", usage=TokenUsage(6, 0)),
        ScriptedTurn(text="never reached"),
    )
    with scripted_turns(*turns) as script:
        result = chat.stream({"message": "go"}, jwt_header("tenant-a"))
    assert len(script.turns) == 1
    error, done = result.events[-2:]
    assert (error["type"], error["code"]) == ("error", "model_overloaded")
    assert (done["type"], done["reason"]) == ("done", "error")
    assert done["usage"]["input_tokens"] == 10
    assert UsageRecord.all_scopes.count() == 2
    assert Message.all_scopes.filter(role="assistant").order_by("-seq").first().error_code == "model_overloaded"
