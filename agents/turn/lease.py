"""The per-session lease: one message at a time per session, across processes.

Taken with one conditional UPDATE (services.try_lock_session), renewed every third of
`AMODAL_LEASE_SECONDS` while the message runs, released when it ends. A process that dies leaves a lease
that expires by itself: its session takes messages again within `AMODAL_LEASE_SECONDS`.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass

from django.conf import settings

from agents import services
from core.db import db_call
from core.errors import ApiError

logger = logging.getLogger(__name__)

SESSION_BUSY_WAIT_SECONDS = 5.0
POLL_SECONDS = 0.1
_last_sweep = 0.0  # when this process last released expired leases (a throttle, nothing else)


@dataclass
class SessionLease:
    session_id: uuid.UUID
    token: str
    released: bool = False  # given back, possibly with the message's last write (TurnRecorder)

    async def wait(self) -> None:
        """Wait up to 5 s for the message holding the lease (so a resend right after Stop works), else 409."""
        deadline = asyncio.get_running_loop().time() + SESSION_BUSY_WAIT_SECONDS
        while not await db_call(services.try_lock_session)(session_id=self.session_id, lock_token=self.token):
            if asyncio.get_running_loop().time() >= deadline:
                raise ApiError(409, "session_busy", "This session is answering another message; try again shortly.")
            await asyncio.sleep(POLL_SECONDS)

    async def keep(self) -> None:
        """Renew the lease until cancelled. A failed renewal is logged and tried again at the next tick:
        the lease lasts three ticks."""
        while not self.released:
            await asyncio.sleep(settings.AMODAL_LEASE_SECONDS / 3)
            if self.released:
                return
            try:
                if not await db_call(services.renew_lock)(session_id=self.session_id, lock_token=self.token):
                    logger.warning("session %s: the lease was lost (taken over after it expired)", self.session_id)
                await sweep_expired_leases()
            except Exception as exc:
                logger.warning("session %s: renewing the lease failed: %r", self.session_id, exc)

    async def release(self, status: str) -> None:
        """Give the session back with its new status. Never raises: if the database is down the lease
        expires by itself, and the stream must still end."""
        if self.released:
            return
        self.released = True
        try:
            await db_call(services.release_lock)(session_id=self.session_id, lock_token=self.token, status=status)
        except Exception as exc:
            logger.warning("session %s: releasing the lease failed, it will expire: %r", self.session_id, exc)


async def sweep_expired_leases() -> None:
    """At most once a lease period per process, while it runs messages: sessions whose process died
    mid-message are marked interrupted (`manage.py release_expired_leases` does the same from cron)."""
    global _last_sweep
    now = time.monotonic()
    if now - _last_sweep < settings.AMODAL_LEASE_SECONDS:
        return
    _last_sweep = now
    released = await db_call(services.release_expired_leases)()
    if released:
        logger.info("released %d expired session lease(s) as interrupted", released)
