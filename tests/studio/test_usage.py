"""Cost & Usage: every figure equals a direct SQL aggregate over the usage rows, for any range and scope."""

from __future__ import annotations

import html
import re
from datetime import datetime, time, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from agents.models import UsageRecord
from tests.studio.conftest import q
from tests.studio.factories import Call, Turn

URL = "/studio/usage/"


def section(content: str, element_id: str) -> str:
    start = content.index(f'id="{element_id}"')
    end = content.index("</section>", start)
    return content[start:end]


def rows(fragment: str) -> list[dict[str, str]]:
    """The data-* attributes of every <tr> that has some."""
    found = []
    for tag in re.findall(r"<tr\b([^>]*)>", fragment):
        data = {name: html.unescape(value) for name, value in re.findall(r'data-([\w-]+)="([^"]*)"', tag)}
        if data:
            found.append(data)
    return found


def stats(content: str) -> dict[str, str]:
    return {
        name: html.unescape(value)
        for name, value in re.findall(r'data-stat="(\w+)" data-value="([^"]*)"', section(content, "totals"))
    }


def number(value: str) -> int | None:
    return None if value == "" else int(value)


def sql(query: str, params: list) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchall()


TABLE = UsageRecord._meta.db_table


def day_start(days_ago: int) -> datetime:
    day = timezone.localdate() - timedelta(days=days_ago)
    return timezone.make_aware(datetime.combine(day, time.min))


def where(start: datetime, scope: str | None) -> tuple[str, list]:
    clause, params = "created_at >= %s", [start]
    if scope is not None:
        clause += " AND scope = %s"
        params.append(scope)
    return clause, params


@pytest.fixture
def usage(make_session, demo_data):
    demo_data(scopes=6, sessions=30, usage_rows=150, days=40, seed=11)
    now = timezone.now()
    # Exact, hand-made rows: an unpriced-only scope, a row just inside and one just outside 7 days.
    # Earlier today, even just after midnight (the test reads it back with range=today).
    earlier_today = now - min(timedelta(hours=3), (now - day_start(0)) / 2)
    make_session(
        scope="unpriced-only",
        model="local",
        provider="local",
        at=earlier_today,
        turns=[Turn("hi", [Call(cost_micros=None, input_tokens=40, output_tokens=4)])],
    )
    make_session(
        scope="edge",
        at=day_start(6) + timedelta(seconds=1),
        turns=[Turn("in", [Call(cost_micros=1_000_000, input_tokens=1000, output_tokens=10)])],
    )
    make_session(
        scope="edge",
        at=day_start(6) - timedelta(minutes=2),
        step_seconds=1,
        turns=[Turn("out", [Call(cost_micros=7_000_000, input_tokens=9000, output_tokens=90)])],
    )


@pytest.mark.parametrize("range_key, days_ago", [("7d", 6), ("30d", 29), ("90d", 89), ("today", 0)])
@pytest.mark.parametrize("scope", [None, "edge", ""])
def test_every_panel_equals_a_direct_aggregate(staff_client, usage, range_key, days_ago, scope):
    url = URL + f"?range={range_key}" + ("" if scope is None else "&scope=" + q(scope))
    content = staff_client.get(url).content.decode()
    start = day_start(days_ago)

    # Totals (always all scopes).
    clause, params = where(start, None)
    expected = sql(
        f"SELECT SUM(cost_micros), COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), 0), "
        f"COALESCE(SUM(cache_read_tokens), 0), COALESCE(SUM(cache_write_tokens), 0), COUNT(*), "
        f"COUNT(*) - COUNT(cost_micros), COUNT(DISTINCT session_id) FROM {TABLE} WHERE {clause}",
        params,
    )[0]
    shown = stats(content)
    assert [
        number(shown[name])
        for name in (
            "cost",
            "input_tokens",
            "output_tokens",
            "cache_read_tokens",
            "cache_write_tokens",
            "calls",
            "unpriced",
            "sessions",
        )
    ] == list(expected)

    # The scope ranking: cost, tokens and sessions per scope, most expensive first.
    expected_ranking = sql(
        f"SELECT scope, SUM(cost_micros), SUM(input_tokens) + SUM(output_tokens), COUNT(DISTINCT session_id) "
        f"FROM {TABLE} WHERE {clause} GROUP BY scope",
        params,
    )
    ranking = rows(section(content, "scope-ranking"))
    assert {(r["scope"], number(r["cost"]), int(r["tokens"]), int(r["sessions"])) for r in ranking} == set(
        expected_ranking
    )
    costs = [number(r["cost"]) for r in ranking]
    assert costs == sorted(costs, key=lambda c: -1 if c is None else c, reverse=True), "ranked by cost"

    # The focused panels.
    clause, params = where(start, scope)
    by_model = sql(f"SELECT model, SUM(cost_micros), COUNT(*) FROM {TABLE} WHERE {clause} GROUP BY model", params)
    assert {(r["model"], number(r["cost"]), int(r["calls"])) for r in rows(section(content, "by-model"))} == set(
        by_model
    )
    by_deploy = sql(
        f"SELECT deploy_id, SUM(cost_micros), COUNT(*) FROM {TABLE} WHERE {clause} GROUP BY deploy_id", params
    )
    assert {(r["deploy"], number(r["cost"]), int(r["calls"])) for r in rows(section(content, "by-deploy"))} == set(
        by_deploy
    )
    daily = rows(section(content, "daily"))
    assert len(daily) == days_ago + 1, "every day of the range, zeros included"
    assert sum(int(r["calls"]) for r in daily) == sum(count for _, _, count in by_model)
    assert (
        sum(int(r["tokens"]) for r in daily)
        == sql(f"SELECT COALESCE(SUM(input_tokens) + SUM(output_tokens), 0) FROM {TABLE} WHERE {clause}", params)[0][0]
    )
    top = sql(
        f"SELECT session_id, SUM(cost_micros) FROM {TABLE} WHERE {clause} GROUP BY session_id "
        f"ORDER BY SUM(cost_micros) DESC LIMIT 1",
        params,
    )
    shown_top = rows(section(content, "top-sessions"))
    if top and top[0][1] is not None:
        assert number(shown_top[0]["cost"]) == top[0][1]
    if scope is not None:
        focus = re.search(r'id="focus-totals" data-cost="([^"]*)" data-calls="(\d+)"', content)
        assert (number(focus.group(1)), int(focus.group(2))) == sql(
            f"SELECT SUM(cost_micros), COUNT(*) FROM {TABLE} WHERE {clause}", params
        )[0]
        assert 'id="all-scopes-link"' in content


def test_daily_figures_per_day(staff_client, usage):
    content = staff_client.get(URL + "?range=30d").content.decode()
    expected = {}
    for moment, cost, tokens in sql(f"SELECT created_at, cost_micros, input_tokens + output_tokens FROM {TABLE}", []):
        if isinstance(moment, str):  # SQLite without converters in a raw cursor
            moment = datetime.fromisoformat(moment)
        moment = moment if timezone.is_aware(moment) else timezone.make_aware(moment)
        day = timezone.localtime(moment).date()
        if day >= day_start(29).date():
            entry = expected.setdefault(day.isoformat(), [0, 0, 0])
            entry[0] += cost or 0
            entry[1] += tokens
            entry[2] += 1
    for row in rows(section(content, "daily")):
        cost, tokens, calls = expected.get(row["day"], [0, 0, 0])
        assert (int(row["tokens"]), int(row["calls"])) == (tokens, calls), row["day"]
        assert (number(row["cost"]) or 0) == cost, row["day"]


def test_custom_range_and_edges(staff_client, usage):
    day = (timezone.localdate() - timedelta(days=7)).isoformat()
    content = staff_client.get(URL + f"?from={day}&to={day}").content.decode()
    ranking = {r["scope"]: r for r in rows(section(content, "scope-ranking"))}
    assert ranking["edge"]["cost"] == "7000000", "only the row of that day"
    content = staff_client.get(URL + "?range=7d&scope=edge").content.decode()
    assert re.search(r'id="focus-totals" data-cost="1000000" data-calls="1"', content)


def test_unpriced_usage_is_never_shown_as_zero(staff_client, usage):
    content = staff_client.get(URL + "?range=today&scope=unpriced-only").content.decode()
    focus = section(content, "by-model")
    assert '<span class="unpriced">unpriced</span>' in focus
    assert "$0" not in focus
    ranking_row = re.search(r'<tr[^>]*data-scope="unpriced-only".*?</tr>', content, re.S).group(0)
    assert "unpriced" in ranking_row and "$0" not in ranking_row


def test_ranking_is_bounded_with_a_way_to_see_more(staff_client, make_session):
    for index in range(8):
        make_session(scope=f"scope-{index}", turns=[Turn("x", [Call(cost_micros=1000 * (index + 1))])])
    content = staff_client.get(URL + "?top=5").content.decode()
    ranking = rows(section(content, "scope-ranking"))
    assert [r["scope"] for r in ranking] == [f"scope-{index}" for index in range(7, 2, -1)]
    assert "top 5 of 8 scopes" in content
    assert "?top=100" in content


@pytest.mark.django_db
def test_empty_range(staff_client):
    content = staff_client.get(URL + "?range=today").content.decode()
    assert "No usage in this range." in content
    assert stats(content)["calls"] == "0"
