"""The events of one message, from the task that runs it to whoever sends them (SSE, sync, WebSocket)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from core.events import ChatEvent

Event = ChatEvent


class EventStream:
    def __init__(self) -> None:
        self._queue: asyncio.Queue[Event] = asyncio.Queue()

    async def emit(self, item: Event) -> None:
        self._queue.put_nowait(item)

    async def next_event(self, timeout: float) -> Event | None:
        """The next event, or None after `timeout` seconds of silence (time for a keep-alive)."""
        try:
            # Waiting on the queue itself: cancelling a queue.get() on timeout loses nothing.
            return await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            return None

    async def events(self) -> AsyncIterator[Event]:
        """Every event up to and including `done`."""
        while True:
            item = await self._queue.get()
            yield item
            if item["type"] == "done":
                return
