"""Running one test body against both clients: `Flavor.call(lambda client: client.sessions.list())` runs it
on an AmodalClient, or awaits it on an AsyncAmodalClient inside its own event loop, so each test states
what it checks once and proves it for sync and async alike."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Mapping
from typing import Any

import httpx
from amodal_client import AmodalClient, AsyncAmodalClient, Event


class Flavor:
    def __init__(self, name: str, base_url: str, transport: httpx.MockTransport | None = None) -> None:
        self.name = name
        self.base_url = base_url
        self.transport = transport

    def __repr__(self) -> str:
        return self.name

    def _sync(self, token: str | None, scope_id: str | None) -> AmodalClient:
        http = httpx.Client(transport=self.transport, trust_env=False, timeout=20.0)
        return AmodalClient(self.base_url, token, scope_id=scope_id, http_client=http)

    def _async(self, token: str | None, scope_id: str | None) -> AsyncAmodalClient:
        http = httpx.AsyncClient(transport=self.transport, trust_env=False, timeout=20.0)
        return AsyncAmodalClient(self.base_url, token, scope_id=scope_id, http_client=http)

    def call(self, fn: Callable[[Any], Any], *, token: str | None = None, scope_id: str | None = None) -> Any:
        """`fn(client)`'s result: called on a sync client, or awaited on an async one."""
        if self.name == "sync":
            client = self._sync(token, scope_id)
            with client._http:
                return fn(client)

        async def main() -> Any:
            client = self._async(token, scope_id)
            try:
                result = fn(client)
                return await result if inspect.isawaitable(result) else result
            finally:
                await client._http.aclose()

        return asyncio.run(main())

    def events(
        self,
        message: str,
        *,
        token: str | None = None,
        scope_id: str | None = None,
        **kwargs: Any,
    ) -> list[Event]:
        """Every event of `chat.stream(message, **kwargs)`."""
        if self.name == "sync":
            client = self._sync(token, scope_id)
            with client._http, client.chat.stream(message, **kwargs) as stream:
                return list(stream)

        async def main() -> list[Event]:
            client = self._async(token, scope_id)
            try:
                async with client.chat.stream(message, **kwargs) as stream:
                    return [event async for event in stream]
            finally:
                await client._http.aclose()

        return asyncio.run(main())

    def export(self, scope_id: str, *, token: str) -> list[Mapping[str, Any]]:
        if self.name == "sync":
            client = self._sync(token, None)
            with client._http, client.scopes.export(scope_id) as stream:
                return list(stream)

        async def main() -> list[Mapping[str, Any]]:
            client = self._async(token, None)
            try:
                async with client.scopes.export(scope_id) as stream:
                    return [item async for item in stream]
            finally:
                await client._http.aclose()

        return asyncio.run(main())
