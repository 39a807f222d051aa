"""Per-scope credentials in admin: write-only values, masked display, every change audited."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.db import transaction

from amodal_site.admin import ReadOnlyAdmin
from connections.models import CredentialChange, ScopedCredential
from scoping.context import InvalidScope, validate_scope_id
from scoping.models import display_scope


class ScopedCredentialForm(forms.ModelForm):
    scope = forms.CharField(
        required=False, max_length=255, strip=False,
        help_text="The scope id exactly as the application sends it (empty: the global scope).",
    )
    new_value = forms.CharField(
        label="Value", required=False, strip=False,
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

    def clean(self):
        cleaned = super().clean()
        if not self.instance.pk and not cleaned.get("new_value"):
            self.add_error("new_value", "A new credential needs a value.")
        return cleaned

    def validate_unique(self) -> None:
        """(scope, key) is checked by ScopedCredential.validate_constraints across scopes (admin has no
        active scope, so Django's own uniqueness check through the scoped manager cannot run)."""


def audit(request, credential: ScopedCredential, action: str) -> None:
    CredentialChange.objects.create(
        scope=credential.scope, key=credential.key, action=action,
        actor=request.user, actor_name=request.user.get_username(),
    )


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
        new_value = form.cleaned_data.get("new_value")
        with transaction.atomic():
            if new_value:
                obj.set_value(new_value)
            obj.updated_by = request.user.get_username()
            obj.save()
            if not change:
                audit(request, obj, CredentialChange.Action.CREATED)
            else:
                if "key" in form.changed_data:
                    audit(request, obj, CredentialChange.Action.RENAMED)
                if new_value:
                    audit(request, obj, CredentialChange.Action.REPLACED)

    def delete_model(self, request, obj: ScopedCredential) -> None:
        with transaction.atomic():
            audit(request, obj, CredentialChange.Action.DELETED)
            obj.delete()

    def delete_queryset(self, request, queryset) -> None:
        with transaction.atomic():
            for credential in queryset:
                audit(request, credential, CredentialChange.Action.DELETED)
            queryset.delete()


@admin.register(CredentialChange)
class CredentialChangeAdmin(ReadOnlyAdmin):
    list_display = ["at", "action", "key", "scope", "actor_name"]
    list_filter = ["action"]
    search_fields = ["scope", "key", "actor_name"]
    date_hierarchy = "at"
