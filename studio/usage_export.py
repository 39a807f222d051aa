"""The Cost & Usage panels as CSV tables (header and rows), for `/studio/usage/<panel>.csv`.

Each panel's export has the figures of the page with the same parameters (range, scope), unformatted:
costs in USD with six decimals (exact micro-dollars), empty when unpriced beside an `unpriced_calls`
column; tokens and counts as integers. The scope ranking exports every scope with usage in the range, not
only the top shown; the highest-cost sessions export the sessions shown; the budgets export every scope that
spent in the budget's current period. The scopes and the deploys also have the end users' ratings given in
the range: `ratings`, `positive_ratings` and `positive_share` (a fraction from 0 to 1, empty without ratings).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from agents.agent_folder import manifest_of
from agents.usage_rollup import LatencyEstimate
from core.agent_folder import current_agent
from studio import selectors
from studio.filters import DateRange, ScopeParam
from studio.formatting import MICROS_PER_USD
from studio.selectors.labels import scope_labels

TOKEN_COLUMNS = ["input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens"]


@dataclass(frozen=True)
class UsageQuery:
    date_range: DateRange
    scope: ScopeParam


def usd(micros: int | None) -> Decimal | None:
    return None if micros is None else Decimal(micros) / MICROS_PER_USD


def figures(row: dict[str, Any]) -> list[Any]:
    """cost_usd, unpriced_calls, the four token counts and calls of an aggregate row."""
    return [usd(row["cost"]), row["unpriced"], *(row[name] for name in TOKEN_COLUMNS), row["calls"]]


FIGURE_COLUMNS = ["cost_usd", "unpriced_calls", *TOKEN_COLUMNS, "calls"]


def totals(query: UsageQuery) -> tuple[list[str], Iterable[Sequence[Any]]]:
    """Every figure of every scope (and of the focused scope), beside the previous period's."""
    header = [
        "scopes",
        "scope",
        "scope_label",
        "figure",
        "value",
        "previous_period_value",
        "change_percent",
        "previous_period",
    ]
    blocks = [("all", "", "", selectors.usage_totals(query.date_range))]
    if query.scope.selected:
        scope_id = query.scope.scope_id
        label = scope_labels([scope_id]).of(scope_id)
        blocks.append(("one", scope_id, label, selectors.usage_totals(query.date_range, query.scope)))
    return header, [
        [which, scope_id, label, *line] for which, scope_id, label, block in blocks for line in total_lines(block)
    ]


TOTAL_FIGURES = (
    ("cost", "cost_usd"),
    ("unpriced", "unpriced_calls"),
    *((name, name) for name in TOKEN_COLUMNS),
    ("calls", "calls"),
    ("sessions", "sessions_started"),
)


def total_lines(block: selectors.Totals) -> Iterator[list[Any]]:
    period = block.previous_range
    period_text = f"{period.first_day}/{period.last_day}" if period else None
    for name, column in TOTAL_FIGURES:
        value, change = getattr(block, name), block.changes.get(name)
        previous: Any = change.previous if change else None
        if name == "cost":
            value, previous = usd(value), usd(previous)
        if change is None or change.new:
            percent: Any = "new" if change else None
        else:
            percent = None if change.percent is None else round(change.percent, 2)
        yield [column, value, previous, percent, period_text]


def ratings(row: dict[str, Any]) -> list[Any]:
    """ratings, positive_ratings and positive_share (a fraction, empty without ratings) of a row."""
    share = row["positive_share"]
    return [row["ratings"], row["positive_ratings"], None if share is None else round(share / 100, 4)]


RATING_COLUMNS = ["ratings", "positive_ratings", "positive_share"]


def scopes(query: UsageQuery) -> tuple[list[str], Iterable[Sequence[Any]]]:
    def rows() -> Iterator[list[Any]]:
        for rank, row in enumerate(selectors.scope_ranking_rows(query.date_range), start=1):
            yield [rank, row["scope"], row["label"], *figures(row), row["sessions"], *ratings(row)]

    return ["rank", "scope", "scope_label", *FIGURE_COLUMNS, "sessions_started", *RATING_COLUMNS], rows()


def latency(estimate: LatencyEstimate | None) -> list[Any]:
    if estimate is None:
        return [None, None, None]
    return [estimate.ms, estimate.low, estimate.high]


def by_model(query: UsageQuery) -> tuple[list[str], Iterable[Sequence[Any]]]:
    rows = selectors.usage_breakdown(query.date_range, query.scope, with_totals=False).by_model
    header = [
        "model",
        *FIGURE_COLUMNS,
        "latency_p50_ms",
        "latency_p50_bucket_low_ms",
        "latency_p50_bucket_high_ms",
        "latency_p95_ms",
        "latency_p95_bucket_low_ms",
        "latency_p95_bucket_high_ms",
    ]
    return header, ([row["model"], *figures(row), *latency(row["p50"]), *latency(row["p95"])] for row in rows)


def by_deploy(query: UsageQuery) -> tuple[list[str], Iterable[Sequence[Any]]]:
    rows = selectors.usage_breakdown(query.date_range, query.scope, with_totals=False, with_latency=False).by_deploy
    rows = selectors.deploys_with_ratings(rows, query.date_range, query.scope)
    deployments = selectors.deployments_by_id([row["deploy_id"] for row in rows])

    def line(row: dict[str, Any]) -> list[Any]:
        deployment = deployments.get(row["deploy_id"])
        name, version = (deployment.agent_name, deployment.agent_version) if deployment else (None, None)
        return [row["deploy_id"], name, version, *figures(row), *ratings(row)]

    header = ["deploy_id", "agent_name", "agent_version", *FIGURE_COLUMNS, *RATING_COLUMNS]
    return header, (line(row) for row in rows)


def daily(query: UsageQuery) -> tuple[list[str], Iterable[Sequence[Any]]]:
    points = selectors.usage_breakdown(query.date_range, query.scope, with_totals=False, with_latency=False).daily
    return ["day", *FIGURE_COLUMNS], (
        [
            point.day.isoformat(),
            usd(point.cost if point.calls else 0),
            point.unpriced,
            *(getattr(point, name) for name in TOKEN_COLUMNS),
            point.calls,
        ]
        for point in points
    )


def top_sessions(query: UsageQuery) -> tuple[list[str], Iterable[Sequence[Any]]]:
    rows = [row for row in selectors.top_sessions(query.date_range, query.scope) if row["object"] is not None]
    labels = scope_labels(row["object"].scope for row in rows)
    header = ["rank", "session_id", "title", "scope", "scope_label", "model", *FIGURE_COLUMNS]

    def line(rank: int, row: dict[str, Any]) -> list[Any]:
        session = row["object"]
        scope = session.scope
        return [rank, str(row["session"]), session.title, scope, labels.of(scope), session.model, *figures(row)]

    return header, (line(rank, row) for rank, row in enumerate(rows, start=1))


BUDGET_HEADER = [
    "scope",
    "period",
    "period_first_day",
    "resets_at",
    "spent_usd",
    "cap_usd",
    "cap_source",
    "used_percent",
]


def budgets(query: UsageQuery) -> tuple[list[str], Iterable[Sequence[Any]]]:
    """Every scope that spent in the budget's current period (today or this month, whatever the page's range):
    its spend, its cap (`default` from amodal.json or the `scope`'s own) and the share used (empty for a cap
    of 0). Without budgets in amodal.json, the header only."""
    config = manifest_of(current_agent()).budgets
    if config is None:
        return BUDGET_HEADER, []
    period, uses = selectors.budget_rows(config)
    first_day, resets_at = period.first_day.isoformat(), period.resets_at.isoformat()
    return BUDGET_HEADER, (
        [
            use.scope,
            period.kind,
            first_day,
            resets_at,
            usd(use.spent),
            usd(use.cap),
            "scope" if use.overridden else "default",
            None if use.percent is None else round(use.percent, 2),
        ]
        for use in uses
    )


PANELS: dict[str, Callable[[UsageQuery], tuple[list[str], Iterable[Sequence[Any]]]]] = {
    "totals": totals,
    "scopes": scopes,
    "by-model": by_model,
    "by-deploy": by_deploy,
    "daily": daily,
    "top-sessions": top_sessions,
    "budgets": budgets,
}


def range_part(date_range: DateRange) -> str:
    first, last = date_range.first_day, date_range.last_day
    if first is None and last is None:
        return "all-time"
    return f"{first or 'start'}_{last or 'now'}"


def filename(panel: str, query: UsageQuery) -> str:
    if not query.scope.selected:
        scope = "all-scopes"
    elif query.scope.scope_id == "":
        scope = "global-scope"
    else:
        scope = "scope-" + query.scope.scope_id  # csv_export.safe_filename keeps letters, digits, . _ -
    return f"cost-usage_{panel}_{range_part(query.date_range)}_{scope}.csv"
