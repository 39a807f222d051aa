"""Writes on connections: per-scope credentials (every change audited with who, whatever the path:
admin, management command or API), and remembered previews of writes that need the user's approval."""

from __future__ import annotations

import re
import uuid

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from connections.crypto import UndecryptableCredential
from connections.models import (
    CredentialChange,
    PendingAction,
    ScopedCredential,
    validate_credential_key,
    validate_credential_value,
)
from connections.outbound import CallRefused
from scoping.context import scope, validate_scope_id

Action = CredentialChange.Action
UNCHANGED = "unchanged"


def save_credential(
    *, credential: ScopedCredential, value: str | None, actor_name: str, actor: User | None = None
) -> list[str]:
    """Create, rename and/or replace (`value` not None) one credential; one audit row per change, in the
    same transaction. Returns the changes made. Callers validate first (a form, or set_credential)."""
    with transaction.atomic(), scope(credential.scope):
        if credential.pk is None:
            changes = [Action.CREATED]
        else:
            stored_key = (
                ScopedCredential.objects.select_for_update().values_list("key", flat=True).get(pk=credential.pk)
            )
            changes = [Action.RENAMED] if stored_key != credential.key else []
            if value is not None:
                changes.append(Action.REPLACED)
        if not changes:
            return []
        if value is not None:
            credential.set_value(value)
        credential.updated_by = actor_name
        credential.save()
        for change in changes:
            record_change(
                scope_id=credential.scope, key=credential.key, action=change, actor_name=actor_name, actor=actor
            )
    return [str(change) for change in changes]


def set_credential(*, scope_id: str, key: str, value: str, actor_name: str, actor: User | None = None) -> str:
    """Create or replace `key` in `scope_id`: "created", "replaced", or "unchanged" (the same value is
    already stored: nothing written). Raises InvalidScope or ValidationError before writing anything."""
    validate_scope_id(scope_id)
    validate_credential_key(key)
    validate_credential_value(value)
    try:
        return _set_credential(scope_id=scope_id, key=key, value=value, actor_name=actor_name, actor=actor)
    except IntegrityError:
        # Another writer created the same (scope, key) between our read and our insert: it is there now.
        return _set_credential(scope_id=scope_id, key=key, value=value, actor_name=actor_name, actor=actor)


def _set_credential(*, scope_id: str, key: str, value: str, actor_name: str, actor: User | None) -> str:
    with transaction.atomic(), scope(scope_id):
        credential = ScopedCredential.objects.select_for_update().filter(key=key).first()
        if credential is None:
            credential = ScopedCredential(key=key)
        elif holds(credential, value):
            return UNCHANGED
        (change,) = save_credential(credential=credential, value=value, actor_name=actor_name, actor=actor)
        return change


def holds(credential: ScopedCredential, value: str) -> bool:
    try:
        return credential.reveal() == value
    except UndecryptableCredential:
        return False  # stored under another key: writing it again makes it usable


def delete_credential(*, scope_id: str, key: str, actor_name: str, actor: User | None = None) -> bool:
    """Delete `key` of `scope_id` (audited); False when there was none."""
    with transaction.atomic(), scope(scope_id):
        deleted, _ = ScopedCredential.objects.filter(key=key).delete()
        if deleted:
            record_change(scope_id=scope_id, key=key, action=Action.DELETED, actor_name=actor_name, actor=actor)
    return bool(deleted)


def record_change(*, scope_id: str, key: str, action: str, actor_name: str, actor: User | None = None) -> None:
    CredentialChange.objects.create(scope=scope_id, key=key, action=action, actor=actor, actor_name=actor_name)


APPROVAL = re.compile(r"^\s*I (approve|deny) the action \(correlation: ([^)\s]+)\)\s*$", re.IGNORECASE)


def remember_preview(
    *, session_id: str, correlation_id: str, connection: str, method: str, endpoint: str, fingerprint: str
) -> None:
    PendingAction.objects.get_or_create(
        session_id=uuid.UUID(session_id),
        correlation_id=correlation_id,
        defaults={"connection": connection, "method": method, "endpoint": endpoint[:2000], "fingerprint": fingerprint},
    )


def record_user_verdict(session_id: str, text: str) -> None:
    """A message hook: the user's own message approves or denies a remembered preview."""
    match = APPROVAL.match(text)
    if not match:
        return
    verdict, correlation_id = match.group(1).lower(), match.group(2)
    pending = PendingAction.objects.filter(
        session_id=uuid.UUID(session_id),
        correlation_id=correlation_id,
        executed_at__isnull=True,
        denied_at__isnull=True,
    )
    now = timezone.now()
    if verdict == "approve":
        pending.update(approved_at=now)
    else:
        pending.update(denied_at=now)


def claim_approved_action(*, session_id: str, fingerprint: str) -> None:
    """Mark one approved, unexecuted preview of exactly this call as executed, or refuse."""
    candidates = PendingAction.objects.filter(
        session_id=uuid.UUID(session_id), fingerprint=fingerprint, executed_at__isnull=True, denied_at__isnull=True
    )
    for action in candidates.filter(approved_at__isnull=False).order_by("created_at"):
        # A conditional UPDATE, so two concurrent confirmations cannot both run the write.
        if PendingAction.objects.filter(pk=action.pk, executed_at__isnull=True).update(executed_at=timezone.now()):
            return
    if candidates.exists():
        raise CallRefused("The user has not approved this action yet; ask them to approve it first.")
    raise CallRefused(
        "There is no approved preview of exactly this call in this session; send it with intent 'write' "
        "first so the user can review it."
    )
