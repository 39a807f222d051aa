"""A session replayed: its messages grouped into turns, each model call with its usage row and tool calls,
and each turn's steps on one time axis (`Turn.timeline`)."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from agents.models import (
    Deployment,
    Feedback,
    FeedbackRating,
    Message,
    MessageRole,
    Session,
    SessionStatus,
    UsageRecord,
)
from connections.tools import TOOL_NAME as CONNECTION_TOOL

REPLAY_PAGE_MESSAGES = 400
# Since issue 13 a connection call answered 4xx/5xx is saved as a failed call; one saved before then says
# "success" and holds the `{"status": 404, "data": ...}` the model read (connections.outbound.shaped_result).
LEGACY_HTTP_FAILURE_RE = re.compile(r'^\{"status": [45]\d\d, "data": ')

MILLISECOND = timedelta(milliseconds=1)
SpanKind = Literal["model", "tool"]
Timing = Literal["recorded", "derived", "unknown"]


@dataclass(frozen=True)
class Span:
    """One step of a turn on the turn's time axis: a model call or a tool call, in ms from the turn's start.

    `timing` says where its start and length come from (see `Turn.timeline`): "recorded" (a model call's
    usage row), "derived" (a tool call: only its length is saved) or "unknown" (nothing recorded)."""

    kind: SpanKind
    name: str  # the model, or the tool
    call_number: int  # the model call it is, or belongs to (1, 2, ... in the turn)
    start_ms: int
    duration_ms: int
    failed: bool
    timing: Timing
    input_tokens: int | None = None
    output_tokens: int | None = None

    @property
    def end_ms(self) -> int:
        return self.start_ms + self.duration_ms


@dataclass
class ModelCall:
    message: Message
    usage: UsageRecord | None
    tool_calls: list[dict[str, Any]]
    feedback: list[Feedback] = field(default_factory=list)  # end users' ratings of this message


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
        """Its model calls' errors, after the user message's own (`budget_exceeded`: refused before any call)."""
        refused = [self.user.error_code] if self.user is not None and self.user.error_code else []
        return refused + [call.message.error_code for call in self.calls if call.message.error_code]

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

    @property
    def timeline(self) -> list[Span]:
        """The turn's model calls and tool calls in the order they ran, on one axis starting at 0.

        Where the times come from (agents.runtime.loop, agents.turn.recorder, agents.services):
        - A model call's usage row is written when its stream has ended: `UsageRecord.created_at` is the
          call's end and `latency_ms` its length, so it started `latency_ms` before that.
        - Its tool calls ran one after another right after that write, and each saved tool call carries only
          its `duration_ms`: its start is derived as the model call's end plus the durations of the tool
          calls before it (the few ms of database writes between them are not recorded). A tool call with
          no duration saved is drawn as an instant.
        - A model call without a usage row (a checkpoint left by a process that died) has no recorded
          length: it is drawn from the end of the step before it to its message's `created_at`.
        - The axis starts at the user message (or at the first step, when that is earlier or missing)."""
        steps: list[tuple[datetime, Span]] = []
        previous_end = self.user.created_at if self.user else None
        for number, call in enumerate(self.calls, start=1):
            start, model_span = _model_span(call, number, previous_end)
            steps.append((start, model_span))
            end = start + timedelta(milliseconds=model_span.duration_ms)
            for tool in call.tool_calls:
                duration = tool["duration_ms"] or 0
                timing: Timing = "derived" if tool["duration_ms"] is not None else "unknown"
                span = Span("tool", tool["tool_name"], number, 0, duration, tool["status"] == "error", timing)
                steps.append((end, span))
                end += timedelta(milliseconds=duration)
            previous_end = end
        if not steps:
            return []
        origin = min([start for start, _ in steps] + ([self.user.created_at] if self.user else []))
        return [replace(span, start_ms=(start - origin) // MILLISECOND) for start, span in steps]


def _model_span(call: ModelCall, number: int, previous_end: datetime | None) -> tuple[datetime, Span]:
    """A model call and the moment it started (see `Turn.timeline`)."""
    failed = bool(call.message.error_code)
    usage = call.usage
    if usage is not None:
        start = usage.created_at - timedelta(milliseconds=usage.latency_ms)
        tokens = {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens}
        return start, Span("model", usage.model, number, 0, usage.latency_ms, failed, "recorded", **tokens)
    end = call.message.created_at
    start = min(previous_end or end, end)
    return start, Span("model", "", number, 0, (end - start) // MILLISECOND, failed, "unknown")


@dataclass
class Replay:
    session: Session
    deployment: Deployment | None
    turns: list[Turn]
    earlier_from: int | None  # `from` of the previous window of messages, when this one is not the first
    later_from: int | None
    feedback: list[Feedback] = field(default_factory=list)  # every rating of the session, oldest first

    @property
    def session_feedback(self) -> list[Feedback]:
        """The ratings of the session as a whole (the others are shown at the message they rate)."""
        return [item for item in self.feedback if item.message_id is None]

    @property
    def positive_ratings(self) -> int:
        return sum(1 for item in self.feedback if item.rating == FeedbackRating.POSITIVE)

    @property
    def negative_ratings(self) -> int:
        return len(self.feedback) - self.positive_ratings


def normalise_tool_call(call: Any) -> dict[str, Any]:
    """A saved tool call as the template shows it, tolerant of missing keys and odd values. A connection
    call saved as a success before 4xx/5xx answers were failures (issue 13) is shown as the failure it was."""
    if not isinstance(call, dict):
        return {
            "tool_id": "",
            "tool_name": "?",
            "status": "error",
            "error": repr(call),
            "parameters": {},
            "has_result": False,
            "result": None,
            "duration_ms": None,
        }
    status = call.get("status")
    if status not in ("success", "error"):
        status = "error" if "error" in call else "success"
    result, error = call.get("result"), call.get("error")
    if status == "success" and _legacy_http_failure(call.get("tool_name"), result):
        status, error = "error", result
    duration = call.get("duration_ms")
    return {
        "tool_id": call.get("tool_id", ""),
        "tool_name": str(call.get("tool_name") or "?"),
        "parameters": call.get("parameters", {}),
        "status": status,
        "has_result": "result" in call,
        "result": result,
        "error": error,
        "duration_ms": duration
        if isinstance(duration, int) and not isinstance(duration, bool) and duration >= 0
        else None,
    }


def _legacy_http_failure(tool_name: Any, result: Any) -> bool:
    return tool_name == CONNECTION_TOOL and isinstance(result, str) and bool(LEGACY_HTTP_FAILURE_RE.match(result))


def get_session(session_id: uuid.UUID) -> Session | None:
    return Session.all_scopes.filter(pk=session_id).first()


def session_feedback(session: Session) -> tuple[list[Feedback], dict[int, list[Feedback]]]:
    """Every rating of the session, oldest first (one query), and those of each message by its id."""
    feedback = list(Feedback.all_scopes.filter(session=session, scope=session.scope).order_by("created_at", "pk"))
    by_message: dict[int, list[Feedback]] = {}
    for item in feedback:
        if item.message_id is not None:
            by_message.setdefault(item.message_id, []).append(item)
    return feedback, by_message


def session_replay(session: Session, *, from_seq: int | None = None, limit: int | None = None) -> Replay:
    """The conversation in order, grouped into turns (a user message and the model calls answering it),
    each model call with its usage row and its ratings. Messages come in windows of `limit` (one query with
    the usage joined), plus one query for the deploy and one for the session's feedback."""
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
    feedback, by_message = session_feedback(session)
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
        tools = [normalise_tool_call(call) for call in calls]
        turns[-1].calls.append(ModelCall(row, usage, tools, by_message.get(row.pk, [])))
    for before, after in zip(turns, turns[1:], strict=False):
        before.next, after.previous = after.anchor, before.anchor
    if turns and later_from is None and session.shown_status == SessionStatus.RUNNING:
        turns[-1].running = True
    first_seq = rows[0].seq if rows else None
    earlier_from = max(0, first_seq - limit) if first_seq else None
    return Replay(session, deployment, turns, earlier_from, later_from, feedback)
