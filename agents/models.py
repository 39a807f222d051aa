"""The record of conversations and what they cost: sessions, messages, usage, deploys, prices."""

from __future__ import annotations

import uuid
from datetime import datetime

from django.db import models
from django.utils import timezone

from agents.usage_rollup import LATENCY_FIELDS, latency_bounds
from scoping.context import MAX_SCOPE_ID_LENGTH
from scoping.models import ScopedModel, scope_of_context


class Deployment(models.Model):
    """One loaded configuration of the agent folder; its id is a hash of the folder's contents."""

    deploy_id = models.CharField(max_length=32, unique=True)
    agent_name = models.CharField(max_length=200)
    agent_version = models.CharField(max_length=100)
    first_seen_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-first_seen_at"]

    def __str__(self) -> str:
        return f"{self.agent_name} {self.agent_version} ({self.deploy_id})"


class SessionStatus(models.TextChoices):
    IDLE = "idle"
    RUNNING = "running"
    INTERRUPTED = "interrupted"
    ERROR = "error"


class Session(ScopedModel):
    """A conversation in one scope. Its scope never changes."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    deploy_id = models.CharField(max_length=32)
    title = models.CharField(max_length=200, blank=True)
    tags = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=16, choices=SessionStatus.choices, default=SessionStatus.IDLE)
    provider = models.CharField(max_length=32, blank=True)
    model = models.CharField(max_length=100, blank=True)
    user_sub = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now_add=True)
    # Running totals, kept with each message so history lists need no aggregation.
    message_count = models.PositiveIntegerField(default=0)
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    cache_read_tokens = models.BigIntegerField(default=0)
    cache_write_tokens = models.BigIntegerField(default=0)
    cost_micros = models.BigIntegerField(default=0)
    unpriced_calls = models.PositiveIntegerField(default=0)
    # Model calls and their summed latency, kept with each call: the mean latency per call is then a
    # column expression (Studio filters on it) with no aggregation of the usage rows.
    model_calls = models.PositiveIntegerField(default=0)
    model_latency_ms = models.BigIntegerField(default=0)
    # The per-session lease: a running message holds it; it expires if its process dies.
    lock_token = models.CharField(max_length=32, blank=True)
    lock_expires_at = models.DateTimeField(null=True, blank=True)
    # The spend budget's reservation of the running message (agents.budgets): what it still counts for
    # beyond its recorded cost, counted only while its lease is live, so a dead process frees it with the lease.
    budget_reserve_micros = models.BigIntegerField(default=0, db_default=0)

    class Meta:
        indexes = [
            models.Index(fields=["scope", "-updated_at"], name="session_scope_updated"),
            models.Index(fields=["-updated_at"], name="session_updated"),
            # Studio's "most expensive first" (both directions; the id breaks ties), also the candidates of
            # Cost & Usage's highest-cost sessions. The other sorts of its list (tokens, messages, created)
            # scan instead: each index is one more write per model call.
            models.Index(fields=["cost_micros", "id"], name="session_cost"),
            # Cost & Usage counts the sessions started in a range, of every scope or of one.
            models.Index(fields=["created_at"], name="session_created"),
            models.Index(fields=["scope", "created_at"], name="session_scope_created"),
            # The lease sweep (services.release_expired_leases) reads only the few sessions holding a lease.
            models.Index(fields=["lock_expires_at"], condition=models.Q(lock_token__gt=""), name="session_leased"),
            # A scope's running messages' budget reservations (agents.budgets.admit): only they have one.
            models.Index(
                fields=["scope"], condition=models.Q(budget_reserve_micros__gt=0), name="session_budget_reserved"
            ),
        ]

    def __str__(self) -> str:
        return self.title or str(self.id)

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def mean_latency_ms(self) -> int | None:
        """The mean latency of its model calls (None before the first call)."""
        return round(self.model_latency_ms / self.model_calls) if self.model_calls else None

    @property
    def shown_status(self) -> str:
        return shown_status(self.status, self.lock_expires_at, timezone.now())


def shown_status(status: str, lock_expires_at: datetime | None, now: datetime) -> str:
    """The status to show: `running` with an expired lease is a message whose process died (until the
    lease sweep, services.release_expired_leases, stores that). `shown_status_filter` is its SQL twin."""
    expired = lock_expires_at is not None and lock_expires_at < now
    return SessionStatus.INTERRUPTED if status == SessionStatus.RUNNING and expired else status


def shown_status_filter(status: str, now: datetime) -> models.Q:
    """The sessions whose `shown_status` at `now` is `status`: a filter that agrees with what lists show."""
    lease_expired = models.Q(lock_expires_at__lt=now)
    if status == SessionStatus.INTERRUPTED:
        return models.Q(status=SessionStatus.INTERRUPTED) | (models.Q(status=SessionStatus.RUNNING) & lease_expired)
    if status == SessionStatus.RUNNING:
        return models.Q(status=SessionStatus.RUNNING) & ~lease_expired
    return models.Q(status=status)


class MessageRole(models.TextChoices):
    USER = "user"
    ASSISTANT = "assistant"


class Message(ScopedModel):
    """One message of a session, in order. An assistant message is one model call: its text and the
    tool calls it made, each with its result or error. It carries its session's scope.

    The history API names a message by `public_id`, a random UUID, never by its integer primary key (a
    counter shared by every scope: see core.public_ids)."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="messages")
    seq = models.PositiveIntegerField()
    role = models.CharField(max_length=16, choices=MessageRole.choices)
    text = models.TextField(blank=True)
    tool_calls = models.JSONField(default=list, blank=True)
    # Set while the message is still streaming (its checkpoints), cleared when it ends normally: a
    # message left interrupted was cut off by the user, a disconnect or a dead process.
    interrupted = models.BooleanField(default=False)
    error_code = models.CharField(max_length=64, blank=True)
    context_dropped = models.PositiveIntegerField(
        default=0, help_text="Earlier exchanges left out of the model's context (agent.maxContextTokens)."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["session", "seq"]
        constraints = [models.UniqueConstraint(fields=["session", "seq"], name="message_session_seq")]
        indexes = [models.Index(fields=["scope", "session", "seq"], name="message_scope_session_seq")]


class FeedbackRating(models.IntegerChoices):
    POSITIVE = 1, "positive"
    NEGATIVE = -1, "negative"


MAX_FEEDBACK_COMMENT_CHARS = 2000


class Feedback(ScopedModel):
    """An end user's rating of a session (`message` empty) or of one assistant message of it, with an
    optional comment. One per (session, message or none, user): rating again replaces it
    (agents.services.rate). It carries its session's scope.

    `user_sub` is the caller's identity as sessions record it (Session.user_sub): a JWT's `sub`,
    `api-key:<name>` for an API key, empty in open development mode. `deploy_id` is the deploy that had
    answered the session when it was rated (its Session.deploy_id then): the configuration the rating judges,
    kept on the row so Cost & Usage counts ratings per deploy without joining every rated session."""

    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="feedback")
    message = models.ForeignKey(Message, on_delete=models.CASCADE, null=True, blank=True, related_name="feedback")
    user_sub = models.CharField(max_length=255, blank=True)
    deploy_id = models.CharField(max_length=32, blank=True, default="", db_default="")
    rating = models.SmallIntegerField(choices=FeedbackRating.choices)
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "end-user rating"
        verbose_name_plural = "end-user ratings"
        constraints = [
            # Two partial constraints, as NULLs are distinct in a unique index: one rating per user of each
            # message, and one of the session as a whole.
            models.UniqueConstraint(
                fields=["session", "message", "user_sub"],
                condition=models.Q(message__isnull=False),
                name="feedback_message_user",
            ),
            models.UniqueConstraint(
                fields=["session", "user_sub"], condition=models.Q(message__isnull=True), name="feedback_session_user"
            ),
            models.CheckConstraint(condition=models.Q(rating__in=[1, -1]), name="feedback_rating_one"),
        ]
        indexes = [
            # Cost & Usage's positive share in a range: of every scope, and of one.
            models.Index(fields=["updated_at"], name="feedback_updated"),
            models.Index(fields=["scope", "updated_at"], name="feedback_scope_updated"),
        ]

    def __str__(self) -> str:
        return f"{self.get_rating_display()} by {self.user_sub or '(anonymous)'} on {self.session_id}"


class SessionTranscript(ScopedModel):
    """A session's conversation in the exact JSON the model is sent, appended as it grows, so a message
    reads one value instead of every row of its session (agents.runtime.transcript)."""

    session = models.OneToOneField(Session, primary_key=True, on_delete=models.CASCADE, related_name="transcript")
    body = models.TextField(blank=True)
    index = models.TextField(blank=True)
    tokens = models.BigIntegerField(default=0)

    class Meta(ScopedModel.Meta):
        # A scope's export and erase read and delete its transcripts by scope (the chat reads by session).
        indexes = [models.Index(fields=["scope"], name="transcript_scope")]


class UsageRecord(ScopedModel):
    """One model call. Cost by day, model, deploy and scope is a GROUP BY over these rows."""

    session = models.ForeignKey(Session, on_delete=models.SET_NULL, null=True, related_name="usage_records")
    message = models.OneToOneField(Message, on_delete=models.SET_NULL, null=True, related_name="usage")
    deploy_id = models.CharField(max_length=32)
    provider = models.CharField(max_length=32)
    model = models.CharField(max_length=100)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cache_read_tokens = models.PositiveIntegerField(default=0)
    cache_write_tokens = models.PositiveIntegerField(default=0)
    latency_ms = models.PositiveIntegerField(default=0)
    cost_micros = models.BigIntegerField(null=True, blank=True, help_text="Empty when the model has no price.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        indexes = [
            models.Index(fields=["scope", "created_at"], name="usage_scope_created"),
            models.Index(fields=["deploy_id", "created_at"], name="usage_deploy_created"),
            models.Index(fields=["model", "created_at"], name="usage_model_created"),
        ]


class UsageSums(models.Model):
    """The sums the usage rollup keeps per key. `cost_micros` sums the priced calls only; with
    `unpriced_calls` a group's cost is unknown (not $0) when every call was unpriced. `latency_bNN` count the
    calls per latency bucket (agents.usage_rollup.latency_bounds, √2 apart), from which p50/p95 come to
    within one bucket."""

    calls = models.BigIntegerField(default=0)
    unpriced_calls = models.BigIntegerField(default=0, help_text="Calls without a price (cost_micros NULL).")
    cost_micros = models.BigIntegerField(default=0, help_text="The sum over the priced calls only.")
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    cache_read_tokens = models.BigIntegerField(default=0)
    cache_write_tokens = models.BigIntegerField(default=0)

    class Meta:
        abstract = True


class UsageRollup(ScopedModel, UsageSums):
    """The usage rows' totals per (UTC day, scope, deploy, model), written only by database triggers on
    UsageRecord in the same transaction as the rows (and by `rebuild_usage_rollup`): see agents.usage_rollup."""

    # The (scope, day) index below serves the lookups by scope: no index of its own.
    scope = models.CharField(max_length=MAX_SCOPE_ID_LENGTH, blank=True, default=scope_of_context)
    day = models.DateField(help_text="UTC day of the usage rows' created_at.")
    deploy_id = models.CharField(max_length=32)
    model = models.CharField(max_length=100)

    class Meta:
        constraints = [
            # Also the index of every range of days over all scopes, and the triggers' ON CONFLICT target.
            models.UniqueConstraint(fields=["day", "scope", "deploy_id", "model"], name="usage_rollup_key")
        ]
        indexes = [models.Index(fields=["scope", "day"], name="usage_rollup_scope_day")]

    def __str__(self) -> str:
        return f"{self.day} {self.scope} {self.deploy_id} {self.model}"


class UsageDailyTotal(UsageSums):
    """Every scope's usage per (UTC day, deploy, model), kept by the same triggers: the all-scope panels of
    Cost & Usage read a few rows a day here instead of one per scope. Each key is split in `stripe`s (the
    usage row's id modulo agents.usage_rollup.STRIPES) so concurrent model calls of different tenants do not
    queue on one row's lock; readers sum the stripes."""

    day = models.DateField(help_text="UTC day of the usage rows' created_at.")
    deploy_id = models.CharField(max_length=32)
    model = models.CharField(max_length=100)
    stripe = models.PositiveSmallIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["day", "deploy_id", "model", "stripe"], name="usage_daily_total_key")
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.deploy_id} {self.model} (stripe {self.stripe})"


class UsageScopeMonth(ScopedModel, UsageSums):
    """A scope's usage per UTC month (no latency histogram), kept by the same triggers: ranking the scopes
    over a long range sums a row per scope and month, and UsageRollup's days for the partial months."""

    # The unique (month, scope) index serves every read: no index on scope alone.
    scope = models.CharField(max_length=MAX_SCOPE_ID_LENGTH, blank=True, default=scope_of_context)
    month = models.DateField(help_text="The first day of the UTC month.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["month", "scope"], name="usage_scope_month_key")]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m} {self.scope}"


for _model in (UsageRollup, UsageDailyTotal):
    for _name, (_low, _high) in zip(LATENCY_FIELDS, latency_bounds(), strict=True):
        _model.add_to_class(
            _name,
            models.IntegerField(
                default=0, help_text=f"Calls with {_low} ms <= latency" + (f" < {_high} ms" if _high else "")
            ),
        )
del _model, _name, _low, _high

# Every table of the usage rollup (agents.usage_rollup.TARGETS): whoever truncates the usage rows truncates them.
USAGE_ROLLUP_MODELS = (UsageRollup, UsageDailyTotal, UsageScopeMonth)


class ModelPrice(models.Model):
    """An admin override of the built-in price table (USD per million tokens, in micro-dollars)."""

    model = models.CharField(max_length=100, unique=True)
    input_micros_per_mtok = models.PositiveBigIntegerField()
    output_micros_per_mtok = models.PositiveBigIntegerField()
    cache_read_micros_per_mtok = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Empty: 10% of the input price."
    )
    cache_write_micros_per_mtok = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Empty: 125% of the input price."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["model"]

    def __str__(self) -> str:
        return self.model


class SessionTag(ScopedModel):
    """One tag of a session, so "sessions with any of these tags" is an indexed lookup on every database."""

    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="tag_rows")
    tag = models.CharField(max_length=64)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["session", "tag"], name="session_tag_unique")]
        indexes = [models.Index(fields=["scope", "tag"], name="session_tag_scope_tag")]
