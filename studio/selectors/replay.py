"""A session replayed: its messages grouped into turns, each model call with its usage row and tool calls."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from agents.models import Deployment, Message, MessageRole, Session, SessionStatus, UsageRecord

REPLAY_PAGE_MESSAGES = 400


@dataclass
class ModelCall:
    message: Message
    usage: UsageRecord | None
    tool_calls: list[dict[str, Any]]


@dataclass
class Turn:
    number: int
    anchor: str
    user: Message | None
    calls: list[ModelCall] = field(default_factory=list)
    previous: str = ""  # anchor of the previous turn on this page
    next: str = ""
    running: bool = False  # the session's message in progress: its checkpointed calls are not cut off

    @property
    def started_at(self) -> datetime | None:
        first = self.user or (self.calls[0].message if self.calls else None)
        return first.created_at if first else None

    @property
    def interrupted(self) -> bool:
        return not self.running and any(call.message.interrupted for call in self.calls)

    @property
    def context_dropped(self) -> int:
        """Earlier exchanges the model was not sent in this turn (agent.maxContextTokens)."""
        return max((call.message.context_dropped for call in self.calls), default=0)

    @property
    def error_codes(self) -> list[str]:
        return [call.message.error_code for call in self.calls if call.message.error_code]

    @property
    def tool_errors(self) -> int:
        return sum(1 for call in self.calls for tool in call.tool_calls if tool.get("status") == "error")

    def _usage_sum(self, name: str) -> int:
        return sum(getattr(call.usage, name) or 0 for call in self.calls if call.usage)

    @property
    def input_tokens(self) -> int:
        return self._usage_sum("input_tokens")

    @property
    def output_tokens(self) -> int:
        return self._usage_sum("output_tokens")

    @property
    def cost_micros(self) -> int:
        return self._usage_sum("cost_micros")

    @property
    def unpriced_calls(self) -> int:
        return sum(1 for call in self.calls if call.usage and call.usage.cost_micros is None)


@dataclass
class Replay:
    session: Session
    deployment: Deployment | None
    turns: list[Turn]
    earlier_from: int | None  # `from` of the previous window of messages, when this one is not the first
    later_from: int | None


def normalise_tool_call(call: Any) -> dict[str, Any]:
    """A saved tool call as the template shows it, tolerant of missing keys."""
    if not isinstance(call, dict):
        return {"tool_name": "?", "status": "error", "error": repr(call), "parameters": {}, "duration_ms": None}
    status = call.get("status") or ("error" if "error" in call else "success")
    return {
        "tool_id": call.get("tool_id", ""),
        "tool_name": call.get("tool_name", "?"),
        "parameters": call.get("parameters", {}),
        "status": status,
        "has_result": "result" in call,
        "result": call.get("result"),
        "error": call.get("error"),
        "duration_ms": call.get("duration_ms"),
    }


def get_session(session_id: uuid.UUID) -> Session | None:
    return Session.all_scopes.filter(pk=session_id).first()


def session_replay(session: Session, *, from_seq: int | None = None, limit: int | None = None) -> Replay:
    """The conversation in order, grouped into turns (a user message and the model calls answering it),
    each model call with its usage row. Messages come in windows of `limit` (one query with the usage
    joined), plus one query for the deploy."""
    limit = limit or REPLAY_PAGE_MESSAGES
    deployment = Deployment.objects.filter(deploy_id=session.deploy_id).first()
    queryset = Message.all_scopes.filter(session=session, scope=session.scope).select_related("usage").order_by("seq")
    if from_seq:
        queryset = queryset.filter(seq__gte=from_seq)
    rows = list(queryset[: limit + 1])
    later_from = None
    if len(rows) > limit:
        rows = rows[:limit]
        # End the window on a turn boundary when one is in sight, so a turn is not split.
        last_user = max((i for i, row in enumerate(rows) if row.role == MessageRole.USER and i > 0), default=None)
        if last_user is not None:
            rows = rows[:last_user]
        later_from = rows[-1].seq + 1
    turns: list[Turn] = []
    for row in rows:
        if row.role == MessageRole.USER or not turns:
            turns.append(
                Turn(
                    number=len(turns) + 1, anchor=f"turn-{row.seq}", user=row if row.role == MessageRole.USER else None
                )
            )
            if row.role == MessageRole.USER:
                continue
        usage = getattr(row, "usage", None)
        calls = row.tool_calls if isinstance(row.tool_calls, list) else []
        turns[-1].calls.append(ModelCall(row, usage, [normalise_tool_call(call) for call in calls]))
    for before, after in zip(turns, turns[1:], strict=False):
        before.next, after.previous = after.anchor, before.anchor
    if turns and later_from is None and session.shown_status == SessionStatus.RUNNING:
        turns[-1].running = True
    first_seq = rows[0].seq if rows else None
    earlier_from = max(0, first_seq - limit) if first_seq else None
    return Replay(session, deployment, turns, earlier_from, later_from)
