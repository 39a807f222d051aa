from collections.abc import Callable
from typing import Any, TypeVar

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest
from django.utils import timezone

from scoping.labels import InvalidScopeDetail, ScopeDetailsChange, clean_label, clean_metadata
from scoping.models import ApiKey, Scope, ScopeAuditEntry, display_scope
from scoping.services import create_api_key, set_scope_budget, set_scope_details

T = TypeVar("T")


class ScopeDetailsForm(forms.ModelForm[Scope]):
    """Label and metadata, checked by the same rules as `PUT /api/scopes/<scope id>` (scoping.labels), and the
    scope's own budget cap (agents.budgets)."""

    class Meta:
        model = Scope
        fields = ["label", "metadata", "budget_cost_micros"]

    def clean_label(self) -> str:
        return self._checked(clean_label, self.cleaned_data.get("label", ""))

    def clean_metadata(self) -> dict[str, Any]:
        value = self.cleaned_data.get("metadata")
        return self._checked(clean_metadata, {} if value is None else value)  # an empty box: no metadata

    @staticmethod
    def _checked(clean: Callable[[object], T], value: object) -> T:
        try:
            return clean(value)
        except InvalidScopeDetail as exc:
            raise forms.ValidationError(str(exc))


@admin.register(Scope)
class ScopeAdmin(admin.ModelAdmin[Scope]):
    form = ScopeDetailsForm
    list_display = ["shown_scope", "label", "budget_cost_micros", "first_seen_at", "last_seen_at"]
    search_fields = ["scope_id", "label"]
    fields = ["scope_id", "label", "metadata", "budget_cost_micros", "first_seen_at", "last_seen_at"]
    readonly_fields = ["scope_id", "first_seen_at", "last_seen_at"]
    date_hierarchy = "last_seen_at"

    @admin.display(description="scope", ordering="scope_id")
    def shown_scope(self, obj: Scope) -> str:
        return display_scope(obj.scope_id)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # scopes are created on first use

    def save_model(self, request: HttpRequest, obj: Scope, form: forms.ModelForm[Any], change: bool) -> None:
        # Only the form's fields: a whole-row save would put back the last_seen_at read when the form opened.
        with transaction.atomic():
            set_scope_details(
                scope_id=obj.scope_id,
                change=ScopeDetailsChange(label=form.cleaned_data["label"], metadata=form.cleaned_data["metadata"]),
            )
            set_scope_budget(scope_id=obj.scope_id, budget_cost_micros=form.cleaned_data["budget_cost_micros"])


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin[ApiKey]):
    list_display = [
        "name",
        "prefix",
        "scope_id",
        "shared_write",
        "manage_credentials",
        "manage_scopes",
        "created_at",
        "last_used_at",
        "active",
    ]
    list_filter = ["shared_write", "manage_credentials", "manage_scopes"]
    search_fields = ["name", "prefix", "scope_id"]
    actions = ["revoke"]

    @admin.display(boolean=True)
    def active(self, obj: ApiKey) -> bool:
        return obj.is_active

    def get_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> tuple[str, ...]:
        if obj is None:
            return ("name", "scope_id", "shared_write", "manage_credentials", "manage_scopes")
        return (
            "name",
            "prefix",
            "scope_id",
            "shared_write",
            "manage_credentials",
            "manage_scopes",
            "created_at",
            "last_used_at",
            "revoked_at",
        )

    def get_readonly_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> list[str]:
        if obj is None:
            return []
        return ["prefix", "scope_id", "created_at", "last_used_at", "revoked_at"]

    def save_model(self, request: HttpRequest, obj: ApiKey, form: ModelForm[Any], change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        new_key = create_api_key(
            name=obj.name,
            scope_id=obj.scope_id or None,
            shared_write=obj.shared_write,
            manage_credentials=obj.manage_credentials,
            manage_scopes=obj.manage_scopes,
        )
        obj.pk = new_key.api_key.pk
        obj.refresh_from_db()
        self.message_user(
            request,
            f"Copy this key now, it is not shown again: {new_key.raw_key}",
            level=messages.WARNING,
        )

    @admin.action(description="Revoke the selected API keys")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(request, f"Revoked {count} API key(s).")


@admin.register(ScopeAuditEntry)
class ScopeAuditEntryAdmin(admin.ModelAdmin[ScopeAuditEntry]):
    """The scope audit log (exports and erasures): read-only, written only by scoping.services."""

    list_display = ["started_at", "action", "shown_scope", "actor", "status", "counts", "finished_at"]
    list_filter = ["action", "status"]
    search_fields = ["scope_id", "actor", "erased_as"]
    date_hierarchy = "started_at"

    @admin.display(description="scope", ordering="scope_id")
    def shown_scope(self, obj: ScopeAuditEntry) -> str:
        return display_scope(obj.scope_id)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: ScopeAuditEntry | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: ScopeAuditEntry | None = None) -> bool:
        return False
