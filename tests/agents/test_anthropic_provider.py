"""The `anthropic` provider through the real SDK against the local fake of the Messages API, and the
price table (SPEC §7)."""

from __future__ import annotations

import asyncio
import json

import pytest

from agents.models import Message, ModelPrice, Session, SessionStatus, UsageRecord
from agents.pricing import PRICE_TABLE, Price, cost_micros, price_for_model, price_from_table, usd
from agents.runtime.providers.anthropic import MAX_RETRIES
from core.tools import Tool, ToolResult
from tests.conftest import claude_agent_folder

EPHEMERAL = {"type": "ephemeral"}


@pytest.fixture
def claude_agent(tmp_path, use_agent, fake_anthropic):
    def make(model: str = "claude-sonnet-4-5"):
        return use_agent(claude_agent_folder(tmp_path / "agent", fake_anthropic.base_url, model=model))

    return make


@pytest.fixture
def tool_calls(register_tools):
    calls: list[dict] = []

    async def echo(context, arguments):
        calls.append(arguments)
        return ToolResult("echo:" + json.dumps(arguments, sort_keys=True))

    async def other(context, arguments):
        return ToolResult("other")

    register_tools(
        Tool("t_echo", "Echo the arguments.", {"type": "object", "properties": {"city": {"type": "string"}}}, echo),
        Tool("t_other", "Another tool.", {"type": "object"}, other),
    )
    return calls


def text_of(result) -> str:
    return "".join(e["content"] for e in result.of_type("text_delta"))


# --- Streaming, tools, usage ---------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_text_arrives_as_several_deltas(claude_agent, fake_anthropic, chat, jwt_header):
    claude_agent()
    fake_anthropic.queue_text("Hello from the fake Claude API.", chunks=4)
    result = chat.stream({"message": "Hi"}, jwt_header("tenant-a"))

    assert result.status == 200
    deltas = result.of_type("text_delta")
    assert len(deltas) == 4
    assert text_of(result) == "Hello from the fake Claude API."
    assert result.events[-1]["reason"] == "model_stop"
    fake_anthropic.assert_all_consumed()
    (request,) = fake_anthropic.message_requests()
    assert request.json["model"] == "claude-sonnet-4-5"
    assert request.json["stream"] is True
    assert request.json["messages"] == [{"role": "user", "content": "Hi"}]
    saved = Message.all_scopes.get(role="assistant")
    assert saved.text == "Hello from the fake Claude API."


@pytest.mark.django_db(transaction=True)
def test_tool_use_is_reassembled_executed_and_its_result_sent_back(
    claude_agent, fake_anthropic, chat, jwt_header, tool_calls
):
    claude_agent()
    arguments = {"city": "Paris", "days": 3, "tags": ["a", "b"], "nested": {"x": 1.5}}
    tool_id = fake_anthropic.queue_tool_use("t_echo", arguments, text_before="Let me check.", chunks=5)
    fake_anthropic.queue_text("Paris it is.")

    result = chat.stream({"message": "Plan a trip"}, jwt_header("tenant-a"))

    assert tool_calls == [arguments]
    (start,) = result.of_type("tool_call_start")
    assert (start["tool_id"], start["tool_name"], start["parameters"]) == (tool_id, "t_echo", arguments)
    (end,) = result.of_type("tool_call_result")
    assert (end["tool_id"], end["status"]) == (tool_id, "success")
    assert text_of(result) == "Let me check.Paris it is."
    assert result.events[-1]["reason"] == "model_stop"
    fake_anthropic.assert_all_consumed()

    first, second = fake_anthropic.message_requests()
    assert len(first.json["messages"]) == 1
    assert second.json["messages"][1] == {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": tool_id, "name": "t_echo", "input": arguments},
        ],
    }
    assert second.json["messages"][2] == {
        "role": "user",
        "content": [
            {
                "type": "tool_result",
                "tool_use_id": tool_id,
                "content": "echo:" + json.dumps(arguments, sort_keys=True),
                "is_error": False,
            }
        ],
    }


@pytest.mark.django_db(transaction=True)
def test_usage_carries_cache_tokens_and_the_exact_cost(claude_agent, fake_anthropic, chat, jwt_header):
    claude_agent()
    fake_anthropic.queue_text(
        "Cached answer.",
        input_tokens=1234,
        output_tokens=567,
        cache_read_input_tokens=8901,
        cache_creation_input_tokens=2345,
    )
    result = chat.stream({"message": "Hi"}, jwt_header("tenant-a"))

    (usage,) = result.of_type("usage")
    # 1234 * $3 + 567 * $15 + 8901 * $0.30 + 2345 * $3.75 per million tokens = 23 671.05 micro-dollars.
    assert usage == {
        "type": "usage",
        "model": "claude-sonnet-4-5",
        "input_tokens": 1234,
        "output_tokens": 567,
        "cache_read_tokens": 8901,
        "cache_write_tokens": 2345,
        "cost_micros": 23671,
        "timestamp": usage["timestamp"],
    }
    done = result.events[-1]
    assert done["usage"] == {
        "input_tokens": 1234,
        "output_tokens": 567,
        "cache_read_tokens": 8901,
        "cache_write_tokens": 2345,
        "total_tokens": 1801,
        "cost_micros": 23671,
    }
    row = UsageRecord.all_scopes.get()
    assert (row.provider, row.model) == ("anthropic", "claude-sonnet-4-5")
    assert (row.input_tokens, row.output_tokens, row.cache_read_tokens, row.cache_write_tokens) == (
        1234,
        567,
        8901,
        2345,
    )
    assert row.cost_micros == 23671
    session = Session.all_scopes.get()
    assert (session.cache_read_tokens, session.cache_write_tokens, session.cost_micros) == (8901, 2345, 23671)


@pytest.mark.django_db(transaction=True)
def test_a_dated_snapshot_takes_its_familys_price(claude_agent, fake_anthropic, chat, jwt_header):
    claude_agent("claude-sonnet-4-5-20250929")
    fake_anthropic.queue_text("ok", input_tokens=1_000_000, output_tokens=0)
    result = chat.stream({"message": "Hi"}, jwt_header("tenant-a"))
    (usage,) = result.of_type("usage")
    assert usage["model"] == "claude-sonnet-4-5-20250929"
    assert usage["cost_micros"] == 3_000_000


@pytest.mark.django_db(transaction=True)
def test_unknown_model_is_unpriced(claude_agent, fake_anthropic, chat, jwt_header):
    claude_agent("claude-unknown-9")
    fake_anthropic.queue_text("ok", input_tokens=100, output_tokens=10)
    result = chat.stream({"message": "Hi"}, jwt_header("tenant-a"))
    (usage,) = result.of_type("usage")
    assert usage["model"] == "claude-unknown-9"
    assert usage["cost_micros"] is None
    assert result.events[-1]["usage"]["cost_micros"] is None
    assert result.events[-1]["usage"]["total_tokens"] == 110
    assert UsageRecord.all_scopes.get().cost_micros is None
    session = Session.all_scopes.get()
    assert session.unpriced_calls == 1


@pytest.mark.django_db(transaction=True)
def test_system_prompt_and_last_tool_are_cached_and_the_key_is_sent(
    claude_agent, fake_anthropic, chat, jwt_header, tool_calls
):
    claude_agent()
    fake_anthropic.queue_text("ok")
    chat.stream({"message": "Hi"}, jwt_header("tenant-a"))

    (request,) = fake_anthropic.message_requests()
    assert request.headers["x-api-key"] == "test-key"
    assert request.headers.get("anthropic-version")
    system = request.json["system"]
    assert isinstance(system, list) and len(system) == 1
    assert system[0]["type"] == "text"
    assert "You are a test agent." in system[0]["text"]
    assert system[0]["cache_control"] == EPHEMERAL
    tools = request.json["tools"]
    names = [tool["name"] for tool in tools]
    assert {"t_echo", "t_other"} <= set(names)
    assert tools[-1]["cache_control"] == EPHEMERAL
    assert all("cache_control" not in tool for tool in tools[:-1])
    echo = tools[names.index("t_echo")]
    assert echo["input_schema"] == {"type": "object", "properties": {"city": {"type": "string"}}}
    assert echo["description"] == "Echo the arguments."


# --- Errors and retries --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error_type", "retry_header"),
    [
        (429, "rate_limit_error", {"retry_after_ms": "1"}),
        (429, "rate_limit_error", {"retry_after": "0.001"}),
        (529, "overloaded_error", {"retry_after_ms": "1"}),
        (500, "api_error", {"retry_after_ms": "1"}),
    ],
)
@pytest.mark.django_db(transaction=True)
def test_retryable_error_then_success_shows_only_the_success(
    claude_agent, fake_anthropic, chat, jwt_header, status, error_type, retry_header
):
    claude_agent()
    fake_anthropic.queue_error(status, error_type, "try later", **retry_header)
    fake_anthropic.queue_text("Worked the second time.")
    result = chat.stream({"message": "Hi"}, jwt_header("tenant-a"))

    assert len(fake_anthropic.message_requests()) == 2
    fake_anthropic.assert_all_consumed()
    assert result.of_type("error") == []
    assert text_of(result) == "Worked the second time."
    assert result.events[-1]["reason"] == "model_stop"
    assert UsageRecord.all_scopes.count() == 1


@pytest.mark.django_db(transaction=True)
def test_overloaded_mid_stream_ends_with_error_and_saves_the_partial_turn(
    claude_agent, fake_anthropic, chat, jwt_header
):
    claude_agent()
    fake_anthropic.queue_overloaded_mid_stream("partial answer", chunks=2)
    result = chat.stream({"message": "Hi"}, jwt_header("tenant-a"))

    assert len(fake_anthropic.message_requests()) == 1  # a stream that produced output is not retried
    assert text_of(result) == "partial answer"
    error, done = result.events[-2:]
    assert error["type"] == "error"
    assert error["code"] == "model_overloaded"
    assert error["message"]
    assert (done["type"], done["reason"]) == ("done", "error")
    assert done["usage"]["input_tokens"] == 10

    session = Session.all_scopes.get()
    assert session.status == SessionStatus.ERROR
    assert session.lock_token == ""
    assistant = Message.all_scopes.get(role="assistant")
    assert assistant.text == "partial answer"
    assert assistant.error_code == "model_overloaded"
    row = UsageRecord.all_scopes.get()
    assert row.message_id == assistant.pk
    assert row.input_tokens == 10


@pytest.mark.django_db(transaction=True)
def test_http_500_past_the_retries_ends_with_error(claude_agent, fake_anthropic, chat, jwt_header):
    claude_agent()
    for _ in range(MAX_RETRIES + 1):
        fake_anthropic.queue_error(500, "api_error", "boom", retry_after_ms="1")
    result = chat.stream({"message": "Hi"}, jwt_header("tenant-a"))

    assert len(fake_anthropic.message_requests()) == MAX_RETRIES + 1
    fake_anthropic.assert_all_consumed()
    assert [e["type"] for e in result.events] == ["init", "usage", "error", "done"]
    error, done = result.events[-2:]
    assert error["code"] == "model_error"
    assert done["reason"] == "error"
    assert Session.all_scopes.get().status == SessionStatus.ERROR
    assert Message.all_scopes.get(role="assistant").error_code == "model_error"


@pytest.mark.django_db(transaction=True)
def test_the_models_rate_limit_past_the_retries_is_not_the_callers_rate_limited(
    claude_agent, fake_anthropic, chat, jwt_header
):
    """The model's 429 is reported as model_rate_limited, never as rate_limited (the caller's own limit)."""
    claude_agent()
    for _ in range(MAX_RETRIES + 1):
        fake_anthropic.queue_error(429, "rate_limit_error", "slow down", retry_after_ms="1")
    result = chat.stream({"message": "Hi"}, jwt_header("tenant-a"))

    assert result.status == 200
    assert len(fake_anthropic.message_requests()) == MAX_RETRIES + 1
    error, done = result.events[-2:]
    assert (error["code"], done["reason"]) == ("model_rate_limited", "error")
    assert Message.all_scopes.get(role="assistant").error_code == "model_rate_limited"


@pytest.mark.parametrize(
    ("status", "error_type", "code"),
    [(401, "authentication_error", "model_auth_failed"), (400, "invalid_request_error", "model_request_invalid")],
)
@pytest.mark.django_db(transaction=True)
def test_non_retryable_errors_are_not_retried(claude_agent, fake_anthropic, chat, jwt_header, status, error_type, code):
    claude_agent()
    fake_anthropic.queue_error(status, error_type, "no")
    result = chat.stream({"message": "Hi"}, jwt_header("tenant-a"))
    assert len(fake_anthropic.message_requests()) == 1
    assert result.of_type("error")[0]["code"] == code
    assert result.events[-1]["reason"] == "error"


@pytest.mark.django_db(transaction=True)
def test_second_message_sends_the_saved_conversation(claude_agent, fake_anthropic, chat, jwt_header, tool_calls):
    claude_agent()
    tool_id = fake_anthropic.queue_tool_use("t_echo", {"city": "Oslo"})
    fake_anthropic.queue_text("Oslo.")
    fake_anthropic.queue_text("Again.")
    headers = jwt_header("tenant-a")

    async def two_messages():
        first = await chat.astream({"message": "one"}, headers)
        second = await chat.astream({"message": "two", "session_id": first.events[0]["session_id"]}, headers)
        return first, second

    first, second = asyncio.run(two_messages())
    assert second.events[-1]["reason"] == "model_stop"
    third = fake_anthropic.message_requests()[2].json["messages"]
    assert [m["role"] for m in third] == ["user", "assistant", "user", "assistant", "user"]
    assert third[1]["content"][0] == {"type": "tool_use", "id": tool_id, "name": "t_echo", "input": {"city": "Oslo"}}
    assert third[2]["content"][0]["tool_use_id"] == tool_id
    assert third[3]["content"] == [{"type": "text", "text": "Oslo."}]
    assert third[4]["content"] == "two"


# --- agents.pricing ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("claude-sonnet-4-5", "claude-sonnet-4-5"),
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("claude-sonnet-4-20250514", "claude-sonnet-4"),
        ("claude-opus-4-1-20250805", "claude-opus-4-1"),
        ("claude-opus-4-20250514", "claude-opus-4"),
        ("claude-3-5-haiku-latest", "claude-3-5-haiku"),
        ("claude-haiku-4-5", "claude-haiku-4-5"),
    ],
)
def test_price_lookup_takes_the_longest_prefix(model, expected):
    assert price_from_table(model) == PRICE_TABLE[expected]


@pytest.mark.parametrize(
    "model",
    [
        "",
        "gpt-4o",
        "claude",
        "claude-sonnet",
        "local",
        "xclaude-sonnet-4-5",
        "claude-sonnet-4-50",
        "claude-opus-4-6",
        "claude-sonnet-4-5-preview",
    ],
)
def test_unknown_models_have_no_price(model):
    assert price_from_table(model) is None
    assert cost_micros(None, input_tokens=1000, output_tokens=1000) is None


def test_prices_are_integer_micro_dollars_per_million_tokens():
    assert usd(3) == 3_000_000
    assert usd(0.8) == 800_000
    assert usd(1.25) == 1_250_000
    sonnet = PRICE_TABLE["claude-sonnet-4-5"]
    assert (sonnet.input, sonnet.output) == (3_000_000, 15_000_000)
    assert all(isinstance(p.input, int) and isinstance(p.output, int) for p in PRICE_TABLE.values())


def test_cache_reads_cost_10_percent_and_writes_125_percent_of_input():
    price = Price(usd(3), usd(15))
    assert price.effective_cache_read == 300_000
    assert price.effective_cache_write == 3_750_000
    assert cost_micros(price, input_tokens=0, output_tokens=0, cache_read_tokens=1_000_000) == 300_000
    assert cost_micros(price, input_tokens=0, output_tokens=0, cache_write_tokens=1_000_000) == 3_750_000
    explicit = Price(usd(3), usd(15), cache_read=usd(1), cache_write=usd(2))
    assert (
        cost_micros(
            explicit, input_tokens=0, output_tokens=0, cache_read_tokens=1_000_000, cache_write_tokens=1_000_000
        )
        == 3_000_000
    )


@pytest.mark.parametrize(
    ("input_tokens", "output_tokens", "expected"),
    [
        (0, 0, 0),
        (1_000_000, 0, 1_000_000),
        (500_000, 0, 500_000),
        (1, 0, 1),  # 1.0 micro-dollar
        (0, 1, 2),  # 2.0
        (3, 0, 3),
    ],
)
def test_cost_is_exact_for_whole_micro_dollars(input_tokens, output_tokens, expected):
    price = Price(1_000_000, 2_000_000)
    assert cost_micros(price, input_tokens=input_tokens, output_tokens=output_tokens) == expected


@pytest.mark.parametrize(
    ("input_tokens", "expected"),
    [(1, 0), (2, 1), (3, 1), (4, 1), (5, 2), (6, 2)],  # 0.3 -> 0, 0.6 -> 1, 0.9, 1.2, 1.5 -> 2 (half up), 1.8
)
def test_cost_rounds_to_the_nearest_micro_dollar_half_up(input_tokens, expected):
    price = Price(300_000, 0)  # $0.30 per million: 0.3 micro-dollars a token
    assert cost_micros(price, input_tokens=input_tokens, output_tokens=0) == expected


def test_total_is_rounded_once_not_per_part():
    price = Price(400_000, 400_000)  # 0.4 micro-dollars a token
    # 0.4 + 0.4 = 0.8 -> 1, where rounding each part would give 0 + 0.
    assert cost_micros(price, input_tokens=1, output_tokens=1) == 1


@pytest.mark.django_db
def test_model_price_in_the_database_overrides_the_table():
    assert price_for_model("claude-sonnet-4-5") == PRICE_TABLE["claude-sonnet-4-5"]
    ModelPrice.objects.create(
        model="claude-sonnet-4-5", input_micros_per_mtok=1_000_000, output_micros_per_mtok=2_000_000
    )
    price = price_for_model("claude-sonnet-4-5")
    assert (price.input, price.output) == (1_000_000, 2_000_000)
    assert price.effective_cache_read == 100_000
    assert price.effective_cache_write == 1_250_000
    assert price_for_model("claude-sonnet-4-5-20250929") == PRICE_TABLE["claude-sonnet-4-5"]


@pytest.mark.django_db
def test_model_price_override_can_set_cache_prices_and_price_an_unknown_model():
    assert price_for_model("my-model") is None
    ModelPrice.objects.create(
        model="my-model",
        input_micros_per_mtok=2_000_000,
        output_micros_per_mtok=4_000_000,
        cache_read_micros_per_mtok=50_000,
        cache_write_micros_per_mtok=3_000_000,
    )
    price = price_for_model("my-model")
    assert price == Price(2_000_000, 4_000_000, 50_000, 3_000_000)
    assert (
        cost_micros(price, input_tokens=1000, output_tokens=1000, cache_read_tokens=1000, cache_write_tokens=1000)
        == 2000 + 4000 + 50 + 3000
    )


@pytest.mark.django_db(transaction=True)
def test_database_price_is_used_for_the_usage_event(claude_agent, fake_anthropic, chat, jwt_header):
    claude_agent()
    ModelPrice.objects.create(
        model="claude-sonnet-4-5", input_micros_per_mtok=1_000_000, output_micros_per_mtok=1_000_000
    )
    fake_anthropic.queue_text("ok", input_tokens=100, output_tokens=20)
    result = chat.stream({"message": "Hi"}, jwt_header("tenant-a"))
    assert result.of_type("usage")[0]["cost_micros"] == 120
    assert UsageRecord.all_scopes.get().cost_micros == 120


# --- The request body: built from the serialised transcript, byte for byte what the SDK sends -------

VARYING_HEADERS = {"x-stainless-retry-count", "x-stainless-read-timeout", "content-length"}


@pytest.mark.django_db(transaction=True)
def test_the_body_on_the_wire_is_the_sdks_own(claude_agent, fake_anthropic, chat, jwt_header, tool_calls):
    """A continued session's request, built from the stored transcript, against the same request made
    by `messages.create` with the same parameters: the same bytes and the same headers."""
    import anthropic

    claude_agent()
    fake_anthropic.queue_tool_use("t_echo", {"city": "Zürich ✈"})
    fake_anthropic.queue_text('Grüezi — 你好 \U0001f600 "quoted" \\ back')
    fake_anthropic.queue_text("Again.")
    fake_anthropic.queue_text("(the SDK's own request)")
    headers = jwt_header("tenant-a")

    async def conversation():
        first = await chat.astream({"message": "one ü\u2028"}, headers)
        await chat.astream({"message": "two </script>", "session_id": first.events[0]["session_id"]}, headers)

    asyncio.run(conversation())
    ours = fake_anthropic.message_requests()[2]
    sent = json.loads(ours.body)

    async def sdk_request():
        client = anthropic.AsyncAnthropic(base_url=fake_anthropic.base_url, api_key="test-key", max_retries=0)
        stream = await client.messages.create(
            max_tokens=sent["max_tokens"],
            messages=sent["messages"],
            model=sent["model"],
            stream=True,
            system=sent["system"],
            tools=sent["tools"],
        )
        async with stream:
            async for _ in stream:
                pass

    asyncio.run(sdk_request())
    theirs = fake_anthropic.message_requests()[3]
    assert ours.body == theirs.body
    assert len(sent["messages"]) == 5 and sent["messages"][-1] == {"role": "user", "content": "two </script>"}
    assert {k: v for k, v in ours.headers.items() if k not in VARYING_HEADERS} == {
        k: v for k, v in theirs.headers.items() if k not in VARYING_HEADERS
    }


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("suffix", ["", "/", "/v1", "/v1/"])
def test_a_base_url_with_or_without_v1_reaches_v1_messages(
    tmp_path, use_agent, fake_anthropic, chat, jwt_header, suffix
):
    use_agent(claude_agent_folder(tmp_path / "agent", fake_anthropic.base_url + suffix))
    fake_anthropic.queue_text("Hello.")

    result = chat.stream({"message": "hi"}, jwt_header("tenant-a"))

    assert result.events[-1]["reason"] == "model_stop"
    assert [request.path for request in fake_anthropic.requests] == ["/v1/messages"]
