"""The Studio sessions list in a real browser: sorting by each column, full-text search, filters kept in the URL
and the form, invalid values shown as errors, numbered pages, the CSV download, and a 390 px screen.

Every list is checked against plain SQL on the live server's database (conftest.py). These tests only read.
"""

from __future__ import annotations

import csv
import io
import re
import uuid
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from tests.e2e.live import start_server
from tests.studio.browser.conftest import data_rows, shoot

pytestmark = [pytest.mark.browser, pytest.mark.live]

ROWS = "#sessions-table tbody tr[data-session]"
SORT_SQL = {
    "last_active": "updated_at",
    "created": "created_at",
    "cost": "cost_micros",
    "tokens": "input_tokens + output_tokens",
    "messages": "message_count",
}


def shown_ids(tab) -> list[str]:
    return [uuid.UUID(row["session"]).hex for row in data_rows(tab, ROWS)]


def hexes(rows: list[tuple]) -> list[str]:
    return [uuid.UUID(str(row[0])).hex for row in rows]


def total(tab) -> int:
    return int(tab.get_attribute("#session-total [data-total]", "data-total"))


def params(tab) -> dict[str, list[str]]:
    return parse_qs(urlsplit(tab.url).query, keep_blank_values=True)


def matching_search_sql(database, word: str) -> tuple[str, tuple]:
    """The sessions a search for `word` finds, as SQL (the PostgreSQL full-text match, or SQLite's
    case-insensitive substring), for comparing with what the page lists."""
    if database.vendor == "postgresql":
        match = "to_tsvector('english', {}) @@ websearch_to_tsquery('english', %s)"
        return (
            f"SELECT session_id FROM agents_message WHERE {match.format('text')} "
            f"UNION SELECT id FROM agents_session WHERE {match.format('title')}",
            (word, word),
        )
    pattern = f"%{word}%"
    return (
        "SELECT session_id FROM agents_message WHERE text LIKE %s "
        "UNION SELECT id FROM agents_session WHERE title LIKE %s",
        (pattern, pattern),
    )


def test_sorting_by_each_column_both_ways_matches_sql(page, studio_server):
    database = studio_server.database
    shoot(page, "studio-sessions.png")
    assert page.get_attribute('th[data-column="last_active"]', "aria-sort") == "descending"
    for column, expression in SORT_SQL.items():
        for direction in ("DESC", "ASC"):
            header = page.locator(f'th[data-column="{column}"] a.sort-link')
            # A heading not sorted by links to largest first; the sorted one flips its direction.
            if page.get_attribute(f'th[data-column="{column}"]', "aria-sort") != "descending" or direction == "ASC":
                with page.expect_navigation():
                    header.click()
            expected_sort = f"-{column}" if direction == "DESC" else column
            assert params(page).get("sort", ["-last_active"]) == [expected_sort]
            state = "descending" if direction == "DESC" else "ascending"
            assert page.get_attribute(f'th[data-column="{column}"]', "aria-sort") == state
            expected = database.query(
                f"SELECT id FROM agents_session ORDER BY {expression} {direction}, id {direction} LIMIT 50"
            )
            assert shown_ids(page) == hexes(expected), (column, direction)


def test_search_finds_a_session_by_a_word_of_one_of_its_messages(page, studio_server):
    database = studio_server.database
    texts = database.query(
        "SELECT session_id, text FROM agents_message WHERE role = 'assistant' AND text <> '' ORDER BY id DESC LIMIT 300"
    )
    session_id, word = next(
        (sid, match.group(0)) for sid, text in texts if (match := re.search(r"\b\d{2,}\.\d\d\b", text))
    )
    page.fill("#filter-q", word)
    with page.expect_navigation():
        page.press("#filter-q", "Enter")
    assert params(page)["q"] == [word]
    assert uuid.UUID(str(session_id)).hex in shown_ids(page)
    sql, args = matching_search_sql(database, word)
    expected = database.query(f"SELECT COUNT(*) FROM ({sql}) AS matching", args)[0][0]
    assert total(page) == expected >= 1
    assert page.locator("#session-total .search-echo").inner_text() == word
    assert page.input_value("#filter-q") == word, "the form keeps the search"


def test_filters_are_in_the_url_and_the_form_after_a_reload(page, studio_server):
    database = studio_server.database
    conditions = (
        "status = 'idle' AND cost_micros >= 1000 AND model_calls > 0 AND model_latency_ms <= 60000 * model_calls"
    )
    user, tag = database.query(
        "SELECT s.user_sub, t.tag FROM agents_session s JOIN agents_sessiontag t ON t.session_id = s.id "
        f"WHERE {conditions} GROUP BY s.user_sub, t.tag ORDER BY COUNT(*) DESC, s.user_sub, t.tag LIMIT 1"
    )[0]
    page.select_option("#session-filters select[name=status]", "idle")
    page.fill("#session-filters input[name=user]", user)
    page.fill("#session-filters input[name=tag]", tag)
    page.fill("#session-filters input[name=cost_min]", "0.001")
    page.fill("#session-filters input[name=latency_max]", "60000")
    with page.expect_navigation():
        page.click("#session-filters button[type=submit]")
    expected_params = {"status": "idle", "user": user, "tag": tag, "cost_min": "0.001", "latency_max": "60000"}
    assert {name: params(page)[name] for name in expected_params} == {k: [v] for k, v in expected_params.items()}
    shoot(page, "studio-sessions-filters.png")
    page.reload()
    for name, value in expected_params.items():
        if name == "status":
            assert page.input_value("#session-filters select[name=status]") == value
        else:
            assert page.input_value(f"#session-filters input[name={name}]") == value, name
    expected = database.query(
        f"SELECT COUNT(*) FROM agents_session WHERE {conditions} AND user_sub = %s "
        "AND id IN (SELECT session_id FROM agents_sessiontag WHERE tag = %s)",
        (user, tag),
    )[0][0]
    assert total(page) == expected >= 1
    rows = data_rows(page, ROWS)
    assert len(rows) == min(expected, 50) and {row["status"] for row in rows} == {"idle"}
    # A scope chip keeps the filters; "Clear filters" drops them and keeps the scope.
    with page.expect_navigation():
        page.locator("a.chip[data-scope]").first.click()
    assert params(page)["user"] == [user] and "scope" in params(page)
    with page.expect_navigation():
        page.click("text=Clear filters")
    assert "user" not in params(page) and "scope" in params(page)


def test_an_invalid_filter_is_shown_as_an_error(page, studio_server):
    page.fill("#session-filters input[name=cost_min]", "five dollars")
    page.fill("#session-filters input[name=latency_min]", "900")
    page.fill("#session-filters input[name=latency_max]", "100")
    with page.expect_navigation() as navigation:
        page.click("#session-filters button[type=submit]")
    assert navigation.value.status == 400
    errors = page.locator("#filter-errors li")
    assert sorted(errors.evaluate_all("items => items.map(item => item.dataset.param)")) == ["cost_min", "latency_max"]
    assert "not an amount in dollars" in page.locator('#filter-errors li[data-param="cost_min"]').inner_text()
    assert page.get_attribute("#session-filters input[name=cost_min]", "aria-invalid") == "true"
    assert page.input_value("#session-filters input[name=cost_min]") == "five dollars", "kept, to be fixed"
    assert page.locator(ROWS).count() == 0
    # Fixed in the form, the list comes back.
    page.fill("#session-filters input[name=cost_min]", "0.01")
    page.fill("#session-filters input[name=latency_max]", "")
    with page.expect_navigation() as navigation:
        page.click("#session-filters button[type=submit]")
    assert navigation.value.status == 200
    assert not page.locator("#filter-errors").count() and page.locator(ROWS).count() > 0


def test_numbered_pages(page, studio_server):
    database = studio_server.database
    count = database.query("SELECT COUNT(*) FROM agents_session")[0][0]
    assert page.locator("#page-range").inner_text().endswith(f"page 1 of {-(-count // 50)}")
    with page.expect_navigation():
        page.click('#pager a[aria-label="Page 3"]')
    assert params(page)["page"] == ["3"]
    assert page.locator("#pager .page-on").inner_text() == "3"
    expected = database.query("SELECT id FROM agents_session ORDER BY updated_at DESC, id DESC LIMIT 50 OFFSET 100")
    assert shown_ids(page) == hexes(expected)
    assert page.locator("#page-range").inner_text().startswith(f"101–150 of {count:,}")
    with page.expect_navigation():
        page.click("#pager a[rel=prev]")
    assert params(page)["page"] == ["2"]
    # A page past the last is an error that links to the last page.
    last = -(-count // 50)
    response = page.goto(studio_server.base_url + f"/studio/sessions/?page={last + 1}")
    assert response.status == 400
    assert "past the last page" in page.locator('#filter-errors li[data-param="page"]').inner_text()
    with page.expect_navigation():
        page.click("#last-page-link")
    assert params(page)["page"] == [str(last)] and page.locator(ROWS).count() == count - 50 * (last - 1)


@pytest.fixture(scope="module")
def broad_server(studio_server, tmp_path_factory):
    """A second server on the same database whose searches are broad from 30 matches (the demo data has
    about 10 times that many messages with "budget"). The login cookie of `page` is valid on it: same host,
    same session table."""
    database = studio_server.database
    if database.vendor != "postgresql":
        pytest.skip("broad searches are PostgreSQL's (elsewhere the search is a substring match)")
    server = start_server(
        database, tmp_path_factory.mktemp("broad-search-logs"), extra_env={"AMODAL_STUDIO_BROAD_SEARCH": "30"}
    )
    yield server
    server.stop()


def test_a_broad_search_lists_every_match_page_by_page_without_counting(page, broad_server):
    database = broad_server.database
    sql, args = matching_search_sql(database, "budget")
    expected = database.query(
        f"SELECT id FROM agents_session WHERE id IN ({sql}) ORDER BY updated_at DESC, id DESC", args
    )
    assert len(expected) > 30
    page.goto(broad_server.base_url + "/studio/sessions/?q=budget&per=25")
    assert page.get_attribute("#session-total", "data-broad") == "true"
    assert "more than 30" in page.locator("#session-total").inner_text()
    assert page.locator("#session-total [data-total], #pager .page-links, .chip-count").count() == 0
    shoot(page, "studio-sessions-broad-search.png")
    shown = shown_ids(page)
    while page.locator("#pager a[rel=next]").count():
        with page.expect_navigation():
            page.click("#pager a[rel=next]")
        shown += shown_ids(page)
    assert shown == hexes(expected)
    assert page.locator("#page-range").inner_text().endswith(f"page {-(-len(expected) // 25)}")


def test_the_csv_download_is_the_filtered_list(page, studio_server):
    database = studio_server.database
    scope = database.query("SELECT scope FROM agents_session GROUP BY scope ORDER BY COUNT(*) DESC LIMIT 1")[0][0]
    page.goto(studio_server.base_url + "/studio/sessions/?sort=-cost&per=10&scope=" + quote(scope, safe=""))
    with page.expect_download() as download_info:
        page.click("#csv-link")
    download = download_info.value
    assert download.suggested_filename == re.sub(r"[^A-Za-z0-9._-]+", "_", f"sessions_scope-{scope or 'global'}.csv")
    with open(download.path(), encoding="utf-8") as handle:
        rows = list(csv.reader(io.StringIO(handle.read())))
    assert rows[0][:4] == ["session id", "scope", "scope label", "title"]
    expected = database.query(
        "SELECT s.id, s.scope, COALESCE(c.label, ''), s.message_count, s.input_tokens + s.output_tokens, "
        "s.cost_micros, s.unpriced_calls FROM agents_session s LEFT JOIN scoping_scope c ON c.scope_id = s.scope "
        "WHERE s.scope = %s ORDER BY s.cost_micros DESC, s.id DESC",
        (scope,),
    )
    assert len(rows) - 1 == len(expected) > 10, "every page, not the 10 shown"
    for row, (session_id, row_scope, label, messages, tokens, cost, unpriced) in zip(rows[1:], expected, strict=True):
        assert uuid.UUID(row[0]).hex == uuid.UUID(str(session_id)).hex
        assert (row[1], row[2], int(row[8]), int(row[9]), int(row[11])) == (
            row_scope,
            label,
            messages,
            tokens,
            unpriced,
        )
        assert row[10] == ("" if cost == 0 and unpriced else f"{cost // 1_000_000}.{cost % 1_000_000:06d}")


def test_a_narrow_screen_does_not_scroll_sideways(browser, studio_server, page):
    context = browser.new_context(viewport={"width": 390, "height": 844}, storage_state=page.context.storage_state())
    tab = context.new_page()
    try:
        for query in ("", "?q=budget&status=idle&cost_min=0.01&sort=-cost&page=2", "?cost_min=abc&page=0"):
            tab.goto(studio_server.base_url + "/studio/sessions/" + query)
            overflow = tab.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 1, (query, overflow)
        assert tab.locator("#filter-errors").is_visible()
    finally:
        context.close()
