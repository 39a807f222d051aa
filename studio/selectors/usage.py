"""Cost & Usage: totals, rankings and daily series, aggregated by the database.

The panels read the usage rollup (agents.UsageRollup: per UTC day, scope, deploy and model, kept by
triggers in the same transaction as the usage rows), so a year of one scope or of every scope is a GROUP BY
over days × keys, not over every model call. A group's cost is NULL ("unpriced", never $0) when none of its
calls was priced: `cost_micros` sums only the priced calls and `unpriced_calls` counts the others.

"Sessions" are the sessions **started** in the range (Session.created_at, an index range): a distinct count
of sessions with usage cannot be summed from per-day rows, and a session that spans two days would count in
both. The highest-cost sessions read the usage rows themselves (see `top_sessions`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from django.db.models import Case, Count, F, OuterRef, Q, QuerySet, Subquery, Sum, When, Window
from django.db.models.functions import Coalesce
from django.db.models.lookups import GreaterThan

from agents.models import Deployment, Session, UsageRecord, UsageRollup
from agents.usage_rollup import LATENCY_FIELDS, latency_percentile
from studio.filters import DateRange, ScopeParam

RANKING_DEFAULT = 15
RANKING_MAX = 100
TOP_SESSIONS = 10
# Highest-cost sessions: how many candidates (by their whole-session totals) per session shown.
CANDIDATES_PER_TOP_SESSION = 3
TOKEN_FIELDS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")


def focused(scope: ScopeParam | None) -> str | None:
    """The scope id the panels are focused on, or None for every scope."""
    return scope.scope_id if scope is not None and scope.selected else None


def rollup_rows(date_range: DateRange, scope: ScopeParam | None = None) -> QuerySet[UsageRollup]:
    queryset = UsageRollup.all_scopes.filter(**date_range.day_kwargs("day"))
    scope_id = focused(scope)
    if scope_id is not None:
        queryset = queryset.filter(scope=scope_id)
    return queryset.order_by()


def usage_rows(date_range: DateRange, scope: ScopeParam | None = None) -> QuerySet[UsageRecord]:
    """The usage rows themselves (for per-session figures, which the rollup does not keep)."""
    queryset = UsageRecord.all_scopes.filter(**date_range.filter_kwargs("created_at"))
    scope_id = focused(scope)
    if scope_id is not None:
        queryset = queryset.filter(scope=scope_id)
    return queryset.order_by()


def rollup_sums(prefix: str = "", condition: Q | None = None) -> dict[str, Any]:
    """The aggregate of a group of rollup rows (of those matching `condition`): `cost` is NULL when no call
    of the group was priced. The cost comes first: it reads the `calls` column, which an unprefixed `calls`
    total shadows once defined (and in an aggregate(), every name must differ from the columns: a prefix)."""

    def total(name: str) -> Coalesce:
        return Coalesce(Sum(name, filter=condition), 0)

    priced = GreaterThan(Sum("calls", filter=condition), Sum("unpriced_calls", filter=condition))
    return {
        f"{prefix}cost": Case(When(priced, then=Sum("cost_micros", filter=condition))),
        **{f"{prefix}{name}": total(name) for name in TOKEN_FIELDS},
        f"{prefix}calls": total("calls"),
        f"{prefix}unpriced": total("unpriced_calls"),
    }


def usage_sums() -> dict[str, Any]:
    """The same aggregate over usage rows (one model call each)."""
    return {
        "cost": Sum("cost_micros"),
        **{name: Coalesce(Sum(name), 0) for name in TOKEN_FIELDS},
        "calls": Count("pk"),
        "unpriced": Count("pk", filter=Q(cost_micros__isnull=True)),
    }


def with_total_tokens(row: dict[str, Any]) -> dict[str, Any]:
    row["tokens"] = (row.get("input_tokens") or 0) + (row.get("output_tokens") or 0)
    return row


def with_shares(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Total tokens, and each row's cost as a share of the largest (the bars)."""
    top_cost = max((row["cost"] or 0 for row in rows), default=0)
    for row in rows:
        with_total_tokens(row)
        row["share"] = 100.0 * (row["cost"] or 0) / top_cost if top_cost else 0.0
    return rows


# --- totals and the previous period ----------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """A figure against the previous period: `percent` when the previous one was not zero, else `new`
    when there is something now."""

    previous: int | None
    percent: float | None
    new: bool


@dataclass(frozen=True)
class Totals:
    cost: int | None
    unpriced: int
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    calls: int
    sessions: int
    previous: Totals | None = None
    previous_range: DateRange | None = None
    changes: dict[str, Change] = field(default_factory=dict)

    FIGURES = ("cost", "unpriced", *TOKEN_FIELDS, "calls", "sessions")

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @classmethod
    def of(cls, sums: dict[str, Any], prefix: str, sessions: int) -> Totals:
        return cls(
            cost=sums[f"{prefix}cost"],
            unpriced=sums[f"{prefix}unpriced"],
            **{name: sums[f"{prefix}{name}"] for name in TOKEN_FIELDS},
            calls=sums[f"{prefix}calls"],
            sessions=sessions,
        )

    def compared_with(self, previous: Totals, previous_range: DateRange) -> Totals:
        changes = {name: change(getattr(self, name), getattr(previous, name)) for name in self.FIGURES}
        return Totals(
            **{name: getattr(self, name) for name in self.FIGURES},
            previous=previous,
            previous_range=previous_range,
            changes=changes,
        )


def change(now: int | None, before: int | None) -> Change:
    """An unpriced cost (None) counts as no priced cost for the percentage; the previous value stays None."""
    if not before:
        return Change(before, None, new=bool(now))
    return Change(before, 100.0 * ((now or 0) - before) / before, new=False)


@dataclass(frozen=True)
class UsageTotals:
    every_scope: Totals
    focus: Totals | None  # of the focused scope


def usage_totals(date_range: DateRange, scope: ScopeParam | None = None) -> UsageTotals:
    """The totals of every scope and of the focused one, each beside the previous period of the same length
    when the range has one: two queries (the rollup, the sessions started), each one scan of both periods."""
    previous = date_range.previous()
    scanned = replace(date_range, start=previous.start, first_day=previous.first_day) if previous else date_range
    scope_id = focused(scope)
    groups: dict[str, Q | None] = {"now_": Q(**date_range.day_kwargs("day")) if previous else None}
    started: dict[str, Q] = {"now_": Q(**date_range.filter_kwargs("created_at"))}
    if previous:
        groups["previous_"] = Q(**previous.day_kwargs("day"))
        started["previous_"] = Q(**previous.filter_kwargs("created_at"))
    if scope_id is not None:
        for period in list(groups):
            groups[f"focus_{period}"] = Q(scope=scope_id) & (groups[period] or Q())
            started[f"focus_{period}"] = Q(scope=scope_id) & started[period]
    sums: dict[str, Any] = {}
    for prefix, condition in groups.items():
        sums.update(rollup_sums(prefix, condition))
    values = rollup_rows(scanned).aggregate(**sums)
    sessions = Session.all_scopes.filter(**scanned.filter_kwargs("created_at")).aggregate(
        **{prefix: Count("pk", filter=condition) for prefix, condition in started.items()}
    )

    def totals(prefix: str) -> Totals:
        result = Totals.of(values, f"{prefix}now_", sessions[f"{prefix}now_"])
        if previous is None:
            return result
        before = Totals.of(values, f"{prefix}previous_", sessions[f"{prefix}previous_"])
        return result.compared_with(before, previous)

    return UsageTotals(totals(""), totals("focus_") if scope_id is not None else None)


# --- rankings and breakdowns ------------------------------------------------------------------------------


def sessions_started(date_range: DateRange) -> Subquery:
    """The number of sessions a row's scope started in the range (an index range on (scope, created_at))."""
    return Subquery(
        Session.all_scopes.filter(scope=OuterRef("scope"), **date_range.filter_kwargs("created_at"))
        .order_by()
        .values("scope")
        .annotate(started=Count("pk"))
        .values("started")
    )


def ranked_scopes(date_range: DateRange) -> QuerySet[UsageRollup, dict[str, Any]]:
    """Every scope with usage in the range, by cost (then input tokens, then id), with its sessions."""
    return (
        rollup_rows(date_range)
        .values("scope")
        .annotate(**rollup_sums())
        .order_by(F("cost").desc(nulls_last=True), "-input_tokens", "scope")
        .annotate(sessions=Coalesce(sessions_started(date_range), 0))
    )


def scope_ranking(date_range: DateRange, *, limit: int = RANKING_DEFAULT) -> tuple[list[dict[str, Any]], int]:
    """The top `limit` scopes and how many scopes had usage in the range (a window `COUNT(*) OVER ()` over
    the groups): one query; the sessions are counted for the shown scopes only."""
    rows = [dict(row) for row in ranked_scopes(date_range).annotate(scope_count=Window(Count("*")))[:limit]]
    scope_count = rows[0]["scope_count"] if rows else 0
    return with_shares(rows), scope_count


def scope_ranking_rows(date_range: DateRange) -> Iterator[dict[str, Any]]:
    """Every scope of the ranking, streamed from the database (the CSV export)."""
    for row in ranked_scopes(date_range).iterator(chunk_size=2000):
        yield with_total_tokens(dict(row))


def usage_by(date_range: DateRange, scope: ScopeParam | None, dimension: str) -> list[dict[str, Any]]:
    """Usage grouped by `model` (with latency p50/p95 from the histogram) or `deploy_id`, most expensive
    first (one query)."""
    if dimension not in {"model", "deploy_id"}:
        raise ValueError(dimension)
    histogram = {name: Sum(name) for name in LATENCY_FIELDS} if dimension == "model" else {}
    rows = [
        dict(row)
        for row in rollup_rows(date_range, scope)
        .values(dimension)
        .annotate(**rollup_sums(), **histogram)
        .order_by(F("cost").desc(nulls_last=True), "-input_tokens", dimension)
    ]
    for row in rows:
        if histogram:
            counts = [row.pop(name) for name in LATENCY_FIELDS]
            row["p50"] = latency_percentile(counts, 0.5)
            row["p95"] = latency_percentile(counts, 0.95)
    return with_shares(rows)


def deployments_by_id(deploy_ids: list[str]) -> dict[str, Deployment]:
    return {d.deploy_id: d for d in Deployment.objects.filter(deploy_id__in=deploy_ids)}


@dataclass(frozen=True)
class DayPoint:
    day: date
    cost: int | None
    tokens: int
    calls: int
    unpriced: int
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0


def daily_usage(date_range: DateRange, scope: ScopeParam | None = None) -> list[DayPoint]:
    """Cost, tokens and calls per UTC day (one GROUP BY day query); days without usage are zeros."""
    by_day = {}
    for row in rollup_rows(date_range, scope).values("day").annotate(**rollup_sums()).order_by("day"):
        day = row["day"] if isinstance(row["day"], date) else date.fromisoformat(str(row["day"]))
        by_day[day] = DayPoint(
            day,
            row["cost"],
            row["input_tokens"] + row["output_tokens"],
            row["calls"],
            row["unpriced"],
            **{name: row[name] for name in TOKEN_FIELDS},
        )
    days = date_range.days()
    if not days and by_day:
        first = date_range.first_day or min(by_day)
        last = date_range.last_day or max(by_day)
        days = DateRange("custom", None, None, first, last).days()
    return [by_day.get(day, DayPoint(day, 0, 0, 0, 0)) for day in days] if days else list(by_day.values())


# --- the highest-cost sessions: raw rows ------------------------------------------------------------------


def ranking_key(cost: int | None, input_tokens: int) -> tuple[int, int]:
    """Cost (unpriced below any price), then input tokens: the order of the highest-cost sessions."""
    return (-1 if cost is None else cost, input_tokens)


def top_sessions(
    date_range: DateRange, scope: ScopeParam | None = None, *, limit: int = TOP_SESSIONS
) -> list[dict[str, Any]]:
    """The sessions that cost the most in the range (their usage rows in the range), usually two queries.

    A session's usage in the range is at most its running totals (Session.cost_micros and input_tokens are
    the sums of all its usage rows), and its rows lie between its created_at and updated_at. So: take the
    sessions that overlap the range with the highest totals (an index range, `limit` × 3 of them), sum their
    usage rows in the range (the session_id index); when the last one shown ranks strictly above the
    totals of the last candidate, no other session can rank higher and the list is exact. Otherwise (ties,
    or sessions mostly outside the range) it falls back to the GROUP BY session of every row in the range.
    """
    candidates = list(overlapping_sessions(date_range, scope)[: limit * CANDIDATES_PER_TOP_SESSION])
    rows = session_usage(usage_rows(date_range, scope).filter(session__in=[s.pk for s in candidates]), limit)
    by_id = {session.pk: session for session in candidates}
    if len(candidates) == limit * CANDIDATES_PER_TOP_SESSION:
        bound = ranking_key(candidates[-1].cost_micros, candidates[-1].input_tokens)
        if len(rows) < limit or ranking_key(rows[-1]["cost"], rows[-1]["input_tokens"]) <= bound:
            rows = session_usage(usage_rows(date_range, scope).filter(session__isnull=False), limit)
            by_id = session_objects([row["session"] for row in rows])
    for row in rows:
        with_total_tokens(row)
        row["object"] = by_id.get(row["session"])
    return rows


SESSION_FIELDS = ("id", "scope", "title", "model", "status", "created_at", "updated_at", "cost_micros", "input_tokens")


def overlapping_sessions(date_range: DateRange, scope: ScopeParam | None) -> QuerySet[Session]:
    """Sessions whose lifetime overlaps the range, highest totals first."""
    queryset = Session.all_scopes.only(*SESSION_FIELDS)
    if date_range.start is not None:
        queryset = queryset.filter(updated_at__gte=date_range.start)
    if date_range.end is not None:
        queryset = queryset.filter(created_at__lt=date_range.end)
    scope_id = focused(scope)
    if scope_id is not None:
        queryset = queryset.filter(scope=scope_id)
    return queryset.order_by("-cost_micros", "-input_tokens", "id")


def session_usage(rows: QuerySet[UsageRecord], limit: int) -> list[dict[str, Any]]:
    """The usage of the `limit` sessions that cost the most among the rows (unpriced last, then by input
    tokens, then by id)."""
    return [
        dict(row)
        for row in rows.values("session")
        .annotate(**usage_sums())
        .order_by(F("cost").desc(nulls_last=True), "-input_tokens", "session")[:limit]
    ]


def session_objects(ids: list[Any]) -> dict[Any, Session]:
    return Session.all_scopes.only(*SESSION_FIELDS).in_bulk(ids)
