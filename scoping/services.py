"""Writes on scopes and API keys."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from scoping.context import validate_scope_id
from scoping.labels import ScopeDetailsChange
from scoping.models import ApiKey, Scope

API_KEY_PREFIX = "ak_"


def touch_scope(*, scope_id: str, lock: bool = False) -> None:
    """Create the scope on first use and record its latest activity (two statements, no race).

    `lock`, inside a transaction: the scope's row stays locked until it ends (the UPDATE's row lock; SQLite
    takes its one write lock), which serialises whatever the transaction does for the scope. A scope created
    just now is locked by a second UPDATE: a concurrent creator's insert may have won, and waiting for it
    does not lock its row."""
    validate_scope_id(scope_id)
    now = timezone.now()
    if Scope.objects.filter(scope_id=scope_id).update(last_seen_at=now) == 0:
        Scope.objects.bulk_create(
            [Scope(scope_id=scope_id, first_seen_at=now, last_seen_at=now)], ignore_conflicts=True
        )
        if lock:
            Scope.objects.filter(scope_id=scope_id).update(last_seen_at=now)


def set_scope_details(*, scope_id: str, change: ScopeDetailsChange) -> Scope:
    """Create the scope if it was never seen (as its first use would), then write only the fields the change
    gives, in one UPDATE, so two callers setting different fields do not undo each other. `change` comes
    from scoping.labels (parse_scope_details, or the admin form), already checked."""
    validate_scope_id(scope_id)
    given = {"label": change.label, "metadata": change.metadata}
    fields = {name: value for name, value in given.items() if value is not None}
    with transaction.atomic():
        scope, _ = Scope.objects.get_or_create(scope_id=scope_id)
        if fields:
            Scope.objects.filter(pk=scope.pk).update(**fields)
            for name, value in fields.items():
                setattr(scope, name, value)
    return scope


def set_scope_budget(*, scope_id: str, budget_cost_micros: int | None) -> None:
    """The scope's own spend cap per budget period (None: amodal.json's default; 0: no model use), in one
    UPDATE of that field alone. It takes effect at the scope's next message (agents.budgets)."""
    Scope.objects.filter(scope_id=scope_id).update(budget_cost_micros=budget_cost_micros)


def digest_api_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


@dataclass(frozen=True)
class NewApiKey:
    api_key: ApiKey
    raw_key: str  # shown once, never stored


def create_api_key(
    *,
    name: str,
    scope_id: str | None = None,
    shared_write: bool = False,
    manage_credentials: bool = False,
    manage_scopes: bool = False,
) -> NewApiKey:
    if scope_id is not None:
        validate_scope_id(scope_id)
    raw_key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        api_key = ApiKey.objects.create(
            name=name,
            prefix=raw_key[:10],
            key_digest=digest_api_key(raw_key),
            scope_id=scope_id,
            shared_write=shared_write,
            manage_credentials=manage_credentials,
            manage_scopes=manage_scopes,
        )
    return NewApiKey(api_key=api_key, raw_key=raw_key)


def revoke_api_key(*, api_key: ApiKey) -> None:
    ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
