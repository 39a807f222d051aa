"""Writes of the chat runtime, each a small typed function run inside the session's scope.

The per-session lease (`lock_token`, `lock_expires_at`) serialises messages across processes: taking it
is one conditional UPDATE (atomic, no check-then-act), it is renewed while the message runs, and a
crashed process's lease simply expires.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from agents.agent_folder import Budgets
from agents.budgets import Admission, BudgetExceeded, admit
from agents.models import (
    Deployment,
    Feedback,
    Message,
    MessageRole,
    Session,
    SessionStatus,
    SessionTag,
    SessionTranscript,
    UsageRecord,
)
from agents.pricing import cost_micros, price_for_model
from agents.runtime.loop import Turn
from agents.runtime.providers.base import TokenUsage
from agents.runtime.records import ContentBlock, ModelMessage, ToolCallRecord, text_block
from agents.runtime.transcript import Appended, Transcript, TranscriptPart
from core.agent_folder import current_agent
from core.errors import ApiError, ValidationFailed
from core.events import scrub_secrets
from core.tools import prompt_sections, run_message_hooks
from core.validation import check_text
from scoping.context import active_scope, no_scope
from scoping.services import touch_scope

TITLE_CHARS = 80
SESSION_TOTALS_SQL = (
    'UPDATE "agents_session" SET "message_count" = "message_count" + %s, "input_tokens" = "input_tokens" + %s,'
    ' "output_tokens" = "output_tokens" + %s, "cache_read_tokens" = "cache_read_tokens" + %s,'
    ' "cache_write_tokens" = "cache_write_tokens" + %s, "cost_micros" = "cost_micros" + %s,'
    ' "unpriced_calls" = "unpriced_calls" + %s, "model_calls" = "model_calls" + %s,'
    ' "model_latency_ms" = "model_latency_ms" + %s, "budget_reserve_micros" = CASE WHEN "budget_reserve_micros" > %s'
    ' THEN "budget_reserve_micros" - %s ELSE 0 END, "updated_at" = %s WHERE "scope" = %s AND "id" = %s'
)
TRANSCRIPT_APPEND_SQL = (
    'UPDATE "agents_sessiontranscript" SET "body" = "body" || %s, "index" = "index" || %s,'
    ' "tokens" = "tokens" + %s WHERE "scope" = %s AND "session_id" = %s'
)
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


def lease_expiry() -> datetime:
    return timezone.now() + timedelta(seconds=settings.AMODAL_LEASE_SECONDS)


@dataclass(frozen=True)
class SessionRequest:
    """What a message asks of its session: an existing one by id, or a new one with these fields."""

    session_id: str | None
    deploy_id: str
    agent_name: str
    agent_version: str
    provider: str
    model: str
    first_message: str
    user_sub: str


@dataclass(frozen=True)
class OpenedSession:
    session: Session
    leased: bool  # False: another message holds the lease (SessionLease.wait)
    admission: Admission | None  # the budget's decision; None without budgets, or when not leased yet


def open_session(
    *, scope_id: str, request: SessionRequest, lock_token: str, budgets: Budgets | None = None, refuse: bool = False
) -> OpenedSession:
    """Everything a message needs before its stream starts, in one trip to the database thread: the
    scope's activity, the deploy, and the session (found, or created) with whether its lease was taken.

    With `budgets`, in one transaction with the message's admission (agents.budgets): the scope's activity
    UPDATE locks its row until the commit, so one scope's admissions run one at a time, and an admitted
    message's reservation is written with its lease. `refuse`: a message over the budget raises
    BudgetExceeded and nothing is written (else it is leased without a reservation, to be refused in its
    stream)."""
    if budgets is None:
        note_scope_activity(scope_id=scope_id)
        ensure_deployment(
            deploy_id=request.deploy_id, agent_name=request.agent_name, agent_version=request.agent_version
        )
        session, leased = lease_session(request, lock_token=lock_token)
        return OpenedSession(session, leased, None)
    with transaction.atomic():
        note_scope_activity(scope_id=scope_id, lock=True)
        ensure_deployment(
            deploy_id=request.deploy_id, agent_name=request.agent_name, agent_version=request.agent_version
        )
        existing = get_session(request.session_id) if request.session_id else None  # 404 before 429
        admission = admit(scope_id=scope_id, budgets=budgets)
        if refuse and not admission.admitted:
            raise admission.refusal()
        session, leased = lease_session(request, lock_token=lock_token, existing=existing, reserve=admission.reserve)
        return OpenedSession(session, leased, admission if leased else None)


def lease_session(
    request: SessionRequest, *, lock_token: str, existing: Session | None = None, reserve: int = 0
) -> tuple[Session, bool]:
    """The request's session with whether its lease was taken (with the budget reservation `reserve`)."""
    if request.session_id:
        session = existing or get_session(request.session_id)
        return session, try_lock_session(session_id=session.pk, lock_token=lock_token, reserve=reserve)
    return create_locked_session(request, lock_token=lock_token, reserve=reserve), True


def admit_leased_session(*, scope_id: str, session_id: uuid.UUID, lock_token: str, budgets: Budgets) -> Admission:
    """The admission of a message that had to wait for its session's lease (open_session's, later)."""
    with transaction.atomic():
        note_scope_activity(scope_id=scope_id, lock=True)
        admission = admit(scope_id=scope_id, budgets=budgets)
        if admission.admitted:
            Session.objects.filter(pk=session_id, lock_token=lock_token).update(budget_reserve_micros=admission.reserve)
    return admission


def create_locked_session(request: SessionRequest, *, lock_token: str, reserve: int = 0) -> Session:
    return Session.objects.create(
        deploy_id=request.deploy_id,
        provider=request.provider,
        model=request.model,
        title=" ".join(scrub_secrets(request.first_message).split())[:TITLE_CHARS],
        user_sub=request.user_sub,
        status=SessionStatus.RUNNING,
        lock_token=lock_token,
        lock_expires_at=lease_expiry(),
        budget_reserve_micros=reserve,
        updated_at=timezone.now(),
    )


def try_lock_session(*, session_id: uuid.UUID, lock_token: str, reserve: int = 0) -> bool:
    """Take the lease if it is free or has expired (its process died): one conditional UPDATE. `reserve`:
    the message's budget reservation (agents.budgets), which lives as long as the lease."""
    taken = (
        Session.objects.filter(pk=session_id)
        .filter(Q(lock_token="") | Q(lock_expires_at__lt=timezone.now()))
        .update(
            lock_token=lock_token,
            lock_expires_at=lease_expiry(),
            status=SessionStatus.RUNNING,
            budget_reserve_micros=reserve,
        )
    )
    return taken == 1


def renew_lock(*, session_id: uuid.UUID, lock_token: str) -> bool:
    return Session.objects.filter(pk=session_id, lock_token=lock_token).update(lock_expires_at=lease_expiry()) == 1


def release_lock(*, session_id: uuid.UUID, lock_token: str, status: str) -> None:
    Session.objects.filter(pk=session_id, lock_token=lock_token).update(
        lock_token="", lock_expires_at=None, budget_reserve_micros=0, status=status, updated_at=timezone.now()
    )


def release_expired_leases() -> int:
    """Operator sweep: sessions whose process died mid-message become `interrupted` (all scopes). It runs
    inside a message (agents.turn.lease) too: out of that message's scope, or row-level security
    (AMODAL_DB_ROW_SECURITY) would narrow it to that scope's sessions."""
    with no_scope():
        return Session.all_scopes.filter(lock_token__gt="", lock_expires_at__lt=timezone.now()).update(
            lock_token="", lock_expires_at=None, budget_reserve_micros=0, status=SessionStatus.INTERRUPTED
        )


# --- The record of one message, written as it happens ---------------------------------------------


@dataclass(frozen=True)
class StartedMessage:
    transcript: Transcript  # the session's history before this message
    transcript_length: int  # the stored body's length after this message's user part
    next_seq: int
    session_tokens_before: int
    prompt_sections: list[str]


def start_message(*, session: Session, text: str, user_part: TranscriptPart) -> StartedMessage:
    """Read the transcript (one value, whatever the session's length), then save the user's message and
    append it to the transcript, in one transaction. Also gathers the prompt's per-message sections."""
    transcript = load_transcript(session)
    seq = next_seq(session)
    with transaction.atomic():
        run_message_hooks(str(session.pk), text)
        Message.objects.create(session=session, seq=seq, role=MessageRole.USER, text=scrub_secrets(text))
        add_to_session(session, messages=1)
        length = append_to_transcript(session, [user_part], at=len(transcript.body))
    return StartedMessage(
        transcript, length, seq + 1, session.input_tokens + session.output_tokens, prompt_sections(current_agent())
    )


def next_seq(session: Session) -> int:
    last_seq = Message.objects.filter(session=session).order_by("-seq").values_list("seq", flat=True).first()
    return 0 if last_seq is None else last_seq + 1


def record_refusal(*, session: Session, text: str, lock_token: str) -> None:
    """A message refused by the budget: its text is kept in the session, marked `budget_exceeded`, so the
    replay shows why nothing answered; it never enters the transcript, so no later model call sees it. The
    lease is given back in the same transaction (which starts with a write: SQLite cannot turn a reading
    transaction into a writing one while another process writes)."""
    seq = next_seq(session)  # the lease is held: no other message adds a row meanwhile
    with transaction.atomic():
        Message.objects.create(
            session=session,
            seq=seq,
            role=MessageRole.USER,
            text=scrub_secrets(text),
            error_code=BudgetExceeded.default_code,
        )
        add_to_session(session, messages=1)
        release_lock(session_id=session.pk, lock_token=lock_token, status=SessionStatus.IDLE)


def load_transcript(session: Session) -> Transcript:
    row = SessionTranscript.objects.filter(session=session).values_list("body", "index", "tokens").first()
    if row is not None:
        return Transcript(*row)
    # A session from before transcripts existed: built once from its rows, then kept.
    rows = Message.objects.filter(session=session).exclude(
        role=MessageRole.USER, error_code=BudgetExceeded.default_code
    )
    transcript = Transcript().appended(legacy_parts(list(rows.order_by("seq"))))
    SessionTranscript.objects.create(
        session=session, body=transcript.body, index=transcript.index, tokens=transcript.tokens
    )
    return transcript


def append_to_transcript(session: Session, parts: list[TranscriptPart], *, at: int) -> int:
    """Append `parts` to a stored body `at` characters long (the caller holds the lease, so it knows);
    concatenated in SQL, so the stored history never travels back. Returns the new length."""
    if not parts:
        return at
    added = Appended.of(parts, at=at)
    # Written as SQL, not as a Concat() update: compiling that expression cost more than running it.
    if not update_session_row(TRANSCRIPT_APPEND_SQL, [added.body, added.index, added.tokens], session):
        SessionTranscript.objects.create(session=session, body=added.body, index=added.index, tokens=added.tokens)
    return at + len(added.body)


def add_to_session(
    session: Session,
    *,
    messages: int = 0,
    usage: TokenUsage | None = None,
    cost_micros: int | None = 0,
    call_latency_ms: int | None = None,
) -> None:
    """Add to a session's running totals (messages, tokens, cost; an unknown cost counts an unpriced call;
    `call_latency_ms`: one more model call, that long), take the cost off the running message's budget
    reservation, and touch its `updated_at`. Plain SQL: the ORM's F()
    increments cost more to compile than to run."""
    usage = usage or TokenUsage()
    now = Session._meta.get_field("updated_at").get_db_prep_value(timezone.now(), connection)
    calls = [0, 0] if call_latency_ms is None else [1, call_latency_ms]
    cost = cost_micros or 0
    values = [*usage.counts().values(), cost, 1 if cost_micros is None else 0, *calls, cost, cost, now]
    update_session_row(SESSION_TOTALS_SQL, [messages, *values], session)


def update_session_row(sql: str, values: list[Any], session: Session) -> int:
    """Run one of the UPDATEs above on this session's row, in the active scope (as the scoped manager
    filters: no active scope raises, another scope's row is not touched). Returns the rows updated."""
    session_key = Session._meta.pk.get_db_prep_value(session.pk, connection)
    with connection.cursor() as cursor:
        cursor.execute(sql, [*values, active_scope(), session_key])
        return cursor.rowcount


def save_partial(
    *,
    session: Session,
    seq: int,
    text: str,
    tool_calls: list[ToolCallRecord],
    message_id: int | None,
    public_id: uuid.UUID,
) -> int:
    """A checkpoint of the model call that is streaming: saved as an interrupted message until it ends,
    so a process that dies leaves at most the last checkpoint's worth of text unsaved. Returns the
    message's id (`message_id`: the row an earlier checkpoint made; `public_id`: the new row's)."""
    saved_calls = [call.saved() for call in tool_calls]
    if message_id is not None:
        Message.objects.filter(pk=message_id).update(text=text, tool_calls=saved_calls)
        return message_id
    with transaction.atomic():
        message = Message.objects.create(
            session=session,
            seq=seq,
            public_id=public_id,
            role=MessageRole.ASSISTANT,
            text=text,
            tool_calls=saved_calls,
            interrupted=True,
        )
        add_to_session(session, messages=1)
    return message.pk


@dataclass(frozen=True)
class CallToRecord:
    """A model call that has ended, as the recorder saves it."""

    turn: Turn
    provider: str
    context_dropped: int
    message_id: int | None  # its row, when a checkpoint made it (save_partial)
    finished: bool  # nothing more will happen in it: no tools to run, or cut off
    release_token: str = ""  # the last call of its message: release the session's lease with it
    # Its message's public id when this write creates the row (the recorder chose it: `done` names it).
    public_id: uuid.UUID = field(default_factory=uuid.uuid4)


def record_call(
    *, session: Session, seq: int, call: CallToRecord, parts: list[TranscriptPart], at: int
) -> tuple[int, int | None, int]:
    """A model call that ended: its message, its usage row and the session's totals, in one transaction
    (and its transcript part when it is finished). Returns its message's id, its cost and the
    transcript's new length."""
    turn, usage = call.turn, call.turn.usage
    assert usage is not None, "AgentLoop sets the usage before recording a call"
    cost = cost_micros(price_for_model(turn.model), **usage.counts())
    fields = {
        "text": turn.text,
        "tool_calls": [c.saved() for c in turn.tool_calls],
        # Still running tools: it stays marked interrupted until record_tool_calls clears it.
        "interrupted": turn.interrupted or not call.finished,
        "error_code": turn.error_code,
        "context_dropped": call.context_dropped,
    }
    with transaction.atomic():
        if call.message_id is not None:
            Message.objects.filter(pk=call.message_id).update(**fields)
            message_id = call.message_id
        else:
            message_id = Message.objects.create(
                session=session, seq=seq, public_id=call.public_id, role=MessageRole.ASSISTANT, **fields
            ).pk
        add_to_session(
            session,
            messages=0 if call.message_id is not None else 1,
            usage=usage,
            cost_micros=cost,
            call_latency_ms=turn.latency_ms,
        )
        length = append_to_transcript(session, parts, at=at)
        if call.release_token:
            status = SessionStatus.ERROR if turn.error_code else SessionStatus.IDLE
            release_lock(session_id=session.pk, lock_token=call.release_token, status=status)
        # Last: its triggers lock the usage rollup's rows of this day, deploy and model (agents.usage_rollup)
        # until the commit, which other tenants' calls may be waiting for.
        UsageRecord.objects.create(
            session=session,
            message_id=message_id,
            deploy_id=session.deploy_id,
            provider=call.provider,
            model=turn.model,
            **usage.counts(),
            latency_ms=turn.latency_ms,
            cost_micros=cost,
        )
    return message_id, cost, length


def record_tool_calls(
    *,
    session: Session,
    seq: int,
    tool_calls: list[ToolCallRecord],
    interrupted: bool,
    parts: list[TranscriptPart],
    at: int,
) -> int:
    """The tool calls of a model call so far (a checkpoint after each one); with `parts`, the last: the
    call is then finished and goes into the transcript. Returns the transcript's new length."""
    with transaction.atomic():
        Message.objects.filter(session=session, seq=seq).update(
            tool_calls=[call.saved() for call in tool_calls], interrupted=interrupted or not parts
        )
        return append_to_transcript(session, parts, at=at)


def legacy_parts(rows: list[Message]) -> list[TranscriptPart]:
    """Saved rows as transcript parts, one per exchange (a user message and what answered it)."""
    exchanges: list[list[Message]] = []
    for row in rows:
        if row.role == MessageRole.USER or not exchanges:
            exchanges.append([])
        exchanges[-1].append(row)
    return [TranscriptPart.of(provider_messages(group), starts_exchange=True) for group in exchanges]


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


def rate(*, session: Session, message_id: uuid.UUID | None, user_sub: str, rating: int, comment: str) -> None:
    """Record `user_sub`'s rating of the session (`message_id` None) or of one of its assistant messages,
    replacing the one they gave before. Atomic under concurrent requests: the row is updated, else created;
    a create that loses a race to another (the partial unique constraints of Feedback) updates that row."""
    message = None
    if message_id is not None:
        message = Message.objects.filter(session=session, public_id=message_id).only("pk", "role").first()
        if message is None:
            raise ApiError(404, "message_not_found", "message_id: no message with this id in this session.")
        if message.role != MessageRole.ASSISTANT:
            raise ValidationFailed("message_id: only an assistant message can be rated, not a user message.")
    key = {"session": session, "message": message, "user_sub": user_sub}
    fields = {"rating": rating, "comment": comment, "updated_at": timezone.now(), "deploy_id": session.deploy_id}
    with transaction.atomic():
        if Feedback.objects.filter(**key).update(**fields):
            return
        try:
            with transaction.atomic():
                Feedback.objects.create(**key, **fields)
        except IntegrityError:
            # Another request created it since the update above: this rating replaces that one.
            if not Feedback.objects.filter(**key).update(**fields):
                raise


def delete_session(*, session: Session) -> None:
    session.delete()


def note_scope_activity(*, scope_id: str, lock: bool = False) -> None:
    touch_scope(scope_id=scope_id, lock=lock)
