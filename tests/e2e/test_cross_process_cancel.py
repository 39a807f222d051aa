"""POST /sessions/<id>/cancel stops a message that another server process is running.

Two daphne processes share one PostgreSQL database and one Redis channel layer, as two instances of a
deployment behind a load balancer would. The message runs on the first; the cancel goes to the second
and reaches the first only through Redis. (SQLite and the in-memory channel layer cannot be shared by
processes, so without both this module is skipped; CI runs the suite a second time with both set.)
"""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from tests.e2e.helpers import check_event, check_stream, events_of, iter_frames, poll, text_of
from tests.e2e.live import session_redis_url, session_uses_postgres

GARCIA = "household-garcia"


def missing_services() -> str:
    missing = []
    if not session_uses_postgres():
        missing.append("DATABASE_URL pointing to PostgreSQL")
    if not session_redis_url():
        missing.append("REDIS_URL")
    return " and ".join(missing)


pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(
        bool(missing_services()), reason=f"cross-process cancel needs {missing_services()} (two processes share them)"
    ),
]


@pytest.fixture(scope="module")
def two_processes(live_server_factory):
    runner, other = live_server_factory(), live_server_factory()
    assert runner.process.pid != other.process.pid
    return runner, other


# The server waits 200 ms before each word, so the 30th word comes at least 6 s into the message: past
# the 5 s a blocking Redis read of the channel layer lasts (a cancel must still arrive after it).
@pytest.mark.parametrize("cancel_after_words", [1, 30], ids=["at-once", "after-6s"])
def test_cancel_sent_to_another_process_stops_the_stream_and_saves_the_turn(two_processes, cancel_after_words):
    runner, other = two_processes
    headers = runner.headers(GARCIA, {"household_id": GARCIA})
    words = [f"w{i}" for i in range(1, 61)]
    frames = []
    cancel_response = None
    with (
        runner.client() as client,
        client.stream(
            "POST", "/chat/stream", json={"message": "/slow 200 " + " ".join(words)}, headers=headers
        ) as response,
    ):
        assert response.status_code == 200
        for frame in iter_frames(response):
            frames.append(frame)
            deltas = sum(1 for f in frames if f.type == "text_delta")
            if frame.type == "text_delta" and deltas == cancel_after_words:
                session_id = frames[0].event["session_id"]
                with other.client() as other_client:
                    cancel_response = other_client.post(f"/sessions/{session_id}/cancel", headers=headers)

    assert cancel_response is not None and cancel_response.status_code == 200, cancel_response
    assert cancel_response.json() == {"ok": True, "running": True}
    events = events_of(frames)
    check_stream(events)
    assert events[-1]["reason"] == "user_abort"
    streamed = text_of(events).split()
    assert len(streamed) >= cancel_after_words
    assert streamed == words[: len(streamed)] != words
    assert events[-1]["usage"]["total_tokens"] > 0

    # The partial turn is saved, whichever process is asked.
    def settled():
        with other.client() as client:
            detail = client.get(f"/sessions/history/{session_id}", headers=headers).json()
        return detail if detail["status"] == "interrupted" else None

    detail = poll(settled, timeout=15, what="the session becoming interrupted")
    user, assistant = detail["messages"]
    assert user["role"] == "user"
    assert assistant["role"] == "assistant" and assistant["interrupted"] is True
    assert assistant["text"].split() == streamed
    database = runner.database
    session_key = database.uuid_param(session_id)
    assert database.query("SELECT lock_token FROM agents_session WHERE id = %s", (session_key,)) == [("",)]
    assert database.query("SELECT COUNT(*) FROM agents_usagerecord WHERE session_id = %s", (session_key,)) == [(1,)]

    # The other process takes the next message of the session at once.
    with other.client() as client:
        again = client.post("/chat/sync", json={"message": "/say next", "session_id": session_id}, headers=headers)
    assert again.status_code == 200, again.text
    assert again.json()["response"] == "next"


BURST = 150  # more messages at once than redis-py's connection pool (100) holds


def test_a_cancel_reaches_a_message_started_in_a_burst_of_many(two_processes):
    """Every message of a burst listens for cancels (joining its group would exhaust the Redis pool if
    they all did it at once): a cancel sent to the other process stops the one it names."""
    runner, other = two_processes
    headers = runner.headers(GARCIA, {"household_id": GARCIA})
    words = " ".join(f"w{i}" for i in range(40))  # 40 words, 100 ms apart: about 4 s

    async def one(client: httpx.AsyncClient, index: int, started: asyncio.Queue) -> list[dict]:
        events = []
        body = {"message": f"/slow 100 {words}"}
        async with client.stream("POST", "/chat/stream", json=body, headers=headers) as response:
            assert response.status_code == 200
            async for line in response.aiter_lines():
                if line.startswith("data: "):
                    events.append(check_event(json.loads(line[len("data: ") :])))
                    if events[-1]["type"] == "text_delta" and len(events) == 3:
                        await started.put(events[0]["session_id"])
        return events

    async def burst() -> tuple[list[list[dict]], str]:
        started: asyncio.Queue = asyncio.Queue()
        limits = httpx.Limits(max_connections=BURST + 10)
        async with httpx.AsyncClient(base_url=runner.base_url, timeout=60, limits=limits, trust_env=False) as client:
            tasks = [asyncio.create_task(one(client, i, started)) for i in range(BURST)]
            for _ in range(BURST):  # every message is streaming (and so listening) before the cancel
                target = await started.get()
            async with httpx.AsyncClient(base_url=other.base_url, timeout=30, trust_env=False) as canceller:
                response = await canceller.post(f"/sessions/{target}/cancel", headers=headers)
                assert response.status_code == 200 and response.json()["running"] is True
            return await asyncio.gather(*tasks), target

    results, target = asyncio.run(burst())
    reasons = {events[0]["session_id"]: events[-1]["reason"] for events in results}
    assert reasons.pop(target) == "user_abort"
    assert set(reasons.values()) == {"model_stop"}
    assert "cannot listen for cancels" not in runner.log()
