"""The active scope: one context variable, entered explicitly, never guessed.

`""` is the global scope, a real partition. `None` means "no scope entered": scoped queries then raise
instead of returning every row. Context variables follow `await`, and `asgiref.sync_to_async` copies
them into its worker thread, so the scope entered in an async generator or a Channels consumer is the
one its ORM calls see.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from core.db import db_call

GLOBAL_SCOPE = ""
MAX_SCOPE_ID_LENGTH = 255

_active_scope: ContextVar[str | None] = ContextVar("amodal_active_scope", default=None)


class ScopeError(Exception):
    """Base class of scope boundary violations."""

    code = "scope_error"


class NoActiveScope(ScopeError):
    code = "no_active_scope"

    def __init__(self) -> None:
        super().__init__(
            "No scope is active: enter one with scoping.context.scope(...) or use the explicit "
            "`all_scopes` manager in operator code."
        )


class InvalidScope(ScopeError):
    code = "invalid_scope"


class ScopeMismatch(ScopeError):
    code = "scope_mismatch"


def validate_scope_id(value: object) -> str:
    """Return `value` if it is a valid scope id, else raise InvalidScope.

    A scope id is the global scope `""` or 1 to 255 printable characters.
    """
    if not isinstance(value, str):
        raise InvalidScope("scope_id must be a string.")
    if value == GLOBAL_SCOPE:
        return value
    if len(value) > MAX_SCOPE_ID_LENGTH:
        raise InvalidScope(f"scope_id must be at most {MAX_SCOPE_ID_LENGTH} characters long.")
    if not value.isprintable():
        raise InvalidScope("scope_id must contain only printable characters.")
    return value


def active_scope() -> str:
    """The active scope id; raises NoActiveScope when none was entered."""
    value = _active_scope.get()
    if value is None:
        raise NoActiveScope()
    return value


def active_scope_or_none() -> str | None:
    return _active_scope.get()


@contextmanager
def scope(scope_id: str) -> Iterator[str]:
    """Enter `scope_id` for the duration of the block (works in sync and async code alike)."""
    token = _active_scope.set(validate_scope_id(scope_id))
    try:
        yield scope_id
    finally:
        _active_scope.reset(token)


T = TypeVar("T")


def scoped_db(scope_id: str) -> Callable[..., Any]:
    """An async runner of sync ORM work inside `scope_id` (core.tools.ScopedDb): the scope is entered in the
    worker thread itself, so it does not depend on the caller's context."""
    validate_scope_id(scope_id)

    async def run(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        def in_scope() -> T:
            with scope(scope_id):
                return fn(*args, **kwargs)

        result: T = await db_call(in_scope)()
        return result

    return run


@contextmanager
def no_scope() -> Iterator[None]:
    """Leave any active scope for the block (operator code that must not inherit a caller's scope)."""
    token = _active_scope.set(None)
    try:
        yield
    finally:
        _active_scope.reset(token)
