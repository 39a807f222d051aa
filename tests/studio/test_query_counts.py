"""Every Studio page costs a fixed number of queries: the same at two data sizes."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from agents.models import Session
from tests.studio.conftest import q

# The busiest page: Cost & Usage focused on a scope (13: its panels, with the ratings beside the scope ranking
# and the deploys, one query each) and the login's 4.
MAX_QUERIES = 17


def page_urls() -> dict[str, str]:
    busiest = Session.all_scopes.order_by("-message_count").first()
    scope = busiest.scope
    sessions = reverse("studio:sessions")
    return {
        "sessions": sessions,
        "sessions of a scope": sessions + "?scope=" + q(scope),
        "sessions filtered": sessions + "?range=30d&model=claude-haiku-4-5&find=house",
        **{f"sessions by {sort}": sessions + f"?sort={sort}" for sort in ("-cost", "tokens", "-messages", "created")},
        "sessions searched": sessions + "?q=budget&sort=-cost",
        "sessions, every filter": sessions
        + "?q=budget&user=user-1&tag=budget&deploy=&status=idle&cost_min=0.001&cost_max=5&latency_min=1"
        + "&latency_max=100000&feedback=positive&range=90d&scope="
        + q(scope),
        "sessions page 2": sessions + "?per=5&page=2",
        "sessions invalid": sessions + "?cost_min=x&page=0",
        "sessions csv": reverse("studio:sessions_csv") + "?q=budget&sort=-cost",
        "replay": reverse("studio:replay", args=[busiest.pk]),
        "usage": reverse("studio:usage"),
        "usage of a scope": reverse("studio:usage") + "?range=90d&scope=" + q(scope),
        **{
            f"usage CSV {panel}{focus}": reverse("studio:usage_csv", args=[panel]) + "?range=90d" + query
            for panel in ("totals", "scopes", "by-model", "by-deploy", "daily", "top-sessions", "budgets")
            for focus, query in (("", ""), (" of a scope", "&scope=" + q(scope)))
        },
        "scopes": reverse("studio:scopes"),
        "scope": reverse("studio:scope") + "?scope=" + q(scope),
        "memory": reverse("studio:scope_memory") + "?scope=" + q(scope),
        "stores": reverse("studio:scope_stores") + "?scope=" + q(scope),
    }


def count_queries(client) -> dict[str, int]:
    counts = {}
    for name, url in page_urls().items():
        client.get(url)  # warm: the session row and the user are loaded the same way each time
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url)
            if response.streaming:
                b"".join(response.streaming_content)
        assert response.status_code == (400 if "invalid" in name else 200), url
        counts[name] = len(queries)
    return counts


def test_query_counts_do_not_grow_with_rows(staff_client, demo_data):
    demo_data(scopes=5, sessions=12, usage_rows=30, days=20, seed=5)
    small = count_queries(staff_client)
    demo_data(scopes=40, sessions=250, usage_rows=1500, days=60, seed=6, clear=True)
    large = count_queries(staff_client)
    assert large == small
    assert max(small.values()) <= MAX_QUERIES, small


@pytest.mark.django_db
def test_query_counts_with_django_assert(staff_client, demo_data, django_assert_max_num_queries):
    demo_data(scopes=5, sessions=20, usage_rows=80, days=20, seed=8)
    for name, url in page_urls().items():
        with django_assert_max_num_queries(MAX_QUERIES):
            assert staff_client.get(url).status_code == (400 if "invalid" in name else 200)


SESSION_PAGE_QUERIES = {
    # the login's session and user, the user's permissions (direct and through groups), the models and
    # deploys of the filter form, the counts (total and chips in one), the page, the labels of the scopes
    # shown (chips and rows: one query, studio.selectors.labels)
    "": 9,
    "?sort=-tokens&per=5&page=2": 9,
    "?find=house": 10,  # + the scopes whose id or label matches, for the chips
    "?q=budget": 9,  # + on PostgreSQL: whether the search has a word the index holds
    "?user=u&tag=a&tag=b&status=running&cost_min=1&latency_max=9&range=7d&scope=": 9,
    "?feedback=none&sort=-cost": 9,  # the feedback filter is a subquery of the same queries
    "?cost_min=x&sort=y": 6,  # invalid: no counts, no page, no scope shown
    "?page=99": 8,  # past the last page: the counts and the chips' labels, no page
}


@pytest.mark.parametrize("query, expected", SESSION_PAGE_QUERIES.items())
def test_sessions_page_query_counts(staff_client, demo_data, query, expected):
    demo_data(scopes=5, sessions=20, usage_rows=80, days=20, seed=8)
    url = reverse("studio:sessions") + query
    staff_client.get(url)
    search_check = 1 if "q=" in query and connection.vendor == "postgresql" else 0
    with CaptureQueriesContext(connection) as queries:
        staff_client.get(url)
    assert len(queries) == expected + search_check, [entry["sql"][:120] for entry in queries]


def test_the_csv_costs_the_same_queries_as_a_page_whatever_its_length(staff_client, demo_data):
    """The form's lists and one query for every row (an iterator, read in chunks: on PostgreSQL a
    server-side cursor's fetches are not separate queries)."""
    url = reverse("studio:sessions_csv") + "?sort=-cost"
    counts = []
    for sessions in (10, 120):
        demo_data(scopes=5, sessions=sessions, usage_rows=sessions * 4, days=20, seed=9, clear=True)
        with CaptureQueriesContext(connection) as queries:
            response = staff_client.get(url)
            rows = b"".join(response.streaming_content).decode().count("\n") - 1
        assert rows == sessions
        counts.append(len(queries))
    assert counts[0] == counts[1] == 7
