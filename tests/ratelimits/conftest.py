"""Fixtures of the rate limit tests: a clock tests move by hand, and Redis under a prefix of the test's own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis

from tests.e2e.live import session_redis_url


class Clock:
    """Milliseconds since an arbitrary start; moves only when a test says so."""

    def __init__(self) -> None:
        self.now_ms = 1_700_000_000_000.0

    def __call__(self) -> float:
        return self.now_ms

    def advance(self, seconds: float) -> None:
        self.now_ms += seconds * 1000


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def redis_url() -> str:
    url = session_redis_url()
    if not url:
        pytest.skip("needs REDIS_URL (the PostgreSQL pass of `make test` sets it)")
    return url


@pytest.fixture
def redis_prefix(redis_url) -> Iterator[str]:
    """A key prefix no other test (or xdist worker) uses; its keys are deleted afterwards."""
    prefix = f"test:ratelimit:{uuid.uuid4().hex}:"
    yield prefix
    with redis.Redis.from_url(redis_url) as client:
        keys = list(client.scan_iter(match=prefix + "*"))
        if keys:
            client.delete(*keys)
