"""Stopping a running message from any server process: a channel-layer group per session.

The channel layer carries the signal only; if it is unreachable, the message runs on (a WebSocket
`cancel` or a client disconnect still stops it) and the failure is logged.

Joining and leaving a group is one short Redis command each; a burst of hundreds of messages starting at
once would open as many connections and exhaust redis-py's pool (100, and it raises rather than waits),
so at most `LAYER_CALLS` such commands run at once per process.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from weakref import WeakKeyDictionary

from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)

CANCEL_MESSAGE_TYPE = "chat.cancel"
LAYER_CALLS = 32
_slots: WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = WeakKeyDictionary()


@asynccontextmanager
async def layer_slot() -> AsyncIterator[None]:
    """One of the LAYER_CALLS slots of this event loop (a semaphore belongs to one loop)."""
    loop = asyncio.get_running_loop()
    slot = _slots.get(loop)
    if slot is None:
        slot = _slots[loop] = asyncio.Semaphore(LAYER_CALLS)
    async with slot:
        yield


def cancel_group(session_id: object) -> str:
    return f"chat-cancel.{session_id}"


async def send_cancel(session_id: object) -> None:
    async with layer_slot():
        await get_channel_layer().group_send(cancel_group(session_id), {"type": CANCEL_MESSAGE_TYPE})


async def listen_for_cancel(session_id: object, on_cancel: Callable[[], None]) -> None:
    """Call `on_cancel` when a cancel for this session arrives; runs until cancelled itself."""
    layer = get_channel_layer()
    group = cancel_group(session_id)
    try:
        channel = await layer.new_channel()
        async with layer_slot():
            await layer.group_add(group, channel)
    except Exception as exc:  # the layer's backend (Redis) is unreachable
        logger.warning("session %s: cannot listen for cancels, the channel layer failed: %r", session_id, exc)
        return
    try:
        while True:
            message = await layer.receive(channel)
            if message.get("type") == CANCEL_MESSAGE_TYPE:
                on_cancel()
                return
    except Exception as exc:
        logger.warning("session %s: stopped listening for cancels: %r", session_id, exc)
    finally:
        try:
            async with layer_slot():
                await layer.group_discard(group, channel)
        except Exception as exc:
            logger.warning("session %s: could not leave the cancel group: %r", session_id, exc)
