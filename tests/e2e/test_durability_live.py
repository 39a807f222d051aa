"""Fault drills against real daphne processes (SPEC §3 "Durability"; issue 13).

- **kill -9 mid-stream.** A server streams two slow answers (the `local` provider's `/slow`, one word
  every 100 ms) and is killed with SIGKILL 2.5 s into them; a successor starts on the same database.
  Within the lease (`AMODAL_LEASE_SECONDS`, 3 s here) the session takes a new message; the text streamed
  more than `AMODAL_CHECKPOINT_SECONDS` (1 s) before the kill is in the history, marked interrupted, with
  the user's message; and the session is not left `running`. The drill runs once for the module (two
  sessions: one gets the new message, the other is only read, so the tests do not depend on their order).
- **The database goes away mid-stream** (PostgreSQL only). The server reaches PostgreSQL through a TCP
  proxy (tests/e2e/faults.py) that can cut every connection and refuse new ones. A stream that is
  cut off (during streamed text, or while a tool runs) still ends with `error{service_unavailable}` then
  `done{reason: error}`; `/chat/sync` answers; a new message while the database is away is 503 JSON with
  Retry-After; once the database is back, the same session takes the next message.

Every wait has a deadline (a hang fails the test with what was seen); nothing asserts speed.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from tests.conftest import write_agent_folder
from tests.e2e.faults import GatedEndpoint, StreamReader, TcpProxy, TimedFrame, running
from tests.e2e.helpers import Frame, check_stream, events_of, iter_frames, poll, text_of
from tests.e2e.live import LiveDatabase, LiveServer, migrated_database, session_uses_postgres

pytestmark = pytest.mark.live

LEASE_SECONDS = 3
CHECKPOINT_SECONDS = 1.0
# A checkpoint is a database write that takes a moment, and /slow's words come 100 ms apart: text
# received this much more than a checkpoint interval before the kill must be saved.
CHECKPOINT_SLACK_SECONDS = 0.5
KILL_AFTER_SECONDS = 2.5
WORD_MS = 100
WORDS = [f"w{index}" for index in range(1, 61)]  # 6 s of text: the kill comes well before its end
SLOW_MESSAGE = f"/slow {WORD_MS} " + " ".join(WORDS)
# After the successor is up: the lease runs out, plus a margin for the server's own 5 s wait on a busy
# session (the first attempt waits there until the lease expires).
RECOVERY_DEADLINE_SECONDS = LEASE_SECONDS + 5
GARCIA = "household-garcia"


def household(server: LiveServer, scope_id: str) -> dict[str, str]:
    return server.headers(scope_id, {"household_id": scope_id})


def get_json(server: LiveServer, path: str, headers: dict[str, str]) -> Any:
    with server.client() as client:
        response = client.get(path, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def words_of(frames: list[Frame]) -> list[str]:
    return text_of(events_of(frames)).split()


def error_code(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("error", {}).get("code") if isinstance(body, dict) else None


def send_when_free(
    server: LiveServer, headers: dict[str, str], session_id: str, message: str, *, deadline_seconds: float
) -> list[dict[str, Any]]:
    """Post `message` to the session until it is taken (409 session_busy and 503 service_unavailable are
    retried until the deadline); the events of the stream that took it."""
    seen: list[str] = []

    def attempt() -> list[dict[str, Any]] | None:
        body = {"message": message, "session_id": session_id}
        with server.client() as client, client.stream("POST", "/chat/stream", json=body, headers=headers) as response:
            if response.status_code == 200:
                return events_of(list(iter_frames(response)))
            response.read()
            seen.append(f"{response.status_code} {error_code(response)}")
            assert (response.status_code, error_code(response)) in {(409, "session_busy"), (503, "service_unavailable")}
            return None

    try:
        return poll(attempt, timeout=deadline_seconds, interval=0.2, what=f"the session taking {message!r}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; answers while waiting: {seen}") from None


# --- kill -9 mid-stream ---------------------------------------------------------------------------------


@dataclass
class KillDrill:
    successor: LiveServer
    headers: dict[str, str]
    resent: StreamReader  # its session gets a new message after the kill
    left_alone: StreamReader  # its session is only read
    killed_at: float  # time.monotonic() when SIGKILL was sent
    successor_ready_at: float


def timed_words(timed: TimedFrame) -> list[str]:
    return timed.frame.event["content"].split()


def stream_long_enough(readers: tuple[StreamReader, ...]) -> bool:
    for reader in readers:
        if reader.finished.is_set():
            raise AssertionError(f"a stream ended before the kill: {reader.status} {reader.error!r} {reader.events()}")
    firsts = [reader.deltas()[:1] for reader in readers]
    return all(first and time.monotonic() - first[0].received_at >= KILL_AFTER_SECONDS for first in firsts)


@pytest.fixture(scope="module")
def kill_drill(live_server_factory) -> KillDrill:
    server = live_server_factory(
        extra_env={"AMODAL_LEASE_SECONDS": str(LEASE_SECONDS), "AMODAL_CHECKPOINT_SECONDS": str(CHECKPOINT_SECONDS)}
    )
    headers = household(server, GARCIA)
    readers = tuple(StreamReader(server.base_url, headers, {"message": SLOW_MESSAGE}) for _ in range(2))
    with running(*readers):
        poll(lambda: stream_long_enough(readers), timeout=30, interval=0.02, what="2.5 s of text on both streams")
        killed_at = time.monotonic()
        server.kill()
    successor = live_server_factory.restart(server)
    return KillDrill(successor, headers, readers[0], readers[1], killed_at, time.monotonic())


def test_kill_9_drill_streamed_and_was_cut_off(kill_drill):
    for reader in (kill_drill.resent, kill_drill.left_alone):
        assert reader.status == 200
        assert reader.session_id()
        received = words_of([timed.frame for timed in reader.snapshot()])
        assert received == WORDS[: len(received)] != WORDS
        assert "done" not in [event["type"] for event in reader.events()]
        assert reader.error is not None  # the connection broke: the server died
    assert kill_drill.resent.session_id() != kill_drill.left_alone.session_id()


def test_after_kill_9_the_session_takes_a_new_message_within_the_lease(kill_drill):
    server, session_id = kill_drill.successor, kill_drill.resent.session_id()
    remaining = kill_drill.successor_ready_at + RECOVERY_DEADLINE_SECONDS - time.monotonic()

    events = send_when_free(
        server, kill_drill.headers, session_id, "/say back after the crash", deadline_seconds=max(remaining, 1)
    )

    check_stream(events)
    assert events[0]["session_id"] == session_id
    assert events[-1]["reason"] == "model_stop"
    assert text_of(events) == "back after the crash"
    messages = get_json(server, f"/sessions/history/{session_id}", kill_drill.headers)["messages"]
    assert [m["text"] for m in messages if m["role"] == "user"] == [SLOW_MESSAGE, "/say back after the crash"]
    assert messages[-1]["role"] == "assistant" and messages[-1]["text"] == "back after the crash"


def test_after_kill_9_the_user_message_is_kept(kill_drill):
    session_id = kill_drill.left_alone.session_id()

    detail = get_json(kill_drill.successor, f"/sessions/history/{session_id}", kill_drill.headers)

    assert detail["messages"][0]["role"] == "user"
    assert detail["messages"][0]["text"] == SLOW_MESSAGE
    assert [m["role"] for m in detail["messages"]].count("user") == 1


def test_after_kill_9_the_streamed_text_is_kept_and_marked_interrupted(kill_drill):
    server, session_id = kill_drill.successor, kill_drill.left_alone.session_id()
    # Words the client had received long enough before the kill that a checkpoint must have saved them.
    saved_by = kill_drill.killed_at - CHECKPOINT_SECONDS - CHECKPOINT_SLACK_SECONDS
    must_keep = [
        word for timed in kill_drill.left_alone.deltas() if timed.received_at <= saved_by for word in timed_words(timed)
    ]
    assert len(must_keep) >= 5, "the drill streamed long enough for at least one checkpoint"

    def interrupted_turn() -> dict[str, Any] | None:
        messages = get_json(server, f"/sessions/history/{session_id}", kill_drill.headers)["messages"]
        assistants = [m for m in messages if m["role"] == "assistant"]
        return assistants[0] if assistants and assistants[0]["interrupted"] else None

    remaining = kill_drill.successor_ready_at + RECOVERY_DEADLINE_SECONDS - time.monotonic()
    assistant = poll(interrupted_turn, timeout=max(remaining, 1), what="an interrupted assistant message")

    saved = assistant["text"].split()
    assert saved == WORDS[: len(saved)] != WORDS  # a prefix of the answer: nothing reordered or invented
    assert len(saved) >= len(must_keep), f"saved {len(saved)} words; {len(must_keep)} were streamed before"


def test_after_kill_9_the_session_is_not_left_running(kill_drill):
    server, session_id = kill_drill.successor, kill_drill.left_alone.session_id()

    def settled_status() -> str | None:
        sessions = get_json(server, "/sessions/history", kill_drill.headers)
        (session,) = [s for s in sessions if s["id"] == session_id]
        return None if session["status"] == "running" else session["status"]

    remaining = kill_drill.successor_ready_at + RECOVERY_DEADLINE_SECONDS - time.monotonic()
    status = poll(settled_status, timeout=max(remaining, 1), what="the session leaving `running`")

    assert status == "interrupted"


# --- the database goes away mid-stream (PostgreSQL) --------------------------------------------------------

postgres_only = pytest.mark.skipif(
    not session_uses_postgres(),
    reason="cutting the database connection needs PostgreSQL over TCP (this session's database is SQLite, a file)",
)
OUTAGE_SCOPE = "tenant-db-outage"
# How long a stream or /chat/sync may take to end once the database is cut: the server's first query
# fails at once on a reset connection; a new connection waits for the pool (AMODAL_DB_POOL_TIMEOUT).
OUTAGE_DEADLINE_SECONDS = 20.0
POOL_TIMEOUT_SECONDS = 2
OUTAGE_WORDS = [f"v{index}" for index in range(1, 41)]
OUTAGE_MESSAGE = f"/slow {WORD_MS} " + " ".join(OUTAGE_WORDS)
CUT_AFTER_WORDS = 3
SLOW_TOOL_MESSAGE = "/tool request " + json.dumps(
    {"connection": "slow", "method": "GET", "endpoint": "/hold", "intent": "read"}
)
# Once the database is back: the lease of the cut message (never released) expires, and psycopg's pool
# opens new connections.
RESTORED_DEADLINE_SECONDS = LEASE_SECONDS + 10


@pytest.fixture(scope="module")
def outage_database(tmp_path_factory) -> Iterator[LiveDatabase]:
    """A database of its own (created and migrated directly, not through the proxy), so that what the
    outage server does (e.g. sweeping expired leases) never touches the kill drill's sessions."""
    with migrated_database(tmp_path_factory.mktemp("outage-db")) as database:
        yield database


@pytest.fixture(scope="module")
def db_proxy(outage_database) -> Iterator[TcpProxy]:
    parts = urlsplit(outage_database.url)
    with TcpProxy((parts.hostname or "127.0.0.1", parts.port or 5432)) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def slow_endpoint() -> Iterator[GatedEndpoint]:
    with GatedEndpoint() as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def outage_server(live_server_factory, outage_database, db_proxy, slow_endpoint, tmp_path_factory) -> LiveServer:
    """A server whose database connections go through `db_proxy` (the database itself was created and
    migrated directly), on an agent with a `slow` connection whose calls wait for `slow_endpoint`."""
    agent_dir = write_agent_folder(
        tmp_path_factory.mktemp("outage") / "agent",
        files={"connections/slow/spec.json": {"baseUrl": slow_endpoint.base_url, "timeoutSeconds": 30}},
    )
    parts = urlsplit(outage_database.url)
    credentials, at, _ = parts.netloc.rpartition("@")
    proxied = urlunsplit(parts._replace(netloc=f"{credentials}{at}127.0.0.1:{db_proxy.port}"))
    return live_server_factory(
        database=outage_database,
        keepalive_seconds=1,  # a stream that hangs still sends frames, so the deadline below is checked
        extra_env={
            "DATABASE_URL": proxied,
            "AMODAL_AGENT_DIR": str(agent_dir),
            "AMODAL_LEASE_SECONDS": str(LEASE_SECONDS),
            "AMODAL_CHECKPOINT_SECONDS": "0.5",
            "AMODAL_DB_POOL_TIMEOUT": str(POOL_TIMEOUT_SECONDS),
        },
    )


def database_reachable(server: LiveServer) -> bool:
    try:
        response = httpx.get(f"{server.base_url}/health", timeout=10, trust_env=False)
    except httpx.HTTPError:
        return False
    return response.status_code == 200 and response.json()["database"] == "ok"


@pytest.fixture
def outage(outage_server, db_proxy, slow_endpoint) -> Iterator[TcpProxy]:
    """The proxy, forwarding and with the server's database reachable at the start; restored at the end."""
    db_proxy.restore()
    slow_endpoint.rearm()
    poll(lambda: database_reachable(outage_server), timeout=30, what="the server reaching its database")
    yield db_proxy
    db_proxy.restore()
    slow_endpoint.release.set()


def read_until_end(response: httpx.Response, on_frame) -> list[Frame]:
    """The stream's frames; `on_frame(frames)` may return a deadline (monotonic) once it cut the database,
    after which the stream must end in time."""
    frames: list[Frame] = []
    deadline: float | None = None
    for frame in iter_frames(response):
        frames.append(frame)
        if deadline is None:
            deadline = on_frame(frames)
        elif time.monotonic() > deadline:
            pytest.fail(
                f"the stream did not end within {OUTAGE_DEADLINE_SECONDS:g} s of the database cut; "
                f"events so far: {[e['type'] for e in events_of(frames)]}"
            )
    return frames


def assert_ends_with_service_unavailable(events: list[dict[str, Any]]) -> None:
    check_stream(events)
    error, done = events[-2:]
    assert (error["type"], error["code"]) == ("error", "service_unavailable"), events[-2:]
    assert isinstance(error["message"], str) and error["message"].strip()
    assert done["reason"] == "error"


def assert_back_after_restore(server: LiveServer, headers: dict[str, str], session_id: str) -> list[dict]:
    events = send_when_free(
        server, headers, session_id, "/say back after the outage", deadline_seconds=RESTORED_DEADLINE_SECONDS
    )
    check_stream(events)
    assert events[-1]["reason"] == "model_stop"
    assert text_of(events) == "back after the outage"
    return get_json(server, f"/sessions/history/{session_id}", headers)["messages"]


@postgres_only
def test_database_cut_while_text_streams_ends_the_stream_then_the_session_recovers(outage_server, outage):
    headers = outage_server.headers(OUTAGE_SCOPE)

    def cut_after_some_words(frames: list[Frame]) -> float | None:
        if sum(1 for frame in frames if frame.type == "text_delta") < CUT_AFTER_WORDS:
            return None
        outage.cut()
        return time.monotonic() + OUTAGE_DEADLINE_SECONDS

    with (
        outage_server.client() as client,
        client.stream("POST", "/chat/stream", json={"message": OUTAGE_MESSAGE}, headers=headers) as response,
    ):
        assert response.status_code == 200
        frames = read_until_end(response, cut_after_some_words)

    events = events_of(frames)
    assert_ends_with_service_unavailable(events)
    received = words_of(frames)
    assert len(received) >= CUT_AFTER_WORDS and received == OUTAGE_WORDS[: len(received)]

    outage.restore()
    messages = assert_back_after_restore(outage_server, headers, events[0]["session_id"])
    assert [m["text"] for m in messages if m["role"] == "user"] == [OUTAGE_MESSAGE, "/say back after the outage"]


@postgres_only
def test_database_cut_while_a_tool_runs_ends_the_stream_then_the_session_recovers(outage_server, outage, slow_endpoint):
    headers = outage_server.headers(OUTAGE_SCOPE)

    def cut_while_the_tool_waits(frames: list[Frame]) -> float | None:
        if frames[-1].type != "tool_call_start":
            return None
        assert slow_endpoint.arrived.wait(10), "the tool's call reached the slow endpoint"
        outage.cut()
        slow_endpoint.release.set()
        return time.monotonic() + OUTAGE_DEADLINE_SECONDS

    with (
        outage_server.client() as client,
        client.stream("POST", "/chat/stream", json={"message": SLOW_TOOL_MESSAGE}, headers=headers) as response,
    ):
        assert response.status_code == 200
        frames = read_until_end(response, cut_while_the_tool_waits)

    events = events_of(frames)
    assert [e["tool_name"] for e in events if e["type"] == "tool_call_start"] == ["request"]
    assert slow_endpoint.paths == ["/hold"]
    assert_ends_with_service_unavailable(events)

    outage.restore()
    messages = assert_back_after_restore(outage_server, headers, events[0]["session_id"])
    assert [m["text"] for m in messages if m["role"] == "user"] == [SLOW_TOOL_MESSAGE, "/say back after the outage"]


@postgres_only
def test_database_cut_during_chat_sync_is_answered(outage_server, outage):
    headers = outage_server.headers(OUTAGE_SCOPE)
    cutter = threading.Timer(1.0, outage.cut)  # about ten words into the four-second answer

    cutter.start()
    try:
        with outage_server.client(timeout=httpx.Timeout(OUTAGE_DEADLINE_SECONDS, connect=5.0)) as client:
            response = client.post("/chat/sync", json={"message": OUTAGE_MESSAGE}, headers=headers)
    except httpx.TimeoutException:
        pytest.fail(f"/chat/sync did not answer within {OUTAGE_DEADLINE_SECONDS:g} s of the database cut")
    finally:
        cut_before_the_answer = outage.is_cut
        cutter.cancel()
        cutter.join()

    assert cut_before_the_answer, "the database was cut while the message ran"
    if response.status_code == 503:
        # The contract's answer when the database is unavailable, which a sync call may also give when
        # it loses the database mid-message (it has no event stream to carry the error).
        assert error_code(response) == "service_unavailable"
        assert response.headers["Retry-After"].isdigit()
    else:
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["stop_reason"] == "error"
        assert "service_unavailable" in [error["code"] for error in body.get("errors", [])], body
        assert body["response"].split() == OUTAGE_WORDS[: len(body["response"].split())]


@postgres_only
def test_new_message_while_the_database_is_away_is_503_with_retry_after(outage_server, outage):
    headers = outage_server.headers(OUTAGE_SCOPE)
    with outage_server.client() as client:
        first = client.post("/chat/sync", json={"message": "/say before the outage"}, headers=headers)
    assert first.status_code == 200, first.text
    session_id = first.json()["session_id"]
    outage.cut()

    answers = {}
    with outage_server.client(timeout=httpx.Timeout(OUTAGE_DEADLINE_SECONDS, connect=5.0)) as client:
        for name, path, body in [
            ("stream, same session", "/chat/stream", {"message": "/say hi", "session_id": session_id}),
            ("stream, new session", "/chat/stream", {"message": "/say hi"}),
            ("sync, same session", "/chat/sync", {"message": "/say hi", "session_id": session_id}),
        ]:
            answers[name] = client.post(path, json=body, headers=headers)

    for name, response in answers.items():
        assert response.status_code == 503, (name, response.status_code, response.text)
        assert response.headers["Content-Type"].startswith("application/json"), name
        assert error_code(response) == "service_unavailable", (name, response.text)
        assert response.json()["error"]["message"].strip(), name
        assert response.headers.get("Retry-After", "").isdigit(), (name, dict(response.headers))
