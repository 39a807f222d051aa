"""Helpers shared by the management commands of every app."""

from __future__ import annotations

import getpass

from scoping.context import GLOBAL_SCOPE


def command_actor() -> str:
    """Who a command's writes are audited as: `command:<the OS user running it>`."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no login name and no passwd entry (e.g. a bare container uid)
        user = "unknown"
    return f"command:{user}"


def describe_scope(scope_id: str) -> str:
    return "the global scope" if scope_id == GLOBAL_SCOPE else f"scope {scope_id!r}"
