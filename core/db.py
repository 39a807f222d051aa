"""Database access from async code that may run for a long time (a chat stream, a WebSocket).

A sync_to_async worker thread keeps its connection until something closes it, and nothing does for a
chat stream or a WebSocket consumer: 200 open streams would hold 200 PostgreSQL connections, and
pooled connections would never go back to the pool. `db_call` closes the thread's connection after
each step (with psycopg's pool, configured for PostgreSQL in settings, that returns it to the pool), so
open streams share a bounded number of connections. Use it for every ORM call from async code.
(SQLite connections are left open: they are local file handles, and reopening them per step is slow.)
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from asgiref.sync import sync_to_async
from django.db import connection


def db_call(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`sync_to_async(fn)` that closes (or returns to the pool) the thread's connection after the call."""

    @wraps(fn)
    def call_and_release(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        finally:
            if connection.vendor != "sqlite" and not connection.in_atomic_block:
                connection.close()

    return sync_to_async(call_and_release)
