"""Database access from async code that may run for a long time (a chat stream, a WebSocket).

`db_call(fn)` runs `fn` on a small pool of database threads of its own (`AMODAL_DB_THREADS`), not on
the thread Django makes for each request: a new thread per request means a new database connection per
request (on SQLite, opening it and checkpointing its WAL when it closes cost more than the whole
message), and under hundreds of streams as many threads. Each step is self-contained (its own
transaction, if any), so any thread may run it; context variables (the scope) are copied in.

After each step the thread's connection is closed on PostgreSQL (psycopg's pool, configured in settings,
takes it back), so open streams share a bounded number of connections; SQLite connections, local file
handles, stay open on their thread and are dropped after a database error. Use it for every ORM call
from async code.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cache, wraps
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import DatabaseError, connection


@cache
def database_threads() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=settings.AMODAL_DB_THREADS, thread_name_prefix="db")


def db_call(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`sync_to_async(fn)` on the database threads, giving the connection back after the call."""

    @wraps(fn)
    def call_and_release(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except DatabaseError:
            connection.close()  # never reuse a connection that just failed
            raise
        finally:
            if connection.vendor != "sqlite" and not connection.in_atomic_block:
                connection.close()

    return sync_to_async(call_and_release, thread_sensitive=False, executor=database_threads())
