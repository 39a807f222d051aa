"""Budget use per scope on Cost & Usage (SPEC §8; studio.selectors.budgets): the ranking's Budget column, the
"near or over budget" card, its CSV, and what they cost in queries."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from agents.models import UsageRecord
from scoping.context import scope
from scoping.models import Scope
from scoping.services import touch_scope
from tests.conftest import write_agent_folder
from tests.studio.test_usage import LOGIN_QUERIES, PAGE_QUERIES, URL, csv_of, rows, section
from tests.studio.test_usage import usage as usage  # noqa: F401  (a fixture: the data PAGE_QUERIES counts on)

CAP = 1_000_000  # $1.00 a scope a day


@pytest.fixture
def budget_agent(tmp_path, use_agent):
    def use(period: str = "day"):
        amodal = {"budgets": {"period": period, "scopeCostMicros": CAP}}
        return use_agent(write_agent_folder(tmp_path / period, amodal=amodal))

    return use


def spend(scope_id: str, cost: int, *, days_ago: int = 0, cap: int | None = None) -> None:
    touch_scope(scope_id=scope_id)
    if cap is not None:
        Scope.objects.filter(scope_id=scope_id).update(budget_cost_micros=cap)
    with scope(scope_id):
        record = UsageRecord.objects.create(deploy_id="d", provider="local", model="m", cost_micros=cost)
    if days_ago:
        UsageRecord.all_scopes.filter(pk=record.pk).update(created_at=timezone.now() - timedelta(days=days_ago))


@pytest.fixture
def spending(db):
    spend("tenant-near", 900_000)  # 90%
    spend("tenant-over", 1_500_000)  # 150%
    spend("tenant-low", 100_000)  # 10%
    spend("tenant-own-cap", 60_000, cap=50_000)  # 120% of its own cap
    spend("tenant-raised", 1_200_000, cap=10_000_000)  # 12% of its own cap
    spend("tenant-yesterday", 5_000_000, days_ago=1)  # another day's spend


def budget_cells(content: str) -> dict[str, tuple[int, int]]:
    """The ranking's Budget column: (spent, cap) by scope."""
    cells = {}
    ranking = section(content, "scope-ranking")
    for scope_id, row in re.findall(r'<tr class="[^"]*" data-scope="([^"]*)"(.*?)</tr>', ranking, re.S):
        found = re.search(r'class="budget-use[^"]*" data-spent="(\d+)" data-cap="(\d+)"', row)
        if found:
            cells[scope_id] = (int(found[1]), int(found[2]))
    return cells


def test_the_near_or_over_card_lists_the_scopes_at_80_percent_of_their_cap_most_used_first(
    staff_client, budget_agent, spending
):
    budget_agent("day")
    content = staff_client.get(URL + "?range=7d").content.decode()

    card = section(content, "budgets")
    assert [(r["scope"], int(r["spent"]), int(r["cap"])) for r in rows(card)] == [
        ("tenant-over", 1_500_000, CAP),
        ("tenant-own-cap", 60_000, 50_000),
        ("tenant-near", 900_000, CAP),
    ]
    assert "150%" in card and "badge-error" in card and "(own)" in card
    today = timezone.now().date()
    assert f"spent in {today.isoformat()} (UTC, resets {today + timedelta(days=1)} 00:00 UTC)" in card
    # The ranking shows every shown scope's use of its cap this period, whatever the page's range.
    assert budget_cells(content) == {
        "tenant-yesterday": (0, CAP),
        "tenant-over": (1_500_000, CAP),
        "tenant-raised": (1_200_000, 10_000_000),
        "tenant-near": (900_000, CAP),
        "tenant-low": (100_000, CAP),
        "tenant-own-cap": (60_000, 50_000),
    }


def test_a_monthly_budget_sums_the_month_so_far(staff_client, budget_agent, db):
    budget_agent("month")
    spend("tenant-a", 500_000)
    spend("tenant-a", 400_000)
    spend("tenant-b", 5_000_000, days_ago=40)  # in an earlier month
    spend("tenant-b", 100_000)
    card = rows(section(staff_client.get(URL).content.decode(), "budgets"))
    assert [(r["scope"], r["spent"]) for r in card] == [("tenant-a", "900000")]


def test_without_budgets_there_is_no_card_no_column_and_a_header_only_csv(staff_client, spending):
    content = staff_client.get(URL).content.decode()
    assert 'id="budgets"' not in content and "budget-use" not in content
    header, lines, _ = csv_of(staff_client, "budgets", "range=7d")
    assert header[:3] == ["scope", "period", "period_first_day"] and lines == []


def test_the_budgets_csv_has_every_scope_that_spent_in_the_period(staff_client, budget_agent, spending):
    budget_agent("day")
    _, lines, _ = csv_of(staff_client, "budgets", "range=7d")
    today = timezone.now().date()
    assert [(r["scope"], r["spent_usd"], r["cap_usd"], r["cap_source"], r["used_percent"]) for r in lines] == [
        ("tenant-over", "1.5", "1", "default", "150.0"),
        ("tenant-own-cap", "0.06", "0.05", "scope", "120.0"),
        ("tenant-near", "0.9", "1", "default", "90.0"),
        ("tenant-raised", "1.2", "10", "scope", "12.0"),
        ("tenant-low", "0.1", "1", "default", "10.0"),
    ]
    assert {(r["period"], r["period_first_day"], r["resets_at"]) for r in lines} == {
        ("day", today.isoformat(), f"{today + timedelta(days=1)}T00:00:00+00:00")
    }


def test_a_cap_of_zero_shows_blocked(staff_client, budget_agent, db):
    budget_agent("day")
    spend("tenant-blocked", 10, cap=0)
    card = section(staff_client.get(URL).content.decode(), "budgets")
    assert [r["scope"] for r in rows(card)] == ["tenant-blocked"] and "blocked" in card


# Budgets add one query to the page (the shown scopes' use and the near-or-over list together) and one to
# their CSV; without budgets, none.
BUDGET_QUERIES = 1


@pytest.mark.parametrize("focus", list(PAGE_QUERIES))
def test_budgets_add_one_query_to_the_page(
    staff_client, budget_agent, usage, spending, focus, django_assert_num_queries
):
    budget_agent("day")
    staff_client.get(URL + "?range=30d" + focus)
    with django_assert_num_queries(PAGE_QUERIES[focus] + BUDGET_QUERIES + LOGIN_QUERIES):
        assert staff_client.get(URL + "?range=30d" + focus).status_code == 200


def test_the_budgets_csv_is_one_query(staff_client, budget_agent, spending):
    budget_agent("month")
    csv_of(staff_client, "budgets", "")
    with CaptureQueriesContext(connection) as queries:
        csv_of(staff_client, "budgets", "")
    assert len(queries) == BUDGET_QUERIES + LOGIN_QUERIES
