"""The connections app's kinds of a scope's data (scoping.scope_data): credentials (their key names, never a
value: only what `GET /api/credentials` shows), the record of their changes, and actions awaiting approval."""

from __future__ import annotations

from connections.models import CredentialChange, PendingAction, ScopedCredential
from scoping.scope_data import ScopeDataKind, model_rows

CREDENTIAL = ScopeDataKind(
    "credential",
    ScopedCredential,
    model_rows(ScopedCredential, ["key", "created_at", "updated_at", "updated_by"], order_by=["key"]),
)
CREDENTIAL_CHANGE = ScopeDataKind(
    "credential_change",
    CredentialChange,
    model_rows(CredentialChange, ["key", "action", "actor_name", "at"], order_by=["at", "id"]),
)
PENDING_ACTION = ScopeDataKind(
    "pending_action",
    PendingAction,
    model_rows(
        PendingAction,
        [
            "session_id",
            "correlation_id",
            "connection",
            "method",
            "endpoint",
            "created_at",
            "approved_at",
            "denied_at",
            "executed_at",
        ],
        order_by=["created_at", "id"],
    ),
)

KINDS = (CREDENTIAL, CREDENTIAL_CHANGE, PENDING_ACTION)
