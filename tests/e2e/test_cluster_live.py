"""The chat through a load balancer: nginx (deploy/nginx.conf.template) in front of two daphne workers
sharing PostgreSQL and Redis, as `make cluster` runs them.

The black-box chat tests of test_live_chat.py run here again with nginx's address, and the tests below
prove what only a proxy can break: an event stream passes through unbuffered (its first events arrive
while the turn is still held open by the finance API it calls), WebSockets are upgraded, requests are
spread over both workers, and the workers see the client's real address, not one a client made up.
Skipped without nginx, PostgreSQL or Redis (tests/e2e/cluster.py says which).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from websockets.sync.client import connect as ws_connect

from tests.e2e.cluster import LiveCluster, cluster_skip_reason, start_cluster
from tests.e2e.helpers import check_event, check_stream, events_of, iter_frames, poll, text_of
from tests.e2e.test_live_chat import (  # noqa: F401  (collected again here, against the cluster)
    test_a_second_message_waits_then_gets_409_and_cancel_frees_the_session,
    test_a_token_without_a_scope_is_refused_before_anything_is_written,
    test_a_websocket_outlives_a_long_message_and_takes_the_next,
    test_chat_sync_answers_in_one_json,
    test_chat_sync_reports_tool_calls,
    test_client_disconnect_saves_the_partial_turn_and_frees_the_session,
    test_health_reports_database_and_channel_layer,
    test_history_lists_the_scopes_sessions_newest_first,
    test_one_household_never_sees_anothers_sessions,
    test_requests_without_a_valid_token_get_401,
    test_stream_frames_are_exact_and_ordered,
    test_stream_frames_arrive_one_by_one,
    test_stream_read_by_an_independent_sse_parser,
    test_stream_refuses_bad_requests_with_json_errors,
    test_stream_tool_call_against_the_demo_finance_api,
    test_websocket_cancel_stops_the_running_message,
    test_websocket_chat_streams_init_to_done,
    test_websocket_disconnect_saves_the_partial_turn,
    test_websocket_with_a_bad_token_is_refused,
)

pytestmark = [pytest.mark.live, pytest.mark.skipif(bool(cluster_skip_reason()), reason=cluster_skip_reason())]

GARCIA = "household-garcia"
TRANSACTIONS = {"transactions": [{"id": "t1", "amount": -12.5, "description": "groceries"}]}
HOLD_SECONDS = 9.0  # below the finance connection's 10 s timeout: a test that fails still ends cleanly


class FinanceGate(ThreadingHTTPServer):
    """The finance API the cluster's agent calls: answers GET /transactions; while `hold` is set, each
    request waits until the test calls `release()` (a turn that cannot end until the test says so)."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), GateHandler)
        self.hold = False
        self.waiting = 0  # requests held right now
        self.released = threading.Event()
        self.lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def arm(self) -> None:
        with self.lock:
            self.hold = True
            self.released.clear()

    def release(self) -> None:
        with self.lock:
            self.hold = False
        self.released.set()


class GateHandler(BaseHTTPRequestHandler):
    server: FinanceGate

    def do_GET(self) -> None:
        gate = self.server
        with gate.lock:
            hold = gate.hold
            gate.waiting += hold
        if hold:
            gate.released.wait(HOLD_SECONDS)
            with gate.lock:
                gate.waiting -= 1
        body = json.dumps(TRANSACTIONS).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def finance_gate() -> Iterator[FinanceGate]:
    gate = FinanceGate()
    thread = threading.Thread(target=gate.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield gate
    gate.release()
    gate.shutdown()
    gate.server_close()


@pytest.fixture(scope="module")
def cluster(live_database, finance_gate, tmp_path_factory) -> Iterator[LiveCluster]:
    live = start_cluster(
        live_database, tmp_path_factory.mktemp("cluster"), extra_env={"FINANCE_API_URL": finance_gate.base_url}
    )
    yield live
    live.stop()


@pytest.fixture(scope="module")
def daphne_server(cluster) -> LiveCluster:
    """The imported test_live_chat tests talk to nginx instead of one daphne."""
    return cluster


def household(cluster: LiveCluster, scope_id: str = GARCIA) -> dict[str, str]:
    return cluster.headers(scope_id, {"household_id": scope_id})


def test_an_event_stream_passes_through_nginx_unbuffered(cluster, finance_gate):
    """The turn asks the finance API, which holds its answer until the test has read the first events:
    had nginx buffered the stream, they could not arrive before the release (the read would time out)."""
    finance_gate.arm()
    before_release = []
    with (
        cluster.client() as client,
        client.stream(
            "POST", "/chat/stream", json={"message": "show my recent transactions"}, headers=household(cluster)
        ) as response,
    ):
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        frames = iter_frames(response)
        for frame in frames:
            before_release.append(frame)
            if frame.type == "tool_call_start":
                break
        # The turn is still running: its tool call waits in the finance API until released.
        poll(lambda: finance_gate.waiting == 1, timeout=10, what="the tool call waiting in the finance API")
        finance_gate.release()
        after_release = list(frames)

    types_before = [frame.type for frame in before_release]
    assert types_before[0] == "init" and "text_delta" in types_before and types_before[-1] == "tool_call_start"
    assert "done" not in types_before
    events = events_of(before_release + after_release)
    check_stream(events)
    types_after = [frame.type for frame in after_release]
    assert types_after[0] == "tool_call_result" and types_after[-1] == "done"
    result = next(event for event in events if event["type"] == "tool_call_result")
    assert result["status"] == "success", result
    assert json.loads(result["result"]) == {"status": 200, "data": TRANSACTIONS}
    assert events[-1]["reason"] == "model_stop"


def test_a_websocket_passes_through_nginx_unbuffered(cluster, finance_gate):
    finance_gate.arm()
    token = cluster.token(GARCIA, {"household_id": GARCIA})
    with ws_connect(f"{cluster.ws_url}/ws/chat?token={token}", open_timeout=10, close_timeout=5, proxy=None) as ws:
        ws.send(json.dumps({"type": "message", "message": "show my recent transactions"}))
        events: list[dict[str, Any]] = []
        while not events or events[-1]["type"] != "tool_call_start":
            item = json.loads(ws.recv(timeout=15))
            if item["type"] != "auth_ok":
                events.append(check_event(item))
        poll(lambda: finance_gate.waiting == 1, timeout=10, what="the tool call waiting in the finance API")
        held_count = len(events)
        finance_gate.release()
        while events[-1]["type"] != "done":
            events.append(check_event(json.loads(ws.recv(timeout=15))))

    check_stream(events)
    assert [item["type"] for item in events[held_count:]][0] == "tool_call_result"
    assert events[-1]["reason"] == "model_stop"


def test_requests_are_spread_over_both_workers(cluster):
    before = [log.count('"POST /chat/sync"') for log in cluster.access_logs()]
    with cluster.client() as client:
        for index in range(6):
            response = client.post("/chat/sync", json={"message": f"/say spread {index}"}, headers=household(cluster))
            assert response.status_code == 200, response.text

    def counts() -> list[int] | None:
        now = [log.count('"POST /chat/sync"') - was for log, was in zip(cluster.access_logs(), before, strict=True)]
        return now if sum(now) == 6 else None

    per_worker = poll(counts, timeout=10, what="six access log lines")
    assert len(per_worker) == 2 and all(count >= 1 for count in per_worker), per_worker


def test_workers_see_the_clients_address_not_a_forwarded_one_it_made_up(cluster):
    """nginx overwrites X-Forwarded-For (daphne --proxy-headers takes its first address)."""
    spoofed = "203.0.113.77"
    with cluster.client() as client:
        for _ in range(4):
            assert client.get("/health", headers={"X-Forwarded-For": spoofed}).status_code == 200

    def health_lines() -> list[str] | None:
        lines = [line for log in cluster.access_logs() for line in log.splitlines() if '"GET /health"' in line]
        return lines if sum(1 for line in lines if line.startswith("127.0.0.1:")) >= 4 else None

    lines = poll(health_lines, timeout=10, what="the health checks in the access logs")
    assert not any(spoofed in line for line in lines), lines


def test_a_cancel_reaches_the_worker_running_the_message_through_either_worker(cluster):
    """Each worker is asked directly (over its socket) to cancel a message running on one of them: the
    one not running it passes the cancel on through Redis."""
    headers = household(cluster)
    words = [f"w{i}" for i in range(60)]
    with (
        cluster.client() as client,
        client.stream(
            "POST", "/chat/stream", json={"message": "/slow 200 " + " ".join(words)}, headers=headers
        ) as response,
    ):
        assert response.status_code == 200
        stream = iter_frames(response)  # one reader of the response for the whole test
        frames = []
        while not any(frame.type == "text_delta" for frame in frames):
            frames.append(next(stream))
        session_id = frames[0].event["session_id"]
        answers = []
        for worker in cluster.cluster.workers:
            with worker.client(timeout=10) as direct:
                answers.append(direct.post(f"/sessions/{session_id}/cancel", headers=headers).json())
        frames += list(stream)

    # Both answer; at least one of them found the message running and stopped it.
    assert all(answer["ok"] is True for answer in answers), answers
    assert any(answer["running"] for answer in answers), answers
    events = events_of(frames)
    check_stream(events)
    assert events[-1]["reason"] == "user_abort"
    assert len(text_of(events).split()) < len(words)
