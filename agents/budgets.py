"""Spend budgets (SPEC §3): a cap on each scope's spend per UTC calendar period, checked before a message
calls the model.

amodal.json's `budgets: {period, scopeCostMicros, reserveCostMicros?}` gives every scope its cap; a
scope's `budget_cost_micros` (Scope admin) replaces it for that scope. Without `budgets` there is no cap,
and a message runs no statement of this module.

**Admission** runs in the transaction that opens the session (services.open_session), after the UPDATE
that records the scope's activity: that UPDATE locks the scope's row until the commit (PostgreSQL; SQLite
locks the whole database for its one writer), so the admissions of one scope run one at a time. An
admission reads, in one query (`admission_row`):

- the scope's override of the cap;
- its **spend** in the period: the usage rollup kept by triggers in the same transaction as each usage row
  (UsageScopeMonth's one row of the month, or UsageRollup's rows of the day: an index lookup either way);
- the **reservations** of its running messages: each admitted message reserves `reserveCostMicros`
  (default 1% of the cap) on its session row, counted while its session lease is live. Each model call's
  recorded cost is taken off its message's reservation in the transaction that records it, and the lease's
  release (the message ended, failed or was cancelled) clears what is left; a process that dies leaves a
  lease that expires within `AMODAL_LEASE_SECONDS`, and its reservation stops counting with it.

A message is admitted when spend + reservations < cap. Unpriced model calls (no price known) cost nothing
against a budget.

**The guarantee**: the admitted messages that start while others run each see the others' reservations.
So a scope's spend in a period ends at most one message's cost above its cap (the last message admitted
below the cap), as long as no message costs more than the reservation; a message that costs more adds
its excess over the reservation while it ran alongside others.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Final

from django.db.models import BigIntegerField, QuerySet, Subquery, Sum
from django.db.models.functions import Cast, Coalesce
from django.utils import timezone

from agents.agent_folder import Budgets
from agents.models import Session, UsageRollup, UsageScopeMonth
from agents.usage_rollup import month_end
from core.errors import KnownError
from scoping.models import Scope

DAY, MONTH = "day", "month"
BUDGET_EXCEEDED: Final = "budget_exceeded"  # the error's code and the `done` event's reason
DEFAULT_RESERVE_SHARE = 100  # a running message reserves 1/100 of its scope's cap by default


@dataclass(frozen=True)
class BudgetPeriod:
    """The UTC calendar period a moment falls in."""

    kind: str  # day | month
    first_day: date
    last_day: date

    @property
    def resets_at(self) -> datetime:
        return datetime.combine(self.last_day + timedelta(days=1), time.min, tzinfo=UTC)

    @property
    def name(self) -> str:
        """ "2026-12-06" or "December 2026"."""
        return self.first_day.isoformat() if self.kind == DAY else f"{self.first_day:%B %Y}"

    def describe(self) -> str:
        return f"{'today' if self.kind == DAY else 'this month'}'s budget ({self.name}, UTC)"


def period_at(kind: str, now: datetime) -> BudgetPeriod:
    day = now.astimezone(UTC).date()
    if kind == DAY:
        return BudgetPeriod(DAY, day, day)
    return BudgetPeriod(MONTH, day.replace(day=1), month_end(day))


def effective_cap(budgets: Budgets, override: int | None) -> int:
    return budgets.scope_cost_micros if override is None else override


def reservation(budgets: Budgets, cap: int) -> int:
    """What an admitted message reserves: the configured amount, else 1% of its scope's cap (at least 1)."""
    if budgets.reserve_cost_micros is not None:
        return budgets.reserve_cost_micros
    return max(1, -(-cap // DEFAULT_RESERVE_SHARE))


@dataclass(frozen=True)
class Admission:
    """The decision on one message of the active scope."""

    period: BudgetPeriod
    cap: int
    spent: int  # the recorded cost of the period
    reserved: int  # the reservations of the scope's other running messages
    reserve: int  # what this message reserves: 0 when refused

    @property
    def admitted(self) -> bool:
        return self.reserve > 0

    def refusal(self) -> BudgetExceeded:
        resets = self.period.resets_at.strftime("%Y-%m-%d %H:%M UTC")
        return BudgetExceeded(f"This account has used {self.period.describe()}; it resets at {resets}.")


class BudgetExceeded(KnownError):
    status_code, default_code = 429, BUDGET_EXCEEDED


def spend_rows(period: BudgetPeriod, rollup: QuerySet[UsageRollup], months: QuerySet[UsageScopeMonth]) -> QuerySet:
    """Each scope's recorded spend (`spent`) in the period, of the rows given (one scope's or every scope's):
    UsageScopeMonth's row of the month, or the sum of UsageRollup's rows of the day (an index range)."""
    rows: QuerySet = (
        months.filter(month=period.first_day) if period.kind == MONTH else rollup.filter(day=period.first_day)
    )
    return rows.values("scope").annotate(spent=Sum("cost_micros")).order_by()


def admission_row(scope_id: str, period: BudgetPeriod, now: datetime) -> tuple[int | None, int, int]:
    """The active scope's cap override, spend in the period and running reservations: one query."""
    spent = spend_rows(period, UsageRollup.objects.all(), UsageScopeMonth.objects.all()).values("spent")
    reserved = (
        Session.objects.filter(budget_reserve_micros__gt=0, lock_token__gt="", lock_expires_at__gt=now)
        .values("scope")
        .annotate(total=Sum("budget_reserve_micros"))
        .order_by()
        .values("total")
    )
    row = (
        Scope.objects.filter(scope_id=scope_id)
        .annotate(
            spent=Coalesce(Cast(Subquery(spent), BigIntegerField()), 0),
            reserved=Coalesce(Cast(Subquery(reserved), BigIntegerField()), 0),
        )
        .values_list("budget_cost_micros", "spent", "reserved")
        .first()
    )
    return row if row is not None else (None, 0, 0)


def admit(*, scope_id: str, budgets: Budgets, now: datetime | None = None) -> Admission:
    """Decide on a message of the active scope: admitted when spend + reservations < cap. The caller holds
    the scope's row lock (see the module docstring) and writes the reservation in the same transaction."""
    now = now or timezone.now()
    period = period_at(budgets.period, now)
    override, spent, reserved = admission_row(scope_id, period, now)
    cap = effective_cap(budgets, override)
    admitted = spent + reserved < cap
    return Admission(period, cap, spent, reserved, reservation(budgets, cap) if admitted else 0)
