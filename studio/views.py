"""Studio: the operators' pages, inside Django admin. Thin views over studio.selectors.

Who sees them: staff with `studio.view_studio` (SPEC §8). Every page only reads, and every filter is a
GET parameter (forms and links), so the pages work without JavaScript.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import admin
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_safe

from agents.models import SessionStatus
from scoping.context import InvalidScope, validate_scope_id
from studio import selectors
from studio.charts import daily_chart
from studio.filters import RANGE_PRESETS, parse_date_range, parse_int, parse_scope
from studio.markdown import PAGE_MARKDOWN_CHARS, MarkdownBudget
from studio.models import VIEW_STUDIO, VIEWERS_GROUP
from studio.waterfall import turn_waterfall

MAX_SEARCH = 255


def studio_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """The gate of every Studio page. The admin's own gate first: anonymous users and non-staff are sent
    to the admin login, nothing is cached. Then staff without `studio.view_studio` get a 403 page inside
    the admin (superusers have every permission). GET and HEAD only: Studio changes nothing."""

    read_only = require_safe(view)

    @wraps(view)
    def gated(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.has_perm(VIEW_STUDIO):
            return forbidden(request)
        return read_only(request, *args, **kwargs)

    return admin.site.admin_view(gated)


def forbidden(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "studio/forbidden.html",
        {
            **admin.site.each_context(request),
            "title": "Studio needs a permission",
            "permission": VIEW_STUDIO,
            "group": VIEWERS_GROUP,
        },
        status=403,
    )


def page(request: HttpRequest, template: str, section: str, title: str, **context: Any) -> HttpResponse:
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
    )


def required_scope(request: HttpRequest) -> str:
    """The `scope` parameter of a per-scope page (present; empty means the global scope)."""
    if "scope" not in request.GET:
        raise Http404("No scope given.")
    try:
        return validate_scope_id(request.GET["scope"])
    except InvalidScope:
        raise Http404("Not a scope id.")


@studio_view
def sessions(request: HttpRequest) -> HttpResponse:
    params = request.GET
    status = params.get("status", "")
    filters = selectors.SessionFilters(
        scope=parse_scope(params),
        range=parse_date_range(params, default="all"),
        model=params.get("model", "").strip()[:100],
        status=status if status in SessionStatus.values else "",
    )
    size = parse_int(params.get("per"), default=selectors.SESSION_PAGE_SIZE, low=5, high=200)
    session_page = selectors.session_page(filters, after=params.get("after"), before=params.get("before"), size=size)
    search = params.get("find", "").strip()[:MAX_SEARCH]
    chips = selectors.scope_chips(
        filters, search=search, selected_count=session_page.total if filters.scope.selected else None
    )
    return page(
        request,
        "studio/sessions.html",
        "sessions",
        "Sessions",
        filters=filters,
        page=session_page,
        chips=chips,
        search=search,
        models=selectors.session_models(),
        statuses=SessionStatus.values,
    )


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
    )


@studio_view
def usage(request: HttpRequest) -> HttpResponse:
    params = request.GET
    date_range = parse_date_range(params, default="30d")
    scope = parse_scope(params)
    top = parse_int(params.get("top"), default=selectors.RANKING_DEFAULT, low=5, high=selectors.RANKING_MAX)
    focus = scope if scope.selected else None
    ranking, scope_count = selectors.scope_ranking(date_range, limit=top)
    by_deploy = selectors.usage_by(date_range, focus, "deploy_id")
    daily = selectors.daily_usage(date_range, focus)
    return page(
        request,
        "studio/usage.html",
        "usage",
        "Cost & Usage",
        date_range=date_range,
        scope=scope,
        top=top,
        totals=selectors.usage_totals(date_range),
        focus_totals=selectors.usage_totals(date_range, focus) if focus else None,
        ranking=ranking,
        scope_count=scope_count,
        by_model=selectors.usage_by(date_range, focus, "model"),
        by_deploy=by_deploy,
        deployments=selectors.deployments_by_id([row["deploy_id"] for row in by_deploy]),
        daily=daily,
        chart=daily_chart(daily),
        top_sessions=selectors.top_sessions(date_range, focus),
        ranking_max=selectors.RANKING_MAX,
    )


@studio_view
def scopes(request: HttpRequest) -> HttpResponse:
    search = request.GET.get("q", "").strip()[:MAX_SEARCH]
    scope_page = selectors.scope_page(search=search, after=request.GET.get("after"))
    return page(request, "studio/scopes.html", "scopes", "Scopes", page=scope_page, search=search)


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
    )


@studio_view
def scope_memory(request: HttpRequest) -> HttpResponse:
    scope_id = required_scope(request)
    memory = selectors.memory_page(scope_id, after=request.GET.get("after"))
    return page(
        request, "studio/scope_memory.html", "scopes", "Memory", scope_id=scope_id, memory=memory, scope_tab="memory"
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
    )
