"""A scope holding a row of every kind of data (scoping.scope_data), for the export and erase tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from agents.models import Feedback, Message, Session, SessionTag, SessionTranscript, UsageRecord
from connections.models import PendingAction
from connections.services import set_credential
from memory.models import MemoryChange, MemoryEntry
from scoping.labels import ScopeDetailsChange
from scoping.scope_data import scope_data_kinds
from scoping.services import set_scope_details
from stores.models import StoreDocument, StoreDocumentVersion
from tests.scopetest.models import Note

SECRET = "sk-live-0123456789-very-secret"
WHEN = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def fill_scope(scope_id: str, *, sessions: int = 1, label: str = "Acme Hotels") -> None:
    """`sessions` sessions (two messages each, the second with a tool call, a rating and a usage row), and one
    row of every other kind, in `scope_id`."""
    set_scope_details(scope_id=scope_id, change=ScopeDetailsChange(label=label, metadata={"plan": "pro"}))
    for number in range(sessions):
        session = Session.all_scopes.create(
            scope=scope_id, deploy_id="deploy-1", title=f"Budget {number}", tags=["billing"], input_tokens=120
        )
        SessionTranscript.all_scopes.create(scope=scope_id, session=session, body="[]")
        SessionTag.all_scopes.create(scope=scope_id, session=session, tag="billing")
        Message.all_scopes.create(scope=scope_id, session=session, seq=0, role="user", text="What did I spend?")
        answer = Message.all_scopes.create(
            scope=scope_id,
            session=session,
            seq=1,
            role="assistant",
            text="You spent $42.",
            tool_calls=[
                {
                    "tool_id": f"toolu_{number}",
                    "tool_name": "request",
                    "parameters": {"path": "/transactions"},
                    "status": "success",
                    "result": {"total": 42},
                    "duration_ms": 12,
                }
            ],
        )
        Feedback.all_scopes.create(
            scope=scope_id,
            session=session,
            message=answer,
            user_sub="user-7",
            deploy_id="deploy-1",
            rating=-1,
            comment="Wrong month",
        )
        UsageRecord.all_scopes.create(
            scope=scope_id,
            session=session,
            message=answer,
            deploy_id="deploy-1",
            provider="anthropic",
            model="claude-haiku-4-5",
            input_tokens=120,
            output_tokens=30,
            latency_ms=800,
            cost_micros=1500 + number,
        )
    UsageRecord.all_scopes.filter(scope=scope_id).update(created_at=WHEN)
    entry = MemoryEntry.all_scopes.create(scope=scope_id, content="Prefers euros.")
    MemoryChange.all_scopes.create(
        scope=scope_id,
        entry_id=entry.public_id,
        action="edited",
        content_before="Prefers dollars.",
        content_after="Prefers euros.",
        actor_name="ops",
    )
    set_credential(scope_id=scope_id, key="FINANCE_TOKEN", value=SECRET, actor_name="command:ops")
    PendingAction.all_scopes.create(
        scope=scope_id,
        session_id=session.pk,
        correlation_id="c1",
        connection="app-api",
        method="POST",
        endpoint="/transfers",
        fingerprint="f" * 64,
    )
    document = StoreDocument.all_scopes.create(
        scope=scope_id,
        store="preferences",
        key="currency",
        data={"currency": "EUR"},
        version=2,
        created_at=WHEN,
        updated_at=WHEN + timedelta(hours=1),
    )
    StoreDocumentVersion.all_scopes.create(
        scope=scope_id, document=document, version=1, data={"currency": "USD"}, created_at=WHEN
    )
    Note.all_scopes.create(scope=scope_id, text="a test-only scoped row")


def rows_of(scope_id: str) -> dict[str, int]:
    """The scope's rows per kind (with the tables kept in step with each, e.g. the usage rollup)."""
    return {kind.name: kind.remaining(scope_id) for kind in scope_data_kinds() if kind.model is not None}
