"""Fault drill: one worker of the cluster killed with SIGKILL under load (issue 16).

nginx in front of two daphne workers (tests/e2e/cluster.py) on PostgreSQL and Redis. STREAMS concurrent
conversations (async httpx, across SCOPES scopes) ask the `local` provider's `/slow` for a 60-word answer
(one word every 100 ms); once every stream has received text, worker 0 is killed with `kill -9`.

What each client gets (and why):
- A stream the killed worker was serving had already answered `200` with its first events, so nginx
  cannot turn it into a 502: when its upstream connection closes, nginx closes the client's connection
  without the last (zero-length) chunk. The client sees an *incomplete* body (httpx: RemoteProtocolError
  "incomplete chunked read"), never `done`: a clean failure that says "retry", not a silent truncation.
  Its events so far are well-formed and its text is a prefix of the answer.
- A stream the other worker serves ends with `done{reason: model_stop}` and the whole answer.
- Nothing hangs: every client's read has a deadline, and the drill fails if one is reached.
- A request sent after the kill is not a 502 either: connecting to the dead worker's socket is refused,
  and nginx (`proxy_next_upstream error`) passes it to the live worker (a 502 would only reach a client
  whose request had been sent to the worker before it died but not yet answered: none here, since every
  stream was answered before the kill). The drill's new messages after the kill check it: any answer
  but 200, 409 session_busy (a lease not yet expired) or 503 fails it.

Then: the sessions the dead worker held take a new message once their lease (AMODAL_LEASE_SECONDS, 3 s
here) has expired; they show `interrupted` with the text a checkpoint saved; every session takes a new
message; and the database holds no half-written turn (plain SQL on the drill's database).

Skipped without nginx, PostgreSQL or Redis (tests/e2e/cluster.py says which). Every wait is bounded;
nothing asserts speed.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import httpx
import pytest

from tests.e2e.cluster import LiveCluster, cluster_skip_reason, start_cluster
from tests.e2e.faults import Conversation, converse_through_a_fault, saved_messages
from tests.e2e.helpers import check_stream, poll, text_of
from tests.e2e.live import STOP_TIMEOUT_SECONDS
from tests.e2e.test_durability_live import get_json, send_when_free

pytestmark = [pytest.mark.live, pytest.mark.skipif(bool(cluster_skip_reason()), reason=cluster_skip_reason())]

STREAMS = 40
SCOPES = 8
LEASE_SECONDS = 3
CHECKPOINT_SECONDS = 0.5
WORD_MS = 100
WORDS = [f"k{index}" for index in range(1, 61)]  # 6 s of text per stream: slack for a slow start
SLOW_MESSAGE = f"/slow {WORD_MS} " + " ".join(WORDS)
# Kill once every stream has this many words: by then each has had several checkpoints' worth of text.
WORDS_BEFORE_KILL = 10
STREAM_READ_SECONDS = 30.0  # a stream silent this long counts as hung
DRILL_DEADLINE_SECONDS = 120.0
# A dead worker's session is free once its lease expires; the first try may wait the server's own 5 s for it.
RECOVERY_DEADLINE_SECONDS = LEASE_SECONDS + 15


def scope_of(index: int) -> str:
    return f"tenant-kill-{index % SCOPES}"


async def run_drill(cluster: LiveCluster) -> list[Conversation]:
    conversations = [
        Conversation(index, cluster.headers(scope_of(index), {"household_id": scope_of(index)}), SLOW_MESSAGE)
        for index in range(STREAMS)
    ]

    async def kill() -> None:
        victim = cluster.cluster.workers[0].process
        victim.send_signal(signal.SIGKILL)
        await asyncio.to_thread(victim.wait, STOP_TIMEOUT_SECONDS)

    await converse_through_a_fault(
        cluster.base_url,
        conversations,
        kill,
        words_before=WORDS_BEFORE_KILL,
        what="the kill",
        read_seconds=STREAM_READ_SECONDS,
        deadline_seconds=DRILL_DEADLINE_SECONDS,
    )
    return conversations


@dataclass
class Drill:
    cluster: LiveCluster
    conversations: list[Conversation]
    survivors: list[Conversation]  # ended with done
    cut: list[Conversation]  # broken by the kill
    access_before: str  # the surviving worker's access log before the drill


@pytest.fixture
def cluster(live_database, tmp_path_factory) -> Iterator[LiveCluster]:
    live = start_cluster(
        live_database,
        tmp_path_factory.mktemp("cluster"),  # short: the workers' unix socket paths live there
        extra_env={
            "AMODAL_LEASE_SECONDS": str(LEASE_SECONDS),
            "AMODAL_CHECKPOINT_SECONDS": str(CHECKPOINT_SECONDS),
        },
    )
    yield live
    live.stop()


def test_a_worker_killed_under_load(cluster):
    """One test, in phases (a module-scoped drill could run twice under pytest-xdist, which splits a
    module's tests over its workers): the kill, what the clients saw, the dead worker's sessions, every
    session's next message, then the database."""
    access_before = cluster.access_logs()[1]
    conversations = asyncio.run(run_drill(cluster))
    drill = Drill(
        cluster,
        conversations,
        survivors=[c for c in conversations if c.ended_with_done],
        cut=[c for c in conversations if not c.ended_with_done],
        access_before=access_before,
    )

    check_every_stream_ended_with_done_or_a_broken_connection(drill)
    check_the_other_workers_conversations_all_finished_with_done(drill)
    check_the_dead_workers_sessions_show_interrupted_with_their_text_kept(drill)
    check_every_session_takes_a_new_message(drill)
    check_the_database_holds_no_half_written_turn(drill)


def check_every_stream_ended_with_done_or_a_broken_connection(drill: Drill) -> None:
    for conversation in drill.conversations:
        assert conversation.status == 200, (conversation.index, conversation.status)
        events = conversation.events
        assert events[0]["type"] == "init" and [e["type"] for e in events].count("init") == 1
        assert conversation.words == WORDS[: len(conversation.words)], conversation.index  # nothing invented
        if conversation.ended_with_done:
            assert conversation.error is None
        else:
            # Cut by the kill: an incomplete chunked body, not a clean end and not an error event.
            assert isinstance(conversation.error, httpx.RemoteProtocolError), (conversation.index, conversation.error)
            assert "done" not in [e["type"] for e in events] and "error" not in [e["type"] for e in events]
            assert conversation.words != WORDS
    # least_conn spread the streams over both workers: the kill cut some and spared the others.
    assert drill.cut and drill.survivors, (len(drill.cut), len(drill.survivors))


def check_the_other_workers_conversations_all_finished_with_done(drill: Drill) -> None:
    for conversation in drill.survivors:
        check_stream(conversation.events)
        assert conversation.events[-1]["reason"] == "model_stop"
        assert conversation.words == WORDS

    # Independently of what the clients saw: the surviving worker answered exactly those streams in full.
    def answered() -> int | None:
        log = drill.cluster.access_logs()[1][len(drill.access_before) :]
        count = sum(1 for line in log.splitlines() if '"POST /chat/stream"' in line and '" 200 ' in line)
        return count if count == len(drill.survivors) else None

    poll(answered, timeout=10, what=f"{len(drill.survivors)} streams in the surviving worker's access log")


def interrupted_turn(cluster: LiveCluster, headers: dict[str, str], session_id: str) -> dict[str, Any] | None:
    """The session's last (assistant) message once the session shows `interrupted`, else None."""
    (session,) = [s for s in get_json(cluster, "/sessions/history", headers) if s["id"] == session_id]
    if session["status"] != "interrupted":
        return None
    messages = get_json(cluster, f"/sessions/history/{session_id}", headers)["messages"]
    return messages[-1] if messages[-1]["role"] == "assistant" else None


def check_the_dead_workers_sessions_show_interrupted_with_their_text_kept(drill: Drill) -> None:
    for conversation in drill.cut:
        assistant = poll(
            partial(interrupted_turn, drill.cluster, conversation.headers, conversation.started_session()),
            timeout=RECOVERY_DEADLINE_SECONDS,
            what="an interrupted session",
        )
        assert assistant["interrupted"] is True
        saved = assistant["text"].split()
        # A checkpoint saved a prefix of what was streamed (it lags the stream by at most one interval).
        assert saved and saved == WORDS[: len(saved)] != WORDS, conversation.index


def check_every_session_takes_a_new_message(drill: Drill) -> None:
    for conversation in drill.conversations:
        events = send_when_free(
            drill.cluster,
            conversation.headers,
            conversation.started_session(),
            "/say after the kill",
            deadline_seconds=RECOVERY_DEADLINE_SECONDS,
        )
        check_stream(events)
        assert events[0]["session_id"] == conversation.started_session()
        assert events[-1]["reason"] == "model_stop" and text_of(events) == "after the kill"
    assert drill.cluster.cluster.exited() == ["worker 0"]  # the survivor and nginx are still up


def check_the_database_holds_no_half_written_turn(drill: Drill) -> None:
    """With SQL, after every session took its new message: each user message is followed by its
    assistant message, which is either complete (not interrupted, one usage row) or, for a message the
    killed worker was running, interrupted with the text a checkpoint saved; every count agrees."""
    database = drill.cluster.database
    session_ids = [database.uuid_param(c.started_session()) for c in drill.conversations]
    cut_ids = {database.uuid_param(c.started_session()) for c in drill.cut}
    by_session = saved_messages(database, session_ids)
    assert sorted(by_session) == sorted(session_ids)
    for session_id, messages in by_session.items():
        shape = [(role, interrupted, usage) for _, role, interrupted, _, _, usage in messages]
        first = ("assistant", True, 0) if session_id in cut_ids else ("assistant", False, 1)
        assert shape == [("user", False, 0), first, ("user", False, 0), ("assistant", False, 1)], (session_id, shape)
        assert len({seq for seq, *_ in messages}) == 4, ("each seq once", messages)
        texts = [text for _, _, _, text, _, _ in messages]
        assert texts[0] == SLOW_MESSAGE and texts[2] == "/say after the kill" and texts[3] == "after the kill"
        saved = texts[1].split()
        assert saved == (WORDS[: len(saved)] if session_id in cut_ids else WORDS)
        assert all(code == "" for *_, code, _ in messages), messages

    sessions = database.query(
        "SELECT s.id::text, s.status, s.lock_token, s.message_count,"
        " (SELECT count(*) FROM agents_message m WHERE m.session_id = s.id)"
        " FROM agents_session s WHERE s.id::text = ANY(%s)",
        (session_ids,),
    )
    assert len(sessions) == STREAMS
    for session_id, status, lock_token, message_count, rows_count in sessions:
        assert (status, lock_token) == ("idle", ""), session_id
        assert message_count == rows_count == 4, session_id
    usage_rows = database.query(
        "SELECT count(*) FROM agents_usagerecord WHERE session_id::text = ANY(%s)", (session_ids,)
    )
    assert usage_rows == [(2 * STREAMS - len(drill.cut),)]
