"""Writes on scopes and API keys, and a scope's data as a whole: its export and its erasure (SPEC §10)."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from django.db import connection, transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac

from core.errors import ApiError, KnownError, NotFound
from scoping.context import GLOBAL_SCOPE, validate_scope_id
from scoping.labels import ScopeDetailsChange
from scoping.models import ApiKey, Scope, ScopeAuditEntry
from scoping.scope_data import ScopeDataKind, scope_data_kinds

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


# --- a scope's data as a whole: export and erase (SPEC §10) -------------------------------------------------

EXPORT_LINES_PER_CHUNK = 500
ERASE_BATCH_ROWS = 1000
ERASED_PREFIX = "erased:"


class ScopeNotFound(NotFound):
    default_code = "scope_not_found"

    def __init__(self, scope_id: str) -> None:
        super().__init__(f"Nothing of the scope {scope_id!r} is stored (never used, or already erased).")


class GlobalScopeNotErasable(ApiError):
    def __init__(self) -> None:
        super().__init__(
            400,
            "global_scope",
            'The global scope ("") holds what every scope shares (the shared stores): it cannot be erased as a '
            "whole. Delete its rows one by one.",
        )


class ErasedScopeNotErasable(ApiError):
    def __init__(self) -> None:
        super().__init__(
            400,
            "erased_scope",
            f"Ids starting with {ERASED_PREFIX!r} are where erased scopes' usage rows are kept for billing totals: "
            "nothing of a tenant is left there to erase.",
        )


class ScopeNotErased(KnownError):
    """The erase ended with rows of the scope still there (written meanwhile, or a kind that failed)."""

    status_code, default_code = 500, "scope_not_erased"

    def __init__(self, scope_id: str, remaining: dict[str, int]) -> None:
        self.remaining = remaining
        left = ", ".join(f"{name}: {count}" for name, count in remaining.items())
        super().__init__(
            f"The scope {scope_id!r} still has rows after its erase ({left}): were they written while it ran? "
            "Stop its traffic and erase it again."
        )


def erased_scope_id(scope_id: str) -> str:
    """The anonymous id an erased scope's usage rows carry: "erased:" and 32 hex digits of an HMAC-SHA256 of
    the id keyed by SECRET_KEY. The same id always gives the same value (a scope erased twice adds to one
    total), and it cannot be reversed by hashing guessed ids without the server's secret."""
    return ERASED_PREFIX + salted_hmac("amodal.scoping.erased_scope_id", scope_id, algorithm="sha256").hexdigest()[:32]


def scope_exists(scope_id: str) -> bool:
    """True when anything of the scope is stored: its Scope row or a row of any kind."""
    return any(kind.exists(scope_id) for kind in scope_data_kinds())


def export_scope(*, scope_id: str, actor: str) -> Iterator[str]:
    """The scope's data as JSON Lines (`{"kind": ..., ...}`, one object a line), EXPORT_LINES_PER_CHUNK lines
    a chunk, streamed from the database. The scope is checked here (an unknown one raises ScopeNotFound before
    anything is streamed); the export is recorded in the audit log when the first chunk is asked for, and
    completed (or failed, when the reader stops early) at its end. On PostgreSQL the rows are read in one
    REPEATABLE READ snapshot, so a scope in use exports as it was at one moment."""
    validate_scope_id(scope_id)
    if not scope_exists(scope_id):
        raise ScopeNotFound(scope_id)
    return _export_chunks(scope_id, actor)


def _export_chunks(scope_id: str, actor: str) -> Iterator[str]:
    entry = ScopeAuditEntry.objects.create(action=ScopeAuditEntry.Action.EXPORT, scope_id=scope_id, actor=actor)
    counts: dict[str, int] = {}
    completed = False
    snapshot = connection.vendor == "postgresql" and not connection.in_atomic_block
    try:
        with transaction.atomic():
            if snapshot:  # the first statement of its own transaction
                with connection.cursor() as cursor:
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            lines: list[str] = []
            for kind in scope_data_kinds():
                if kind.rows is None:
                    continue
                counts[kind.name] = 0
                for row in kind.rows(scope_id):
                    lines.append(json.dumps({"kind": kind.name, **row}) + "\n")
                    counts[kind.name] += 1
                    if len(lines) == EXPORT_LINES_PER_CHUNK:
                        yield "".join(lines)
                        lines.clear()
            if lines:
                yield "".join(lines)
        completed = True
    finally:
        _finish(entry, counts, completed=completed, detail="" if completed else "Stopped before the end.")


def erase_scope(
    *,
    scope_id: str,
    actor: str,
    batch_rows: int = ERASE_BATCH_ROWS,
    progress: Callable[[str, int], None] | None = None,
) -> dict[str, int]:
    """Delete everything of the scope, kind by kind in the registry's reverse order, `batch_rows` rows a
    transaction (so a large scope neither holds long locks nor needs memory for its rows); its usage rows stay
    for billing totals under `erased_scope_id(scope_id)`. Calls `progress(kind, count)` after each kind.
    Then verifies that no row of the scope is left in any kind's tables (ScopeNotErased if one is). Returns
    the count per kind; the audit log records the erase, also when it fails half-way."""
    validate_scope_id(scope_id)
    if scope_id == GLOBAL_SCOPE:
        raise GlobalScopeNotErasable()
    if scope_id.startswith(ERASED_PREFIX):
        raise ErasedScopeNotErasable()
    if not scope_exists(scope_id):
        raise ScopeNotFound(scope_id)
    entry = ScopeAuditEntry.objects.create(
        action=ScopeAuditEntry.Action.ERASE, scope_id=scope_id, actor=actor, erased_as=erased_scope_id(scope_id)
    )
    counts: dict[str, int] = {}
    try:
        for kind in reversed(scope_data_kinds()):
            if kind.model is None:
                continue
            counts[kind.name] = _erase_kind(kind, scope_id, batch_rows)
            if progress is not None:
                progress(kind.name, counts[kind.name])
        remaining = {kind.name: left for kind in scope_data_kinds() if (left := kind.remaining(scope_id))}
        if remaining:
            raise ScopeNotErased(scope_id, remaining)
    except Exception as exc:
        _finish(entry, counts, completed=False, detail=str(exc) or type(exc).__name__)
        raise
    _finish(entry, counts, completed=True)
    return counts


def _erase_kind(kind: ScopeDataKind, scope_id: str, batch_rows: int) -> int:
    assert kind.model is not None
    total = 0
    while True:
        with transaction.atomic():
            done = kind.erase_batch(kind.model, kind.scope_field, scope_id, batch_rows)
        total += done
        if done < batch_rows:
            return total


def _finish(entry: ScopeAuditEntry, counts: dict[str, int], *, completed: bool, detail: str = "") -> None:
    status = ScopeAuditEntry.Status.COMPLETED if completed else ScopeAuditEntry.Status.FAILED
    ScopeAuditEntry.objects.filter(pk=entry.pk).update(
        status=status, counts=counts, detail=detail, finished_at=timezone.now()
    )
