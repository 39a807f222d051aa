"""A full-text search too broad to count (studio.selectors.sessions, "broad"): on PostgreSQL, when at least
AMODAL_STUDIO_BROAD_SEARCH messages or titles match, the page does not count the sessions, shows chips
without counts, pages by previous/next and finds its rows by walking the list in order. Here the threshold
is lowered so that a few sessions make a search broad; every page must list exactly what the exact plan lists.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from studio.selectors import sessions as session_selectors
from studio.selectors.sessions import probe_search, sort_choices
from tests.studio.conftest import attrs
from tests.studio.factories import Call, Turn

URL = "/studio/sessions/"
POSTGRES = connection.vendor == "postgresql"
postgres_only = pytest.mark.skipif(not POSTGRES, reason="full-text search, and so broad searches, are PostgreSQL's")
EXACT = 10**9


@pytest.fixture
def budgets(make_session):
    """36 sessions over four scopes, one an hour; the word 'budget' is in every third session's messages
    (three in each scope), and in the title of two more; costs and message counts vary so every sort orders
    them differently."""
    now = timezone.now()
    for index in range(36):
        word = "budget" if index % 3 == 0 else "weather"
        turns = [Turn(f"Talk about the {word} please", [Call(cost_micros=100 + (index * 37) % 500)])]
        turns += [Turn("and more")] * (index % 4)
        title = "Budget review" if index in (7, 20) else f"Session {index}"
        make_session(scope=f"tenant-{index % 4}", title=title, turns=turns, at=now - timedelta(hours=index + 1))


@pytest.fixture
def broad_from(settings):
    def set_threshold(matches: int) -> None:
        settings.AMODAL_STUDIO_BROAD_SEARCH = matches

    return set_threshold


def listed(content: str) -> list[str]:
    return attrs(content, "tr", "data-session")


def every_page(client, query: str) -> list[list[str]]:
    """The rows of each page of `query`, following the Next links of the page itself."""
    pages, url = [], URL + "?" + query
    while url:
        content = client.get(url).content.decode()
        pages.append(listed(content))
        found = re.search(r'<a rel="next" href="([^"]*)"', content)
        url = URL + found.group(1).replace("&amp;", "&") if found else None
        assert len(pages) < 20, "the pages must end"
    return pages


@postgres_only
@pytest.mark.parametrize("sort", sort_choices())
def test_a_broad_search_lists_every_page_exactly_as_the_counted_search(staff_client, budgets, broad_from, sort):
    query = f"q=budget&per=5&sort={sort}"
    broad_from(EXACT)
    exact = every_page(staff_client, query)
    broad_from(3)
    assert probe_search("budget").broad
    broad = every_page(staff_client, query)
    assert broad == exact
    assert sum(len(page) for page in exact) == 14  # 12 by their messages, 2 by their title


@postgres_only
@pytest.mark.parametrize(
    "walk", [{"BROAD_WALK_FACTOR": 1}, {"BROAD_WALK_MAX": 12}, {"BROAD_WALK_FACTOR": 1, "BROAD_WALK_MAX": 6}]
)
def test_a_window_too_small_falls_back_to_the_exact_plan(staff_client, budgets, broad_from, monkeypatch, walk):
    """With one session walked per row wanted (a third match), or a small cap, the walk cannot be sure and
    the page takes the exact plan: the same rows, never fewer."""
    broad_from(EXACT)
    exact = every_page(staff_client, "q=budget&per=4")
    broad_from(3)
    for name, value in walk.items():
        monkeypatch.setattr(session_selectors, name, value)
    assert every_page(staff_client, "q=budget&per=4") == exact


@postgres_only
def test_a_broad_search_says_it_is_not_counted_and_pages_by_previous_and_next(staff_client, budgets, broad_from):
    broad_from(3)
    content = staff_client.get(URL + "?q=budget&per=5&page=2").content.decode()
    head = content[content.index('id="session-total"') :]
    head = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", head[: head.index("</p>")]))
    assert "budget is in more than 3 messages and titles, so the sessions are not counted" in head
    assert 'id="broad-note"' in content and "data-total=" not in content
    assert 'rel="prev"' in content and 'rel="next"' in content and 'class="page-links"' not in content
    assert re.search(r'id="page-range">6–10 &middot; page 2<', content)
    assert "chip-count" not in content and "Scopes are not counted under a search this broad." in content
    last = staff_client.get(URL + "?q=budget&per=5&page=3").content.decode()
    assert len(listed(last)) == 4 and 'rel="next"' not in last
    beyond = staff_client.get(URL + "?q=budget&per=5&page=9")
    assert beyond.status_code == 200 and listed(beyond.content.decode()) == []


@postgres_only
def test_scope_chips_under_a_broad_search_are_the_found_and_selected_scopes_without_counts(
    staff_client, budgets, broad_from
):
    broad_from(3)
    content = staff_client.get(URL + "?q=budget&find=tenant-1").content.decode()
    assert attrs(content, "a", "data-scope") == ["tenant-1"]
    broad_from(EXACT)
    exact = listed(staff_client.get(URL + "?q=budget&scope=tenant-2").content.decode())
    broad_from(3)
    selected = staff_client.get(URL + "?q=budget&scope=tenant-2").content.decode()
    assert attrs(selected, "a", "data-scope") == ["tenant-2"]
    assert listed(selected) == exact and len(exact) == 3


@postgres_only
def test_a_broad_search_page_costs_a_fixed_number_of_queries(staff_client, budgets, broad_from):
    """The login (the session, the user, its permissions: 4), the form's lists (models, deploys), the probe,
    the walk and the labels of the scopes shown; a short last page adds one count of the window; nothing
    counts the matching sessions."""
    broad_from(3)
    for page, walk_count in ((1, 0), (3, 1)):
        url = URL + f"?q=budget&per=5&page={page}"
        staff_client.get(url)
        with CaptureQueriesContext(connection) as queries:
            staff_client.get(url)
        texts = [query["sql"] for query in queries]
        assert len(texts) == 4 + 2 + 1 + 1 + 1 + walk_count, "\n".join(text[:100] for text in texts)
        assert not any("GROUP BY" in text for text in texts), "nothing counts the matching sessions"


def test_without_full_text_search_a_search_is_never_broad(budgets, broad_from):
    broad_from(1)
    probe = probe_search("budget")
    assert probe.has_words
    assert probe.broad is POSTGRES
