"""The rate limiter: requests per period (GCRA) and concurrent slots held as leases, atomically, in Redis
or in this process. It knows keys and numbers only; which keys a request counts against, and what the
answer says, is the policy's (scoping.ratelimits).

- **Requests per period**: the generic cell rate algorithm. A limit of N per period P lets N requests
  through at once, then one every P/N; each key stores one number, its "theoretical arrival time" (TAT).
  A request is let through when the TAT it would set is at most P ahead of now; else the answer is how long
  until it would be.
- **Slots** (open streams): a sorted set per key of slot ids scored by when their lease expires. Taking a
  slot first drops the expired ones, then counts; a running stream renews its lease every third of it,
  so the slots of a killed process free themselves within one lease.

One call checks every limit of a request and takes (or refuses) them together: a request refused by one
limit consumes nothing of the others. In Redis that call is one Lua script, so workers sharing a Redis
cannot both pass the last slot. `clock` gives tests a deterministic time; in production Redis uses its
own clock (`TIME`), the same for every worker.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import redis
import redis.asyncio
from redis.commands.core import AsyncScript, Script

logger = logging.getLogger(__name__)

PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
ARTICLES = {"second": "a second", "minute": "a minute", "hour": "an hour", "day": "a day"}
RATE_RE = re.compile(r"^\s*(\d+)\s*/\s*(second|minute|hour|day)\s*$")
# Redis answers within this or the limiter falls back to this process's limits (RedisLimiter below).
REDIS_TIMEOUT_SECONDS = 0.5
REDIS_RETRY_SECONDS = 5.0


@dataclass(frozen=True)
class Rate:
    """`count` requests per `unit` ("600/minute")."""

    count: int
    unit: str

    @classmethod
    def parse(cls, text: str) -> Rate | None:
        """`"N/second|minute|hour|day"`; `""` or `"0"` (or a count of 0) is no limit. ValueError otherwise."""
        text = text.strip()
        if text in ("", "0"):
            return None
        match = RATE_RE.match(text)
        if match is None:
            raise ValueError(text)
        count = int(match.group(1))
        return cls(count, match.group(2)) if count else None

    @property
    def period_ms(self) -> float:
        return PERIODS[self.unit] * 1000.0

    def describe(self) -> str:
        return f"{self.count} request{'s' if self.count != 1 else ''} {ARTICLES[self.unit]}"

    def __str__(self) -> str:
        return f"{self.count}/{self.unit}"


@dataclass(frozen=True)
class RateCheck:
    key: str
    rate: Rate


@dataclass(frozen=True)
class SlotCheck:
    key: str
    limit: int


@dataclass(frozen=True)
class Refusal:
    """Which check refused (an index into the rate checks, then the slot checks) and, for a rate, how
    long until a request would pass (0 for a full slot set: that depends on when a stream ends)."""

    index: int
    wait_ms: float


class Limiter(Protocol):
    """Where counts live. `admit` checks the rates and takes one slot named `member` in each slot set,
    or takes nothing and says why; `renew` extends `member`'s slots by `lease_ms`; `release` gives them back."""

    def admit(
        self, rates: Sequence[RateCheck], slots: Sequence[SlotCheck], member: str, lease_ms: float
    ) -> Refusal | None: ...

    async def aadmit(
        self, rates: Sequence[RateCheck], slots: Sequence[SlotCheck], member: str, lease_ms: float
    ) -> Refusal | None: ...

    async def arenew(self, slots: Sequence[SlotCheck], member: str, lease_ms: float) -> None: ...

    async def arelease(self, slots: Sequence[SlotCheck], member: str) -> None: ...


def wall_clock_ms() -> float:
    return time.time() * 1000.0


# --- In this process ---------------------------------------------------------------------------------------


class LocalLimiter:
    """The counts in this process's memory (one lock; the event loop and DRF's threads share it)."""

    def __init__(self, clock_ms: Callable[[], float] = wall_clock_ms) -> None:
        self.clock_ms = clock_ms
        self.lock = threading.Lock()
        self.tats: dict[str, float] = {}
        self.slots: dict[str, dict[str, float]] = {}
        self.next_sweep = 0.0

    def admit(
        self, rates: Sequence[RateCheck], slots: Sequence[SlotCheck], member: str, lease_ms: float
    ) -> Refusal | None:
        with self.lock:
            now = self.clock_ms()
            tats = []
            worst: Refusal | None = None
            for index, check in enumerate(rates):
                tat = max(self.tats.get(check.key, now), now) + check.rate.period_ms / check.rate.count
                wait = tat - now - check.rate.period_ms
                if wait > 0 and (worst is None or wait > worst.wait_ms):
                    worst = Refusal(index, wait)
                tats.append(tat)
            if worst is not None:
                return worst
            for offset, slot in enumerate(slots):
                held = self.slots.setdefault(slot.key, {})
                for expired in [name for name, expiry in held.items() if expiry <= now]:
                    del held[expired]
                if len(held) >= slot.limit:
                    return Refusal(len(rates) + offset, 0.0)
            for check, tat in zip(rates, tats, strict=True):
                self.tats[check.key] = tat
            for slot in slots:
                self.slots[slot.key][member] = now + lease_ms
            if now >= self.next_sweep:
                self.forget_idle(now)
            return None

    def forget_idle(self, now: float) -> None:
        """Drop keys whose state no longer matters (what Redis does with each key's expiry), once a
        minute: memory stays bounded by the keys of the last minute and longest period."""
        self.next_sweep = now + 60_000
        for key in [key for key, tat in self.tats.items() if tat <= now]:
            del self.tats[key]
        for key in [key for key, held in self.slots.items() if not held]:
            del self.slots[key]

    async def aadmit(
        self, rates: Sequence[RateCheck], slots: Sequence[SlotCheck], member: str, lease_ms: float
    ) -> Refusal | None:
        return self.admit(rates, slots, member, lease_ms)

    async def arenew(self, slots: Sequence[SlotCheck], member: str, lease_ms: float) -> None:
        with self.lock:
            now = self.clock_ms()
            for slot in slots:
                self.slots.setdefault(slot.key, {})[member] = now + lease_ms

    async def arelease(self, slots: Sequence[SlotCheck], member: str) -> None:
        with self.lock:
            for slot in slots:
                self.slots.get(slot.key, {}).pop(member, None)


# --- In Redis ------------------------------------------------------------------------------------------------

# KEYS: the rate keys, then the slot keys. ARGV: now in ms ("" = Redis's clock), the number of rate keys,
# the lease in ms, the slot member, then the period in ms and count of each rate, then the limit of each slot.
ADMIT_LUA = """
local now = tonumber(ARGV[1])
if now == nil then
  local clock = redis.call('TIME')
  now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
end
local rates = tonumber(ARGV[2])
local lease = tonumber(ARGV[3])
local member = ARGV[4]
local tats = {}
local worst, worst_wait = 0, 0
for i = 1, rates do
  local period = tonumber(ARGV[3 + 2 * i])
  local count = tonumber(ARGV[4 + 2 * i])
  local tat = math.max(tonumber(redis.call('GET', KEYS[i]) or now), now) + period / count
  local wait = tat - now - period
  if wait > worst_wait then worst, worst_wait = i, wait end
  tats[i] = tat
end
if worst > 0 then return {worst - 1, tostring(worst_wait)} end
for i = rates + 1, #KEYS do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
  if redis.call('ZCARD', KEYS[i]) >= tonumber(ARGV[4 + 2 * rates + i - rates]) then return {i - 1, '0'} end
end
for i = 1, rates do
  redis.call('SET', KEYS[i], tostring(tats[i]), 'PX', math.max(1, math.ceil(tats[i] - now)))
end
for i = rates + 1, #KEYS do
  redis.call('ZADD', KEYS[i], now + lease, member)
  redis.call('PEXPIRE', KEYS[i], math.ceil(lease))
end
return {-1, '0'}
"""

# KEYS: the slot keys. ARGV: now in ms ("" = Redis's clock), the lease in ms, the slot member.
RENEW_LUA = """
local now = tonumber(ARGV[1])
if now == nil then
  local clock = redis.call('TIME')
  now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
end
local lease = tonumber(ARGV[2])
for i = 1, #KEYS do
  redis.call('ZADD', KEYS[i], now + lease, ARGV[3])
  redis.call('PEXPIRE', KEYS[i], math.ceil(lease))
end
return 0
"""

REDIS_ERRORS: tuple[type[Exception], ...] = (redis.RedisError, OSError)


class RedisLimiter:
    """The counts in Redis, shared by every process using it. Keys start with `prefix`. Each process has
    one synchronous client (DRF views, in threads) and one asyncio client per event loop (a connection
    belongs to the loop that opened it)."""

    def __init__(
        self, url: str, *, prefix: str = "amodal:ratelimit:", clock_ms: Callable[[], float] | None = None
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.clock_ms = clock_ms
        self._sync_admit: Script | None = None
        self._async: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, tuple[redis.asyncio.Redis, AsyncScript, AsyncScript]
        ] = weakref.WeakKeyDictionary()

    def now(self) -> str:
        return "" if self.clock_ms is None else repr(self.clock_ms())

    def keys(self, checks: Sequence[RateCheck | SlotCheck]) -> list[str]:
        return [self.prefix + check.key for check in checks]

    def sync_admit(self) -> Script:
        if self._sync_admit is None:
            client = redis.Redis.from_url(
                self.url, socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS
            )
            self._sync_admit = client.register_script(ADMIT_LUA)
        return self._sync_admit

    def async_client(self) -> tuple[redis.asyncio.Redis, AsyncScript, AsyncScript]:
        loop = asyncio.get_running_loop()
        if loop not in self._async:
            client = redis.asyncio.Redis.from_url(
                self.url, socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS
            )
            self._async[loop] = (client, client.register_script(ADMIT_LUA), client.register_script(RENEW_LUA))
        return self._async[loop]

    def admit_arguments(
        self, rates: Sequence[RateCheck], slots: Sequence[SlotCheck], member: str, lease_ms: float
    ) -> tuple[list[str], list[str]]:
        args = [self.now(), str(len(rates)), repr(lease_ms), member]
        for check in rates:
            args += [repr(check.rate.period_ms), str(check.rate.count)]
        args += [str(slot.limit) for slot in slots]
        return self.keys([*rates, *slots]), args

    def admit(
        self, rates: Sequence[RateCheck], slots: Sequence[SlotCheck], member: str, lease_ms: float
    ) -> Refusal | None:
        keys, args = self.admit_arguments(rates, slots, member, lease_ms)
        return refusal_of(self.sync_admit()(keys=keys, args=args))

    async def aadmit(
        self, rates: Sequence[RateCheck], slots: Sequence[SlotCheck], member: str, lease_ms: float
    ) -> Refusal | None:
        _, admit, _ = self.async_client()
        keys, args = self.admit_arguments(rates, slots, member, lease_ms)
        return refusal_of(await admit(keys=keys, args=args))

    async def arenew(self, slots: Sequence[SlotCheck], member: str, lease_ms: float) -> None:
        _, _, renew = self.async_client()
        await renew(keys=self.keys(slots), args=[self.now(), repr(lease_ms), member])

    async def arelease(self, slots: Sequence[SlotCheck], member: str) -> None:
        client, _, _ = self.async_client()
        async with client.pipeline(transaction=False) as pipeline:
            for key in self.keys(slots):
                pipeline.zrem(key, member)
            await pipeline.execute()


def refusal_of(answer: list[int | bytes]) -> Refusal | None:
    index, wait = int(answer[0]), float(answer[1])
    return None if index < 0 else Refusal(index, wait)


# --- Redis, or this process while Redis is unreachable -----------------------------------------------------


class FallbackLimiter:
    """Counts in Redis; while Redis cannot be reached, in this process (fail open to per-process limits:
    a Redis outage must not stop the chat, and the limits still hold per process). After a failure Redis
    is tried again every `REDIS_RETRY_SECONDS`, so an outage costs one timeout per period, not one per
    request. A slot stays with the limiter that granted it until it is released."""

    def __init__(self, shared: RedisLimiter, local: LocalLimiter) -> None:
        self.shared = shared
        self.local = local
        self.down_until = 0.0
        self.local_members: set[str] = set()

    def use_shared(self) -> bool:
        return time.monotonic() >= self.down_until

    def shared_failed(self, exc: Exception) -> None:
        if self.use_shared():
            logger.warning("rate limits: Redis unreachable, counting in this process for now: %r", exc)
        self.down_until = time.monotonic() + REDIS_RETRY_SECONDS

    def admit(
        self, rates: Sequence[RateCheck], slots: Sequence[SlotCheck], member: str, lease_ms: float
    ) -> Refusal | None:
        if self.use_shared():
            try:
                return self.shared.admit(rates, slots, member, lease_ms)
            except REDIS_ERRORS as exc:
                self.shared_failed(exc)
        return self.admit_locally(rates, slots, member, lease_ms)

    async def aadmit(
        self, rates: Sequence[RateCheck], slots: Sequence[SlotCheck], member: str, lease_ms: float
    ) -> Refusal | None:
        if self.use_shared():
            try:
                return await self.shared.aadmit(rates, slots, member, lease_ms)
            except REDIS_ERRORS as exc:
                self.shared_failed(exc)
        return self.admit_locally(rates, slots, member, lease_ms)

    def admit_locally(
        self, rates: Sequence[RateCheck], slots: Sequence[SlotCheck], member: str, lease_ms: float
    ) -> Refusal | None:
        refusal = self.local.admit(rates, slots, member, lease_ms)
        if refusal is None and slots:
            self.local_members.add(member)
        return refusal

    async def arenew(self, slots: Sequence[SlotCheck], member: str, lease_ms: float) -> None:
        if member in self.local_members:
            await self.local.arenew(slots, member, lease_ms)
            return
        try:
            await self.shared.arenew(slots, member, lease_ms)
        except REDIS_ERRORS as exc:
            logger.warning("rate limits: renewing stream slot %s in Redis failed: %r", member, exc)

    async def arelease(self, slots: Sequence[SlotCheck], member: str) -> None:
        if member in self.local_members:
            self.local_members.discard(member)
            await self.local.arelease(slots, member)
            return
        try:
            await self.shared.arelease(slots, member)
        except REDIS_ERRORS as exc:
            logger.warning("rate limits: releasing stream slot %s in Redis failed, it will expire: %r", member, exc)
