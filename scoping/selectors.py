"""Reads of scopes."""

from __future__ import annotations

from scoping.context import validate_scope_id
from scoping.models import Scope


def get_scope(scope_id: str) -> Scope | None:
    """The scope's row, or None when it was never seen."""
    return Scope.objects.filter(scope_id=validate_scope_id(scope_id)).first()
