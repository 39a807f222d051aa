"""Cost & Usage: every figure equals a direct SQL aggregate over the usage rows, for any range and scope."""

from __future__ import annotations

import csv
import html
import io
import math
import re
from datetime import date, datetime, time, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from agents.models import Session, UsageRecord
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
SESSIONS = Session._meta.db_table


def day_start(days_ago: int) -> datetime:
    day = timezone.localdate() - timedelta(days=days_ago)
    return timezone.make_aware(datetime.combine(day, time.min))


def moment(value: datetime):
    """A datetime parameter as the ORM passes it (SQLite: UTC text, as the column holds it)."""
    return connection.ops.adapt_datetimefield_value(value)


def where(start: datetime, scope: str | None) -> tuple[str, list]:
    clause, params = "created_at >= %s", [moment(start)]
    if scope is not None:
        clause += " AND scope = %s"
        params.append(scope)
    return clause, params


@pytest.fixture
def usage(make_session, demo_data):
    demo_data(scopes=6, sessions=40, usage_rows=200, days=75, seed=11)
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

    # Totals (always all scopes); sessions: those started in the range.
    clause, params = where(start, None)
    expected = sql(
        f"SELECT SUM(cost_micros), COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), 0), "
        f"COALESCE(SUM(cache_read_tokens), 0), COALESCE(SUM(cache_write_tokens), 0), COUNT(*), "
        f"COUNT(*) - COUNT(cost_micros), (SELECT COUNT(*) FROM {SESSIONS} WHERE {clause}) FROM {TABLE} "
        f"WHERE {clause}",
        params + params,
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

    # The scope ranking: cost, tokens and sessions started per scope, most expensive first.
    expected_ranking = sql(
        f"SELECT scope, SUM(cost_micros), SUM(input_tokens) + SUM(output_tokens), "
        f"(SELECT COUNT(*) FROM {SESSIONS} AS s WHERE s.scope = u.scope AND s.{clause}) "
        f"FROM {TABLE} AS u WHERE u.{clause} GROUP BY scope",
        params + params,
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


# --- the previous period ----------------------------------------------------------------------------------


def changes(content: str, element_id: str) -> dict[str, dict[str, str]]:
    return {
        name: {"previous": html.unescape(previous), "change": html.unescape(change)}
        for name, previous, change in re.findall(
            r'data-figure="(\w+)" data-previous="([^"]*)" data-change="([^"]*)"', section(content, element_id)
        )
    }


def raw_totals(start: datetime, end: datetime, scope: str | None) -> dict[str, int | None]:
    clause, params = "created_at >= %s AND created_at < %s", [moment(start), moment(end)]
    if scope is not None:
        clause += " AND scope = %s"
        params.append(scope)
    cost, input_tokens, output_tokens, calls, unpriced, sessions = (
        None if value is None else int(value)
        for value in sql(
            f"SELECT SUM(cost_micros), COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), 0), COUNT(*), "
            f"COUNT(*) - COUNT(cost_micros), (SELECT COUNT(*) FROM {SESSIONS} WHERE {clause}) FROM {TABLE} "
            f"WHERE {clause}",
            params + params,
        )[0]
    )
    return {
        "cost": cost,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "calls": calls,
        "unpriced": unpriced,
        "sessions": sessions,
    }


def expected_change(now: int | None, before: int | None) -> str:
    if not before:
        return "new" if now else ""
    return f"{100.0 * ((now or 0) - before) / before:.4f}"


@pytest.mark.parametrize("range_key, days", [("7d", 7), ("30d", 30), ("today", 1)])
@pytest.mark.parametrize("scope", [None, "edge"])
def test_each_total_beside_the_previous_period_of_the_same_length(staff_client, usage, range_key, days, scope):
    url = URL + f"?range={range_key}" + ("" if scope is None else "&scope=" + q(scope))
    content = staff_client.get(url).content.decode()
    start = day_start(days - 1)
    previous_start = start - timedelta(days=days)
    grids = [("totals", None)] + ([("focus-stats", scope)] if scope is not None else [])
    for element_id, grid_scope in grids:
        shown = changes(content, element_id)
        now = raw_totals(start, start + timedelta(days=days + 1), grid_scope)
        before = raw_totals(previous_start, start, grid_scope)
        for name, value in before.items():
            assert number(shown[name]["previous"]) == value, (element_id, name)
            assert shown[name]["change"] == expected_change(now[name], value), (element_id, name)
    first = (timezone.localdate() - timedelta(days=2 * days - 1)).isoformat()
    assert f"Compared with the previous {days} day" in content and first in section_of(content, "compare-note")


def section_of(content: str, element_id: str) -> str:
    start = content.index(f'id="{element_id}"')
    return content[start : content.index("</p>", start)]


def test_the_edge_rows_move_between_the_periods(staff_client, usage):
    content = staff_client.get(URL + "?range=7d&scope=edge").content.decode()
    shown = changes(content, "focus-stats")
    # 1.00 $ in the week, 7.00 $ in the week before (two minutes before it).
    assert shown["cost"] == {"previous": "7000000", "change": f"{100.0 * (1_000_000 - 7_000_000) / 7_000_000:.4f}"}
    assert "▼ −86%" in section(content, "focus-stats") and "vs $7.00" in section(content, "focus-stats")


def test_new_when_the_previous_period_had_nothing(staff_client, make_session):
    make_session(scope="fresh", turns=[Turn("x", [Call(cost_micros=500, input_tokens=10)])])
    content = staff_client.get(URL + "?range=7d").content.decode()
    shown = changes(content, "totals")
    assert shown["cost"] == {"previous": "", "change": "new"} and shown["calls"]["change"] == "new"
    assert shown["cache_read_tokens"] == {"previous": "0", "change": ""}, "nothing then, nothing now"
    assert '<span class="stat-change change-new"' in content and ">new <" in content
    assert "no change" in section(content, "totals")


def test_no_comparison_for_an_open_ended_range(staff_client, usage):
    content = staff_client.get(URL + "?range=all").content.decode()
    assert "stat-change" not in content
    assert "No comparison: the range has no start" in content
    content = staff_client.get(URL + f"?to={timezone.localdate().isoformat()}").content.decode()
    assert "stat-change" not in content


# --- latency percentiles ---------------------------------------------------------------------------------


@pytest.mark.parametrize("scope", [None, "edge"])
def test_latency_p50_and_p95_per_model_lie_in_the_bucket_of_the_exact_value(staff_client, usage, scope):
    url = URL + "?range=30d" + ("" if scope is None else "&scope=" + q(scope))
    content = staff_client.get(url).content.decode()
    clause, params = where(day_start(29), scope)
    latencies: dict[str, list[int]] = {}
    for model, latency in sql(f"SELECT model, latency_ms FROM {TABLE} WHERE {clause}", params):
        latencies.setdefault(model, []).append(latency)
    shown = rows(section(content, "by-model"))
    assert {row["model"] for row in shown} == set(latencies)
    for row in shown:
        ordered = sorted(latencies[row["model"]])
        for name, share in (("p50", 0.5), ("p95", 0.95)):
            exact = ordered[math.ceil(share * len(ordered)) - 1]  # nearest rank
            low, high = int(row[f"{name}-low"]), number(row[f"{name}-high"])
            assert low <= exact and (high is None or exact < high), (row["model"], name, exact, low, high)
    assert "buckets √2 apart" in content


# --- the highest-cost sessions -----------------------------------------------------------------------------


def expected_top(start: datetime | None, scope: str | None, limit: int = 10) -> list[tuple]:
    clauses, params = ["session_id IS NOT NULL"], []
    if start is not None:
        clauses.append("created_at >= %s")
        params.append(moment(start))
    if scope is not None:
        clauses.append("scope = %s")
        params.append(scope)
    found = sql(
        f"SELECT session_id, SUM(cost_micros), SUM(input_tokens) FROM {TABLE} WHERE {' AND '.join(clauses)} "
        f"GROUP BY session_id",
        params,
    )
    found.sort(key=lambda r: (-(-1 if r[1] is None else r[1]), -r[2], str(r[0]).replace("-", "")))
    return [(str(session).replace("-", ""), cost) for session, cost, _ in found[:limit]]


def shown_top(content: str) -> list[tuple]:
    return [(row["session"].replace("-", ""), number(row["cost"])) for row in rows(section(content, "top-sessions"))]


@pytest.mark.parametrize("candidates_per_session", [3, 1])
@pytest.mark.parametrize("range_key, days_ago", [("7d", 6), ("30d", 29), ("today", 0), ("all", None)])
@pytest.mark.parametrize("scope", [None, "edge"])
def test_highest_cost_sessions_are_those_of_the_rows_in_the_range(
    staff_client, usage, make_session, monkeypatch, candidates_per_session, range_key, days_ago, scope
):
    # A session that cost the most of all, almost all of it before the range: in the range it ranks low.
    make_session(
        scope="edge",
        title="straddling",
        at=day_start(7) + timedelta(hours=23),
        step_seconds=1800,
        turns=[Turn("old", [Call(cost_micros=90_000_000), Call(cost_micros=90_000_000), Call(cost_micros=3)])],
    )
    monkeypatch.setattr("studio.selectors.usage.CANDIDATES_PER_TOP_SESSION", candidates_per_session)
    url = URL + f"?range={range_key}" + ("" if scope is None else "&scope=" + q(scope))
    content = staff_client.get(url).content.decode()
    start = None if days_ago is None else day_start(days_ago)
    assert shown_top(content) == expected_top(start, scope)


def test_highest_cost_sessions_with_ties_fall_back_to_every_row(staff_client, make_session, monkeypatch):
    for index in range(14):
        make_session(scope=f"tie-{index % 3}", title=f"tie {index}", turns=[Turn("x", [Call(cost_micros=400)])])
    monkeypatch.setattr("studio.selectors.usage.CANDIDATES_PER_TOP_SESSION", 1)
    content = staff_client.get(URL + "?range=7d").content.decode()
    assert shown_top(content) == expected_top(day_start(6), None)
    assert len(shown_top(content)) == 10


# --- CSV exports -------------------------------------------------------------------------------------------


def read_csv(response) -> list[list[str]]:
    """The rows of a CSV download: streamed (under the test client from the sync generator itself; under
    ASGI the same generator is read a chunk at a time, tests/studio/browser/test_usage_page.py)."""
    assert response.status_code == 200
    assert response.streaming
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8"))))


def csv_of(client, panel: str, query: str) -> tuple[list[str], list[dict[str, str]], object]:
    response = client.get(f"/studio/usage/{panel}.csv?{query}")
    table = read_csv(response)
    header, lines = table[0], table[1:]
    return header, [dict(zip(header, line, strict=True)) for line in lines], response


def micros(usd: str) -> int | None:
    return None if usd == "" else int(Decimal(usd) * 1_000_000)


@pytest.mark.parametrize("scope", [None, "edge"])
def test_csv_of_each_panel_equals_the_database(staff_client, usage, scope):
    query = "range=30d" + ("" if scope is None else "&scope=" + q(scope))
    start = day_start(29)
    clause, params = where(start, scope)
    every_clause, every_params = where(start, None)

    _, by_model, _ = csv_of(staff_client, "by-model", query)
    expected = sql(
        f"SELECT model, SUM(cost_micros), COUNT(*) - COUNT(cost_micros), SUM(input_tokens), SUM(output_tokens), "
        f"SUM(cache_read_tokens), SUM(cache_write_tokens), COUNT(*) FROM {TABLE} WHERE {clause} GROUP BY model",
        params,
    )
    assert {
        (
            r["model"],
            micros(r["cost_usd"]),
            int(r["unpriced_calls"]),
            int(r["input_tokens"]),
            int(r["output_tokens"]),
            int(r["cache_read_tokens"]),
            int(r["cache_write_tokens"]),
            int(r["calls"]),
        )
        for r in by_model
    } == set(expected)
    assert all(int(r["latency_p50_bucket_low_ms"]) <= int(r["latency_p50_ms"]) for r in by_model)

    _, by_deploy, _ = csv_of(staff_client, "by-deploy", query)
    assert {(r["deploy_id"], micros(r["cost_usd"]), int(r["calls"])) for r in by_deploy} == set(
        sql(f"SELECT deploy_id, SUM(cost_micros), COUNT(*) FROM {TABLE} WHERE {clause} GROUP BY deploy_id", params)
    )

    _, daily, _ = csv_of(staff_client, "daily", query)
    assert len(daily) == 30 and daily[-1]["day"] == timezone.localdate().isoformat()
    assert sum(int(r["calls"]) for r in daily) == sql(f"SELECT COUNT(*) FROM {TABLE} WHERE {clause}", params)[0][0]

    # The scope ranking: every scope with usage (all scopes whatever the focus), most expensive first.
    _, scopes, _ = csv_of(staff_client, "scopes", query)
    expected_scopes = sql(
        f"SELECT scope, SUM(cost_micros), COUNT(*), (SELECT COUNT(*) FROM {SESSIONS} AS s "
        f"WHERE s.scope = u.scope AND s.{every_clause}) FROM {TABLE} AS u WHERE u.{every_clause} GROUP BY scope",
        every_params + every_params,
    )
    assert {(r["scope"], micros(r["cost_usd"]), int(r["calls"]), int(r["sessions_started"])) for r in scopes} == set(
        expected_scopes
    )
    assert [int(r["rank"]) for r in scopes] == list(range(1, len(expected_scopes) + 1))
    costs = [micros(r["cost_usd"]) for r in scopes]
    assert costs == sorted(costs, key=lambda c: -1 if c is None else c, reverse=True)

    _, top, _ = csv_of(staff_client, "top-sessions", query)
    assert [(r["session_id"].replace("-", ""), micros(r["cost_usd"])) for r in top] == expected_top(start, scope)

    _, totals, _ = csv_of(staff_client, "totals", query)
    blocks = [("all", None)] + ([("one", scope)] if scope is not None else [])
    assert [(r["scopes"], r["scope"]) for r in totals] == [
        (which, grid_scope or "") for which, grid_scope in blocks for _ in range(8)
    ]
    for which, grid_scope in blocks:
        figures = {r["figure"]: r for r in totals if r["scopes"] == which}
        now = raw_totals(start, start + timedelta(days=31), grid_scope)
        before = raw_totals(start - timedelta(days=30), start, grid_scope)
        assert micros(figures["cost_usd"]["value"]) == now["cost"]
        assert micros(figures["cost_usd"]["previous_period_value"]) == before["cost"]
        assert int(figures["calls"]["value"]) == now["calls"]
        assert int(figures["sessions_started"]["previous_period_value"]) == before["sessions"]
        assert figures["calls"]["change_percent"] == (
            "new" if not before["calls"] else str(round(100.0 * (now["calls"] - before["calls"]) / before["calls"], 2))
        )


def test_csv_headers_and_filename(staff_client, usage):
    _, _, response = csv_of(staff_client, "by-model", "range=7d")
    first = (timezone.localdate() - timedelta(days=6)).isoformat()
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == (
        f'attachment; filename="cost-usage_by-model_{first}_{timezone.localdate().isoformat()}_all-scopes.csv"'
    )
    _, _, response = csv_of(staff_client, "daily", "range=all&scope=")
    assert response["Content-Disposition"] == 'attachment; filename="cost-usage_daily_all-time_global-scope.csv"'
    _, _, response = csv_of(staff_client, "scopes", "range=7d&scope=" + q('a"b/../c d;e'))
    assert response["Content-Disposition"].endswith('_scope-a_b_.._c_d_e.csv"')


def test_csv_cells_cannot_run_as_formulas(staff_client, make_session):
    evil_scope = "=cmd|' /C calc'!A0"
    make_session(scope=evil_scope, title='=HYPERLINK("http://evil","x")', turns=[Turn("x", [Call(cost_micros=9)])])
    make_session(scope="+plus", title='-2+3, "quoted"\nnext line', turns=[Turn("x", [Call(cost_micros=8)])])
    make_session(scope="@at", title="\tTab", turns=[Turn("x", [Call(cost_micros=7)])])
    _, top, _ = csv_of(staff_client, "top-sessions", "range=7d")
    assert [r["title"] for r in top] == ['\'=HYPERLINK("http://evil","x")', '\'-2+3, "quoted"\nnext line', "'\tTab"]
    assert [r["scope"] for r in top] == ["'" + evil_scope, "'+plus", "'@at"]
    _, scopes, _ = csv_of(staff_client, "scopes", "range=7d")
    assert [r["scope"] for r in scopes] == ["'" + evil_scope, "'+plus", "'@at"]
    assert [r["cost_usd"] for r in scopes] == ["0.000009", "0.000008", "0.000007"], "numbers stay numbers"


@pytest.mark.django_db
def test_csv_of_an_unknown_panel_is_404(staff_client):
    response = staff_client.get("/studio/usage/secrets.csv")
    assert response.status_code == 404
    assert staff_client.post("/studio/usage/daily.csv").status_code == 405


@pytest.mark.django_db
def test_csv_needs_the_studio_permission(client, plain_staff_client):
    assert client.get("/studio/usage/scopes.csv").status_code == 302
    assert "/admin/login/" in client.get("/studio/usage/scopes.csv")["Location"]
    assert plain_staff_client.get("/studio/usage/scopes.csv").status_code == 403


@pytest.mark.django_db
def test_an_empty_range_exports_a_header_only(staff_client):
    header, lines, _ = csv_of(staff_client, "scopes", "range=today")
    assert header[:4] == ["rank", "scope", "scope_label", "cost_usd"] and lines == []
    _, daily, _ = csv_of(staff_client, "daily", "range=today")
    assert [(r["day"], r["calls"], r["cost_usd"]) for r in daily] == [(timezone.localdate().isoformat(), "0", "0")]


# --- queries per variant -------------------------------------------------------------------------------------

# The page: the ranking and the sessions its scopes started (2), the breakdown (day × deploy × model),
# the latency histogram and the sessions started (3), the deploys' names (1), the highest-cost sessions
# (candidates, their rows: 2); focused, the totals of every scope come on top (rollup, sessions: 2). Each
# CSV runs the queries of its panel only: totals (rollup, sessions; twice when focused), scopes (the
# ranking, the sessions of every scope), by model (the breakdown, the histogram), by deploy (the breakdown,
# the deploys' names), daily (the breakdown), highest-cost sessions (candidates, their rows).
# The page also reads the labels of the scopes it shows (1); so do the highest-cost sessions' CSV and the
# focused totals' (1); the ranking's CSV reads each scope's label in its own query.
# End users' ratings: one GROUP BY beside the ranking (of the scopes shown; in its CSV, of every scope) and
# one beside the deploys, on the page and in those two CSVs.
# With budgets in amodal.json the page reads one more, and the budgets CSV one (tests/studio/test_budget_use.py);
# this agent has none, so that CSV reads nothing.
PAGE_QUERIES = {"": 11, "&scope=edge": 13}
CSV_QUERIES = {
    "totals": (2, 5),
    "scopes": (3, 3),
    "by-model": (2, 2),
    "by-deploy": (3, 3),
    "daily": (1, 1),
    "top-sessions": (3, 3),
    "budgets": (0, 0),
}
LOGIN_QUERIES = 4  # the session, the user and its permissions (user and group)


@pytest.mark.parametrize("focus", list(PAGE_QUERIES))
def test_queries_of_the_page(staff_client, usage, focus, django_assert_num_queries):
    staff_client.get(URL + "?range=30d" + focus)
    with django_assert_num_queries(PAGE_QUERIES[focus] + LOGIN_QUERIES):
        assert staff_client.get(URL + "?range=30d" + focus).status_code == 200


@pytest.mark.parametrize("panel", list(CSV_QUERIES))
@pytest.mark.parametrize("focused_on", [None, "edge"])
def test_queries_of_each_csv(staff_client, usage, panel, focused_on):
    query = "range=30d" + ("" if focused_on is None else "&scope=" + q(focused_on))
    csv_of(staff_client, panel, query)
    with CaptureQueriesContext(connection) as queries:
        csv_of(staff_client, panel, query)  # read to the end: the rows come while the body is written
    expected = CSV_QUERIES[panel][0 if focused_on is None else 1] + LOGIN_QUERIES
    assert len(queries) == expected, "\n".join(query["sql"][:120] for query in queries)


def month_ranges() -> list[tuple[date, date]]:
    """Custom ranges against the month table: whole months only, partial months on both sides, days
    inside one month."""
    this_month = timezone.localdate().replace(day=1)
    last_month_end = this_month - timedelta(days=1)
    two_months_ago = (last_month_end.replace(day=1) - timedelta(days=1)).replace(day=1)
    return [
        (two_months_ago, last_month_end),
        (two_months_ago + timedelta(days=9), last_month_end - timedelta(days=3)),
        (two_months_ago + timedelta(days=3), two_months_ago + timedelta(days=12)),
        (two_months_ago - timedelta(days=1), timezone.localdate()),
    ]


@pytest.mark.parametrize("index", range(4))
def test_the_ranking_sums_whole_months_and_the_days_around_them(staff_client, usage, index):
    first, last = month_ranges()[index]
    content = staff_client.get(URL + f"?from={first}&to={last}&top=100").content.decode()
    start = timezone.make_aware(datetime.combine(first, time.min))
    end = timezone.make_aware(datetime.combine(last + timedelta(days=1), time.min))
    expected = sql(
        f"SELECT scope, SUM(cost_micros), SUM(input_tokens) + SUM(output_tokens), COUNT(*) FROM {TABLE} "
        f"WHERE created_at >= %s AND created_at < %s GROUP BY scope",
        [moment(start), moment(end)],
    )
    shown = rows(section(content, "scope-ranking"))
    assert {(r["scope"], number(r["cost"]), int(r["tokens"]), int(r["calls"])) for r in shown} == {
        (scope, None if cost is None else int(cost), int(tokens), calls) for scope, cost, tokens, calls in expected
    }
