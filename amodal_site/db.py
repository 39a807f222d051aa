"""Database access from async code that may run for a long time (a chat stream, a WebSocket).

Each request thread holds its own connection until the request ends, and a chat stream lasts as long
as the model talks: without care, 200 open streams hold 200 PostgreSQL connections. With the psycopg
pool configured (PostgreSQL, see settings), `db_call` gives the connection back to the pool after each
step, so open streams share a bounded number of connections.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection


def pooled() -> bool:
    return bool(settings.DATABASES["default"].get("OPTIONS", {}).get("pool"))


def db_call(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`sync_to_async(fn)` that returns the pooled connection after the call."""

    @wraps(fn)
    def call_and_release(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        finally:
            if pooled() and not connection.in_atomic_block:
                connection.close()

    return sync_to_async(call_and_release)
