"""The real ``anthropic`` SDK against FakeAnthropic: proves the fake speaks the wire format."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import anthropic
import httpx
import pytest

from tests.fakes import fixtures
from tests.fakes.anthropic_api import DEFAULT_TEXT, FakeAnthropic, Headers

fake_anthropic = fixtures.fake_anthropic

MODEL = "claude-sonnet-4-5"
HELLO = [{"role": "user", "content": "Hi"}]


def client_for(fake: FakeAnthropic, max_retries: int = 0) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=fake.base_url, api_key="test-key", max_retries=max_retries)


async def stream_with(client: anthropic.AsyncAnthropic, **kwargs: Any) -> tuple[list[str], Any]:
    """Stream a message; return the text deltas and the final message."""
    kwargs = {"model": MODEL, "max_tokens": 100, "messages": HELLO} | kwargs
    async with client.messages.stream(**kwargs) as stream:
        texts = [text async for text in stream.text_stream]
        return texts, await stream.get_final_message()


def stream_all(fake: FakeAnthropic, max_retries: int = 0, **kwargs: Any) -> tuple[list[str], Any]:
    """Stream one message with a fresh client (closed afterwards)."""

    async def run() -> tuple[list[str], Any]:
        async with client_for(fake, max_retries) as client:
            return await stream_with(client, **kwargs)

    return asyncio.run(run())


def create(fake: FakeAnthropic, max_retries: int = 0, **kwargs: Any) -> Any:
    """A non-streaming ``messages.create`` with a fresh client (closed afterwards)."""

    async def run() -> Any:
        async with client_for(fake, max_retries) as client:
            return await client.messages.create(**({"model": MODEL, "max_tokens": 10, "messages": HELLO} | kwargs))

    return asyncio.run(run())


def test_streamed_text_arrives_in_several_deltas(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.queue_text("Hello world", chunks=3)

    texts, final = stream_all(fake_anthropic)

    assert texts == ["Hell", "o wo", "rld"]
    assert [block.type for block in final.content] == ["text"]
    assert final.content[0].text == "Hello world"
    assert final.stop_reason == "end_turn"
    assert final.model == MODEL
    assert final.id.startswith("msg_")
    fake_anthropic.assert_all_consumed()


def test_raw_event_sequence_with_create_stream_true() -> None:
    async def run(fake: FakeAnthropic) -> list[Any]:
        async with client_for(fake) as client:
            stream = await client.messages.create(model=MODEL, max_tokens=100, messages=HELLO, stream=True)
            return [event async for event in stream]

    with FakeAnthropic() as fake:
        fake.queue_text("abcdef", chunks=2, output_tokens=7)
        events = asyncio.run(run(fake))

    assert [e.type for e in events] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]  # the ping after the first content_block_start is skipped by the SDK
    start = events[0].message
    assert (start.role, start.content, start.stop_reason) == ("assistant", [], None)
    assert events[1].content_block.type == "text"
    assert [e.delta.text for e in events[2:4]] == ["abc", "def"]
    assert events[5].delta.stop_reason == "end_turn"
    assert events[5].usage.output_tokens == 7


def test_tool_use_input_is_reassembled_from_json_deltas(fake_anthropic: FakeAnthropic) -> None:
    tool_input = {"city": "Paris", "units": "metric", "days": [1, 2, 3]}
    tool_id = fake_anthropic.queue_tool_use("get_weather", tool_input, text_before="Let me check.", chunks=4)

    async def run() -> tuple[list[str], Any]:
        async with (
            client_for(fake_anthropic) as client,
            client.messages.stream(model=MODEL, max_tokens=100, messages=HELLO) as stream,
        ):
            partials = [
                e.delta.partial_json
                async for e in stream
                if e.type == "content_block_delta" and e.delta.type == "input_json_delta"
            ]
            return partials, await stream.get_final_message()

    partials, final = asyncio.run(run())

    assert len([p for p in partials if p]) == 4  # plus the empty opening chunk the API sends
    assert [block.type for block in final.content] == ["text", "tool_use"]
    assert final.content[0].text == "Let me check."
    tool = final.content[1]
    assert (tool.id, tool.name, tool.input) == (tool_id, "get_weather", tool_input)
    assert tool_id.startswith("toolu_")
    assert final.stop_reason == "tool_use"


def test_usage_includes_cache_tokens_streamed_and_not(fake_anthropic: FakeAnthropic) -> None:
    usage = {
        "input_tokens": 12,
        "output_tokens": 34,
        "cache_read_input_tokens": 56,
        "cache_creation_input_tokens": 78,
    }
    fake_anthropic.queue_text("cached", **usage)
    fake_anthropic.queue_text("cached", **usage)

    async def run() -> tuple[Any, Any]:
        async with client_for(fake_anthropic) as client:
            _, streamed = await stream_with(client)
            plain = await client.messages.create(model=MODEL, max_tokens=100, messages=HELLO)
            return streamed, plain

    streamed, plain = asyncio.run(run())

    for message in (streamed, plain):
        got = message.usage
        assert (got.input_tokens, got.output_tokens) == (12, 34)
        assert (got.cache_read_input_tokens, got.cache_creation_input_tokens) == (56, 78)
    assert plain.content[0].text == "cached"


def test_rate_limit_with_retry_after_is_retried(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.queue_error(429, "rate_limit_error", "Slow down", retry_after="0")
    fake_anthropic.queue_text("after retry")

    _, final = stream_all(fake_anthropic, max_retries=2)

    assert final.content[0].text == "after retry"
    assert len(fake_anthropic.requests) == 2
    fake_anthropic.assert_all_consumed()


def test_rate_limit_without_retries_raises_with_real_body(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.queue_error(429, "rate_limit_error", "Slow down", retry_after="0")

    with pytest.raises(anthropic.RateLimitError) as caught:
        stream_all(fake_anthropic, max_retries=0)

    assert caught.value.status_code == 429
    assert caught.value.body == {
        "type": "error",
        "error": {"type": "rate_limit_error", "message": "Slow down"},
    }
    assert caught.value.response.headers["retry-after"] == "0"


def test_retry_after_ms_keeps_retries_fast(fake_anthropic: FakeAnthropic) -> None:
    for _ in range(2):
        fake_anthropic.queue_error(529, "overloaded_error", "Overloaded", retry_after_ms="1")
    fake_anthropic.queue_text("third time lucky")

    started = time.monotonic()
    _, final = stream_all(fake_anthropic, max_retries=2)

    assert final.content[0].text == "third time lucky"
    assert len(fake_anthropic.requests) == 3
    assert time.monotonic() - started < 0.5


def test_http_500_raises_internal_server_error(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.queue_http_500()

    with pytest.raises(anthropic.InternalServerError) as caught:
        create(fake_anthropic)

    assert caught.value.body["error"]["type"] == "api_error"


def test_overloaded_mid_stream_raises_after_partial_text(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.queue_overloaded_mid_stream(text_before="partial")
    received: list[str] = []

    async def run() -> None:
        async with (
            client_for(fake_anthropic, max_retries=2) as client,
            client.messages.stream(model=MODEL, max_tokens=100, messages=HELLO) as stream,
        ):
            async for text in stream.text_stream:
                received.append(text)

    with pytest.raises(anthropic.APIStatusError) as caught:
        asyncio.run(run())

    # An SSE `event: error` arrives on an HTTP 200 response, so the SDK raises the APIStatusError
    # base class (not OverloadedError, which is for HTTP 529); the error type is only in the body.
    assert type(caught.value) is anthropic.APIStatusError
    assert caught.value.status_code == 200
    assert caught.value.body == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }
    assert "".join(received) == "partial"
    assert len(received) == 2
    assert len(fake_anthropic.requests) == 1  # mid-stream errors are not retried by the SDK


async def raw_stream(fake: FakeAnthropic, events: list[Any], timeout: float = 600) -> None:
    """``messages.create(stream=True)`` read event by event into ``events`` (kept when it raises)."""
    async with anthropic.AsyncAnthropic(
        base_url=fake.base_url, api_key="test-key", max_retries=0, timeout=timeout
    ) as client:
        stream = await client.messages.create(model=MODEL, max_tokens=100, messages=HELLO, stream=True)
        async with stream:
            async for event in stream:
                events.append(event)


def streamed_text(events: list[Any]) -> str:
    return "".join(e.delta.text for e in events if e.type == "content_block_delta" and e.delta.type == "text_delta")


def test_api_error_mid_stream_raises_after_partial_text(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.queue_error_mid_stream("partial", error_type="api_error", message="Internal server error")
    events: list[Any] = []

    with pytest.raises(anthropic.APIStatusError) as caught:
        asyncio.run(raw_stream(fake_anthropic, events))

    assert caught.value.body == {"type": "error", "error": {"type": "api_error", "message": "Internal server error"}}
    assert streamed_text(events) == "partial"
    assert len(fake_anthropic.requests) == 1


def test_malformed_data_line_fails_the_sdk_after_partial_text(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.queue_stream_fault("malformed", "partial text", chunks=2)
    events: list[Any] = []

    with pytest.raises(ValueError, match="Expecting value"):  # the SDK's json.loads of the data line
        asyncio.run(raw_stream(fake_anthropic, events))

    assert [e.type for e in events] == ["message_start", "content_block_start", *["content_block_delta"] * 2]
    assert streamed_text(events) == "partial text"


def test_stream_that_ends_before_message_stop_ends_quietly_for_the_sdk(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.queue_stream_fault("end", "cut short", chunks=3)
    events: list[Any] = []

    asyncio.run(raw_stream(fake_anthropic, events))  # no exception: only the missing message_stop tells

    types = [e.type for e in events]
    assert types == ["message_start", "content_block_start", *["content_block_delta"] * 3]
    assert "message_stop" not in types and "message_delta" not in types
    assert streamed_text(events) == "cut short"
    assert fake_anthropic.requests[0].finished.wait(2)
    assert fake_anthropic.requests[0].disconnected is False


def test_dropped_connection_mid_body_is_a_protocol_error(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.queue_stream_fault("drop", "half of it", chunks=2)
    events: list[Any] = []

    with pytest.raises(httpx.RemoteProtocolError, match="incomplete chunked read"):
        asyncio.run(raw_stream(fake_anthropic, events))

    assert streamed_text(events) == "half of it"
    assert fake_anthropic.requests[0].finished.wait(2)
    assert fake_anthropic.requests[0].disconnected is True


def test_stall_mid_stream_times_out_a_client_with_a_short_timeout(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.queue_stream_fault("stall", "before the stall", chunks=2, stall_seconds=30)
    events: list[Any] = []

    with pytest.raises(httpx.ReadTimeout):
        asyncio.run(raw_stream(fake_anthropic, events, timeout=0.3))

    assert streamed_text(events) == "before the stall"
    (request,) = fake_anthropic.requests
    assert request.finished.wait(2)  # the fake noticed the client hang up instead of sleeping 30 s
    assert request.disconnected is True


def test_short_stall_then_the_rest_of_the_message(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.queue_stream_fault("stall", "slow but whole", chunks=2, stall_seconds=0.2)
    events: list[Any] = []

    asyncio.run(raw_stream(fake_anthropic, events))

    assert [e.type for e in events][-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert streamed_text(events) == "slow but whole"


def test_stream_faults_leave_a_non_streaming_request_whole(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.queue_stream_fault("drop", "all of it")

    message = create(fake_anthropic)

    assert message.content[0].text == "all of it"


def test_discard_pending_drops_only_what_was_not_served(fake_anthropic: FakeAnthropic) -> None:
    for text in ("first", "second", "third"):
        fake_anthropic.queue_text(text)

    assert create(fake_anthropic).content[0].text == "first"
    assert fake_anthropic.discard_pending() == 2
    assert fake_anthropic.pending == 0
    assert create(fake_anthropic).content[0].text == DEFAULT_TEXT


def test_unknown_stream_fault_is_refused(fake_anthropic: FakeAnthropic) -> None:
    with pytest.raises(ValueError, match="unknown stream fault"):
        fake_anthropic.queue_stream_fault("explode")
    assert fake_anthropic.pending == 0


def test_overloaded_for_non_streaming_request_is_http_529(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.queue_overloaded_mid_stream()

    with pytest.raises(anthropic.OverloadedError):
        create(fake_anthropic)


def test_request_is_recorded_as_sent(fake_anthropic: FakeAnthropic) -> None:
    system = [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}]
    tools = [
        {
            "name": "lookup",
            "description": "Look something up",
            "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]},
        }
    ]
    fake_anthropic.queue_text("ok")

    stream_all(fake_anthropic, system=system, tools=tools)

    [request] = fake_anthropic.message_requests()
    assert (request.method, request.path) == ("POST", "/v1/messages")
    assert request.json["system"] == system
    assert request.json["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert request.json["tools"] == tools
    assert request.json["messages"] == HELLO
    assert request.json["stream"] is True
    assert request.headers["x-api-key"] == "test-key"
    assert request.headers["X-Api-Key"] == "test-key"
    assert "Anthropic-Version" in request.headers
    assert request.unscripted is False


def test_unscripted_call_gets_default_text_and_is_flagged(fake_anthropic: FakeAnthropic) -> None:
    message = create(fake_anthropic)

    assert message.content[0].text == DEFAULT_TEXT
    assert len(fake_anthropic.unscripted_requests) == 1
    with pytest.raises(AssertionError, match="unexpected request"):
        fake_anthropic.assert_all_consumed()


def test_concurrent_requests_each_get_one_scripted_response(fake_anthropic: FakeAnthropic) -> None:
    for i in range(8):
        fake_anthropic.queue_text(f"answer {i}", chunks=2)

    async def run() -> list[str]:
        async with client_for(fake_anthropic) as client:
            finals = await asyncio.gather(*(stream_with(client) for _ in range(8)))
            return [final.content[0].text for _, final in finals]

    assert sorted(asyncio.run(run())) == sorted(f"answer {i}" for i in range(8))
    fake_anthropic.assert_all_consumed()


def test_cancelling_a_stalled_stream_disconnects_promptly(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.queue_stalled("x" * 50, chunks=50, delay=0.2)  # ~10 s if read to the end
    received: list[str] = []

    async def run() -> None:
        async with client_for(fake_anthropic) as client:

            async def consume() -> None:
                async with client.messages.stream(model=MODEL, max_tokens=100, messages=HELLO) as stream:
                    async for text in stream.text_stream:
                        received.append(text)

            task = asyncio.create_task(consume())
            while not received:
                await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    started = time.monotonic()
    asyncio.run(run())
    [request] = fake_anthropic.requests
    assert request.finished.wait(2)
    assert request.disconnected
    assert 1 <= len(received) < 50
    assert time.monotonic() - started < 3


def test_close_interrupts_a_stalled_stream() -> None:
    fake = FakeAnthropic().start()
    fake.queue_stalled(delay=30)

    async def run() -> None:
        async with client_for(fake) as client:
            consume = asyncio.create_task(stream_with(client))
            await asyncio.to_thread(fake.wait_for_requests, 1)
            started = time.monotonic()
            await asyncio.to_thread(fake.close)
            assert time.monotonic() - started < 2
            with pytest.raises((httpx.HTTPError, anthropic.APIError)):
                await consume

    asyncio.run(run())
    assert fake.requests[0].finished.wait(2)


def test_unknown_path_is_404_and_recorded(fake_anthropic: FakeAnthropic) -> None:
    with httpx.Client() as http:
        response = http.get(f"{fake_anthropic.base_url}/v1/models")

    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found_error"
    assert fake_anthropic.requests[0].path == "/v1/models"
    assert fake_anthropic.message_requests() == []


def test_headers_is_a_case_insensitive_dict() -> None:
    headers = Headers({"X-Api-Key": "k"})

    assert isinstance(headers, dict)
    assert headers == {"x-api-key": "k"}
    assert headers["X-API-KEY"] == headers.get("x-api-key") == "k"
    assert "X-Api-Key" in headers
    assert headers.get("missing") is None
