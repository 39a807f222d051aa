"""Fault drill (issue 16): the channel layer's Redis stopped and started under a live server, and under the
cluster (nginx in front of two workers, tests/e2e/cluster.py), where a cancel usually reaches another worker
than the one running the message, so it can only travel through Redis.

The server runs with a Redis of its own (a `redis-server` started by this module on a free port), so the
drill can kill it without touching the Redis the rest of the suite shares. While Redis is down, chat must
go on over SSE, /chat/sync and the WebSocket (only a cancel, which crosses processes through Redis, cannot
work: 503 JSON with Retry-After, and the message it named runs on to its end); the rate limits fall back
to this process's counts. Once Redis is back, cancels work again without restarting the server.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect as ws_connect

from tests.e2e.cluster import WORKERS, LiveCluster, cluster_skip_reason, start_cluster
from tests.e2e.helpers import check_stream, events_of, iter_frames, poll, text_of
from tests.e2e.live import LiveServer, free_port

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="the drill needs the redis-server binary"),
]

GARCIA = "household-garcia"
SLOW_WORDS = [f"w{i}" for i in range(1, 31)]  # 30 words, 100 ms apart: 3 s, time to send a cancel


class PrivateRedis:
    """A redis-server on a loopback port of its own, stopped (SIGKILL, as a crash) and started again on it."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        log = (self.directory / "redis.log").open("ab")
        self.process = subprocess.Popen(command, cwd=self.directory, stdout=log, stderr=subprocess.STDOUT)
        poll(self.answers, timeout=10, what=f"redis-server on port {self.port} answering PING")

    def answers(self) -> bool:
        try:
            result = subprocess.run(
                ["redis-cli", "-p", str(self.port), "ping"], capture_output=True, text=True, timeout=5, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            return False
        return result.stdout.strip() == "PONG"

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self.process = None


@pytest.fixture(scope="module")
def redis(tmp_path_factory) -> Iterator[PrivateRedis]:
    if shutil.which("redis-cli") is None:
        pytest.skip("the drill needs redis-cli")
    server = PrivateRedis(tmp_path_factory.mktemp("private-redis"))
    server.start()
    yield server
    if server.process is not None:
        server.kill()


# Generous limits, so each request goes through the limiter's Redis script (and its fallback).
LIMITS = {"AMODAL_RATE_LIMIT_SCOPE": "1000/minute", "AMODAL_STREAMS_PER_SCOPE": "50"}


@pytest.fixture(scope="module", params=["one server", "cluster"])
def server(request, live_server_factory, live_database, redis, tmp_path_factory) -> Iterator[LiveServer | LiveCluster]:
    if request.param == "one server":
        yield live_server_factory(redis_url=redis.url, extra_env=LIMITS)
        return
    if cluster_skip_reason():
        pytest.skip(cluster_skip_reason())
    cluster = start_cluster(live_database, tmp_path_factory.mktemp("cluster"), redis_url=redis.url, extra_env=LIMITS)
    yield cluster
    cluster.stop()


def processes(server: LiveServer | LiveCluster) -> int:
    return WORKERS if isinstance(server, LiveCluster) else 1


def headers(server: LiveServer | LiveCluster) -> dict[str, str]:
    return server.headers(GARCIA, {"household_id": GARCIA})


def stream_with_cancel(server: LiveServer | LiveCluster) -> tuple[list[dict], httpx.Response]:
    """A slow message over SSE, and a cancel of its session sent once its third word has arrived."""
    frames = []
    cancel: httpx.Response | None = None
    body = {"message": "/slow 100 " + " ".join(SLOW_WORDS)}
    with (
        server.client() as client,
        client.stream("POST", "/chat/stream", json=body, headers=headers(server)) as response,
    ):
        assert response.status_code == 200
        for frame in iter_frames(response):
            frames.append(frame)
            if cancel is None and sum(1 for f in frames if f.type == "text_delta") == 3:
                session_id = frames[0].event["session_id"]
                with server.client() as other:
                    cancel = other.post(f"/sessions/{session_id}/cancel", headers=headers(server))
    assert cancel is not None
    return events_of(frames), cancel


def stream_with_cancel_across_workers(server: LiveServer | LiveCluster) -> tuple[list[dict], httpx.Response]:
    """stream_with_cancel; on the cluster, also that the cancel was answered by the worker not running the
    message (nginx's least_conn sends it to the worker with no open stream), read from the access logs."""
    if not isinstance(server, LiveCluster):
        return stream_with_cancel(server)
    before = [len(log) for log in server.access_logs()]
    events, cancel = stream_with_cancel(server)

    def answered(marker: str) -> list[int]:
        logs = server.access_logs()
        return [index for index, (log, start) in enumerate(zip(logs, before, strict=True)) if marker in log[start:]]

    poll(lambda: answered('"POST /chat/stream"'), timeout=10, what="the stream in a worker's access log")
    streamed, cancelled = answered('"POST /chat/stream"'), answered('/cancel"')
    assert len(streamed) == len(cancelled) == 1 and streamed != cancelled, (streamed, cancelled)
    return events, cancel


def chat_over_every_surface(server: LiveServer | LiveCluster, label: str) -> None:
    with server.client() as client:
        sync = client.post("/chat/sync", json={"message": f"/say sync {label}"}, headers=headers(server))
        assert sync.status_code == 200, sync.text
        assert sync.json()["response"] == f"sync {label}"

        with client.stream(
            "POST", "/chat/stream", json={"message": f"/say stream {label}"}, headers=headers(server)
        ) as response:
            assert response.status_code == 200
            events = events_of(list(iter_frames(response)))
    check_stream(events)
    assert text_of(events) == f"stream {label}" and events[-1]["reason"] == "model_stop"

    token = server.token(GARCIA, {"household_id": GARCIA})
    with ws_connect(f"{server.ws_url}/ws/chat?token={token}", open_timeout=10, close_timeout=5, proxy=None) as ws:
        ws.send(json.dumps({"type": "message", "message": f"/say socket {label}"}))
        socket_events = []
        while not socket_events or socket_events[-1]["type"] != "done":
            item = json.loads(ws.recv(timeout=15))
            if item["type"] != "auth_ok":
                socket_events.append(item)
    check_stream(socket_events)
    assert text_of(socket_events) == f"socket {label}"


def test_redis_stopped_and_started_under_a_live_server(server, redis):
    # Redis up: a cancel stops a running message.
    chat_over_every_surface(server, "before")
    events, cancel = stream_with_cancel_across_workers(server)
    assert cancel.status_code == 200 and cancel.json() == {"ok": True, "running": True}
    assert events[-1]["reason"] == "user_abort"

    redis.kill()

    # Redis down: chat goes on everywhere; a cancel is a 503 in the JSON shape, and its message runs on.
    chat_over_every_surface(server, "during")
    events, cancel = stream_with_cancel(server)
    assert cancel.status_code == 503, cancel.text
    assert cancel.json()["error"]["code"] == "service_unavailable"
    assert int(cancel.headers["Retry-After"]) > 0
    check_stream(events)
    assert events[-1]["reason"] == "model_stop" and text_of(events).split() == SLOW_WORDS

    redis.start()

    # Redis back (same port, empty): cancels work again, without a restart.
    def cancel_works() -> bool:
        events, cancel = stream_with_cancel_across_workers(server)
        return cancel.status_code == 200 and events[-1]["reason"] == "user_abort"

    poll(cancel_works, timeout=60, interval=0.5, what="a cancel stopping a message after Redis came back")
    chat_over_every_surface(server, "after")

    # What the operator reads: the cancel's and the limiter's warnings, not a traceback per request.
    log = server.log()
    assert "channel layer unavailable for /sessions/" in log
    assert "rate limits: Redis unreachable, counting in this process" in log
    assert log.count("Traceback") <= processes(server), log[-4000:]
