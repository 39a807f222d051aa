"""The limiter's algorithms (core.ratelimit), on a clock the tests move: the same cases in this process and
in Redis (the Lua scripts), then what only Redis has to prove (atomic under concurrency, shared by
separate clients) and the fall back to this process when Redis cannot be reached."""

from __future__ import annotations

import asyncio
import socket
from concurrent.futures import ThreadPoolExecutor

import pytest

from core import ratelimit
from core.ratelimit import FallbackLimiter, LocalLimiter, Rate, RateCheck, RedisLimiter, Refusal, SlotCheck

LEASE_MS = 15_000.0


@pytest.fixture(params=["local", "redis"])
def limiter(request, clock):
    if request.param == "local":
        return LocalLimiter(clock)
    return RedisLimiter(
        request.getfixturevalue("redis_url"), prefix=request.getfixturevalue("redis_prefix"), clock_ms=clock
    )


def per(count: int, unit: str = "minute", key: str = "k") -> RateCheck:
    return RateCheck(key, Rate(count, unit))


def admitted(limiter, checks, times: int) -> int:
    return sum(limiter.admit(checks, [], "", LEASE_MS) is None for _ in range(times))


# --- Rate.parse ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, rate",
    [
        ("600/minute", Rate(600, "minute")),
        (" 5 / second ", Rate(5, "second")),
        ("1/hour", Rate(1, "hour")),
        ("10000/day", Rate(10000, "day")),
        ("", None),
        ("0", None),
        ("0/minute", None),
    ],
)
def test_rates_are_parsed(text, rate):
    assert Rate.parse(text) == rate


@pytest.mark.parametrize("text", ["600", "600/min", "600/minutes", "-1/minute", "1.5/second", "x/minute", "5/m"])
def test_a_malformed_rate_is_refused(text):
    with pytest.raises(ValueError):
        Rate.parse(text)


def test_a_rate_describes_itself():
    assert Rate(120, "minute").describe() == "120 requests a minute"
    assert Rate(1, "hour").describe() == "1 request an hour"
    assert str(Rate(600, "minute")) == "600/minute"


# --- Requests per period (GCRA) ---------------------------------------------------------------------------


def test_a_full_period_is_let_through_at_once_then_one_per_interval(limiter, clock):
    check = per(6)  # one every 10 s
    assert admitted(limiter, [check], 10) == 6
    refusal = limiter.admit([check], [], "", LEASE_MS)
    assert refusal == Refusal(0, pytest.approx(10_000))
    clock.advance(9.9)
    assert admitted(limiter, [check], 1) == 0
    clock.advance(0.1)
    assert admitted(limiter, [check], 3) == 1
    clock.advance(60)
    assert admitted(limiter, [check], 10) == 6


def test_the_wait_is_until_the_next_request_would_fit(limiter, clock):
    check = per(2, "second")
    assert admitted(limiter, [check], 2) == 2
    clock.advance(0.2)
    assert limiter.admit([check], [], "", LEASE_MS).wait_ms == pytest.approx(300)


def test_keys_are_counted_apart(limiter):
    assert admitted(limiter, [per(3, key="a")], 5) == 3
    assert admitted(limiter, [per(3, key="b")], 5) == 3


def test_a_request_refused_by_one_limit_consumes_none_of_the_others(limiter):
    key, scope = per(10, key="key"), per(2, key="scope")
    assert admitted(limiter, [key, scope], 5) == 2
    # The key's limit was charged only for the two requests that passed: eight more go through alone.
    assert admitted(limiter, [key], 20) == 8


def test_the_refusal_names_the_limit_with_the_longest_wait(limiter):
    assert admitted(limiter, [per(1, "minute", "a"), per(1, "hour", "b")], 1) == 1
    refusal = limiter.admit([per(1, "minute", "a"), per(1, "hour", "b")], [], "", LEASE_MS)
    assert refusal.index == 1
    assert refusal.wait_ms == pytest.approx(3_600_000)


# --- Stream slots -------------------------------------------------------------------------------------------


def test_slots_are_taken_up_to_the_limit_and_released(limiter):
    async def scenario():
        slot = SlotCheck("s", 2)
        assert await limiter.aadmit([], [slot], "m1", LEASE_MS) is None
        assert await limiter.aadmit([], [slot], "m2", LEASE_MS) is None
        assert await limiter.aadmit([], [slot], "m3", LEASE_MS) == Refusal(0, 0.0)
        await limiter.arelease([slot], "m1")
        assert await limiter.aadmit([], [slot], "m3", LEASE_MS) is None
        assert await limiter.aadmit([], [slot], "m4", LEASE_MS) is not None

    asyncio.run(scenario())


def test_a_slot_not_renewed_expires_after_its_lease(limiter, clock):
    """A killed process renews nothing: its slots free themselves within one lease."""

    async def killed():
        slot = SlotCheck("t", 1)
        assert await limiter.aadmit([], [slot], "killed", LEASE_MS) is None
        clock.advance(14.9)
        assert await limiter.aadmit([], [slot], "next", LEASE_MS) is not None
        clock.advance(0.1)
        assert await limiter.aadmit([], [slot], "next", LEASE_MS) is None

    asyncio.run(killed())


def test_a_renewed_slot_is_kept_past_its_first_lease(limiter, clock):
    async def scenario():
        slot = SlotCheck("s", 1)
        assert await limiter.aadmit([], [slot], "running", LEASE_MS) is None
        for _ in range(4):
            clock.advance(5)
            await limiter.arenew([slot], "running", LEASE_MS)
        assert await limiter.aadmit([], [slot], "other", LEASE_MS) is not None
        await limiter.arelease([slot], "running")
        assert await limiter.aadmit([], [slot], "other", LEASE_MS) is None

    asyncio.run(scenario())


def test_rates_and_slots_are_taken_together_or_not_at_all(limiter):
    async def scenario():
        rate, slot = per(5), SlotCheck("s", 1)
        assert await limiter.aadmit([rate], [slot], "m1", LEASE_MS) is None
        assert await limiter.aadmit([rate], [slot], "m2", LEASE_MS) == Refusal(1, 0.0)  # the slot: index after rates
        # The refused request consumed no request of the rate: four are left.
        assert sum([await limiter.aadmit([rate], [], "", LEASE_MS) is None for _ in range(6)]) == 4

    asyncio.run(scenario())


# --- Redis only ---------------------------------------------------------------------------------------------


def test_concurrent_callers_cannot_both_take_the_last_slot_or_request(redis_url, redis_prefix):
    limiters = [RedisLimiter(redis_url, prefix=redis_prefix) for _ in range(4)]  # as four processes would

    def take(index: int) -> tuple[bool, bool]:
        limiter = limiters[index % 4]
        slot = limiter.admit([], [SlotCheck("slots", 5)], f"m{index}", LEASE_MS) is None
        request = limiter.admit([per(10)], [], "", LEASE_MS) is None
        return slot, request

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(take, range(40)))

    assert sum(slot for slot, _ in results) == 5
    assert sum(request for _, request in results) == 10


def test_redis_uses_its_own_clock_when_none_is_given(redis_url, redis_prefix):
    limiter = RedisLimiter(redis_url, prefix=redis_prefix)
    assert admitted(limiter, [per(3, "hour")], 5) == 3
    refusal = limiter.admit([per(3, "hour")], [], "", LEASE_MS)
    assert 1_000_000 < refusal.wait_ms <= 1_200_000  # the next of three an hour: about 20 minutes away


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens once the socket is closed


def test_an_unreachable_redis_falls_back_to_counting_in_this_process(clock, caplog):
    down = RedisLimiter(f"redis://127.0.0.1:{closed_port()}/9", clock_ms=clock)
    limiter = FallbackLimiter(down, LocalLimiter(clock))

    assert admitted(limiter, [per(3)], 5) == 3  # still limited, per process
    assert limiter.down_until > 0
    assert any("Redis unreachable" in record.message for record in caplog.records)

    async def slots():
        slot = SlotCheck("s", 1)
        assert await limiter.aadmit([], [slot], "m1", LEASE_MS) is None
        assert await limiter.aadmit([], [slot], "m2", LEASE_MS) is not None
        await limiter.arenew([slot], "m1", LEASE_MS)
        await limiter.arelease([slot], "m1")
        assert await limiter.aadmit([], [slot], "m2", LEASE_MS) is None

    asyncio.run(slots())
    assert limiter.local_members == {"m2"}


def test_redis_is_tried_again_after_an_outage(redis_url, redis_prefix, clock, monkeypatch):
    shared = RedisLimiter(redis_url, prefix=redis_prefix, clock_ms=clock)
    limiter = FallbackLimiter(shared, LocalLimiter(clock))
    limiter.down_until = 1.0  # an outage that has just ended (time.monotonic() is past it)
    monkeypatch.setattr(ratelimit, "REDIS_RETRY_SECONDS", 0.0)

    assert admitted(limiter, [per(2)], 3) == 2
    assert shared.admit([per(2)], [], "", LEASE_MS) is not None  # counted in Redis, not locally
    assert limiter.local.tats == {}


def test_this_process_forgets_keys_whose_counts_no_longer_matter(clock):
    limiter = LocalLimiter(clock)
    assert admitted(limiter, [per(6, key="old")], 1) == 1
    asyncio.run(limiter.aadmit([], [SlotCheck("streams", 1)], "m", LEASE_MS))
    asyncio.run(limiter.arelease([SlotCheck("streams", 1)], "m"))
    clock.advance(61)
    assert admitted(limiter, [per(6, key="new")], 1) == 1
    assert set(limiter.tats) == {"new"}
    assert limiter.slots == {}
