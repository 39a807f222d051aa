"""Cost & Usage in a real browser: each total beside the previous period, latency p50/p95 per model, the CSV
download of every panel, and the page on a phone. Every figure is checked against plain SQL over the usage
rows of the live server's database (the page reads the rollup; the SQL reads the rows it sums).
"""

from __future__ import annotations

import csv
import io
import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.studio.browser.conftest import data_rows, day_start, moment, number, shoot

pytestmark = [pytest.mark.browser, pytest.mark.live]

FIGURES = ("cost", "unpriced", "input_tokens", "output_tokens", "calls", "sessions")


def as_int(value) -> int | None:
    return None if value is None else int(value)


def raw_totals(database, start: datetime, end: datetime, scope: str | None = None) -> dict[str, int | None]:
    clause, params = "created_at >= %s AND created_at < %s", [moment(database, start), moment(database, end)]
    if scope is not None:
        clause += " AND scope = %s"
        params.append(scope)
    row = database.query(
        f"SELECT SUM(cost_micros), COUNT(*) - COUNT(cost_micros), COALESCE(SUM(input_tokens), 0), "
        f"COALESCE(SUM(output_tokens), 0), COUNT(*), (SELECT COUNT(*) FROM agents_session WHERE {clause}) "
        f"FROM agents_usagerecord WHERE {clause}",
        tuple(params + params),
    )[0]
    return dict(zip(FIGURES, (as_int(value) for value in row), strict=True))


def expected_change(now: int | None, before: int | None) -> str:
    if not before:
        return "new" if now else ""
    return f"{100.0 * ((now or 0) - before) / before:.4f}"


def shown_changes(page, grid: str) -> dict[str, dict[str, str]]:
    return {row["figure"]: row for row in data_rows(page, f"#{grid} .stat-change")}


def busiest_scope(database) -> str:
    return database.query("SELECT scope FROM agents_usagerecord GROUP BY scope ORDER BY COUNT(*) DESC LIMIT 1")[0][0]


def test_each_total_beside_the_previous_period(page, studio_server):
    database = studio_server.database
    base = studio_server.base_url
    page.goto(base + "/studio/usage/?range=7d")
    start, end = day_start(6), day_start(-1)
    before_start = start - timedelta(days=7)
    now, before = raw_totals(database, start, end), raw_totals(database, before_start, start)
    shown = shown_changes(page, "totals")
    assert set(shown) >= set(FIGURES)
    for name in FIGURES:
        assert number(shown[name]["previous"]) == before[name], name
        assert shown[name]["change"] == expected_change(now[name], before[name]), name
    note = page.inner_text("#compare-note")
    assert "previous 7 days" in note and before_start.date().isoformat() in note
    assert "vs " in page.inner_text("#totals .stat-main")

    # Focused on the busiest scope: its own totals, beside its own previous week.
    scope = busiest_scope(database)
    page.goto(base + "/studio/usage/?range=7d&scope=" + quote(scope, safe=""))
    now = raw_totals(database, start, end, scope)
    before = raw_totals(database, before_start, start, scope)
    shown = shown_changes(page, "focus-stats")
    for name in FIGURES:
        assert number(shown[name]["previous"]) == before[name], name
        assert shown[name]["change"] == expected_change(now[name], before[name]), name
    shoot(page, "studio-usage.png")

    # All time has no previous period: no comparison, said so.
    page.goto(base + "/studio/usage/?range=all")
    assert page.locator(".stat-change").count() == 0
    assert "No comparison" in page.inner_text("#compare-note")


def test_latency_p50_and_p95_per_model(page, studio_server):
    database = studio_server.database
    page.goto(studio_server.base_url + "/studio/usage/?range=30d")
    latencies: dict[str, list[int]] = {}
    for model, latency in database.query(
        "SELECT model, latency_ms FROM agents_usagerecord WHERE created_at >= %s",
        (moment(database, day_start(29)),),
    ):
        latencies.setdefault(model, []).append(latency)
    rows = data_rows(page, "#by-model tbody tr[data-model]")
    assert {row["model"] for row in rows} == set(latencies)
    for row in rows:
        ordered = sorted(latencies[row["model"]])
        for name, share in (("p50", 0.5), ("p95", 0.95)):
            exact = ordered[math.ceil(share * len(ordered)) - 1]  # nearest rank
            low, high = int(row[f"{name}Low"]), number(row[f"{name}High"])
            assert low <= exact and (high is None or exact < high), (row["model"], name, exact)
    cells = page.locator("#by-model tbody tr[data-model] td.latency")
    assert cells.count() == 2 * len(rows)
    assert all(text.startswith(("≈", "<", "≥")) for text in cells.all_inner_texts())
    assert "±19%" in page.inner_text("#latency-note")


def download(page, selector: str) -> tuple[str, list[dict[str, str]]]:
    with page.expect_download() as info:
        page.click(selector)
    path = Path(info.value.path())
    table = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
    return info.value.suggested_filename, [dict(zip(table[0], line, strict=True)) for line in table[1:]]


def micros(usd: str) -> int | None:
    return None if usd == "" else int(Decimal(usd) * 1_000_000)


def test_each_csv_download_equals_the_database(page, studio_server):
    database = studio_server.database
    page.goto(studio_server.base_url + "/studio/usage/?range=30d")
    since = moment(database, day_start(29))
    first, last = day_start(29).date().isoformat(), datetime.now(UTC).date().isoformat()

    name, by_model = download(page, "#by-model a.csv-link")
    assert name == f"cost-usage_by-model_{first}_{last}_all-scopes.csv"
    expected = database.query(
        "SELECT model, SUM(cost_micros), COUNT(*) - COUNT(cost_micros), SUM(input_tokens), SUM(output_tokens), "
        "COUNT(*) FROM agents_usagerecord WHERE created_at >= %s GROUP BY model",
        (since,),
    )
    assert {
        (r["model"], micros(r["cost_usd"]), int(r["unpriced_calls"]), int(r["input_tokens"]), int(r["output_tokens"]))
        + (int(r["calls"]),)
        for r in by_model
    } == {(model, as_int(cost), *(int(v) for v in rest)) for model, cost, *rest in expected}

    _, by_deploy = download(page, "#by-deploy a.csv-link")
    assert {(r["deploy_id"], micros(r["cost_usd"]), int(r["calls"])) for r in by_deploy} == {
        (deploy, as_int(cost), calls)
        for deploy, cost, calls in database.query(
            "SELECT deploy_id, SUM(cost_micros), COUNT(*) FROM agents_usagerecord WHERE created_at >= %s "
            "GROUP BY deploy_id",
            (since,),
        )
    }

    _, daily = download(page, "#daily a.csv-link")
    assert [r["day"] for r in daily][0] == first and len(daily) == 30
    calls_by_day = {}
    for (created_at,) in database.query("SELECT created_at FROM agents_usagerecord WHERE created_at >= %s", (since,)):
        when = created_at if isinstance(created_at, datetime) else datetime.fromisoformat(created_at)
        day = (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC).date().isoformat()
        calls_by_day[day] = calls_by_day.get(day, 0) + 1
    assert {r["day"]: int(r["calls"]) for r in daily if r["calls"] != "0"} == calls_by_day

    _, scopes = download(page, "#scope-ranking a.csv-link")
    expected_scopes = database.query(
        "SELECT scope, SUM(cost_micros), COUNT(*) FROM agents_usagerecord WHERE created_at >= %s GROUP BY scope",
        (since,),
    )
    assert len(scopes) == len(expected_scopes) > 15, "every scope, not only the top shown"
    assert {(r["scope"], micros(r["cost_usd"]), int(r["calls"])) for r in scopes} == {
        (scope, as_int(cost), calls) for scope, cost, calls in expected_scopes
    }

    _, top = download(page, "#top-sessions a.csv-link")
    expected_top = database.query(
        "SELECT session_id, SUM(cost_micros) AS total FROM agents_usagerecord WHERE created_at >= %s "
        "AND session_id IS NOT NULL GROUP BY session_id ORDER BY total DESC NULLS LAST, SUM(input_tokens) DESC "
        "LIMIT 10",
        (since,),
    )
    assert [micros(r["cost_usd"]) for r in top] == [as_int(cost) for _, cost in expected_top]
    assert [r["session_id"] for r in top] == [row["session"] for row in data_rows(page, "#top-sessions tbody tr")]

    _, totals = download(page, ".section-head a.csv-link")
    figures = {r["figure"]: r for r in totals}
    now = raw_totals(database, day_start(29), day_start(-1))
    before = raw_totals(database, day_start(59), day_start(29))
    assert micros(figures["cost_usd"]["value"]) == now["cost"]
    assert micros(figures["cost_usd"]["previous_period_value"]) == before["cost"]
    assert int(figures["calls"]["value"]) == now["calls"]
    assert int(figures["sessions_started"]["value"]) == now["sessions"]
    assert int(figures["input_tokens"]["previous_period_value"]) == before["input_tokens"]


def test_the_page_fits_a_phone(browser, studio_server, page):
    context = browser.new_context(viewport={"width": 390, "height": 844}, storage_state=page.context.storage_state())
    tab = context.new_page()
    try:
        scope = busiest_scope(studio_server.database)
        tab.goto(studio_server.base_url + "/studio/usage/?range=30d&scope=" + quote(scope, safe=""))
        assert tab.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 1
        # Tables become one card per row: each figure beside its column's name, none cut off.
        calls = tab.locator('#by-model tbody tr[data-model] td[data-label="Calls"]').first
        assert calls.is_visible()
        box, card = calls.bounding_box(), tab.locator("#by-model").bounding_box()
        assert box["x"] >= card["x"] and box["x"] + box["width"] <= card["x"] + card["width"] + 1
        assert tab.evaluate(
            "[...document.querySelectorAll('.card')].every(card => card.scrollWidth <= card.clientWidth + 1)"
        ), "no card scrolls sideways either"
        shoot(tab, "studio-usage-narrow.png")
    finally:
        context.close()
