"""Rate limits across processes: two daphne servers on one Redis count against the same limits, as the
workers of one deployment behind a load balancer do; and the stream slots of a server killed with
`kill -9` free themselves within a lease. Skipped without REDIS_URL (the PostgreSQL pass of `make test`
sets it); each test uses a scope of its own, so runs sharing a Redis do not count against each other."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
import redis

from tests.e2e.helpers import iter_frames, poll
from tests.e2e.live import session_redis_url

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(not session_redis_url(), reason="limits shared by two processes need REDIS_URL"),
]

LEASE_SECONDS = 3


@pytest.fixture
def fresh_scope() -> Iterator[str]:
    """A scope of this test's own; its counts are deleted from Redis afterwards."""
    scope_id = f"ratelimit-{uuid.uuid4().hex[:12]}"
    yield scope_id
    with redis.Redis.from_url(session_redis_url()) as client:
        keys = list(client.scan_iter(match=f"amodal:ratelimit:*:{scope_id}"))
        if keys:
            client.delete(*keys)


def test_two_servers_on_one_redis_share_the_request_limit(live_server_factory, fresh_scope):
    env = {"AMODAL_RATE_LIMIT_SCOPE": "4/minute"}
    first, second = live_server_factory(extra_env=env), live_server_factory(extra_env=env)
    headers = first.headers(fresh_scope)

    statuses, refused = [], None
    with first.client() as one, second.client() as two:
        for index in range(6):
            client = (one, two)[index % 2]
            path = "/chat/sync" if index == 0 else "/sessions/history"
            response = (
                client.post(path, json={"message": "/say hi"}, headers=headers)
                if path == "/chat/sync"
                else client.get(path, headers=headers)
            )
            statuses.append(response.status_code)
            refused = response if response.status_code == 429 else refused

    # Each server saw three requests: alone, neither would refuse any.
    assert statuses == [200, 200, 200, 200, 429, 429]
    assert refused is not None
    assert refused.json()["error"]["code"] == "rate_limited"
    assert refused.json()["error"]["message"].startswith("This scope is over 4 requests a minute; retry in ")
    assert 1 <= int(refused.headers["Retry-After"]) <= 15


def test_stream_slots_are_shared_and_a_killed_servers_slots_expire_within_a_lease(live_server_factory, fresh_scope):
    env = {"AMODAL_STREAMS_PER_SCOPE": "1", "AMODAL_LEASE_SECONDS": str(LEASE_SECONDS)}
    runner, other = live_server_factory(extra_env=env), live_server_factory(extra_env=env)
    headers = runner.headers(fresh_scope)
    words = " ".join(f"w{i}" for i in range(200))  # 20 s of words: still running when its server dies

    with (
        runner.client() as client,
        client.stream("POST", "/chat/stream", json={"message": f"/slow 100 {words}"}, headers=headers) as response,
    ):
        assert response.status_code == 200
        frames = iter_frames(response)
        init = next(frames)
        assert init.type == "init"
        with other.client() as other_client:
            refused = other_client.post("/chat/sync", json={"message": "/say no"}, headers=headers)
        runner.kill()
        with pytest.raises(httpx.HTTPError):
            list(frames)

    assert refused.status_code == 429
    assert refused.json() == {
        "error": {
            "code": "rate_limited",
            "message": "This scope already has 1 stream open, the most it may; retry in 2 s.",
        }
    }
    assert refused.headers["Retry-After"] == "2"

    attempts: list[int] = []

    def accepted() -> bool:
        with other.client() as other_client:
            attempts.append(other_client.post("/chat/sync", json={"message": "/say yes"}, headers=headers).status_code)
        return attempts[-1] == 200

    poll(accepted, timeout=LEASE_SECONDS * 3, interval=0.25, what="the killed server's slot to expire")
    assert attempts[0] == 429, attempts  # the dead server's slot was still leased right after the kill
    assert set(attempts[:-1]) == {429}
    # The killed server could not leave its session's cancel group (channels_redis keeps it for a day).
    with redis.Redis.from_url(session_redis_url()) as client:
        client.delete(f"asgi:group:chat-cancel.{init.event['session_id']}")
