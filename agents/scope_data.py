"""The agents app's kinds of a scope's data (scoping.scope_data), registered by AgentsConfig.ready() in this
order: sessions, what repeats them (transcripts, tag rows), messages, their tool calls, end users' feedback
(which points to sessions and messages), usage. The erase goes backwards: usage first (kept for billing under
the scope's anonymous id, no longer pointing at its session or message), then feedback, messages, and
sessions with the running totals they carry."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.db import models

from agents.models import (
    Feedback,
    Message,
    Session,
    SessionTag,
    SessionTranscript,
    UsageRecord,
    UsageRollup,
    UsageScopeMonth,
)
from scoping.scope_data import EXPORT_CHUNK_ROWS, ScopeDataKind, json_ready, model_rows
from scoping.services import erased_scope_id

TOKEN_FIELDS = ["input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens"]

SESSION = ScopeDataKind(
    "session",
    Session,
    model_rows(
        Session,
        [
            "id",
            "deploy_id",
            "title",
            "tags",
            "status",
            "provider",
            "model",
            "user_sub",
            "created_at",
            "updated_at",
            "message_count",
            *TOKEN_FIELDS,
            "cost_micros",
            "unpriced_calls",
            "model_calls",
            "model_latency_ms",
        ],
        order_by=["created_at", "id"],
    ),
)
# The conversation again, in the JSON the model is sent (agents.runtime.transcript): erased, not exported.
SESSION_TRANSCRIPT = ScopeDataKind("session_transcript", SessionTranscript, rows=None)
# A session's tags again, one row each for the tag filter: erased, not exported (the session has `tags`).
SESSION_TAG = ScopeDataKind("session_tag", SessionTag, rows=None)

MESSAGE = ScopeDataKind(
    "message",
    Message,
    model_rows(
        Message,
        [
            ("id", "public_id"),
            "session_id",
            "seq",
            "role",
            "text",
            "interrupted",
            "error_code",
            "context_dropped",
            "created_at",
        ],
        order_by=["session_id", "seq"],
    ),
)


def tool_call_rows(scope_id: str) -> Iterator[dict[str, Any]]:
    """Each tool call of the scope's messages (kept in Message.tool_calls), with its message and position."""
    with_calls = Message.all_scopes.filter(scope=scope_id).exclude(tool_calls=[]).order_by("session_id", "seq")
    for public_id, session_id, calls in with_calls.values_list("public_id", "session_id", "tool_calls").iterator(
        chunk_size=EXPORT_CHUNK_ROWS
    ):
        for position, call in enumerate(calls):
            yield {
                "message_id": json_ready(public_id),
                "session_id": json_ready(session_id),
                "position": position,
                **call,  # agents.runtime.records.ToolCallRecord.saved()
            }


# Inside their messages: exported one a line, erased with the messages.
TOOL_CALL = ScopeDataKind("tool_call", None, tool_call_rows)


FEEDBACK = ScopeDataKind(
    "feedback",
    Feedback,
    model_rows(
        Feedback,
        [
            "session_id",
            ("message_id", "message__public_id"),
            ("user", "user_sub"),
            "deploy_id",
            "rating",
            "comment",
            "created_at",
            "updated_at",
        ],
        order_by=["created_at", "id"],
    ),
)


def keep_usage_anonymously(model: type[models.Model], scope_field: str, scope_id: str, limit: int) -> int:
    """Up to `limit` of the scope's usage rows move to its anonymous id (scoping.services.erased_scope_id),
    leaving their session and message: billing totals stay, nothing links them to the tenant. The rollup's
    triggers move their sums in the same statement."""
    batch = UsageRecord.all_scopes.filter(scope=scope_id).values("pk")[:limit]
    return UsageRecord.all_scopes.filter(pk__in=batch).update(
        scope=erased_scope_id(scope_id), session=None, message=None
    )


USAGE = ScopeDataKind(
    "usage",
    UsageRecord,
    model_rows(
        UsageRecord,
        [
            "session_id",
            ("message_id", "message__public_id"),
            "deploy_id",
            "provider",
            "model",
            *TOKEN_FIELDS,
            "latency_ms",
            "cost_micros",
            "created_at",
        ],
        order_by=["created_at", "id"],
    ),
    erase_batch=keep_usage_anonymously,
    follows=(UsageRollup, UsageScopeMonth),
)

KINDS = (SESSION, SESSION_TRANSCRIPT, SESSION_TAG, MESSAGE, TOOL_CALL, FEEDBACK, USAGE)
