"""The registry of a scope's kinds of data (scoping.scope_data) covers every table that holds a scope's rows, in
an order the erase can follow; the scope audit log is read-only in admin."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.db import models

from scoping import scope_data
from scoping.models import ScopeAuditEntry
from scoping.scope_data import NOT_SCOPE_DATA, ScopeDataKind, register_scope_data, scope_data_kinds

SCOPE_COLUMNS = ("scope", "scope_id")


def label(model: type[models.Model]) -> str:
    return f"{model._meta.app_label}.{model.__name__}"


def tables_with_a_scope_column() -> set[str]:
    found = set()
    for model in apps.get_models():
        names = {field.name for field in model._meta.get_fields()}
        if names & set(SCOPE_COLUMNS):
            found.add(label(model))
    return found


def test_every_table_with_a_scope_column_is_a_registered_kind_or_exempt_with_a_reason():
    """A new per-scope table fails here until its app registers it (AppConfig.ready(), register_scope_data), so
    an export or an erase never forgets it."""
    registered = {label(model) for kind in scope_data_kinds() for model in kind.tables()}
    missing = tables_with_a_scope_column() - registered - set(NOT_SCOPE_DATA)
    assert missing == set(), f"register these in scoping.scope_data (or say why not in NOT_SCOPE_DATA): {missing}"
    assert set(NOT_SCOPE_DATA) <= tables_with_a_scope_column(), "an exemption for a table that is gone"
    assert not set(NOT_SCOPE_DATA) & registered


def test_the_walk_sees_the_tables_it_must():
    found = tables_with_a_scope_column()
    assert {
        "scoping.Scope",
        "agents.Session",
        "agents.UsageRollup",
        "agents.UsageScopeMonth",
        "connections.CredentialChange",
        "memory.MemoryChange",
        "scopetest.Note",
        "scoping.ApiKey",
    } <= found
    assert "agents.UsageDailyTotal" not in found, "every scope's totals: no scope column"


def test_a_kind_is_registered_after_every_kind_its_rows_point_to():
    """The erase goes backwards through the registry, so each table's rows go before the rows they point to."""
    position = {model: index for index, kind in enumerate(scope_data_kinds()) for model in kind.tables()}
    checked = []
    for model, index in position.items():
        for field in model._meta.get_fields():
            if (field.many_to_one or field.one_to_one) and field.concrete and field.related_model in position:
                assert position[field.related_model] < index, f"{label(model)}.{field.name}"
                checked.append(f"{label(model)}.{field.name}")
    assert {"agents.Message.session", "agents.UsageRecord.message", "stores.StoreDocumentVersion.document"} <= set(
        checked
    )


def test_every_kind_is_exported_or_has_a_table_and_names_are_the_specs():
    names = [kind.name for kind in scope_data_kinds()]
    assert len(names) == len(set(names))
    spec = {"session", "message", "tool_call", "usage", "memory", "document", "document_version", "credential"}
    assert spec <= set(names)
    with pytest.raises(ValueError, match="must be exported"):
        ScopeDataKind("nothing", None, rows=None)


def test_a_second_kind_of_the_same_name_or_table_is_refused(monkeypatch):
    monkeypatch.setattr(scope_data, "_kinds", dict(scope_data._kinds))
    session = next(kind for kind in scope_data_kinds() if kind.name == "session")
    assert register_scope_data(session) is session, "the same kind again: nothing changes"
    with pytest.raises(ValueError, match="already registered"):
        register_scope_data(ScopeDataKind("session", None, rows=lambda scope_id: iter(())))
    with pytest.raises(ValueError, match="already another kind's"):
        register_scope_data(ScopeDataKind("session_again", session.model, rows=None))
    with pytest.raises(ValueError, match="'kind' names the kind"):
        scope_data.model_rows(ScopeAuditEntry, [("kind", "action")], order_by=["id"])


@pytest.mark.django_db
def test_the_audit_log_is_read_only_in_admin(admin_client):
    entry = ScopeAuditEntry.objects.create(
        action="erase", scope_id="tenant-a", actor="command:ops", status="completed", counts={"session": 3}
    )
    listing = admin_client.get("/admin/scoping/scopeauditentry/")
    assert listing.status_code == 200
    assert "tenant-a" in listing.content.decode() and "command:ops" in listing.content.decode()
    page = admin_client.get(f"/admin/scoping/scopeauditentry/{entry.pk}/change/")
    assert page.status_code == 200 and 'type="submit"' not in page.content.decode().split('id="content"')[1]
    assert admin_client.get("/admin/scoping/scopeauditentry/add/").status_code == 403
    assert admin_client.post(f"/admin/scoping/scopeauditentry/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    assert ScopeAuditEntry.objects.get().counts == {"session": 3}
