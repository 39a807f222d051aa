"""Per-scope credentials in admin: write-only values, masked display, every change audited (through
connections.services, like the commands and the API), and a page of the credentials scopes still lack."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import path, reverse

from connections import selectors, services
from connections.models import CredentialChange, ScopedCredential, validate_credential_value
from core.admin import ReadOnlyAdmin
from core.agent_folder import current_agent
from scoping.context import InvalidScope, validate_scope_id
from scoping.models import Scope, display_scope


class ScopedCredentialForm(forms.ModelForm):
    scope = forms.CharField(
        required=False,
        max_length=255,
        strip=False,
        help_text="The scope id exactly as the application sends it (empty: the global scope).",
    )
    new_value = forms.CharField(
        label="Value",
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Write-only. Leave empty to keep the stored value.",
    )

    class Meta:
        model = ScopedCredential
        fields = ["scope", "key"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["new_value"].label = "Replace value"
            self.fields["scope"].disabled = True

    def clean_scope(self) -> str:
        value = self.cleaned_data.get("scope") or ""
        try:
            return validate_scope_id(value)
        except InvalidScope as exc:
            raise forms.ValidationError(str(exc))

    def clean_new_value(self) -> str:
        value = self.cleaned_data.get("new_value") or ""
        return validate_credential_value(value) if value else value

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        if not self.instance.pk and not cleaned.get("new_value"):
            self.add_error("new_value", "A new credential needs a value.")
        return cleaned

    def validate_unique(self) -> None:
        """(scope, key) is checked by ScopedCredential.validate_constraints across scopes (admin has no
        active scope, so Django's own uniqueness check through the scoped manager cannot run)."""


@admin.register(ScopedCredential)
class ScopedCredentialAdmin(admin.ModelAdmin):
    form = ScopedCredentialForm
    list_display = ["key", "shown_scope", "masked_value", "updated_at", "updated_by"]
    search_fields = ["scope", "key"]
    readonly_fields = ["masked_value", "created_at", "updated_at", "updated_by"]

    def get_queryset(self, request):
        return ScopedCredential.all_scopes.all()  # operator view across scopes, values stay masked

    def get_fields(self, request, obj=None):
        fields = ["scope", "key", "new_value"]
        return fields + (["masked_value", "created_at", "updated_at", "updated_by"] if obj else [])

    @admin.display(description="scope", ordering="scope")
    def shown_scope(self, obj: ScopedCredential) -> str:
        return display_scope(obj.scope)

    @admin.display(description="stored value")
    def masked_value(self, obj: ScopedCredential) -> str:
        return obj.masked

    def save_model(self, request, obj: ScopedCredential, form, change: bool) -> None:
        services.save_credential(
            credential=obj,
            value=form.cleaned_data.get("new_value") or None,
            actor_name=request.user.get_username(),
            actor=request.user,
        )

    def delete_model(self, request, obj: ScopedCredential) -> None:
        services.delete_credential(
            scope_id=obj.scope, key=obj.key, actor_name=request.user.get_username(), actor=request.user
        )

    def delete_queryset(self, request, queryset) -> None:
        with transaction.atomic():
            for credential in queryset:
                self.delete_model(request, credential)

    def get_urls(self):
        missing = path(
            "missing/",
            self.admin_site.admin_view(self.missing_credentials_view),
            name="connections_scopedcredential_missing",
        )
        return [missing, *super().get_urls()]

    def missing_credentials_view(self, request: HttpRequest) -> TemplateResponse:
        """Per connection, its `scope:KEY` references and the scopes without them, each a link to the add
        form filled in for that scope and key."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        needs = selectors.missing_credentials(agent=current_agent(), include_dev_file=settings.DEBUG)
        context = {
            **self.admin_site.each_context(request),
            "title": "Missing credentials",
            "opts": self.model._meta,
            "connections": needs,
            "scope_count": Scope.objects.count(),
            "add_url": reverse("admin:connections_scopedcredential_add") if self.has_add_permission(request) else "",
            "dev_file": settings.DEBUG,
        }
        return TemplateResponse(request, "admin/connections/scopedcredential/missing_credentials.html", context)


@admin.register(CredentialChange)
class CredentialChangeAdmin(ReadOnlyAdmin):
    list_display = ["at", "action", "key", "scope", "actor_name"]
    list_filter = ["action"]
    search_fields = ["scope", "key", "actor_name"]
    date_hierarchy = "at"
