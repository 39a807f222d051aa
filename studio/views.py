"""Studio: the operators' pages, inside Django admin. Thin views over studio.selectors.

Who sees them: staff with `studio.view_studio` (SPEC §8). The pages only read, and every filter is a GET
parameter (forms and links), so they work without JavaScript. The one exception is a scope's memory: an
entry is edited or deleted through a form page of its own (POST, with the admin's CSRF protection), which
also needs the model permission of that change; memory.services validates it, checks the budgets and
records it with who and when.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_safe

from agents.agent_folder import manifest_of
from agents.models import Deployment, SessionStatus
from core.agent_folder import current_agent
from core.errors import ApiError
from memory import services as memory_services
from memory.config import current_memory_config
from memory.errors import MemoryEntryNotFound
from scoping.context import InvalidScope, scope, validate_scope_id
from studio import selectors, usage_export
from studio.charts import daily_chart
from studio.csv_export import csv_chunks, csv_response
from studio.filters import RANGE_PRESETS, ParamError, parse_date_range, parse_int, parse_scope, query_string
from studio.markdown import PAGE_MARKDOWN_CHARS, MarkdownBudget
from studio.models import VIEW_STUDIO, VIEWERS_GROUP
from studio.session_query import SessionQuery, export_filename, form_values, parse_session_query, sort_headers
from studio.usage_export import UsageQuery
from studio.waterfall import turn_waterfall

# How exact the latency percentiles are (the rollup's histogram, agents.usage_rollup), said on the page.
LATENCY_RESOLUTION = "from a histogram with buckets √2 apart: the exact value is in the same bucket (±19%)"

MAX_SEARCH = 255
CHANGE_MEMORY = "memory.change_memoryentry"
DELETE_MEMORY = "memory.delete_memoryentry"
VIEW_MEMORY_CHANGES = "memory.view_memorychange"


def studio_view(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """The gate of every Studio page. The admin's own gate first: anonymous users and non-staff are sent
    to the admin login, nothing is cached. Then staff without `studio.view_studio` get a 403 page inside
    the admin (superusers have every permission). GET and HEAD only: a page that changes something has
    its own gate (`studio_form_view`)."""

    read_only = require_safe(view)

    @wraps(view)
    def gated(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not request.user.has_perm(VIEW_STUDIO):
            return forbidden(request)
        return read_only(request, *args, **kwargs)

    return admin.site.admin_view(gated)


def studio_form_view(permission: str) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """The gate of a Studio page that changes something: `studio_view`'s gate, then `permission` (a model
    permission, e.g. memory.change_memoryentry) or a 403 page naming it. GET shows the form, POST applies
    it (the admin's gate also checks the CSRF token)."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        allowed_methods = require_http_methods(["GET", "HEAD", "POST"])(view)

        @wraps(view)
        def gated(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.has_perm(VIEW_STUDIO):
                return forbidden(request)
            if not request.user.has_perm(permission):
                return forbidden(request, permission)
            return allowed_methods(request, *args, **kwargs)

        return admin.site.admin_view(gated)

    return decorate


def forbidden(request: HttpRequest, permission: str = VIEW_STUDIO) -> HttpResponse:
    """The 403 page: Studio itself (ask for the viewers group), or a change this account may not make."""
    return render(
        request,
        "studio/forbidden.html",
        {
            **admin.site.each_context(request),
            "title": "Studio needs a permission",
            "permission": permission,
            "group": VIEWERS_GROUP if permission == VIEW_STUDIO else None,
        },
        status=403,
    )


def page(
    request: HttpRequest, template: str, section: str, title: str, *, status: int = 200, **context: Any
) -> HttpResponse:
    return render(
        request,
        template,
        {
            **admin.site.each_context(request),
            "is_nav_sidebar_enabled": False,
            "title": title,
            "studio_section": section,
            "range_presets": RANGE_PRESETS,
            **context,
        },
        status=status,
    )


def required_scope(request: HttpRequest) -> str:
    """The `scope` parameter of a per-scope page (present; empty means the global scope)."""
    if "scope" not in request.GET:
        raise Http404("No scope given.")
    try:
        return validate_scope_id(request.GET["scope"])
    except InvalidScope:
        raise Http404("Not a scope id.")


@dataclass(frozen=True)
class SessionsForm:
    """What the sessions page's filter form offers, read before the parameters are checked against it."""

    models: list[str]
    deploys: list[Deployment]

    @classmethod
    def load(cls) -> SessionsForm:
        return cls(selectors.session_models(), selectors.session_deploys())

    def parse(self, params: QueryDict) -> SessionQuery:
        return parse_session_query(params, deploys=[d.deploy_id for d in self.deploys])

    def model_options(self, query: SessionQuery) -> list[str]:
        """The models to choose from, with the one filtered on even when no model call used it."""
        chosen = query.filters.model
        return sorted({*self.models, chosen}) if chosen and chosen not in self.models else self.models


@studio_view
def sessions(request: HttpRequest) -> HttpResponse:
    """The sessions list. Invalid parameters (and a page past the last) answer 400 with the page and the
    errors beside the filter form, so the operator can fix them; nothing is dropped silently."""
    form = SessionsForm.load()
    query = form.parse(request.GET)
    if query.errors:
        return sessions_page(request, form, query, status=400)
    now = timezone.now()
    counts = selectors.session_counts(query.filters, search=query.scope_search, now=now, broad=query.broad_search)
    if counts.total is not None and query.page > (pages := selectors.page_count(counts.total, query.size)):
        error = ParamError("page", str(query.page), f"past the last page ({pages:,} of {counts.total:,} sessions)")
        return sessions_page(request, form, replace(query, errors=[error]), counts=counts, last_page=pages, status=400)
    session_page = selectors.session_page(
        query.filters, query.sort, number=query.page, size=query.size, total=counts.total, now=now
    )
    return sessions_page(request, form, query, counts=counts, rows=session_page)


def shown_scopes(
    query: SessionQuery, counts: selectors.SessionCounts | None, rows: selectors.SessionPage | None
) -> list[str]:
    """Every scope the sessions page names: the chips, the rows, the selected scope."""
    selected = [query.filters.scope.scope_id] if query.filters.scope.selected else []
    chips = [chip.scope_id for chip in counts.chips] if counts else []
    return selected + chips + ([session.scope for session in rows.sessions] if rows else [])


def sessions_page(
    request: HttpRequest,
    form: SessionsForm,
    query: SessionQuery,
    *,
    counts: selectors.SessionCounts | None = None,
    rows: selectors.SessionPage | None = None,
    last_page: int | None = None,
    status: int = 200,
) -> HttpResponse:
    return page(
        request,
        "studio/sessions.html",
        "sessions",
        "Sessions",
        query=query,
        filters=query.filters,
        errors=query.errors,
        invalid={error.name for error in query.errors},
        without_invalid=query_string(request.GET, **{error.name: None for error in query.errors}),
        counts=counts,
        chips=counts.chips if counts else [],
        page=rows,
        search=query.scope_search,
        models=form.model_options(query),
        deploys=form.deploys,
        statuses=SessionStatus.values,
        feedback_choices=selectors.FEEDBACK_FILTERS,
        page_sizes=sorted({10, 25, 50, 100, 200, query.size}),
        headers=sort_headers(query.sort),
        last_page=last_page,
        values=form_values(request.GET),
        postgres=connection.vendor == "postgresql",
        broad_search=settings.AMODAL_STUDIO_BROAD_SEARCH,
        status=status,
        scope_labels=selectors.scope_labels(shown_scopes(query, counts, rows)),
    )


@studio_view
def sessions_csv(request: HttpRequest) -> HttpResponseBase:
    """The filtered sessions list as CSV, every page of it in the page's order, streamed."""
    form = SessionsForm.load()
    query = form.parse(request.GET)
    if query.errors:
        return sessions_page(request, form, query, status=400)
    rows = selectors.session_csv_rows(query.filters, query.sort, now=timezone.now())
    chunks = csv_chunks(selectors.SESSION_CSV_HEADER, rows)
    return csv_response(request, chunks, filename=export_filename(query))


@studio_view
def replay(request: HttpRequest, session_id: uuid.UUID) -> HttpResponse:
    session = selectors.get_session(session_id)
    if session is None:
        raise Http404("No session with this id.")
    from_seq = parse_int(request.GET.get("from"), default=0, low=0, high=2**31 - 1)
    conversation = selectors.session_replay(session, from_seq=from_seq or None)
    return page(
        request,
        "studio/replay.html",
        "sessions",
        session.title or "Untitled session",
        session=session,
        replay=conversation,
        turns=conversation.turns,
        waterfalls={turn.anchor: turn_waterfall(turn.timeline) for turn in conversation.turns},
        markdown_budget=MarkdownBudget(PAGE_MARKDOWN_CHARS),
        scope_labels=selectors.scope_labels([session.scope]),
    )


def usage_query(request: HttpRequest) -> UsageQuery:
    return UsageQuery(parse_date_range(request.GET, default="30d"), parse_scope(request.GET))


@studio_view
def usage(request: HttpRequest) -> HttpResponse:
    query = usage_query(request)
    date_range, scope = query.date_range, query.scope
    top = parse_int(request.GET.get("top"), default=selectors.RANKING_DEFAULT, low=5, high=selectors.RANKING_MAX)
    ranking, scope_count = selectors.scope_ranking(date_range, limit=top)
    breakdown = selectors.usage_breakdown(date_range, scope)
    top_sessions = selectors.top_sessions(date_range, scope)
    budget = selectors.budget_use(manifest_of(current_agent()).budgets, [row["scope"] for row in ranking])
    shown_scopes = [row["scope"] for row in ranking] + [row["object"].scope for row in top_sessions if row["object"]]
    shown_scopes += [use.scope for use in budget.near] if budget else []
    return page(
        request,
        "studio/usage.html",
        "usage",
        "Cost & Usage",
        date_range=date_range,
        scope=scope,
        top=top,
        # The panels follow the focus; the totals at the top are always of every scope.
        totals=selectors.usage_totals(date_range) if scope.selected else breakdown.totals,
        focus_totals=breakdown.totals if scope.selected else None,
        ranking=ranking,
        scope_count=scope_count,
        by_model=breakdown.by_model,
        by_deploy=selectors.deploys_with_ratings(breakdown.by_deploy, date_range, scope),
        deployments=selectors.deployments_by_id([row["deploy_id"] for row in breakdown.by_deploy]),
        daily=breakdown.daily,
        chart=daily_chart(breakdown.daily),
        top_sessions=top_sessions,
        ranking_max=selectors.RANKING_MAX,
        budget=budget,
        near_percent=selectors.NEAR_PERCENT,
        latency_resolution=LATENCY_RESOLUTION,
        scope_labels=selectors.scope_labels(shown_scopes + ([scope.scope_id] if scope.selected else [])),
    )


@studio_view
def usage_csv(request: HttpRequest, panel: str) -> HttpResponseBase:
    """One Cost & Usage panel as CSV, for the page's parameters (`/studio/usage/by-model.csv?range=7d`)."""
    export = usage_export.PANELS.get(panel)
    if export is None:
        raise Http404(f"No Cost & Usage panel {panel!r}: one of {', '.join(usage_export.PANELS)}.")
    query = usage_query(request)
    header, rows = export(query)
    return csv_response(request, csv_chunks(header, rows), filename=usage_export.filename(panel, query))


@studio_view
def scopes(request: HttpRequest) -> HttpResponse:
    search = request.GET.get("q", "").strip()[:MAX_SEARCH]
    scope_page = selectors.scope_page(search=search, after=request.GET.get("after"))
    labels = scope_page.labels
    return page(request, "studio/scopes.html", "scopes", "Scopes", page=scope_page, search=search, scope_labels=labels)


@studio_view
def scope_detail(request: HttpRequest) -> HttpResponse:
    scope_id = required_scope(request)
    overview = selectors.scope_overview(scope_id)
    return page(
        request,
        "studio/scope_detail.html",
        "scopes",
        "Scope",
        scope_id=scope_id,
        overview=overview,
        scope_tab="overview",
        scope_labels=selectors.ScopeLabels.of_rows([overview.scope]),
    )


@studio_view
def scope_memory(request: HttpRequest) -> HttpResponse:
    scope_id = required_scope(request)
    memory = selectors.memory_page(scope_id, after=request.GET.get("after"))
    user = request.user
    return page(
        request,
        "studio/scope_memory.html",
        "scopes",
        "Memory",
        scope_id=scope_id,
        memory=memory,
        budget=current_memory_config(),
        may_edit=user.has_perm(CHANGE_MEMORY),
        may_delete=user.has_perm(DELETE_MEMORY),
        may_view_changes=user.has_perm(VIEW_MEMORY_CHANGES),
        scope_tab="memory",
        scope_labels=selectors.scope_labels([scope_id]),
    )


def memory_url(scope_id: str, entry_id: uuid.UUID | None = None) -> str:
    """The scope's memory page (at the entry's row, when given)."""
    url = reverse("studio:scope_memory") + "?" + urlencode({"scope": scope_id})
    return url + f"#entry-{entry_id}" if entry_id else url


def operator(request: HttpRequest) -> User:
    """The signed-in staff user (the admin's gate let only such a user through)."""
    if not isinstance(request.user, User):
        raise PermissionDenied
    return request.user


def memory_entry_or_404(scope_id: str, entry_id: uuid.UUID) -> Any:
    """The entry; 404 when it is missing or belongs to another scope (the same answer for both)."""
    entry = selectors.memory_entry(scope_id, entry_id)
    if entry is None:
        raise Http404("No memory entry with this id in this scope.")
    return entry


@studio_form_view(CHANGE_MEMORY)
def memory_entry_edit(request: HttpRequest, entry_id: uuid.UUID) -> HttpResponse:
    """GET: the entry in a form. POST: the new content through memory.services (validation, budgets, the
    record of the change); back to the memory page, or the form again with the error and nothing written."""
    scope_id = required_scope(request)
    entry = memory_entry_or_404(scope_id, entry_id)
    config = current_memory_config()
    content, error = entry.content, ""
    if request.method == "POST":
        content = request.POST.get("content", "")
        try:
            with scope(scope_id):
                result = memory_services.edit_entry(
                    entry_id=entry_id, content=content, config=config, changed_by=operator(request)
                )
        except MemoryEntryNotFound:
            raise Http404("No memory entry with this id in this scope.") from None  # deleted meanwhile
        except ApiError as exc:
            error = exc.message.removeprefix("content: ")  # the form has that one field
        else:
            if result.changed:
                messages.success(request, "The memory entry was saved; the change is recorded below.")
            else:
                messages.info(request, "Nothing changed: the content was the same.")
            return HttpResponseRedirect(memory_url(scope_id, entry_id))
    return page(
        request,
        "studio/memory_entry_edit.html",
        "scopes",
        "Edit memory entry",
        scope_id=scope_id,
        entry=entry,
        content=content,
        error=error,
        budget=config,
        totals=selectors.memory_totals(scope_id),
        scope_tab="memory",
        scope_labels=selectors.scope_labels([scope_id]),
    )


@studio_form_view(DELETE_MEMORY)
def memory_entry_delete(request: HttpRequest, entry_id: uuid.UUID) -> HttpResponse:
    """GET: asks to confirm (a page of its own, so it works without JavaScript). POST: deletes the entry
    through memory.services, which records the delete; back to the memory page."""
    scope_id = required_scope(request)
    entry = memory_entry_or_404(scope_id, entry_id)
    if request.method == "POST":
        try:
            with scope(scope_id):
                memory_services.remove_entry(entry_id=entry_id, changed_by=operator(request))
        except MemoryEntryNotFound:
            raise Http404("No memory entry with this id in this scope.") from None  # deleted meanwhile
        messages.success(request, "The memory entry was deleted; the delete is recorded below.")
        return HttpResponseRedirect(memory_url(scope_id))
    return page(
        request,
        "studio/memory_entry_delete.html",
        "scopes",
        "Delete memory entry",
        scope_id=scope_id,
        entry=entry,
        scope_tab="memory",
        scope_labels=selectors.scope_labels([scope_id]),
    )


@studio_view
def scope_stores(request: HttpRequest) -> HttpResponse:
    scope_id = required_scope(request)
    store = request.GET.get("store", "").strip()[:64]
    return page(
        request,
        "studio/scope_stores.html",
        "scopes",
        "Store documents",
        scope_id=scope_id,
        store=store,
        stores=selectors.document_stores(scope_id),
        documents=selectors.document_page(scope_id, store=store, after=request.GET.get("after")),
        now=timezone.now(),
        scope_tab="stores",
        scope_labels=selectors.scope_labels([scope_id]),
    )


@studio_view
def document(request: HttpRequest, pk: str) -> HttpResponse:
    detail = selectors.document_detail(pk)
    if detail is None:
        raise Http404("No store document with this id.")
    return page(
        request,
        "studio/document.html",
        "scopes",
        f"{detail.document.store} / {detail.document.key}",
        scope_id=detail.document.scope,
        detail=detail,
        now=timezone.now(),
        scope_tab="stores",
        scope_labels=selectors.scope_labels([detail.document.scope]),
    )
