"""End users' feedback in Studio, in a real browser: the sessions list's feedback filter (form, URL, chips,
pages, an invalid value) and the ratings in the replay, checked against plain SQL on the live server's
database (`generate_demo_data` rates about a session in four). These tests only read."""

from __future__ import annotations

import uuid
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.studio.browser.conftest import save_screenshot

pytestmark = [pytest.mark.browser, pytest.mark.live]

RATED_SQL = "SELECT COUNT(DISTINCT session_id) FROM agents_feedback WHERE rating = %s"


def total(tab) -> int:
    return int(tab.get_attribute("#session-total [data-total]", "data-total"))


def params(tab) -> dict[str, list[str]]:
    return parse_qs(urlsplit(tab.url).query, keep_blank_values=True)


def dashed(value) -> str:
    return str(uuid.UUID(str(value)))


def test_the_feedback_filter_from_the_form_with_a_chip_and_pages(page, studio_server):
    database = studio_server.database
    page.select_option("#session-filters select[name=feedback]", "negative")
    with page.expect_navigation():
        page.click("#session-filters button[type=submit]")
    assert params(page)["feedback"] == ["negative"]
    negative = database.query(RATED_SQL, (-1,))[0][0]
    assert negative > 0
    assert total(page) == negative
    assert page.input_value("#session-filters select[name=feedback]") == "negative"

    # A chip narrows the rated sessions to its scope; its count is that of the list it shows.
    chip = page.locator("a.chip[data-scope]").first
    scope, count = chip.get_attribute("data-scope"), int(chip.get_attribute("data-count"))
    expected = database.query(
        "SELECT COUNT(DISTINCT session_id) FROM agents_feedback WHERE rating = -1 AND scope = %s", (scope,)
    )[0][0]
    assert count == expected
    with page.expect_navigation():
        chip.click()
    assert params(page)["feedback"] == ["negative"] and params(page)["scope"] == [scope]
    assert total(page) == expected

    # Sessions with no rating, page by page: every one listed once, none of them rated.
    page.goto(studio_server.base_url + "/studio/sessions/?feedback=none&per=200")
    unrated = (
        database.query("SELECT COUNT(*) FROM agents_session")[0][0]
        - database.query("SELECT COUNT(DISTINCT session_id) FROM agents_feedback")[0][0]
    )
    assert total(page) == unrated
    seen: list[str] = []
    while True:
        seen += page.eval_on_selector_all(
            "#sessions-table tbody tr[data-session]", "rows => rows.map(r => r.dataset.session)"
        )
        following = page.locator("a[rel=next]")
        if not following.count():
            break
        with page.expect_navigation():
            following.click()
        assert params(page)["feedback"] == ["none"]
    assert len(seen) == len(set(seen)) == unrated
    rated = {dashed(row[0]) for row in database.query("SELECT DISTINCT session_id FROM agents_feedback")}
    assert not rated & set(seen)


def test_an_invalid_feedback_filter_is_shown_as_an_error(page, studio_server):
    with page.expect_navigation() as navigation:
        page.goto(studio_server.base_url + "/studio/sessions/?feedback=thumbs-up&model=x")
    assert navigation.value.status == 400
    error = page.locator('#filter-errors li[data-param="feedback"]')
    assert "not one of: positive, negative, any, none" in error.inner_text()
    assert page.get_attribute("#session-filters select[name=feedback]", "aria-invalid") == "true"
    assert page.locator("#sessions-table").count() == 0
    with page.expect_navigation():
        page.click("#without-invalid-link")
    assert "feedback" not in params(page) and params(page)["model"] == ["x"]


def test_replay_shows_each_rating_where_it_belongs(page, studio_server):
    database = studio_server.database
    session_id, seq, rating, comment, user = database.query(
        "SELECT f.session_id, m.seq, f.rating, f.comment, f.user_sub FROM agents_feedback f"
        " JOIN agents_message m ON m.id = f.message_id JOIN agents_session s ON s.id = f.session_id"
        " WHERE f.comment <> '' AND s.message_count <= 4 ORDER BY f.updated_at DESC LIMIT 1"
    )[0]
    page.goto(f"{studio_server.base_url}/studio/sessions/{dashed(session_id)}/")
    summary = page.locator("#session-feedback .feedback-summary").inner_text()
    positive = 1 if rating == 1 else 0
    assert summary.startswith(f"1 rating: {positive} positive, {1 - positive} negative")
    assert page.locator("#session-feedback li.feedback").count() == 0  # not of the whole session
    at_message = page.locator(f'article.msg-assistant[data-seq="{seq}"] li.feedback')
    assert at_message.count() == 1
    assert at_message.get_attribute("data-rating") == str(rating)
    assert at_message.get_attribute("data-user") == user
    assert at_message.locator(".feedback-comment").inner_text() == comment
    assert page.locator("li.feedback").count() == 1
    save_screenshot(page, "studio-replay-feedback.png", full_page=True)

    (whole,) = database.query(
        "SELECT session_id, rating FROM agents_feedback WHERE message_id IS NULL ORDER BY updated_at DESC LIMIT 1"
    )
    page.goto(f"{studio_server.base_url}/studio/sessions/{dashed(whole[0])}/")
    top = page.locator("#session-feedback li.feedback")
    assert top.count() == 1 and top.get_attribute("data-rating") == str(whole[1])
    assert page.locator("article li.feedback").count() == 0
