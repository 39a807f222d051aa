"""Rate limits of the API: what a request counts against, and the 429 `rate_limited` answer. The counting
itself is core.ratelimit's (GCRA and leased slots, in Redis when `REDIS_URL` is set, else in this process).

- **Requests** (`AMODAL_RATE_LIMIT_KEY`, `AMODAL_RATE_LIMIT_SCOPE`): every authenticated request on the
  API paths counts once against its API key (API-key callers) and once against the scope it acts in
  (every caller). A JWT caller counts against its scope only, not per `sub`: the SaaS signs its users'
  tokens and limits its own users; the runtime protects itself and the tenants from each other.
- **Streams** (`AMODAL_STREAMS_PER_KEY`, `AMODAL_STREAMS_PER_SCOPE`): a running chat message (an SSE
  stream, a WebSocket message, a /chat/sync call) holds one slot of its key and one of its scope, renewed
  like its session lease (every third of `AMODAL_LEASE_SECONDS`) and released when it ends however it
  ends; a killed process's slots expire within `AMODAL_LEASE_SECONDS`.

A request is checked against all its limits at once: refused by one, it consumes none of the others.
When Redis cannot be reached the limits are counted in each process until it is back (fail open to
per-process limits: a Redis outage must not stop the chat; core.ratelimit.FallbackLimiter).
"""

from __future__ import annotations

import asyncio
import logging
import math
import uuid
from dataclasses import dataclass
from functools import cache
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from core.errors import RateLimited
from core.ratelimit import FallbackLimiter, Limiter, LocalLimiter, Rate, RateCheck, RedisLimiter, Refusal, SlotCheck
from scoping.authentication import Caller

logger = logging.getLogger(__name__)

# A full set of stream slots frees up when one of its streams ends: ask the client to retry soon.
STREAMS_RETRY_SECONDS = 2
SETTINGS = (
    "AMODAL_RATE_LIMIT_KEY",
    "AMODAL_RATE_LIMIT_SCOPE",
    "AMODAL_STREAMS_PER_KEY",
    "AMODAL_STREAMS_PER_SCOPE",
    "AMODAL_LEASE_SECONDS",
    "REDIS_URL",
)
API_KEY, SCOPE = "This API key", "This scope"


@dataclass(frozen=True)
class Limits:
    key_rate: Rate | None
    scope_rate: Rate | None
    streams_per_key: int
    streams_per_scope: int
    lease_ms: float
    limiter: Limiter

    def rates(self, caller: Caller, scope_id: str) -> list[tuple[RateCheck, str]]:
        checks = []
        if self.key_rate is not None and caller.api_key_id is not None:
            checks.append((RateCheck(f"rate:key:{caller.api_key_id}", self.key_rate), API_KEY))
        if self.scope_rate is not None:
            checks.append((RateCheck(f"rate:scope:{scope_id}", self.scope_rate), SCOPE))
        return checks

    def slots(self, caller: Caller, scope_id: str) -> list[tuple[SlotCheck, str]]:
        checks = []
        if self.streams_per_key and caller.api_key_id is not None:
            checks.append((SlotCheck(f"streams:key:{caller.api_key_id}", self.streams_per_key), API_KEY))
        if self.streams_per_scope:
            checks.append((SlotCheck(f"streams:scope:{scope_id}", self.streams_per_scope), SCOPE))
        return checks


@cache
def configured() -> Limits:
    """The limits of the settings (checked at start-up), read once; reset when a test changes them."""
    limiter: Limiter = LocalLimiter()
    if settings.REDIS_URL:
        limiter = FallbackLimiter(RedisLimiter(settings.REDIS_URL), LocalLimiter())
    return Limits(
        key_rate=Rate.parse(settings.AMODAL_RATE_LIMIT_KEY),
        scope_rate=Rate.parse(settings.AMODAL_RATE_LIMIT_SCOPE),
        streams_per_key=settings.AMODAL_STREAMS_PER_KEY,
        streams_per_scope=settings.AMODAL_STREAMS_PER_SCOPE,
        lease_ms=settings.AMODAL_LEASE_SECONDS * 1000.0,
        limiter=limiter,
    )


@receiver(setting_changed)
def reconfigure(*, setting: str, **kwargs: Any) -> None:
    if setting in SETTINGS:
        configured.cache_clear()


def refused(refusal: Refusal, rates: list[tuple[RateCheck, str]], slots: list[tuple[SlotCheck, str]]) -> RateLimited:
    """The 429 for a refusal, naming the limit: "This scope is over 120 requests a minute; retry in 7 s."."""
    if refusal.index < len(rates):
        check, who = rates[refusal.index]
        retry = max(1, math.ceil(refusal.wait_ms / 1000))
        return RateLimited(f"{who} is over {check.rate.describe()}; retry in {retry} s.", retry_after=retry)
    slot, who = slots[refusal.index - len(rates)]
    streams = f"{slot.limit} stream{'s' if slot.limit != 1 else ''}"
    return RateLimited(
        f"{who} already has {streams} open, the most it may; retry in {STREAMS_RETRY_SECONDS} s.",
        retry_after=STREAMS_RETRY_SECONDS,
    )


def check_request(caller: Caller, scope_id: str) -> None:
    """Count one request of `caller` in `scope_id` (sync: DRF views); 429 RateLimited when over a limit."""
    limits = configured()
    rates = limits.rates(caller, scope_id)
    if rates:
        refusal = limits.limiter.admit([check for check, _ in rates], [], "", limits.lease_ms)
        if refusal is not None:
            raise refused(refusal, rates, [])


async def acheck_request(caller: Caller, scope_id: str) -> None:
    """`check_request` from async code (no thread hand-off)."""
    limits = configured()
    rates = limits.rates(caller, scope_id)
    if rates:
        refusal = await limits.limiter.aadmit([check for check, _ in rates], [], "", limits.lease_ms)
        if refusal is not None:
            raise refused(refusal, rates, [])


@dataclass
class StreamSlots:
    """The stream slots a running message holds (none when no stream limit applies to it). Like the
    session lease: `keep()` renews them until released, `release()` gives them back and never raises."""

    limiter: Limiter | None = None
    slots: tuple[SlotCheck, ...] = ()
    member: str = ""
    lease_ms: float = 0.0
    released: bool = False

    def __bool__(self) -> bool:
        return bool(self.slots) and not self.released

    async def keep(self) -> None:
        while self:
            await asyncio.sleep(self.lease_ms / 3000)
            if not self or self.limiter is None:
                return
            try:
                await self.limiter.arenew(self.slots, self.member, self.lease_ms)
            except Exception as exc:
                logger.warning("stream slot %s: renewing failed: %r", self.member, exc)

    async def release(self) -> None:
        if not self or self.limiter is None:
            return
        self.released = True
        try:
            await self.limiter.arelease(self.slots, self.member)
        except Exception as exc:
            logger.warning("stream slot %s: releasing failed, it will expire: %r", self.member, exc)


async def open_stream(caller: Caller, scope_id: str) -> StreamSlots:
    """Count one chat message of `caller` in `scope_id` and take its stream slots, all or none; 429
    RateLimited when over a limit. The caller keeps the slots while the message runs, then releases them."""
    limits = configured()
    rates, slots = limits.rates(caller, scope_id), limits.slots(caller, scope_id)
    if not rates and not slots:
        return StreamSlots()
    member = uuid.uuid4().hex
    slot_checks = tuple(slot for slot, _ in slots)
    refusal = await limits.limiter.aadmit([check for check, _ in rates], slot_checks, member, limits.lease_ms)
    if refusal is not None:
        raise refused(refusal, rates, slots)
    return StreamSlots(limits.limiter, slot_checks, member, limits.lease_ms)
