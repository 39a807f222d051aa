"""Reads of sessions for the history API, always through the scoped manager (the active scope only)."""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import UTC, datetime
from typing import Any

from django.db.models import Q

from agents.models import Feedback, Message, MessageRole, Session, SessionStatus, SessionTag
from core.errors import ValidationFailed
from core.validation import check_text, parse_whole_number

DEFAULT_PAGE = 50
MAX_PAGE = 200
MAX_CURSOR_CHARS = 200


def encode_cursor(session: Session) -> str:
    raw = f"{session.updated_at.isoformat()}|{session.pk}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """The (updated_at, id) of an X-Next-Cursor; 400 naming `before` for anything else, including a
    datetime without an offset or one that overflows when converted to UTC."""
    invalid = ValidationFailed("before: not a cursor returned by this API (X-Next-Cursor).")
    if len(cursor) > MAX_CURSOR_CHARS:
        raise invalid
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        updated, _, session_id = raw.partition("|")
        updated_at = datetime.fromisoformat(updated)
        if updated_at.tzinfo is None:
            raise invalid
        return updated_at.astimezone(UTC), uuid.UUID(session_id)
    except (ValueError, binascii.Error, UnicodeDecodeError, OverflowError):
        raise invalid from None


def parse_limit(raw: str | None) -> int:
    if raw in (None, ""):
        return DEFAULT_PAGE
    return parse_whole_number(raw, "limit", minimum=1, maximum=MAX_PAGE)


def session_page(*, limit: int, before: str | None, tags: list[str]) -> tuple[list[Session], str | None]:
    """Newest first, keyset-paginated on (updated_at, id): stable under inserts, cheap at any depth."""
    sessions = Session.objects.order_by("-updated_at", "-id")
    if before:
        updated_at, session_id = decode_cursor(before)
        sessions = sessions.filter(Q(updated_at__lt=updated_at) | Q(updated_at=updated_at, id__lt=session_id))
    for tag in tags:
        check_text(tag, "tags")
    if tags:
        sessions = sessions.filter(id__in=SessionTag.objects.filter(tag__in=tags).values("session_id"))
    page = list(sessions[: limit + 1])
    next_cursor = encode_cursor(page[limit - 1]) if len(page) > limit else None
    return page[:limit], next_cursor


def session_cost(session: Session) -> int | None:
    return None if session.unpriced_calls and not session.cost_micros else session.cost_micros


def session_summary(session: Session) -> dict[str, Any]:
    return {
        "id": str(session.pk),
        "title": session.title or "",
        "scope_id": session.scope,
        "tags": list(session.tags or []),
        "status": session.shown_status,
        "message_count": session.message_count,
        "created_at": session.created_at.isoformat(),
        "updated_at": session.updated_at.isoformat(),
        "model": session.model,
        "provider": session.provider,
        "deploy_id": session.deploy_id,
        "token_usage": {
            "input_tokens": session.input_tokens,
            "output_tokens": session.output_tokens,
            "total_tokens": session.total_tokens,
        },
        "cost_micros": session_cost(session),
    }


def history_tool_call(call: dict[str, Any]) -> dict[str, Any]:
    shaped = {
        "toolId": call["tool_id"],
        "toolName": call["tool_name"],
        "parameters": call["parameters"],
        "args": call["parameters"],
        "status": call["status"],
        "duration_ms": call.get("duration_ms", 0),
    }
    for key in ("result", "error"):
        if key in call:
            shaped[key] = call[key]
    return shaped


def history_message(message: Message, *, streaming: bool = False) -> dict[str, Any]:
    """One message as the widget shows it; `streaming`: the answer being written right now, saved so far
    by its checkpoints (stored as interrupted until it ends), is not shown as interrupted. `error`: the code
    the message ended with (`budget_exceeded` on a user message nothing answered; `model_error`, ... on an
    answer that failed), None when it did not."""
    return {
        "id": str(message.public_id),
        "role": message.role,
        "type": "user" if message.role == MessageRole.USER else "assistant_text",
        "text": message.text or "",
        "timestamp": message.created_at.isoformat(),
        "interrupted": message.interrupted and not streaming,
        "error": message.error_code or None,
        "toolCalls": [history_tool_call(call) for call in message.tool_calls],
    }


def session_detail(session: Session) -> dict[str, Any]:
    messages = list(Message.objects.filter(session=session).order_by("seq"))
    # While a message runs (a live lease), what follows its user message is still being written.
    running = session.shown_status == SessionStatus.RUNNING
    last_user = max((m.seq for m in messages if m.role == MessageRole.USER), default=-1)
    return {
        **session_summary(session),
        "messages": [history_message(m, streaming=running and m.seq > last_user) for m in messages],
        "feedback": session_feedback(session),
    }


def session_feedback(session: Session) -> list[dict[str, Any]]:
    """Every rating of the session, oldest first: `message_id` is the rated message's public id (None for a
    rating of the whole session). One query."""
    rows = (
        Feedback.objects.filter(session=session)
        .order_by("created_at", "pk")
        .values_list("message__public_id", "rating", "comment", "user_sub", "updated_at")
    )
    return [
        {
            "message_id": str(message_id) if message_id else None,
            "rating": rating,
            "comment": comment,
            "user": user,
            "updated_at": updated_at.isoformat(),
        }
        for message_id, rating, comment, user, updated_at in rows
    ]
