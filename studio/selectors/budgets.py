"""Budget use per scope on Cost & Usage (SPEC §8): each scope's spend in the budget's current period (today or
this month, UTC: agents.budgets) against its cap, the amodal.json default or the scope's override.

One query (`budget_use`) gives both what the page shows: the use of the scopes the ranking shows, and the
scopes at or over NEAR_PERCENT of their cap, most used first. It reads the period's spend of every scope that
spent in it (the usage rollup's rows of the day, or of the month: an index range), joined to their Scope rows
for the overrides, so it costs the same whatever the number of usage rows. Without budgets in amodal.json,
nothing is read. The CSV export (`budget_rows`) streams every scope that spent in the period.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection
from django.utils import timezone

from agents.agent_folder import Budgets
from agents.budgets import BudgetPeriod, period_at, spend_rows
from agents.models import UsageRollup, UsageScopeMonth

NEAR_PERCENT = 80
NEAR_SHOWN = 25


@dataclass(frozen=True)
class ScopeBudgetUse:
    scope: str
    spent: int
    cap: int
    overridden: bool  # the cap is the scope's own (admin), not amodal.json's

    @property
    def percent(self) -> float | None:
        """The share of the cap spent; None for a cap of 0 (the scope may not use the model)."""
        return 100.0 * self.spent / self.cap if self.cap else None

    @property
    def over(self) -> bool:
        return self.spent >= self.cap

    @property
    def near(self) -> bool:
        return self.spent * 100 >= self.cap * NEAR_PERCENT


@dataclass(frozen=True)
class BudgetUse:
    period: BudgetPeriod
    default_cap: int
    shown: dict[str, ScopeBudgetUse]  # by scope id: the scopes the page asked for
    near: list[ScopeBudgetUse]  # at or over NEAR_PERCENT, most used first (at most NEAR_SHOWN)
    near_count: int  # how many scopes are


def usage_sql(period: BudgetPeriod, default_cap: int) -> tuple[str, list[Any]]:
    """A CTE `budget_use` (scope, spent, cap, overridden) of every scope that spent in the period."""
    spend_sql, spend_params = spend_rows(
        period, UsageRollup.all_scopes.all(), UsageScopeMonth.all_scopes.all()
    ).query.sql_with_params()
    sql = (
        f"WITH spend AS ({spend_sql}), budget_use AS ("  # noqa: S608
        "SELECT spend.scope AS scope, CAST(spend.spent AS bigint) AS spent,"
        " COALESCE(s.budget_cost_micros, %s) AS cap,"
        " CASE WHEN s.budget_cost_micros IS NULL THEN 0 ELSE 1 END AS overridden"
        " FROM spend LEFT JOIN scoping_scope s ON s.scope_id = spend.scope) "
    )
    return sql, [*spend_params, default_cap]


# The most used first: a cap of 0 (no share) before any share, then by spend and id.
USE_ORDER = "CASE WHEN cap > 0 THEN spent * 1.0 / cap END DESC NULLS FIRST, spent DESC, scope"


def budget_use(
    budgets: Budgets | None, shown_scopes: Iterable[str], *, now: datetime | None = None
) -> BudgetUse | None:
    """The budget use of the shown scopes and the scopes near or over their cap: one query (none without
    budgets)."""
    if budgets is None:
        return None
    period = period_at(budgets.period, now or timezone.now())
    with_sql, params = usage_sql(period, budgets.scope_cost_micros)
    sql = (
        f"{with_sql}SELECT * FROM (SELECT scope, spent, cap, overridden, 1 AS near, COUNT(*) OVER () AS near_count"  # noqa: S608
        f" FROM budget_use WHERE spent * 100 >= cap * %s ORDER BY {USE_ORDER} LIMIT %s) AS near_scopes"
    )
    params += [NEAR_PERCENT, NEAR_SHOWN]
    shown = sorted(set(shown_scopes))
    if shown:
        sql += (
            " UNION ALL SELECT s.scope_id, COALESCE(u.spent, 0), COALESCE(s.budget_cost_micros, %s),"  # noqa: S608
            " CASE WHEN s.budget_cost_micros IS NULL THEN 0 ELSE 1 END, 0, 0"
            " FROM scoping_scope s LEFT JOIN budget_use u ON u.scope = s.scope_id"
            f" WHERE s.scope_id IN ({', '.join(['%s'] * len(shown))})"
        )
        params += [budgets.scope_cost_micros, *shown]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    near = [use_of(row) for row in rows if row[4]]
    return BudgetUse(
        period=period,
        default_cap=budgets.scope_cost_micros,
        shown={use.scope: use for use in (use_of(row) for row in rows if not row[4])},
        near=near,
        near_count=int(rows[0][5]) if near else 0,
    )


def use_of(row: tuple[Any, ...]) -> ScopeBudgetUse:
    return ScopeBudgetUse(scope=row[0], spent=int(row[1]), cap=int(row[2]), overridden=bool(row[3]))


def budget_rows(budgets: Budgets, *, now: datetime | None = None) -> tuple[BudgetPeriod, Iterator[ScopeBudgetUse]]:
    """Every scope that spent in the current period, most used first, streamed (the CSV export)."""
    period = period_at(budgets.period, now or timezone.now())
    with_sql, params = usage_sql(period, budgets.scope_cost_micros)

    def rows() -> Iterator[ScopeBudgetUse]:
        with connection.chunked_cursor() as cursor:
            sql = f"{with_sql}SELECT scope, spent, cap, overridden FROM budget_use ORDER BY {USE_ORDER}"  # noqa: S608
            cursor.execute(sql, params)
            while chunk := cursor.fetchmany(2000):
                yield from (use_of(row) for row in chunk)

    return period, rows()
