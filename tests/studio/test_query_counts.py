"""Every Studio page costs a fixed number of queries: the same at two data sizes."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from agents.models import Session
from tests.studio.conftest import q

MAX_QUERIES = 16


def page_urls() -> dict[str, str]:
    busiest = Session.all_scopes.order_by("-message_count").first()
    scope = busiest.scope
    return {
        "sessions": reverse("studio:sessions"),
        "sessions of a scope": reverse("studio:sessions") + "?scope=" + q(scope),
        "sessions filtered": reverse("studio:sessions") + "?range=30d&model=claude-haiku-4-5&find=house",
        "replay": reverse("studio:replay", args=[busiest.pk]),
        "usage": reverse("studio:usage"),
        "usage of a scope": reverse("studio:usage") + "?range=90d&scope=" + q(scope),
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
        assert response.status_code == 200, url
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
    for url in page_urls().values():
        with django_assert_max_num_queries(MAX_QUERIES):
            assert staff_client.get(url).status_code == 200
