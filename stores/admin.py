"""Operators' view of store documents, across every scope (the deliberate `all_scopes` manager).

Read-mostly: the list shows scope, store, key, version, updated and expiry; a document shows its kept
versions. Adding or changing a document goes through `stores.services.put_document` (validated against the
store's schema, version bumped, history kept), so an operator can seed a shared store (e.g. `categories`,
always in the global partition) or fix one scope's document.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError

from core.agent_folder import current_agent
from scoping.context import GLOBAL_SCOPE, scope
from scoping.models import display_scope
from stores import services
from stores.definitions import stores_of
from stores.documents import DocumentInvalid, clean_document, render_key
from stores.models import StoreDocument, StoreDocumentVersion


class StoreDocumentVersionInline(admin.TabularInline):
    model = StoreDocumentVersion
    fields = ("version", "data", "created_at")
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    ordering = ("-version",)
    verbose_name_plural = "previous versions (the store's history.versions are kept)"

    def get_queryset(self, request):
        return StoreDocumentVersion.all_scopes.all()  # operator view; the formset narrows to the document

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class StoreDocumentForm(forms.ModelForm):
    store = forms.ChoiceField(choices=())
    # The form metaclass moves declared fields off the class, so BaseForm.data is not shadowed at run time.
    data = forms.JSONField(help_text="The document: an object with the entity's fields.")  # type: ignore[assignment]

    class Meta:
        model = StoreDocument
        fields = ("scope", "store", "data")
        help_texts = {
            "scope": "The scope (tenant) the document belongs to; shared stores always use the "
            "global partition (empty)."
        }

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        stores = stores_of(current_agent())
        store_field = self.fields.get("store")  # absent (read-only) once the document exists
        if isinstance(store_field, forms.ChoiceField):
            store_field.choices = [
                (name, f"{name} (shared)" if definition.shared else name) for name, definition in stores.items()
            ]
        if "scope" in self.fields:
            self.fields["scope"].required = False
            if self.initial.get("scope") is None:
                self.initial["scope"] = GLOBAL_SCOPE

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        definition = stores_of(current_agent()).get(cleaned.get("store") or self.instance.store)
        if definition is None:
            raise ValidationError({"store": "This store is not defined by the agent folder."})
        if definition.shared:
            cleaned["scope"] = GLOBAL_SCOPE
        elif cleaned.get("scope") is None:
            cleaned["scope"] = self.instance.scope or GLOBAL_SCOPE
        if "data" in cleaned:
            try:
                key = render_key(definition, clean_document(definition, cleaned["data"]))
            except DocumentInvalid as exc:
                raise ValidationError({"data": [str(problem) for problem in exc.problems]})
            if self.instance.pk and key != self.instance.key:
                raise ValidationError(
                    {
                        "data": f"The key fields now render {key!r}, not this document's key "
                        f"{self.instance.key!r}: add a new document instead."
                    }
                )
        cleaned["definition"] = definition
        return cleaned

    def _post_clean(self) -> None:
        # Model validation checks the (scope, store, key) constraint through the default, scoped manager:
        # run it in the document's partition (a write by key is an upsert anyway).
        partition = self.cleaned_data.get("scope")
        with scope(partition if partition is not None else self.instance.scope or GLOBAL_SCOPE):
            super()._post_clean()  # type: ignore[misc]  # django-stubs omit the private BaseModelForm._post_clean


@admin.register(StoreDocument)
class StoreDocumentAdmin(admin.ModelAdmin):
    form = StoreDocumentForm
    list_display = ("scope_display", "store", "key", "version", "updated_at", "expires_at")
    list_filter = ("store",)
    search_fields = ("key", "scope")
    ordering = ("scope", "store", "key")
    readonly_fields = ("key", "version", "created_at", "updated_at", "expires_at")
    inlines = [StoreDocumentVersionInline]
    list_per_page = 50
    show_full_result_count = False  # no COUNT(*) over every scope's documents on each page

    def get_queryset(self, request):
        return StoreDocument.all_scopes.all()  # operator view across every scope, deliberately

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        """A document's page runs inside the document's own scope, so the versions inline (whose formset
        uses the default, scoped manager) shows exactly that partition's rows; the add page, which has no
        versions yet, runs in the global scope (the write itself enters the chosen partition)."""
        document_scope = GLOBAL_SCOPE
        if object_id is not None:
            try:
                found = StoreDocument.all_scopes.filter(pk=object_id).values_list("scope", flat=True).first()
            except (ValueError, ValidationError):
                found = None  # not an id: the admin answers it as a missing object
            document_scope = found if found is not None else GLOBAL_SCOPE
        with scope(document_scope):
            response = super().changeform_view(request, object_id, form_url, extra_context)
            if hasattr(response, "render"):
                response.render()  # a TemplateResponse renders lazily: do it inside the scope
            return response

    def get_readonly_fields(self, request, obj=None):
        if obj is not None:
            return ("scope", "store", *self.readonly_fields)
        return self.readonly_fields

    @admin.display(description="scope", ordering="scope")
    def scope_display(self, obj: StoreDocument) -> str:
        return display_scope(obj.scope)

    def save_model(self, request, obj: StoreDocument, form, change: bool) -> None:
        """Write through the service: validation, version bump and history, in the document's partition."""
        definition = form.cleaned_data["definition"]
        partition = GLOBAL_SCOPE if definition.shared else form.cleaned_data.get("scope", obj.scope)
        with scope(partition):
            result = services.put_document(
                definition=definition,
                document=form.cleaned_data["data"],
                key=obj.key if change else None,
                shared_write=True,
            )
        saved = result.document
        obj.pk, obj.scope, obj.key, obj.data = saved.pk, saved.scope, saved.key, saved.data
        obj.version, obj.created_at, obj.updated_at, obj.expires_at = (
            saved.version,
            saved.created_at,
            saved.updated_at,
            saved.expires_at,
        )
        obj._state.adding = False
