"""Writes of the chat runtime, each a small typed function run inside the session's scope.

The per-session lease (`lock_token`, `lock_expires_at`) serialises messages across processes: taking it
is one conditional UPDATE (atomic, no check-then-act), it is renewed while the message runs, and a
crashed process's lease simply expires.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from agents.models import Deployment, Message, MessageRole, Session, SessionStatus, SessionTag, UsageRecord
from agents.runtime.loop import Turn
from agents.runtime.records import ContentBlock, ModelMessage, ToolCallRecord, text_block
from core.errors import ApiError
from core.events import scrub_secrets
from core.tools import run_message_hooks
from core.validation import check_text
from scoping.services import touch_scope

LEASE_SECONDS = 60
TITLE_CHARS = 80
_known_deploys: set[str] = set()


def session_not_found() -> ApiError:
    return ApiError(404, "session_not_found", "No session with this id exists.")


def ensure_deployment(*, deploy_id: str, agent_name: str, agent_version: str) -> None:
    """Record a deploy the first time this process sees it (a cache hit costs no query)."""
    if deploy_id in _known_deploys:
        return
    Deployment.objects.get_or_create(
        deploy_id=deploy_id, defaults={"agent_name": agent_name, "agent_version": agent_version}
    )
    _known_deploys.add(deploy_id)


def get_session(session_id: object) -> Session:
    """The active scope's session, or 404: another scope's session is exactly as missing as none."""
    try:
        key = uuid.UUID(str(session_id))
    except ValueError:
        raise session_not_found()
    session = Session.objects.filter(pk=key).first()
    if session is None:
        raise session_not_found()
    return session


def new_lock_token() -> str:
    return secrets.token_hex(16)


def create_locked_session(
    *, deploy_id: str, provider: str, model: str, first_message: str, user_sub: str, lock_token: str
) -> Session:
    now = timezone.now()
    return Session.objects.create(
        deploy_id=deploy_id,
        provider=provider,
        model=model,
        title=" ".join(scrub_secrets(first_message).split())[:TITLE_CHARS],
        user_sub=user_sub,
        status=SessionStatus.RUNNING,
        lock_token=lock_token,
        lock_expires_at=now + timedelta(seconds=LEASE_SECONDS),
        updated_at=now,
    )


def try_lock_session(*, session_id: uuid.UUID, lock_token: str) -> bool:
    now = timezone.now()
    taken = (
        Session.objects.filter(pk=session_id)
        .filter(Q(lock_token="") | Q(lock_expires_at__lt=now))
        .update(
            lock_token=lock_token, lock_expires_at=now + timedelta(seconds=LEASE_SECONDS), status=SessionStatus.RUNNING
        )
    )
    return taken == 1


def renew_lock(*, session_id: uuid.UUID, lock_token: str) -> bool:
    expires = timezone.now() + timedelta(seconds=LEASE_SECONDS)
    return Session.objects.filter(pk=session_id, lock_token=lock_token).update(lock_expires_at=expires) == 1


def release_lock(*, session_id: uuid.UUID, lock_token: str, status: str) -> None:
    Session.objects.filter(pk=session_id, lock_token=lock_token).update(
        lock_token="", lock_expires_at=None, status=status, updated_at=timezone.now()
    )


@dataclass(frozen=True)
class StartedMessage:
    history: list[ModelMessage]  # earlier messages
    next_seq: int
    session_tokens_before: int


def start_message(*, session: Session, text: str) -> StartedMessage:
    """Load the history (one query, whatever its length) and save the user's message."""
    rows = list(Message.objects.filter(session=session).order_by("seq"))
    history = provider_messages(rows)
    seq = rows[-1].seq + 1 if rows else 0
    with transaction.atomic():
        run_message_hooks(str(session.pk), text)
        Message.objects.create(session=session, seq=seq, role=MessageRole.USER, text=scrub_secrets(text))
        Session.objects.filter(pk=session.pk).update(message_count=F("message_count") + 1, updated_at=timezone.now())
    return StartedMessage(history, seq + 1, session.input_tokens + session.output_tokens)


def record_turn(*, session: Session, seq: int, turn: Turn, cost_micros: int | None, provider: str) -> None:
    """One model call: its assistant message, its usage row, and the session's running totals."""
    usage = turn.usage
    assert usage is not None, "AgentLoop.finish_turn sets the usage before recording a turn"
    saved_calls = [call.saved() for call in turn.tool_calls]
    with transaction.atomic():
        message = Message.objects.create(
            session=session,
            seq=seq,
            role=MessageRole.ASSISTANT,
            text=turn.text,
            tool_calls=saved_calls,
            interrupted=turn.interrupted,
            error_code=turn.error_code,
        )
        UsageRecord.objects.create(
            session=session,
            message=message,
            deploy_id=session.deploy_id,
            provider=provider,
            model=turn.model,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_read_tokens=usage.cache_read_tokens,
            cache_write_tokens=usage.cache_write_tokens,
            latency_ms=turn.latency_ms,
            cost_micros=cost_micros,
        )
        Session.objects.filter(pk=session.pk).update(
            message_count=F("message_count") + 1,
            input_tokens=F("input_tokens") + usage.input_tokens,
            output_tokens=F("output_tokens") + usage.output_tokens,
            cache_read_tokens=F("cache_read_tokens") + usage.cache_read_tokens,
            cache_write_tokens=F("cache_write_tokens") + usage.cache_write_tokens,
            cost_micros=F("cost_micros") + (cost_micros or 0),
            unpriced_calls=F("unpriced_calls") + (1 if cost_micros is None else 0),
            updated_at=timezone.now(),
        )


def provider_messages(rows: list[Message]) -> list[ModelMessage]:
    """Saved messages as the model sees them: consecutive user texts merged, tool results after each call."""
    messages: list[ModelMessage] = []

    def append(role: Literal["user", "assistant"], blocks: list[ContentBlock]) -> None:
        if not blocks:
            return
        if messages and messages[-1]["role"] == role:
            content = messages[-1]["content"]
            assert isinstance(content, list), "only append() builds these messages, always with blocks"
            content += blocks
        else:
            messages.append({"role": role, "content": blocks})

    for row in rows:
        if row.role == MessageRole.USER:
            append("user", [text_block(row.text)])
            continue
        calls = [ToolCallRecord.from_saved(saved) for saved in row.tool_calls]
        append("assistant", [*([text_block(row.text)] if row.text else []), *(call.use_block() for call in calls)])
        append("user", [call.result_block() for call in calls])
    if messages and messages[0]["role"] == "assistant":
        messages.insert(0, {"role": "user", "content": [text_block("(earlier conversation)")]})
    return messages


def update_session(*, session: Session, title: str | None, tags: list[str] | None) -> None:
    """Set the title and/or the tags; text that cannot be stored is a 400 naming the field."""
    check_text(title, "title")
    for index, tag in enumerate(tags or []):
        check_text(tag, f"tags[{index}]")
    with transaction.atomic():
        fields: dict[str, Any] = {}
        if title is not None:
            # An empty title means "no title set": the list then shows the start of the first message.
            fields["title"] = title or first_message_title(session)
        if tags is not None:
            fields["tags"] = tags
            SessionTag.objects.filter(session=session).delete()
            SessionTag.objects.bulk_create([SessionTag(session=session, tag=tag) for tag in tags])
        if fields:
            Session.objects.filter(pk=session.pk).update(**fields)


def first_message_title(session: Session) -> str:
    first = (
        Message.objects.filter(session=session, role=MessageRole.USER).order_by("seq").values_list("text", flat=True)
    ).first()
    return " ".join(scrub_secrets(first or "").split())[:TITLE_CHARS]


def delete_session(*, session: Session) -> None:
    session.delete()


def note_scope_activity(*, scope_id: str) -> None:
    touch_scope(scope_id=scope_id)
