"""A model API that fails mid-message (SPEC §3 "Durability"; issue 13): the `anthropic` provider through
the real SDK against the local fake of the Messages API.

Every failure (a call that times out before or during its stream, 5xx past the SDK's retries, an
`api_error` event mid-stream, a data line that is not JSON, a body that ends before `message_stop`, a
dropped connection) must end the stream with `error` then `done{reason: error}`, keep the text streamed
before the failure in the session's history, leave the session free, and take the next message.

The provider's timeout comes from `AMODAL_MODEL_TIMEOUT_SECONDS` (default 600), set short here. Each
stream runs under a deadline, so a provider that waits for its 600 s default fails the test instead of
hanging it. (tests/agents/test_anthropic_provider.py covers the success paths, retries that end in a
success, an overloaded stream and 5xx past the retries event by event.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anthropic._base_client as sdk_client
import pytest
from django.test import Client

from tests.conftest import claude_agent_folder
from tests.fakes.anthropic_api import FakeAnthropic

SCOPE = "tenant-model-faults"
PARTIAL = "The first half of an answer, "
MODEL_TIMEOUT_SECONDS = 0.5
STREAM_DEADLINE_SECONDS = 20.0
# More 5xx answers than the SDK's retries: the message fails whatever the provider's MAX_RETRIES is
# (up to 9); what is left over is discarded before the next message.
HTTP_500_ANSWERS = 10
STALLED_ATTEMPTS = 10


@pytest.fixture
def claude_agent(tmp_path, use_agent, fake_anthropic):
    return use_agent(claude_agent_folder(tmp_path / "agent", fake_anthropic.base_url))


@pytest.fixture
def short_model_timeout(settings, monkeypatch):
    """AMODAL_MODEL_TIMEOUT_SECONDS, as the environment and as the setting read from it."""
    monkeypatch.setenv("AMODAL_MODEL_TIMEOUT_SECONDS", str(MODEL_TIMEOUT_SECONDS))
    settings.AMODAL_MODEL_TIMEOUT_SECONDS = MODEL_TIMEOUT_SECONDS


@pytest.fixture
def fast_sdk_backoff(monkeypatch):
    """The SDK waits 0.5 s, 1 s, 2 s... between retries of a call that timed out (no retry-after header
    to shorten it, unlike the scripted 5xx answers): make those waits a few milliseconds."""
    monkeypatch.setattr(sdk_client, "INITIAL_RETRY_DELAY", 0.001)
    monkeypatch.setattr(sdk_client, "MAX_RETRY_DELAY", 0.005)


@dataclass(frozen=True)
class Failure:
    script: Callable[[FakeAnthropic], None]
    partial: str  # the text streamed before the failure
    needs_timeout: bool = False


def stalled_before_headers(fake: FakeAnthropic) -> None:
    for _ in range(STALLED_ATTEMPTS):
        fake.queue_text("never sent", initial_delay=60)


def http_500s(fake: FakeAnthropic) -> None:
    for _ in range(HTTP_500_ANSWERS):
        fake.queue_error(500, "api_error", "Internal server error", retry_after_ms="1")


FAILURES = {
    "timeout-before-headers": Failure(stalled_before_headers, "", needs_timeout=True),
    "timeout-mid-stream": Failure(
        lambda fake: fake.queue_stream_fault("stall", PARTIAL, stall_seconds=60), PARTIAL, needs_timeout=True
    ),
    "http-500-past-retries": Failure(http_500s, ""),
    "api-error-event-mid-stream": Failure(lambda fake: fake.queue_error_mid_stream(PARTIAL), PARTIAL),
    "malformed-data-line": Failure(lambda fake: fake.queue_stream_fault("malformed", PARTIAL), PARTIAL),
    "ends-before-message-stop": Failure(lambda fake: fake.queue_stream_fault("end", PARTIAL), PARTIAL),
    "connection-dropped-mid-body": Failure(lambda fake: fake.queue_stream_fault("drop", PARTIAL), PARTIAL),
}


def text_of(result) -> str:
    return "".join(item["content"] for item in result.of_type("text_delta"))


async def within_deadline(call, what: str):
    try:
        return await asyncio.wait_for(call, STREAM_DEADLINE_SECONDS)
    except TimeoutError:
        pytest.fail(f"{what} did not end within {STREAM_DEADLINE_SECONDS:g} s")


def history(session_id: str, headers: dict[str, str]) -> dict[str, Any]:
    response = Client().get(f"/sessions/history/{session_id}", headers=headers)
    assert response.status_code == 200, response.content
    return response.json()


def assert_ends_with_a_model_error(result) -> None:
    types = [item["type"] for item in result.events]
    assert types[0] == "init" and types.count("done") == 1, types
    error, done = result.events[-2:]
    assert (error["type"], done["type"], done["reason"]) == ("error", "done", "error"), result.events[-2:]
    # The cause is named as the model's (the provider's codes: model_error, model_unavailable...), never
    # an internal_error of the server.
    assert error["code"].startswith("model_"), error
    assert isinstance(error["message"], str) and error["message"].strip()


def assert_valid_conversation(messages: list[dict[str, Any]]) -> None:
    """What the Messages API accepts: user first, and no empty message or empty text block (a failed
    turn with no text must not come back as an empty assistant message)."""
    assert messages and messages[0]["role"] == "user", messages
    for message in messages:
        assert message["role"] in {"user", "assistant"}, message
        content = message["content"]
        assert content, f"empty content: {message}"
        if isinstance(content, list):
            assert all(block.get("text") != "" for block in content if block["type"] == "text"), message


@pytest.mark.parametrize("failure", FAILURES.values(), ids=FAILURES.keys())
@pytest.mark.django_db(transaction=True)
def test_model_failure_ends_the_stream_keeps_the_partial_text_and_frees_the_session(
    request, claude_agent, fake_anthropic, chat, jwt_header, failure
):
    if failure.needs_timeout:
        request.getfixturevalue("short_model_timeout")
        request.getfixturevalue("fast_sdk_backoff")
    headers = jwt_header(SCOPE)
    failure.script(fake_anthropic)

    async def failing_then_next():
        failed = await within_deadline(chat.astream({"message": "Hi"}, headers), "the failing message")
        fake_anthropic.discard_pending()
        fake_anthropic.queue_text("Recovered after the failure.")
        session_id = failed.events[0]["session_id"]
        following = await within_deadline(
            chat.astream({"message": "Are you back?", "session_id": session_id}, headers), "the next message"
        )
        return failed, following

    failed, following = asyncio.run(failing_then_next())

    assert failed.status == 200
    assert_ends_with_a_model_error(failed)
    assert text_of(failed) == failure.partial
    session_id = failed.events[0]["session_id"]

    # The next message is taken at once (no session_busy) and answered.
    assert following.status == 200, following.body
    assert following.events[-1]["reason"] == "model_stop", following.events
    assert text_of(following) == "Recovered after the failure."
    last_call = fake_anthropic.message_requests()[-1].json["messages"]
    assert_valid_conversation(last_call)
    assert last_call[-1]["content"] in ("Are you back?", [{"type": "text", "text": "Are you back?"}])

    detail = history(session_id, headers)
    assert detail["status"] != "running"
    messages = detail["messages"]
    user_indexes = [index for index, message in enumerate(messages) if message["role"] == "user"]
    assert [messages[index]["text"] for index in user_indexes] == ["Hi", "Are you back?"]
    # What was streamed before the failure is kept; nothing is invented when nothing was streamed.
    failed_turn = messages[1 : user_indexes[1]]
    assert "".join(message["text"] for message in failed_turn) == failure.partial
    assert messages[-1]["role"] == "assistant" and messages[-1]["text"] == "Recovered after the failure."


@pytest.mark.parametrize("fault", ["stall", "drop"])
@pytest.mark.django_db(transaction=True)
def test_sync_chat_answers_a_model_failure_with_the_partial_text(
    claude_agent, fake_anthropic, chat, jwt_header, short_model_timeout, fault
):
    fake_anthropic.queue_stream_fault(fault, PARTIAL, stall_seconds=60)

    result = asyncio.run(within_deadline(chat.async_({"message": "Hi"}, jwt_header(SCOPE)), "/chat/sync"))

    assert result.status == 200, result.body
    body = result.json()
    assert (body["response"], body["stop_reason"]) == (PARTIAL, "error")
