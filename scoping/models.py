from __future__ import annotations

from typing import Any, TypeVar

from django.db import models
from django.db.models import Value

from scoping.context import (
    GLOBAL_SCOPE,
    MAX_SCOPE_ID_LENGTH,
    NoActiveScope,
    ScopeMismatch,
    active_scope,
    active_scope_or_none,
)
from scoping.labels import MAX_LABEL_CHARS, MAX_METADATA_BYTES, MAX_METADATA_DEPTH


class Scope(models.Model):
    """One tenant partition, created on first use. `scope_id` is opaque: we never parse it, and it stays the
    only key. `label` and `metadata` are for people (SPEC §10), set by the SaaS and checked by
    scoping.labels; the database defaults let a process that predates them still create scopes."""

    scope_id = models.CharField(max_length=MAX_SCOPE_ID_LENGTH, unique=True, blank=True)
    label = models.CharField(
        max_length=MAX_LABEL_CHARS,
        blank=True,
        default="",
        db_default="",
        help_text="Shown beside the scope id in Studio, e.g. the customer's name.",
    )
    metadata = models.JSONField(
        blank=True,
        default=dict,
        db_default=Value({}, output_field=models.JSONField()),
        help_text=f"A small JSON object (at most {MAX_METADATA_BYTES} bytes, {MAX_METADATA_DEPTH} levels deep).",
    )
    budget_cost_micros = models.PositiveBigIntegerField(
        null=True,
        blank=True,
        help_text=(
            "This scope's spend cap per budget period, in micro-dollars (1 USD = 1000000), instead of"
            " amodal.json's budgets.scopeCostMicros. Empty: that default. 0: the scope may not use the model."
            " Only applies when amodal.json has budgets."
        ),
    )
    first_seen_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-last_seen_at"]

    def __str__(self) -> str:
        return display_scope(self.scope_id, self.label)


def display_scope(scope_id: str, label: str = "") -> str:
    """How a scope reads in one line: "Acme Hotels · tenant_01H...", "tenant_01H...", "global"."""
    shown = "global" if scope_id == GLOBAL_SCOPE else scope_id
    return f"{label} · {shown}" if label else shown


M = TypeVar("M", bound="ScopedModel")


class ScopedManager(models.Manager[M]):
    """Rows of the active scope only. With no active scope it raises: never "all rows"."""

    def get_queryset(self) -> models.QuerySet[M]:
        return super().get_queryset().filter(scope=active_scope())


class AllScopesManager(models.Manager[M]):
    """Every scope's rows: for operator code (Studio, admin, management commands) only.

    Each use is deliberate and greppable: `Model.all_scopes`.
    """


def scope_of_context() -> str | None:
    """Default for `ScopedModel.scope`: the active scope. With none, the row cannot be saved (save()
    raises, and the column is NOT NULL for bulk inserts), but operator forms can still build one."""
    return active_scope_or_none()


class ScopedModel(models.Model):
    """A row that belongs to exactly one scope.

    The default manager filters by the active scope; creating a row takes the active scope; saving a
    row of another scope while a scope is active is refused.
    """

    # No index of its own: each table's queries lead with the scope in a composite index (scope, ...), which
    # serves `scope = %s` alone too. A plain (scope) index and PostgreSQL's (scope varchar_pattern_ops) twin
    # (for LIKE, which nothing runs on a scope id) were two more index entries per insert and per non-HOT
    # update of every row. A table without such a composite declares its own (scope) index.
    scope = models.CharField(max_length=MAX_SCOPE_ID_LENGTH, blank=True, default=scope_of_context)

    objects = ScopedManager()
    all_scopes = AllScopesManager()

    class Meta:
        abstract = True
        # Related-object access (message.session) uses the base manager: keep it unfiltered but
        # explicit, and store the scope on every row so reads never depend on joins.
        base_manager_name = "all_scopes"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.scope is None:
            raise NoActiveScope()
        current = active_scope_or_none()
        if current is not None and self.scope != current:
            raise ScopeMismatch(f"Refusing to save a {type(self).__name__} of another scope inside the active scope.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        current = active_scope_or_none()
        if current is not None and self.scope != current:
            raise ScopeMismatch(f"Refusing to delete a {type(self).__name__} of another scope inside the active scope.")
        return super().delete(*args, **kwargs)


class ApiKey(models.Model):
    """A trusted server-side caller. Only a SHA-256 digest of the key is stored.

    Keys are 256 random bits, so a fast digest is enough (no password-style stretching needed), and
    lookup is one indexed equality.
    """

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, help_text="The first characters, to recognise a key.")
    key_digest = models.CharField(max_length=64, unique=True, editable=False)
    # NULL: any scope; "" restricts the key to the global scope, which is a real scope.
    scope_id = models.CharField(  # noqa: DJ001
        max_length=MAX_SCOPE_ID_LENGTH,
        null=True,
        blank=True,
        help_text="Restrict the key to this one scope (empty: any scope, given in the request body).",
    )
    shared_write = models.BooleanField(default=False, help_text="May write documents in shared stores.")
    manage_credentials = models.BooleanField(
        default=False, help_text="May set, list and delete per-scope credentials through /api/credentials."
    )
    manage_scopes = models.BooleanField(
        default=False, help_text="May read and set a scope's label and metadata through /api/scopes/<scope id>."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API key"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class ScopeAuditEntry(models.Model):
    """One export or erase of a scope's data (SPEC §10): who, when, which scope, how many rows of each kind.

    Written when the work starts (`status` started) and completed at its end, so an export cut off by its
    client or an erase that failed half-way still says what it did. It keeps the raw scope id, the one place
    an erased scope's id remains: the record that it was erased. A request refused before anything was read
    or written (no permission, an unknown scope, an erase without --yes) writes nothing here."""

    class Action(models.TextChoices):
        EXPORT = "export"
        ERASE = "erase"

    class Status(models.TextChoices):
        STARTED = "started"
        COMPLETED = "completed"
        FAILED = "failed"

    action = models.CharField(max_length=16, choices=Action.choices)
    scope_id = models.CharField(max_length=MAX_SCOPE_ID_LENGTH, blank=True, db_index=True)
    actor = models.CharField(
        max_length=200, help_text='Who: "api-key:<name>", an operator\'s username, or "manage.py".'
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.STARTED)
    counts = models.JSONField(default=dict, blank=True, help_text="Rows exported or erased, per kind.")
    erased_as = models.CharField(
        max_length=MAX_SCOPE_ID_LENGTH, blank=True, help_text="An erase: the anonymous id its usage rows now carry."
    )
    detail = models.TextField(blank=True, help_text="Why it failed, when it did.")
    started_at = models.DateTimeField(auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "scope audit log entry"
        verbose_name_plural = "scope audit log"
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"{self.action} of {display_scope(self.scope_id)} by {self.actor} at {self.started_at:%Y-%m-%d %H:%M}"
