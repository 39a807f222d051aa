"""Cost & Usage: totals, rankings and daily series, aggregated by the database.

The panels read the usage rollup (agents.usage_rollup, kept by triggers in the same transaction as the usage
rows): every scope's figures from the daily totals (UsageDailyTotal: a few rows per day, deploy and model), a
focused scope's from UsageRollup (per day, scope, deploy and model), the scope ranking from UsageScopeMonth
(per scope and month) and UsageRollup's days around whole months. A year is a GROUP BY over a few thousand
rows, not over every model call. A group's cost is NULL ("unpriced", never $0) when none of its calls was
priced: `cost_micros` sums only the priced calls and `unpriced_calls` counts the others.

"Sessions" are the sessions **started** in the range (Session.created_at, an index range): a distinct count
of sessions with usage cannot be summed from per-day rows, and a session that spans two days would count in
both. The highest-cost sessions read the usage rows themselves (see `top_sessions`).

End users' ratings (agents.Feedback) beside the scope ranking and the deploys: the ratings given in the range
(their last change, `updated_at`) and how many were positive, counted by the database per scope or per deploy
(one GROUP BY each, over the (updated_at) or (scope, updated_at) index).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import BigIntegerField, Case, Count, DateField, F, Q, QuerySet, Sum, Value, When
from django.db.models.functions import Cast, Coalesce
from django.db.models.lookups import GreaterThan

from agents.models import (
    Deployment,
    Feedback,
    FeedbackRating,
    Session,
    UsageDailyTotal,
    UsageRecord,
    UsageRollup,
    UsageScopeMonth,
)
from agents.usage_rollup import LATENCY_FIELDS, latency_percentile, month_end, month_start
from scoping.models import Scope
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


def rollup_rows(date_range: DateRange, scope: ScopeParam | None = None) -> QuerySet[Any]:
    """The rollup rows to sum for a range: of every scope, the daily totals (a few rows a day); of one
    scope, its rows (the (scope, day) index)."""
    scope_id = focused(scope)
    if scope_id is None:
        return UsageDailyTotal.objects.filter(**date_range.day_kwargs("day")).order_by()
    return UsageRollup.all_scopes.filter(scope=scope_id, **date_range.day_kwargs("day")).order_by()


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
        return Coalesce(summed(name), 0)

    def summed(name: str) -> Cast:
        # PostgreSQL's SUM of a bigint is a numeric, which arrives as a Decimal: a bigint is several times
        # faster to read, and no sum of these columns comes near 2^63.
        return Cast(Sum(name, filter=condition), BigIntegerField())

    priced = GreaterThan(Sum("calls", filter=condition), Sum("unpriced_calls", filter=condition))
    return {
        f"{prefix}cost": Case(When(priced, then=summed("cost_micros"))),
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


def scanned_range(date_range: DateRange) -> tuple[DateRange, DateRange | None]:
    """The range and the previous period of the same length together (one scan for both), and that period."""
    previous = date_range.previous()
    if previous is None:
        return date_range, None
    return replace(date_range, start=previous.start, first_day=previous.first_day), previous


def sessions_started_in(date_range: DateRange, scope: ScopeParam | None = None) -> tuple[int, int | None]:
    """The sessions started in the range and in the previous period (None without one): one count query
    over the index on (created_at) or (scope, created_at)."""
    scanned, previous = scanned_range(date_range)
    queryset = Session.all_scopes.filter(**scanned.filter_kwargs("created_at"))
    scope_id = focused(scope)
    if scope_id is not None:
        queryset = queryset.filter(scope=scope_id)
    if previous is None:
        return queryset.count(), None
    counts = queryset.aggregate(  # COUNT(created_at), not COUNT(id): an index-only scan
        now=Count("created_at", filter=Q(**date_range.filter_kwargs("created_at"))),
        before=Count("created_at", filter=Q(**previous.filter_kwargs("created_at"))),
    )
    return counts["now"], counts["before"]


def totals_of(
    now: dict[str, Any], before: dict[str, Any] | None, sessions: tuple[int, int | None], previous: DateRange | None
) -> Totals:
    result = Totals.of(now, "", sessions[0])
    if previous is None or before is None:
        return result
    return result.compared_with(Totals.of(before, "", sessions[1] or 0), previous)


def usage_totals(date_range: DateRange, scope: ScopeParam | None = None) -> Totals:
    """The totals of every scope (or one), beside the previous period of the same length when the range
    has one: two queries (the rollup over both periods at once, the sessions started)."""
    scanned, previous = scanned_range(date_range)
    groups = {"now_": Q(**date_range.day_kwargs("day")) if previous else None}
    if previous is not None:
        groups["previous_"] = Q(**previous.day_kwargs("day"))
    sums: dict[str, Any] = {}
    for prefix, condition in groups.items():
        sums.update(rollup_sums(prefix, condition))
    values = as_ints(rollup_rows(scanned, scope).aggregate(**sums))
    now = {name.removeprefix("now_"): value for name, value in values.items() if name.startswith("now_")}
    before = {name.removeprefix("previous_"): value for name, value in values.items() if name.startswith("previous_")}
    return totals_of(now, before if previous else None, sessions_started_in(date_range, scope), previous)


def as_ints(row: dict[str, Any]) -> dict[str, Any]:
    """Sums as ints (PostgreSQL's SUM of a bigint is a numeric), None kept."""
    return {name: int(value) if isinstance(value, Decimal) else value for name, value in row.items()}


# --- one scan for the totals, by model, by deploy and daily --------------------------------------------------


SUMMED = ("unpriced", *TOKEN_FIELDS, "calls")


def combine(rows: list[dict[str, Any]], names: tuple[str, ...] = SUMMED) -> dict[str, Any]:
    """The sum of aggregate rows; the cost stays None when it is None in every row (nothing priced)."""
    total = {name: sum(row[name] for row in rows) for name in names}
    costs = [row["cost"] for row in rows if row["cost"] is not None]
    total["cost"] = sum(costs) if costs else None
    return total


def grouped(rows: list[dict[str, Any]], key: str, names: tuple[str, ...] = SUMMED) -> list[dict[str, Any]]:
    """Rows combined by `key`, most expensive first (unpriced last), then by input tokens, then by key."""
    groups: dict[Any, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row[key], []).append(row)
    combined = [{key: value, **combine(members, names)} for value, members in groups.items()]
    return sorted(
        combined, key=lambda row: (*(-part for part in ranking_key(row["cost"], row["input_tokens"])), row[key])
    )


def latency_by_model(date_range: DateRange, scope: ScopeParam | None) -> dict[str, list[int]]:
    """The latency histogram of each model (call counts per bucket, agents.usage_rollup.LATENCY_FIELDS)."""
    rows = rollup_rows(date_range, scope).values("model").annotate(**{name: Sum(name) for name in LATENCY_FIELDS})
    return {row["model"]: [int(row[name]) for name in LATENCY_FIELDS] for row in rows.order_by()}


@dataclass(frozen=True)
class Breakdown:
    """The usage of a range, of every scope or one: totals (beside the previous period), by model (with
    latency p50/p95), by deploy and per day."""

    totals: Totals | None  # None when not asked for (a CSV of one panel)
    by_model: list[dict[str, Any]]
    by_deploy: list[dict[str, Any]]
    daily: list[DayPoint]


def breakdown_rows(date_range: DateRange, scope: ScopeParam | None) -> list[dict[str, Any]]:
    """One GROUP BY (day, deploy, model) of the range and the previous period, whose days fold into one
    group (`period_day` None)."""
    scanned, previous = scanned_range(date_range)
    day: F | Case = F("day")
    if previous is not None:
        day = Case(When(day__lt=date_range.first_day, then=Value(None)), default=F("day"), output_field=DateField())
    return [
        as_ints(row)
        for row in rollup_rows(scanned, scope)
        .annotate(period_day=day)
        .values("period_day", "deploy_id", "model")
        .annotate(**rollup_sums())
        .order_by()
    ]


def usage_breakdown(
    date_range: DateRange, scope: ScopeParam | None = None, *, with_totals: bool = True, with_latency: bool = True
) -> Breakdown:
    """Three queries: the GROUP BY of breakdown_rows, from which Python adds up the totals and the three
    panels (a few rows a day); the latency histogram by model; the sessions started (for the totals). The
    histogram is a query of its own: 30 more sums per (day, deploy, model) group make PostgreSQL sort
    instead of hash the groups."""
    rows = breakdown_rows(date_range, scope)
    current = [row for row in rows if row["period_day"] is not None]
    totals = None
    if with_totals:
        before = [row for row in rows if row["period_day"] is None]
        sessions = sessions_started_in(date_range, scope)
        totals = totals_of(combine(current), combine(before), sessions, date_range.previous())
    latency = latency_by_model(date_range, scope) if with_latency else {}
    by_model = grouped(current, "model")
    for row in by_model:
        counts = latency.get(row["model"], [])
        row["p50"] = latency_percentile(counts, 0.5)
        row["p95"] = latency_percentile(counts, 0.95)
    return Breakdown(
        totals,
        with_shares(by_model),
        with_shares(grouped(current, "deploy_id")),
        daily_points(date_range, grouped(current, "period_day")),
    )


# --- rankings and breakdowns ------------------------------------------------------------------------------


def sessions_started(date_range: DateRange, scopes: list[str] | None = None) -> dict[str, int]:
    """The number of sessions each scope (of `scopes`, or every one) started in the range: one GROUP BY
    over an index range of Session (created_at, or (scope, created_at) for the listed scopes)."""
    queryset = Session.all_scopes.filter(**date_range.filter_kwargs("created_at"))
    if scopes is not None:
        queryset = queryset.filter(scope__in=scopes)
    # COUNT(created_at), not COUNT(id): the index holds it (an index-only scan).
    return dict(
        queryset.order_by().values("scope").annotate(started=Count("created_at")).values_list("scope", "started")
    )


RANKED_COLUMNS = ("calls", "unpriced_calls", "cost_micros", *TOKEN_FIELDS)


def ranking_parts(date_range: DateRange) -> list[QuerySet[Any, dict[str, Any]]]:
    """Rows whose sums are each scope's usage in the range: the whole months of the range from
    UsageScopeMonth, the days of the months it only partly covers from UsageRollup. An open end stays open."""
    first = date_range.first_day if date_range.start is not None else None
    last = date_range.last_day if date_range.end is not None else None
    months_from = None if first is None else (first if first.day == 1 else month_end(first) + timedelta(days=1))
    months_to = None if last is None else (last if last == month_end(last) else month_start(last) - timedelta(days=1))
    if months_from is not None and months_to is not None and months_from > months_to:
        return [UsageRollup.all_scopes.filter(**date_range.day_kwargs("day")).values("scope", *RANKED_COLUMNS)]
    months = UsageScopeMonth.all_scopes.all()
    edges = Q()
    if months_from is not None:
        months = months.filter(month__gte=months_from)
        edges |= Q(day__gte=first, day__lt=months_from)
    if months_to is not None:
        months = months.filter(month__lte=month_start(months_to))
        edges |= Q(day__gt=months_to, day__lte=last)
    parts = [months.order_by().values("scope", *RANKED_COLUMNS)]
    if first != months_from or last != months_to:
        parts.append(UsageRollup.all_scopes.filter(edges).order_by().values("scope", *RANKED_COLUMNS))
    return parts


def ranked_scopes(
    date_range: DateRange, limit: int | None = None, *, with_labels: bool = False
) -> Iterator[dict[str, Any]]:
    """The scopes with usage in the range by cost (then input tokens, then id), the first `limit` or all,
    each with `scope_count`, the number of scopes (a window `COUNT(*) OVER ()`): one query, the parts of
    ranking_parts summed by scope (a UNION ALL the ORM cannot group, hence the SQL around their SQL).
    `with_labels` adds each scope's `label`, looked up per ranked scope in the same query (the CSV export,
    which streams every scope; a page reads the labels of the rows it shows in one query of its own)."""
    compiled = [part.query.sql_with_params() for part in ranking_parts(date_range)]
    sums = ", ".join(f"CAST(SUM({name}) AS bigint) AS {name}" for name in (*TOKEN_FIELDS, "calls"))
    label = ""
    if with_labels:
        scopes = connection.ops.quote_name(Scope._meta.db_table)
        label = f"COALESCE((SELECT s.label FROM {scopes} AS s WHERE s.scope_id = part.scope), '') AS label, "  # noqa: S608
    sql = (
        f"SELECT scope, {label}"  # noqa: S608
        "CASE WHEN SUM(calls) > SUM(unpriced_calls) THEN CAST(SUM(cost_micros) AS bigint) END AS cost, "
        f"{sums}, CAST(SUM(unpriced_calls) AS bigint) AS unpriced, COUNT(*) OVER () AS scope_count "
        f"FROM ({' UNION ALL '.join(part_sql for part_sql, _ in compiled)}) AS part "
        f"GROUP BY scope ORDER BY cost DESC NULLS LAST, input_tokens DESC, scope"
    )
    params = [param for _, part_params in compiled for param in part_params]
    if limit is not None:
        sql += " LIMIT %s"
        params.append(limit)
    # Every scope (the CSV export): a server-side cursor on PostgreSQL, as QuerySet.iterator() uses, so the
    # rows come a chunk at a time.
    with connection.chunked_cursor() if limit is None else connection.cursor() as cursor:
        cursor.execute(sql, params)
        names = [column[0] for column in cursor.description]
        while rows := cursor.fetchmany(2000):
            yield from (as_ints(dict(zip(names, row, strict=True))) for row in rows)


def scope_ranking(date_range: DateRange, *, limit: int = RANKING_DEFAULT) -> tuple[list[dict[str, Any]], int]:
    """The top `limit` scopes and how many scopes had usage in the range, then the sessions started by the
    shown scopes only and their ratings: three queries."""
    rows = list(ranked_scopes(date_range, limit))
    scope_count = rows[0]["scope_count"] if rows else 0
    shown = [row["scope"] for row in rows]
    started = sessions_started(date_range, shown) if rows else {}
    ratings = ratings_by_scope(date_range, shown) if rows else {}
    for row in rows:
        row["sessions"] = started.get(row["scope"], 0)
        with_ratings(row, ratings.get(row["scope"]))
    return with_shares(rows), scope_count


def scope_ranking_rows(date_range: DateRange) -> Iterator[dict[str, Any]]:
    """Every scope of the ranking, streamed from the database (the CSV export), with its sessions and ratings."""
    started = sessions_started(date_range)
    ratings = ratings_by_scope(date_range)
    for row in ranked_scopes(date_range, with_labels=True):
        row = with_total_tokens(row)
        row["sessions"] = started.get(row["scope"], 0)
        yield with_ratings(row, ratings.get(row["scope"]))


# --- end users' ratings ---------------------------------------------------------------------------------


def rated_in(date_range: DateRange) -> QuerySet[Feedback]:
    return Feedback.all_scopes.filter(**date_range.filter_kwargs("updated_at")).order_by()


def rating_counts(queryset: QuerySet[Feedback], key: str) -> dict[str, tuple[int, int]]:
    """(positive, all) ratings of `queryset` per value of `key`: one GROUP BY."""
    rows = (
        queryset.values(key)
        .annotate(ratings=Count("pk"), positive=Count("pk", filter=Q(rating=FeedbackRating.POSITIVE)))
        .values_list(key, "positive", "ratings")
    )
    return {value: (positive, ratings) for value, positive, ratings in rows}


def ratings_by_scope(date_range: DateRange, scopes: list[str] | None = None) -> dict[str, tuple[int, int]]:
    """(positive, all) ratings given in the range per scope (of `scopes`, or every one)."""
    queryset = rated_in(date_range)
    if scopes is not None:
        queryset = queryset.filter(scope__in=scopes)
    return rating_counts(queryset, "scope")


def ratings_by_deploy(date_range: DateRange, scope: ScopeParam | None = None) -> dict[str, tuple[int, int]]:
    """(positive, all) ratings given in the range per deploy that had answered the rated session (kept on
    each rating), of every scope or of the focused one."""
    queryset = rated_in(date_range)
    scope_id = focused(scope)
    if scope_id is not None:
        queryset = queryset.filter(scope=scope_id)
    return rating_counts(queryset, "deploy_id")


def with_ratings(row: dict[str, Any], counts: tuple[int, int] | None) -> dict[str, Any]:
    """`ratings`, `positive_ratings` and `positive_share` (percent; None without ratings) on a panel's row."""
    positive, ratings = counts or (0, 0)
    row["ratings"], row["positive_ratings"] = ratings, positive
    row["positive_share"] = 100.0 * positive / ratings if ratings else None
    return row


def deploys_with_ratings(
    rows: list[dict[str, Any]], date_range: DateRange, scope: ScopeParam | None
) -> list[dict[str, Any]]:
    """The by-deploy panel's rows with their ratings in the range (one query)."""
    ratings = ratings_by_deploy(date_range, scope)
    return [with_ratings(row, ratings.get(row["deploy_id"])) for row in rows]


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


def daily_points(date_range: DateRange, by_day: list[dict[str, Any]]) -> list[DayPoint]:
    """Every day of the range (of the data, for all time) in order; days without usage are zeros."""
    points = {
        as_day(row["period_day"]): DayPoint(
            as_day(row["period_day"]),
            row["cost"],
            row["input_tokens"] + row["output_tokens"],
            row["calls"],
            row["unpriced"],
            **{name: row[name] for name in TOKEN_FIELDS},
        )
        for row in by_day
    }
    days = date_range.days()
    if not days and points:
        first = date_range.first_day or min(points)
        last = date_range.last_day or max(points)
        days = DateRange("custom", None, None, first, last).days()
    return [points.get(day, DayPoint(day, 0, 0, 0, 0)) for day in days]


def as_day(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


# --- the highest-cost sessions: raw rows ------------------------------------------------------------------


def ranking_key(cost: int | None, input_tokens: int) -> tuple[int, int]:
    """Cost (unpriced below any price), then input tokens: the order of the highest-cost sessions."""
    return (-1 if cost is None else cost, input_tokens)


def top_sessions(
    date_range: DateRange, scope: ScopeParam | None = None, *, limit: int = TOP_SESSIONS
) -> list[dict[str, Any]]:
    """The sessions that cost the most in the range (their usage rows in the range), usually two queries.

    A session's usage in the range is at most its running totals (Session.cost_micros is the sum of all its
    usage rows' priced cost), and its rows lie between its created_at and updated_at. So: take the sessions
    that overlap the range with the highest cost (an index range, `limit` × 3 of them), sum their usage rows
    in the range (the session_id index); when the last one shown costs strictly more than the last
    candidate's whole cost, no other session can rank higher and the list is exact. Otherwise (ties, or
    sessions mostly outside the range) it falls back to the GROUP BY session of every row in the range.
    """
    candidates = list(overlapping_sessions(date_range, scope)[: limit * CANDIDATES_PER_TOP_SESSION])
    rows = session_usage(usage_rows(date_range, scope).filter(session__in=[s.pk for s in candidates]), limit)
    by_id = {session.pk: session for session in candidates}
    if len(candidates) == limit * CANDIDATES_PER_TOP_SESSION:
        last_cost = rows[-1]["cost"] if len(rows) == limit else None  # None: not proven (an unpriced last row)
        if last_cost is None or last_cost <= candidates[-1].cost_micros:
            rows = session_usage(usage_rows(date_range, scope).filter(session__isnull=False), limit)
            by_id = session_objects([row["session"] for row in rows])
    for row in rows:
        with_total_tokens(row)
        row["object"] = by_id.get(row["session"])
    return rows


SESSION_FIELDS = ("id", "scope", "title", "model", "status", "created_at", "updated_at", "cost_micros", "input_tokens")


def overlapping_sessions(date_range: DateRange, scope: ScopeParam | None) -> QuerySet[Session]:
    """Sessions whose lifetime overlaps the range, highest cost first. Every scope: a walk of the
    `session_cost` index (cost_micros, id) backwards. One scope: its sessions in the range (the (scope,
    updated_at) index), then sorted; the cost is ordered as an expression so PostgreSQL does not walk the
    cost index of every scope instead (for a busy scope and a short range it would read thousands of other
    scopes' sessions)."""
    queryset = Session.all_scopes.only(*SESSION_FIELDS)
    if date_range.start is not None:
        queryset = queryset.filter(updated_at__gte=date_range.start)
    if date_range.end is not None:
        queryset = queryset.filter(created_at__lt=date_range.end)
    scope_id = focused(scope)
    if scope_id is None:
        return queryset.order_by("-cost_micros", "-id")
    return queryset.filter(scope=scope_id).annotate(cost_order=F("cost_micros") + 0).order_by("-cost_order", "-id")


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
