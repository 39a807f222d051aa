"""Scope labels on every page (SPEC §10): a page collects the scope ids it shows and reads their labels in one
query (`scope_labels`), and the `scope_name` template tag writes "Acme Hotels · tenant_01H…" from them, so a
label never costs a query per row; CSV exports read it in their rows' query (`label_of`). The scope searches
match labels as well as ids (`scope_search`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from django.db.models import OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce

from scoping.models import Scope


@dataclass(frozen=True)
class ScopeLabels:
    """The labels of the scopes a page shows, by scope id (a scope without one is absent)."""

    by_scope_id: Mapping[str, str] = field(default_factory=dict)

    def of(self, scope_id: str) -> str:
        return self.by_scope_id.get(scope_id, "")

    @classmethod
    def of_rows(cls, scopes: Iterable[Scope | None]) -> ScopeLabels:
        """From Scope rows a page has already read (no query)."""
        return cls({scope.scope_id: scope.label for scope in scopes if scope is not None and scope.label})


def scope_labels(scope_ids: Iterable[str]) -> ScopeLabels:
    """The labels of these scopes: one query (none for no ids)."""
    wanted = set(scope_ids)
    if not wanted:
        return ScopeLabels()
    rows = Scope.objects.filter(scope_id__in=wanted).exclude(label="").values_list("scope_id", "label")
    return ScopeLabels(dict(rows))


def label_of(scope_field: str = "scope") -> Coalesce:
    """An annotation: the label of the row's scope ("" when it has none), for exports that stream any number
    of rows: the database looks it up per row (the scope id is unique), in the rows' own query."""
    label = Scope.objects.filter(scope_id=OuterRef(scope_field)).values("label")[:1]
    return Coalesce(Subquery(label), Value(""))


def scope_search(text: str) -> Q:
    """Scope rows whose id or label contains `text`, ignoring case; the global scope (id "") is found by
    "global" or a start of it."""
    matches = Q(scope_id__icontains=text) | Q(label__icontains=text)
    if "global".startswith(text.lower()):
        matches |= Q(scope_id="")
    return matches
