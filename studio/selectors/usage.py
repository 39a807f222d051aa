"""Cost & Usage: totals, rankings and daily series, every number aggregated by the database over UsageRecord
rows (`GROUP BY` with `Sum`/`Count`/`TruncDate`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from django.db.models import Count, F, Q, QuerySet, Sum, Window
from django.db.models.functions import Coalesce, TruncDate

from agents.models import Deployment, Session, UsageRecord
from studio.filters import DateRange, ScopeParam

RANKING_DEFAULT = 15
RANKING_MAX = 100
TOP_SESSIONS = 10


def usage_rows(date_range: DateRange, scope: ScopeParam | None = None) -> QuerySet[UsageRecord]:
    queryset = UsageRecord.all_scopes.filter(**date_range.filter_kwargs("created_at"))
    if scope is not None and scope.selected:
        queryset = queryset.filter(scope=scope.scope_id)
    return queryset.order_by()


def usage_sums() -> dict[str, Any]:
    """The aggregate of a group of usage rows. `cost` stays NULL when every row is unpriced."""
    return {
        "cost": Sum("cost_micros"),
        "input_tokens": Coalesce(Sum("input_tokens"), 0),
        "output_tokens": Coalesce(Sum("output_tokens"), 0),
        "cache_read_tokens": Coalesce(Sum("cache_read_tokens"), 0),
        "cache_write_tokens": Coalesce(Sum("cache_write_tokens"), 0),
        "calls": Count("pk"),
        "unpriced": Count("pk", filter=Q(cost_micros__isnull=True)),
    }


def with_total_tokens(row: dict[str, Any]) -> dict[str, Any]:
    row["tokens"] = (row.get("input_tokens") or 0) + (row.get("output_tokens") or 0)
    return row


def usage_totals(date_range: DateRange, scope: ScopeParam | None = None) -> dict[str, Any]:
    """Cost, tokens, model calls, unpriced calls and sessions of the range (one query)."""
    return with_total_tokens(
        usage_rows(date_range, scope).aggregate(**usage_sums(), sessions=Count("session", distinct=True))
    )


def scope_ranking(date_range: DateRange, *, limit: int = RANKING_DEFAULT) -> tuple[list[dict[str, Any]], int]:
    """Scopes ranked by cost (then tokens), with tokens, calls and sessions; and how many scopes had
    usage in the range. Two queries: the ranking (the number of scopes comes along as a window
    `COUNT(*) OVER ()` over the groups), then the distinct sessions of the shown scopes only (an index
    range per scope, instead of a DISTINCT over every row of the range)."""
    rows: list[dict[str, Any]] = [
        dict(row)
        for row in usage_rows(date_range)
        .values("scope")
        .annotate(**usage_sums(), scope_count=Window(Count("*")))
        .order_by(F("cost").desc(nulls_last=True), "-input_tokens", "scope")[:limit]
    ]
    scope_count = rows[0]["scope_count"] if rows else 0
    sessions = (
        dict(
            usage_rows(date_range)
            .filter(scope__in=[row["scope"] for row in rows])
            .values("scope")
            .annotate(sessions=Count("session", distinct=True))
            .values_list("scope", "sessions")
        )
        if rows
        else {}
    )
    top_cost = max((row["cost"] or 0 for row in rows), default=0)
    for row in rows:
        with_total_tokens(row)
        row["sessions"] = sessions.get(row["scope"], 0)
        row["share"] = 100.0 * (row["cost"] or 0) / top_cost if top_cost else 0.0
    return rows, scope_count


def usage_by(date_range: DateRange, scope: ScopeParam | None, dimension: str) -> list[dict[str, Any]]:
    """Usage grouped by `model` or `deploy_id`, most expensive first (one query)."""
    if dimension not in {"model", "deploy_id"}:
        raise ValueError(dimension)
    rows = list(
        usage_rows(date_range, scope)
        .values(dimension)
        .annotate(**usage_sums())
        .order_by(F("cost").desc(nulls_last=True), "-input_tokens", dimension)
    )
    top_cost = max((row["cost"] or 0 for row in rows), default=0)
    for row in rows:
        with_total_tokens(row)
        row["share"] = 100.0 * (row["cost"] or 0) / top_cost if top_cost else 0.0
    return rows


def deployments_by_id(deploy_ids: list[str]) -> dict[str, Deployment]:
    return {d.deploy_id: d for d in Deployment.objects.filter(deploy_id__in=deploy_ids)}


@dataclass(frozen=True)
class DayPoint:
    day: date
    cost: int | None
    tokens: int
    calls: int
    unpriced: int


def daily_usage(date_range: DateRange, scope: ScopeParam | None = None) -> list[DayPoint]:
    """Cost, tokens and calls per day (one GROUP BY TruncDate query); days without usage are zeros."""
    rows: Iterable[dict[str, Any]] = (
        dict(row)
        for row in usage_rows(date_range, scope)
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(**usage_sums())
        .order_by("day")
    )
    by_day = {}
    for row in rows:
        day = row["day"] if isinstance(row["day"], date) else date.fromisoformat(str(row["day"]))
        by_day[day] = DayPoint(
            day, row["cost"], row["input_tokens"] + row["output_tokens"], row["calls"], row["unpriced"]
        )
    days = date_range.days()
    if not days and by_day:
        first = date_range.first_day or min(by_day)
        last = date_range.last_day or max(by_day)
        days = DateRange("custom", None, None, first, last).days()
    return [by_day.get(day, DayPoint(day, 0, 0, 0, 0)) for day in days] if days else list(by_day.values())


def top_sessions(
    date_range: DateRange, scope: ScopeParam | None = None, *, limit: int = TOP_SESSIONS
) -> list[dict[str, Any]]:
    """The sessions that cost the most in the range (their usage rows in the range), two queries."""
    rows: list[dict[str, Any]] = [
        dict(row)
        for row in usage_rows(date_range, scope)
        .filter(session__isnull=False)
        .values("session")
        .annotate(**usage_sums())
        .order_by(F("cost").desc(nulls_last=True), "-input_tokens", "session")[:limit]
    ]
    sessions = Session.all_scopes.only("id", "scope", "title", "model", "status", "updated_at").in_bulk(
        [row["session"] for row in rows]
    )
    for row in rows:
        with_total_tokens(row)
        row["object"] = sessions.get(row["session"])
    return rows
