from __future__ import annotations

import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models

from connections.crypto import decrypt, encrypt
from scoping.context import MAX_SCOPE_ID_LENGTH
from scoping.models import ScopedModel

# The one rule for a credential key, wherever one is written (admin, commands, API): what can follow
# `scope:` in a spec without quoting, up to the column's 100 characters.
validate_credential_key = RegexValidator(
    r"\A[A-Za-z_][A-Za-z0-9_.-]{0,99}\Z",
    "A credential key is 1 to 100 letters, digits, '_', '.' or '-', starting with a letter or '_'.",
)
MAX_CREDENTIAL_VALUE_CHARS = 10_000
SURROGATE = re.compile(r"[\ud800-\udfff]")


def validate_credential_value(value: object) -> str:
    if not isinstance(value, str):
        raise ValidationError("A credential value must be a string.")
    if not value:
        raise ValidationError("A credential value must not be empty.")
    if len(value) > MAX_CREDENTIAL_VALUE_CHARS:
        raise ValidationError(f"A credential value is at most {MAX_CREDENTIAL_VALUE_CHARS} characters long.")
    if "\x00" in value or SURROGATE.search(value):
        raise ValidationError("A credential value must not contain NUL characters or lone surrogates.")
    return value


class ScopedCredential(ScopedModel):
    """A secret of one scope (`scope:KEY` in a connection's auth). Only ciphertext is stored."""

    key = models.CharField(max_length=100, validators=[validate_credential_key])
    encrypted_value = models.TextField(editable=False)
    value_length = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.CharField(max_length=150, blank=True, editable=False)

    class Meta:
        verbose_name = "scoped credential"
        constraints = [models.UniqueConstraint(fields=["scope", "key"], name="credential_scope_key")]
        ordering = ["scope", "key"]

    def __str__(self) -> str:
        return f"{self.key} ({self.scope or 'global'})"

    def validate_constraints(self, exclude=None) -> None:
        """The one constraint, (scope, key) unique, checked across scopes. Django's own check would go
        through the default manager, which is scoped and refuses to run where no scope is active (an
        admin form), so every add or change in admin failed with NoActiveScope."""
        if exclude and {"scope", "key"} & set(exclude):
            return  # a field that failed its own validation reports that error instead
        duplicates = ScopedCredential.all_scopes.filter(scope=self.scope, key=self.key)
        if self.pk is not None:
            duplicates = duplicates.exclude(pk=self.pk)
        if duplicates.exists():
            raise ValidationError({"key": "This scope already has a credential with this key."})

    def set_value(self, value: str) -> None:
        self.encrypted_value = encrypt(value)
        self.value_length = len(value)

    def reveal(self) -> str:
        """The clear value: for the request tool only, never for display."""
        return decrypt(self.encrypted_value)

    @property
    def masked(self) -> str:
        return "•" * 8 + f" ({self.value_length} characters)" if self.value_length else "(empty)"


class CredentialChange(models.Model):
    """Who changed which credential and when. Never the value."""

    class Action(models.TextChoices):
        CREATED = "created"
        REPLACED = "replaced"
        RENAMED = "renamed"
        DELETED = "deleted"

    scope = models.CharField(max_length=MAX_SCOPE_ID_LENGTH, blank=True, db_index=True)
    key = models.CharField(max_length=100)
    action = models.CharField(max_length=16, choices=Action.choices)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    actor_name = models.CharField(max_length=150, blank=True)
    at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"{self.action} {self.key} ({self.scope or 'global'}) by {self.actor_name} at {self.at:%Y-%m-%d %H:%M}"


class PendingAction(ScopedModel):
    """A write that needs the user's approval: remembered per session, approved by the user's own
    message, executed at most once by a matching `confirmed_write`."""

    session_id = models.UUIDField()
    correlation_id = models.CharField(max_length=100)
    connection = models.CharField(max_length=100)
    method = models.CharField(max_length=10)
    endpoint = models.CharField(max_length=2000)
    fingerprint = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    denied_at = models.DateTimeField(null=True, blank=True)
    executed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["scope", "session_id", "correlation_id"], name="pending_action_unique")
        ]
        indexes = [models.Index(fields=["scope", "session_id", "fingerprint"], name="pending_action_lookup")]
