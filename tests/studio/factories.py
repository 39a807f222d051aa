"""Hand-made sessions for Studio tests: exact timestamps, tool calls, usage rows and session totals.

Rows are written through the explicit `all_scopes` managers (tests are operator code here) and their
timestamps set afterwards (the models stamp `auto_now_add` fields on insert).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from agents.models import Deployment, Feedback, Message, MessageRole, Session, SessionTag, UsageRecord
from scoping.models import Scope


@dataclass
class Call:
    text: str = "Here you go."
    tools: list[dict[str, Any]] = field(default_factory=list)
    input_tokens: int = 100
    output_tokens: int = 20
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    latency_ms: int = 1200
    cost_micros: int | None = 600
    interrupted: bool = False
    error_code: str = ""
    model: str | None = None


@dataclass
class Turn:
    user: str
    calls: list[Call] = field(default_factory=lambda: [Call()])


def tool(
    name: str = "request",
    *,
    status: str = "success",
    result: Any = '{"ok": true}',
    error: str = "",
    duration_ms: int = 42,
    parameters: dict[str, Any] | None = None,
) -> dict[str, Any]:
    call: dict[str, Any] = {
        "tool_id": f"toolu_{name}",
        "tool_name": name,
        "parameters": parameters if parameters is not None else {"endpoint": "/accounts"},
        "status": status,
        "duration_ms": duration_ms,
    }
    if status == "error":
        call["error"] = error or "HTTP 503 from app-api"
    else:
        call["result"] = result
    return call


def touch_scope_row(scope: str, at: datetime) -> None:
    row, created = Scope.objects.get_or_create(scope_id=scope)
    updates = {}
    if created or row.first_seen_at > at:
        updates["first_seen_at"] = at
    if created or row.last_seen_at < at:
        updates["last_seen_at"] = at
    if updates:
        Scope.objects.filter(pk=row.pk).update(**updates)


def make_session(
    *,
    scope: str = "tenant-a",
    title: str = "A session",
    model: str = "claude-sonnet-4-5",
    provider: str = "anthropic",
    deploy_id: str = "deploy0001",
    status: str = "idle",
    at: datetime | None = None,
    turns: list[Turn] | None = None,
    step_seconds: int = 30,
    tags: list[str] | None = None,
    user_sub: str = "",
    lock_expires_at: datetime | None = None,
) -> Session:
    """A session whose first message is at `at` (default: an hour ago) and each next one `step_seconds`
    later; totals are the sums of its usage rows; its tags are also SessionTag rows."""
    start = at or timezone.now() - timedelta(hours=1)
    turns = turns if turns is not None else [Turn("Hello")]
    Deployment.objects.get_or_create(deploy_id=deploy_id, defaults={"agent_name": "test-agent", "agent_version": "1.0"})
    session = Session.all_scopes.create(
        scope=scope,
        title=title,
        model=model,
        provider=provider,
        deploy_id=deploy_id,
        status=status,
        tags=tags or [],
        user_sub=user_sub,
        lock_expires_at=lock_expires_at,
        lock_token="t" * 32 if lock_expires_at else "",
    )
    SessionTag.all_scopes.bulk_create([SessionTag(scope=scope, session=session, tag=tag) for tag in tags or []])
    seq = 0
    moment = start
    totals = {
        "input_tokens": 0,
        "output_tokens": 0,
        "cache_read_tokens": 0,
        "cache_write_tokens": 0,
        "cost_micros": 0,
        "unpriced_calls": 0,
        "model_calls": 0,
        "model_latency_ms": 0,
    }
    for turn in turns:
        user = Message.all_scopes.create(scope=scope, session=session, seq=seq, role="user", text=turn.user)
        Message.all_scopes.filter(pk=user.pk).update(created_at=moment)
        seq += 1
        for call in turn.calls:
            moment += timedelta(seconds=step_seconds)
            message = Message.all_scopes.create(
                scope=scope,
                session=session,
                seq=seq,
                role="assistant",
                text=call.text,
                tool_calls=call.tools,
                interrupted=call.interrupted,
                error_code=call.error_code,
            )
            Message.all_scopes.filter(pk=message.pk).update(created_at=moment)
            usage = UsageRecord.all_scopes.create(
                scope=scope,
                session=session,
                message=message,
                deploy_id=deploy_id,
                provider=provider,
                model=call.model or model,
                input_tokens=call.input_tokens,
                output_tokens=call.output_tokens,
                cache_read_tokens=call.cache_read_tokens,
                cache_write_tokens=call.cache_write_tokens,
                latency_ms=call.latency_ms,
                cost_micros=call.cost_micros,
            )
            UsageRecord.all_scopes.filter(pk=usage.pk).update(created_at=moment)
            seq += 1
            for name in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens"):
                totals[name] += getattr(call, name)
            totals["model_calls"] += 1
            totals["model_latency_ms"] += call.latency_ms
            if call.cost_micros is None:
                totals["unpriced_calls"] += 1
            else:
                totals["cost_micros"] += call.cost_micros
        moment += timedelta(seconds=step_seconds)
    last = moment - timedelta(seconds=step_seconds)
    Session.all_scopes.filter(pk=session.pk).update(created_at=start, updated_at=last, message_count=seq, **totals)
    touch_scope_row(scope, last)
    return Session.all_scopes.get(pk=session.pk)


def rate(
    session: Session,
    rating: int,
    *,
    user_sub: str = "user-1",
    answer: int | None = None,
    comment: str = "",
    at: datetime | None = None,
) -> Feedback:
    """An end user's rating of the session, or (`answer`: 0 for the first) of one of its assistant messages."""
    message = None
    if answer is not None:
        message = Message.all_scopes.filter(session=session, role=MessageRole.ASSISTANT).order_by("seq")[answer]
    return Feedback.all_scopes.create(
        scope=session.scope,
        session=session,
        message=message,
        user_sub=user_sub,
        deploy_id=session.deploy_id,
        rating=rating,
        comment=comment,
        updated_at=at or timezone.now(),
    )
