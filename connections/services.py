"""Remembered previews of writes that need approval, and the user's approvals."""

from __future__ import annotations

import re
import uuid

from django.utils import timezone

from connections.models import PendingAction
from connections.outbound import CallRefused

APPROVAL = re.compile(r"^\s*I (approve|deny) the action \(correlation: ([^)\s]+)\)\s*$", re.IGNORECASE)


def remember_preview(
    *, session_id: str, correlation_id: str, connection: str, method: str, endpoint: str, fingerprint: str
) -> None:
    PendingAction.objects.get_or_create(
        session_id=uuid.UUID(session_id),
        correlation_id=correlation_id,
        defaults={"connection": connection, "method": method, "endpoint": endpoint[:2000],
                  "fingerprint": fingerprint},
    )


def record_user_verdict(session_id: str, text: str) -> None:
    """A message hook: the user's own message approves or denies a remembered preview."""
    match = APPROVAL.match(text)
    if not match:
        return
    verdict, correlation_id = match.group(1).lower(), match.group(2)
    pending = PendingAction.objects.filter(
        session_id=uuid.UUID(session_id), correlation_id=correlation_id, executed_at__isnull=True,
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
