"""Fault drill: PostgreSQL cut off under load, through the cluster (issue 16).

nginx in front of two daphne workers (tests/e2e/cluster.py) whose every database connection goes through
a TCP proxy (tests/e2e/faults.py TcpProxy) in front of this module's PostgreSQL database; the database
itself was created and migrated directly. The real PostgreSQL is never stopped (other tests share it):
`cut()` resets every open connection and refuses new ones, as a database that went away would.

STREAMS conversations (async httpx, across SCOPES scopes) stream the `local` provider's `/slow` answer;
once each has received WORDS_BEFORE_CUT words, the database is cut. Then:
- every stream ends with `error{service_unavailable}` then `done{reason: error}` (none hangs: each read
  has a deadline; the workers send keep-alives), its text a prefix of the answer;
- while the database is away, a new message, through nginx or straight to either worker, is 503 JSON
  `service_unavailable` with `Retry-After` (never a 500 or an nginx 502);
- once it is back, every session takes a new message (after its cut message's lease expires: the
  release could not be written), and the database holds no half-written turn.

Skipped without nginx, PostgreSQL or Redis. Every wait is bounded; nothing asserts speed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from tests.e2e.cluster import LiveCluster, cluster_skip_reason, start_cluster
from tests.e2e.faults import Conversation, TcpProxy, converse_through_a_fault, saved_messages
from tests.e2e.helpers import check_stream, text_of
from tests.e2e.test_durability_live import error_code, send_when_free

pytestmark = [pytest.mark.live, pytest.mark.skipif(bool(cluster_skip_reason()), reason=cluster_skip_reason())]

STREAMS = 20
SCOPES = 5
LEASE_SECONDS = 3
POOL_TIMEOUT_SECONDS = 2
WORDS = [f"p{index}" for index in range(1, 61)]  # 6 s of text per stream: slack for a slow start
SLOW_MESSAGE = "/slow 100 " + " ".join(WORDS)
WORDS_BEFORE_CUT = 8
STREAM_READ_SECONDS = 30.0
DRILL_DEADLINE_SECONDS = 90.0
NEW_MESSAGES_WHILE_CUT = 6
# Once the database is back: the cut messages' leases expire and the pools open new connections.
RESTORED_DEADLINE_SECONDS = LEASE_SECONDS + 15


@pytest.fixture
def db_proxy(live_database) -> Iterator[TcpProxy]:
    parts = urlsplit(live_database.url)
    with TcpProxy((parts.hostname or "127.0.0.1", parts.port or 5432)) as proxy:
        yield proxy


@pytest.fixture
def cluster(live_database, db_proxy, tmp_path_factory) -> Iterator[LiveCluster]:
    parts = urlsplit(live_database.url)
    credentials, at, _ = parts.netloc.rpartition("@")
    proxied = urlunsplit(parts._replace(netloc=f"{credentials}{at}127.0.0.1:{db_proxy.port}"))
    live = start_cluster(
        live_database,
        tmp_path_factory.mktemp("cluster"),  # short: the workers' unix socket paths live there
        extra_env={
            "DATABASE_URL": proxied,
            "AMODAL_LEASE_SECONDS": str(LEASE_SECONDS),
            "AMODAL_CHECKPOINT_SECONDS": "0.5",
            "AMODAL_DB_POOL_TIMEOUT": str(POOL_TIMEOUT_SECONDS),
            "AMODAL_SSE_KEEPALIVE_SECONDS": "1",
        },
    )
    yield live
    db_proxy.restore()
    live.stop()


def scope_of(index: int) -> str:
    return f"tenant-dbcut-{index % SCOPES}"


async def stream_then_cut(cluster: LiveCluster, proxy: TcpProxy) -> list[Conversation]:
    conversations = [
        Conversation(index, cluster.headers(scope_of(index), {"household_id": scope_of(index)}), SLOW_MESSAGE)
        for index in range(STREAMS)
    ]

    async def cut() -> None:
        proxy.cut()

    await converse_through_a_fault(
        cluster.base_url,
        conversations,
        cut,
        words_before=WORDS_BEFORE_CUT,
        what="the cut",
        read_seconds=STREAM_READ_SECONDS,
        deadline_seconds=DRILL_DEADLINE_SECONDS,
    )
    return conversations


def test_the_database_cut_under_load(cluster, db_proxy):
    """One test in phases (a module-scoped drill could run twice under pytest-xdist)."""
    conversations = asyncio.run(stream_then_cut(cluster, db_proxy))

    for conversation in conversations:
        where = (conversation.index, conversation.status, conversation.error, conversation.types[-3:])
        assert conversation.status == 200 and conversation.error is None, where
        events = conversation.events
        check_stream(events)
        error, done = events[-2:]
        assert (error["type"], error["code"], done["reason"]) == ("error", "service_unavailable", "error"), where
        assert conversation.types.count("error") == 1, where
        words = conversation.words
        assert len(words) >= WORDS_BEFORE_CUT and words == WORDS[: len(words)] != WORDS, where

    check_new_messages_are_503_while_the_database_is_away(cluster)

    db_proxy.restore()
    for conversation in conversations:
        events = send_when_free(
            cluster,
            conversation.headers,
            conversation.started_session(),
            "/say back after the cut",
            deadline_seconds=RESTORED_DEADLINE_SECONDS,
        )
        check_stream(events)
        assert events[-1]["reason"] == "model_stop" and text_of(events) == "back after the cut"
    assert cluster.cluster.exited() == []

    check_no_half_written_turn(cluster, conversations)


def check_new_messages_are_503_while_the_database_is_away(cluster: LiveCluster) -> None:
    answers: list[tuple[str, httpx.Response]] = []
    timeout = httpx.Timeout(POOL_TIMEOUT_SECONDS + 20, connect=5.0)
    with cluster.client(timeout=timeout) as client:
        for index in range(NEW_MESSAGES_WHILE_CUT):
            headers = cluster.headers(scope_of(index), {"household_id": scope_of(index)})
            answers.append(("nginx", client.post("/chat/stream", json={"message": "/say hi"}, headers=headers)))
    for worker in cluster.cluster.workers:
        headers = cluster.headers(scope_of(0), {"household_id": scope_of(0)})
        with worker.client(timeout=POOL_TIMEOUT_SECONDS + 20) as direct:
            answers.append(
                (f"worker {worker.index}", direct.post("/chat/sync", json={"message": "/say hi"}, headers=headers))
            )
    for via, response in answers:
        where = (via, response.status_code, response.text[:200])
        assert response.status_code == 503, where
        assert response.headers["Content-Type"].startswith("application/json"), where
        assert error_code(response) == "service_unavailable" and response.json()["error"]["message"].strip(), where
        assert response.headers.get("Retry-After", "").isdigit(), where


def check_no_half_written_turn(cluster: LiveCluster, conversations: list[Conversation]) -> None:
    """With SQL once every session has answered its new message: the cut message is the user's message
    and at most a checkpoint of its answer (interrupted, a prefix of the text, no usage row: its final
    write never reached the database); the new message is complete; every count agrees."""
    database = cluster.database
    session_ids = [database.uuid_param(c.started_session()) for c in conversations]
    by_session = saved_messages(database, session_ids)
    assert sorted(by_session) == sorted(session_ids)
    for session_id, saved in by_session.items():
        messages = [(m.role, m.interrupted, m.text, m.usage_rows) for m in saved]
        assert messages[0] == ("user", False, SLOW_MESSAGE, 0), (session_id, messages[0])
        assert messages[-2:] == [
            ("user", False, "/say back after the cut", 0),
            ("assistant", False, "back after the cut", 1),
        ]
        cut_answer = messages[1:-2]
        assert len(cut_answer) <= 1, (session_id, cut_answer)
        for role, interrupted, text, usage_rows in cut_answer:
            assert (role, interrupted, usage_rows) == ("assistant", True, 0), (session_id, cut_answer)
            assert text.split() == WORDS[: len(text.split())], (session_id, text)

    sessions = database.query(
        "SELECT s.id::text, s.status, s.lock_token, s.message_count,"
        " (SELECT count(*) FROM agents_message m WHERE m.session_id = s.id),"
        " (SELECT count(*) FROM agents_usagerecord u WHERE u.session_id = s.id)"
        " FROM agents_session s WHERE s.id::text = ANY(%s)",
        (session_ids,),
    )
    assert len(sessions) == STREAMS
    for session_id, status, lock_token, message_count, message_rows, usage_rows in sessions:
        assert (status, lock_token) == ("idle", ""), session_id
        assert message_count == message_rows and usage_rows == 1, (session_id, message_count, message_rows, usage_rows)
