"""Nothing of a message is lost when something fails (SPEC §3 "Durability"), in-process: checkpoints
while text streams, usage saved per call, the lease renewed and taken over, and a database that fails
before or during the stream. (Killed processes and cut connections: tests/e2e/test_durability_live.py.)"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.core.management import call_command
from django.db import OperationalError
from django.utils import timezone

from agents import services
from agents.models import Message, MessageRole, Session, SessionStatus, UsageRecord
from scoping.context import scope

WORDS = [f"w{i}" for i in range(30)]
SLOW_MESSAGE = "/slow 20 " + " ".join(WORDS)  # about 0.6 s of text, a word every 20 ms


def assistant_rows(session_id: str) -> list[Message]:
    return list(Message.all_scopes.filter(session_id=session_id, role=MessageRole.ASSISTANT).order_by("seq"))


@pytest.fixture
def quick_checkpoints(settings):
    settings.AMODAL_CHECKPOINT_SECONDS = 0.1


@pytest.fixture
def calls_to(monkeypatch):
    """Count calls of services functions (the database steps of a message): `calls_to("save_partial")`."""
    counts: dict[str, int] = {}

    def count(name: str) -> dict[str, int]:
        original = getattr(services, name)
        counts[name] = 0

        def counted(*args, **kwargs):
            counts[name] += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(services, name, counted)
        return counts

    return count


@pytest.fixture
def failing(monkeypatch):
    """Make a services function raise the error a dead database raises."""

    def fail(name: str) -> None:
        def broken(*args, **kwargs):
            raise OperationalError("server closed the connection unexpectedly")

        monkeypatch.setattr(services, name, broken)

    return fail


# --- Checkpoints -----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_streamed_text_is_saved_while_it_streams_and_finished_at_the_end(
    test_agent, chat, jwt_header, quick_checkpoints
):
    seen_mid_stream: list[tuple[str, bool]] = []
    received: list[str] = []

    async def on_event(item):
        if item["type"] == "init":
            received.clear()
            on_event.session_id = item["session_id"]
        elif item["type"] == "text_delta":
            received.append(item["content"])
            if len(received) == 20:  # 0.4 s in: checkpoints have been written
                rows = await sync_to_async(assistant_rows)(on_event.session_id)
                seen_mid_stream.extend((row.text, row.interrupted) for row in rows)

    result = asyncio.run(chat.astream({"message": SLOW_MESSAGE}, jwt_header("tenant-a"), on_event=on_event))

    assert result.events[-1]["reason"] == "model_stop"
    [(partial, marked)] = seen_mid_stream
    assert marked, "a message still streaming is saved as interrupted until it ends"
    assert partial and "".join(received).startswith(partial)
    assert len(partial.split()) >= 10
    [row] = assistant_rows(on_event.session_id)  # the checkpointed row became the message: no second row
    assert (row.text, row.interrupted) == (" ".join(WORDS), False)
    assert UsageRecord.all_scopes.filter(session_id=on_event.session_id).count() == 1
    assert Session.all_scopes.get(pk=on_event.session_id).message_count == 2


@pytest.mark.django_db(transaction=True)
def test_checkpoints_are_batched_not_written_per_delta(test_agent, chat, jwt_header, settings, calls_to):
    settings.AMODAL_CHECKPOINT_SECONDS = 0.2
    counts = calls_to("save_partial")

    result = chat.stream({"message": SLOW_MESSAGE}, jwt_header("tenant-a"))

    deltas = len(result.of_type("text_delta"))
    assert deltas == len(WORDS)
    assert 1 <= counts["save_partial"] <= 4  # 0.6 s of text, a checkpoint at most every 0.2 s


@pytest.mark.django_db(transaction=True)
def test_a_short_answer_writes_no_checkpoint(test_agent, chat, jwt_header, calls_to):
    counts = calls_to("save_partial")
    result = chat.stream({"message": "/say quick"}, jwt_header("tenant-a"))
    assert result.events[-1]["reason"] == "model_stop"
    assert counts["save_partial"] == 0


@pytest.mark.django_db(transaction=True)
def test_usage_is_saved_when_the_model_call_ends_before_its_tools_run(test_agent, chat, jwt_header, register_tools):
    from core.tools import Tool, ToolResult

    usage_rows_during_tool: list[int] = []

    async def look(context, arguments):
        usage_rows_during_tool.append(await sync_to_async(UsageRecord.all_scopes.count)())
        return ToolResult("looked")

    register_tools(Tool("t_look", "Look.", {"type": "object"}, look))
    result = chat.stream({"message": "/tool t_look {}"}, jwt_header("tenant-a"))

    assert result.events[-1]["reason"] == "model_stop"
    assert usage_rows_during_tool == [1]  # the first call's usage was saved before the tool ran
    [first, second] = assistant_rows(result.events[0]["session_id"])
    assert first.tool_calls[0]["status"] == "success" and not first.interrupted
    assert second.text.startswith("t_look returned")


# --- The lease --------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_dead_processs_expired_lease_is_taken_over_at_once(test_agent, chat, jwt_header, calls_to):
    headers = jwt_header("tenant-a")
    session_id = chat.sync({"message": "/say first"}, headers).json()["session_id"]
    Session.all_scopes.filter(pk=session_id).update(
        lock_token="dead-process", lock_expires_at=timezone.now() - timedelta(seconds=1), status=SessionStatus.RUNNING
    )
    counts = calls_to("try_lock_session")

    result = chat.stream({"message": "/say again", "session_id": session_id}, headers)

    assert result.status == 200 and result.events[-1]["reason"] == "model_stop"
    assert counts["try_lock_session"] == 1
    session = Session.all_scopes.get(pk=session_id)
    assert (session.lock_token, session.status) == ("", SessionStatus.IDLE)


@pytest.mark.django_db(transaction=True)
def test_the_lease_is_renewed_while_a_message_runs(test_agent, chat, jwt_header, settings, calls_to):
    settings.AMODAL_LEASE_SECONDS = 0.15  # renewed every 0.05 s
    counts = calls_to("renew_lock")

    result = chat.stream({"message": SLOW_MESSAGE}, jwt_header("tenant-a"))

    assert result.events[-1]["reason"] == "model_stop"
    assert counts["renew_lock"] >= 3
    assert Session.all_scopes.get(pk=result.events[0]["session_id"]).lock_token == ""


@pytest.mark.django_db(transaction=True)
def test_expired_leases_are_released_as_interrupted_by_the_sweep(db):
    with scope("tenant-a"):
        dead = Session.objects.create(
            deploy_id="d", status=SessionStatus.RUNNING, lock_token="x", lock_expires_at=timezone.now() - timedelta(1)
        )
        alive = Session.objects.create(
            deploy_id="d", status=SessionStatus.RUNNING, lock_token="y", lock_expires_at=timezone.now() + timedelta(1)
        )
    call_command("release_expired_leases")
    dead.refresh_from_db()
    alive.refresh_from_db()
    assert (dead.status, dead.lock_token) == (SessionStatus.INTERRUPTED, "")
    assert (alive.status, alive.lock_token) == (SessionStatus.RUNNING, "y")


# --- The database failing ------------------------------------------------------------------------


def assert_service_unavailable(result) -> None:
    assert result.status == 503
    assert result.json()["error"]["code"] == "service_unavailable"
    assert "Retry-After" in result.headers


@pytest.mark.django_db(transaction=True)
def test_a_database_failure_before_the_stream_is_503_json(test_agent, chat, jwt_header, failing):
    failing("open_session")
    result = chat.stream({"message": "/say hi"}, jwt_header("tenant-a"))
    assert_service_unavailable(result)
    assert not Session.all_scopes.exists()


@pytest.mark.django_db(transaction=True)
def test_init_leaves_before_the_message_is_saved(test_agent, chat, jwt_header, failing):
    failing("start_message")
    result = chat.stream({"message": "/say hi"}, jwt_header("tenant-a"))
    assert result.status == 200
    assert [e["type"] for e in result.events] == ["init", "error", "done"]
    assert result.events[1]["code"] == "service_unavailable"
    assert result.events[2]["reason"] == "error"
    session = Session.all_scopes.get(pk=result.events[0]["session_id"])
    assert (session.lock_token, session.status) == ("", SessionStatus.ERROR)


@pytest.mark.django_db(transaction=True)
def test_a_database_failure_mid_stream_still_ends_the_stream(test_agent, chat, jwt_header, failing):
    failing("record_call")
    failing("release_lock")  # the database is gone: even the lease cannot be released (it will expire)

    result = chat.stream({"message": "/say hello there"}, jwt_header("tenant-a"))

    types = [e["type"] for e in result.events]
    assert types[0] == "init" and types[-2:] == ["error", "done"]
    assert "text_delta" in types
    assert result.events[-2]["code"] == "service_unavailable"
    assert result.events[-1]["reason"] == "error"
    session_id = result.events[0]["session_id"]
    assert Message.all_scopes.get(session_id=session_id, role=MessageRole.USER).text == "/say hello there"


@pytest.mark.django_db(transaction=True)
def test_sync_answers_503_when_the_database_fails_mid_message(test_agent, chat, jwt_header, failing):
    failing("record_call")
    result = chat.sync({"message": "/say hello"}, jwt_header("tenant-a"))
    assert_service_unavailable(result)


@pytest.mark.django_db(transaction=True)
def test_a_failing_checkpoint_ends_the_stream_with_service_unavailable(
    test_agent, chat, jwt_header, quick_checkpoints, failing
):
    failing("save_partial")
    result = chat.stream({"message": SLOW_MESSAGE}, jwt_header("tenant-a"))
    assert [e["type"] for e in result.events][-2:] == ["error", "done"]
    assert result.events[-2]["code"] == "service_unavailable"
    assert len(result.of_type("text_delta")) < len(WORDS)  # it stopped at the failed checkpoint


# --- What the history shows of a message that is still running, or whose process died ----------------


@pytest.mark.django_db(transaction=True)
def test_history_shows_a_running_answer_as_running_and_a_dead_one_as_interrupted(
    test_agent, chat, jwt_header, quick_checkpoints
):
    from django.test import AsyncClient

    headers = jwt_header("tenant-a")
    seen: list[dict] = []

    async def on_event(item):
        if item["type"] == "init":
            on_event.session_id = item["session_id"]
        elif item["type"] == "text_delta":
            on_event.deltas += 1
            if on_event.deltas == 20:  # 0.4 s in: the answer has been checkpointed
                response = await AsyncClient().get(f"/sessions/history/{on_event.session_id}", headers=headers)
                seen.append(response.json())

    on_event.deltas = 0
    asyncio.run(chat.astream({"message": SLOW_MESSAGE}, headers, on_event=on_event))

    [during] = seen
    assert during["status"] == "running"
    assert [m["interrupted"] for m in during["messages"]] == [False, False]  # the user's, the partial answer
    assert during["messages"][1]["text"]
    # The process dies mid-answer: its checkpointed row stays interrupted and its lease expires.
    Session.all_scopes.filter(pk=on_event.session_id).update(
        status=SessionStatus.RUNNING, lock_token="dead", lock_expires_at=timezone.now() - timedelta(seconds=1)
    )
    Message.all_scopes.filter(session_id=on_event.session_id, role=MessageRole.ASSISTANT).update(interrupted=True)

    async def read():
        return (await AsyncClient().get(f"/sessions/history/{on_event.session_id}", headers=headers)).json()

    dead = asyncio.run(read())
    assert dead["status"] == "interrupted"
    assert [m["interrupted"] for m in dead["messages"]] == [False, True]
