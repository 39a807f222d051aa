"""The CSV export of the sessions list: exactly the filtered list (every page, in the page's order), safe in a
spreadsheet, named after its filters, and streamed from a database iterator (under WSGI and ASGI)."""

from __future__ import annotations

import asyncio
import csv
import html
import io
import re
from datetime import UTC, timedelta

import pytest
from django.db.models import QuerySet
from django.test import AsyncClient
from django.utils import timezone

from agents.models import Session
from scoping.models import Scope
from studio import csv_export
from studio.selectors import sessions as session_selectors
from tests.studio.factories import Call, Turn
from tests.studio.test_sessions import listed_ids

PAGE_URL = "/studio/sessions/"
CSV_URL = "/studio/sessions/export.csv"
HEADER = [
    "session id",
    "scope",
    "scope label",
    "title",
    "user",
    "model",
    "deploy",
    "status",
    "messages",
    "tokens",
    "cost (USD)",
    "unpriced calls",
    "created (UTC)",
    "last active (UTC)",
]


def download(client, query: str = "") -> tuple[list[dict[str, str]], object]:
    response = client.get(CSV_URL + query)
    assert response.status_code == 200
    assert response.streaming
    text = b"".join(response.streaming_content).decode()
    reader = csv.reader(io.StringIO(text))
    assert next(reader) == HEADER
    return [dict(zip(HEADER, row, strict=True)) for row in reader], response


def every_page(client, query: str) -> list[str]:
    """The ids of every page of the list, following the "next" links."""
    ids: list[str] = []
    url = PAGE_URL + "?per=5" + ("&" + query.lstrip("?") if query else "")
    while url:
        content = client.get(url).content.decode()
        ids += listed_ids(content)
        match = re.search(r'<a rel="next" href="([^"]*)"', content)
        url = PAGE_URL + html.unescape(match[1]) if match else None
    return ids


@pytest.fixture
def population(make_session):
    now = timezone.now()
    for index in range(14):
        make_session(
            scope=f"tenant-{index % 3}",
            title=f"Session {index}",
            user_sub=f"user-{index % 4}",
            tags=["billing"] if index % 2 else [],
            model="claude-haiku-4-5" if index % 5 == 0 else "claude-sonnet-4-5",
            turns=[Turn(f"question {index} about refunds" if index % 3 == 0 else f"question {index}")]
            * (1 + index % 3),
            at=now - timedelta(hours=index),
        )
    make_session(
        scope="tenant-0",
        title="Unpriced one",
        model="local",
        turns=[Turn("hi", [Call(cost_micros=None)])],
        at=now - timedelta(days=3),
    )


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?sort=-cost",
        "?sort=messages&scope=tenant-1",
        "?tag=billing&user=user-1",
        "?q=refunds&sort=created",
        "?model=claude-haiku-4-5&status=idle&range=7d",
        "?cost_min=0.001&latency_max=5000&sort=-tokens",
    ],
)
def test_the_csv_rows_are_the_pages_filtered_set_in_its_order(staff_client, population, query):
    rows, _ = download(staff_client, query)
    assert [row["session id"] for row in rows] == every_page(staff_client, query)
    assert rows, "each case lists something"


def test_the_csv_ignores_the_page_and_its_size(staff_client, population):
    rows, _ = download(staff_client, "?per=5")
    assert len(rows) == Session.all_scopes.count() == 15


def test_the_csv_values(staff_client, make_session):
    now = timezone.now()
    session = make_session(
        scope="tenant-v",
        title='Budget, "quoted" and\nmultiline',
        user_sub="sub-9",
        turns=[Turn("a", [Call(cost_micros=1_234_567, input_tokens=100, output_tokens=20)])],
        at=now - timedelta(hours=2),
    )
    dead = make_session(scope="tenant-v", status="running", lock_expires_at=now - timedelta(minutes=1))
    unpriced = make_session(scope="tenant-v", turns=[Turn("a", [Call(cost_micros=None), Call(cost_micros=None)])])
    partly = make_session(scope="tenant-v", turns=[Turn("a", [Call(cost_micros=500), Call(cost_micros=None)])])
    rows = {row["session id"]: row for row in download(staff_client, "?scope=tenant-v")[0]}
    row = rows[str(session.pk)]
    stored = Session.all_scopes.get(pk=session.pk)
    assert row == {
        "session id": str(session.pk),
        "scope": "tenant-v",
        "scope label": "",
        "title": 'Budget, "quoted" and\nmultiline',
        "user": "sub-9",
        "model": "claude-sonnet-4-5",
        "deploy": "deploy0001",
        "status": "idle",
        "messages": "2",
        "tokens": "120",
        "cost (USD)": "1.234567",
        "unpriced calls": "0",
        "created (UTC)": stored.created_at.astimezone(UTC).isoformat(),
        "last active (UTC)": stored.updated_at.astimezone(UTC).isoformat(),
    }
    assert rows[str(dead.pk)]["status"] == "interrupted", "the status the list shows"
    assert (rows[str(unpriced.pk)]["cost (USD)"], rows[str(unpriced.pk)]["unpriced calls"]) == ("", "2")
    assert (rows[str(partly.pk)]["cost (USD)"], rows[str(partly.pk)]["unpriced calls"]) == ("0.000500", "1")


def test_each_row_carries_its_scope_s_label(staff_client, make_session):
    make_session(scope="tenant-l", title="labelled")
    make_session(scope="tenant-n", title="not labelled")
    Scope.objects.filter(scope_id="tenant-l").update(label="Acme Hotels")
    rows = {row["title"]: (row["scope"], row["scope label"]) for row in download(staff_client)[0]}
    assert rows == {"labelled": ("tenant-l", "Acme Hotels"), "not labelled": ("tenant-n", "")}
    Scope.objects.filter(scope_id="tenant-l").update(label='=HYPERLINK("http://x")')
    assert download(staff_client, "?scope=tenant-l")[0][0]["scope label"] == '\'=HYPERLINK("http://x")'


@pytest.mark.parametrize("dangerous", ['=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"])
def test_cells_that_a_spreadsheet_would_run_are_made_text(staff_client, make_session, dangerous):
    make_session(scope="tenant-f", title=dangerous, user_sub=dangerous)
    row = download(staff_client, "?scope=tenant-f")[0][0]
    assert row["title"] == row["user"] == "'" + dangerous


def test_the_file_name_names_the_filters(staff_client, population):
    _, response = download(staff_client, "?scope=tenant-1&status=idle&q=refunds&tag=billing&cost_min=0.5&range=7d")
    disposition = response["Content-Disposition"]
    assert disposition == (
        'attachment; filename="sessions_scope-tenant-1_last-active-7-days_q-refunds_status-idle_tag-billing'
        '_cost-from-0.5usd.csv"'
    )
    _, response = download(staff_client, "?latency_min=10&latency_max=900&cost_max=2")
    assert response["Content-Disposition"] == 'attachment; filename="sessions_cost-to-2usd_latency-10ms-to-900ms.csv"'
    _, response = download(staff_client, "")
    assert response["Content-Disposition"] == 'attachment; filename="sessions.csv"'
    _, response = download(staff_client, "?scope=&user=" + "%22%3B%20evil%3D1")
    name = re.search(r'filename="([^"]*)"', response["Content-Disposition"])[1]
    assert name == "sessions_scope-global_user-_-evil_1.csv", "quotes and separators never reach the header"


def test_the_csv_is_streamed_from_a_database_iterator(staff_client, population, monkeypatch):
    """Rows come from QuerySet.iterator(chunk_size) and leave as they come: when the first chunk is sent,
    only its rows have been read."""
    monkeypatch.setattr(session_selectors, "CSV_CHUNK_ROWS", 4)
    monkeypatch.setattr(csv_export, "ROWS_PER_CHUNK", 3)
    chunk_sizes: list[int | None] = []
    pulled: list[tuple] = []
    original = QuerySet.iterator

    def spy(self, chunk_size=None):
        chunk_sizes.append(chunk_size)
        for row in original(self, chunk_size=chunk_size):
            pulled.append(row)
            yield row

    monkeypatch.setattr(QuerySet, "iterator", spy)
    response = staff_client.get(CSV_URL)
    assert response.streaming and pulled == []
    chunks = iter(response.streaming_content)
    first = next(chunks).decode()
    assert chunk_sizes == [4]
    assert len(pulled) == 3 and first.count("\n") == 4  # the header and three rows
    rest = b"".join(chunks).decode()
    assert len(pulled) == 15 and (first + rest).count("\n") == 16


@pytest.mark.django_db(transaction=True)
def test_under_asgi_the_csv_is_an_async_stream(make_staff, population, monkeypatch):
    """Django would read a sync iterator whole before sending it under ASGI: the export gives an async one,
    whose chunks are made in the request's worker thread."""
    monkeypatch.setattr(csv_export, "ROWS_PER_CHUNK", 4)
    client = AsyncClient()
    client.force_login(make_staff("async-operator", studio=True))

    async def fetch() -> tuple[bool, list[bytes]]:
        response = await client.get(CSV_URL + "?sort=-cost")
        assert response.status_code == 200
        return response.is_async, [chunk async for chunk in response.streaming_content]

    is_async, chunks = asyncio.run(fetch())
    assert is_async and len(chunks) > 2
    rows = list(csv.reader(io.StringIO(b"".join(chunks).decode())))[1:]
    expected = Session.all_scopes.order_by("-cost_micros", "-id").values_list("pk", flat=True)
    assert [row[0] for row in rows] == [str(pk) for pk in expected]


def test_invalid_filters_answer_the_page_with_the_errors(staff_client, population):
    response = staff_client.get(CSV_URL + "?cost_max=lots&sort=colour")
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")
    content = response.content.decode()
    assert 'data-param="cost_max"' in content and 'data-param="sort"' in content


def test_the_page_links_to_the_csv_of_its_filters(staff_client, population):
    content = staff_client.get(PAGE_URL + "?tag=billing&sort=cost&page=2&per=5").content.decode()
    link = html.unescape(re.search(r'id="csv-link" href="([^"]*)"', content)[1])
    assert link.startswith(CSV_URL + "?")
    assert "tag=billing" in link and "sort=cost" in link
    assert "page=" not in link and "per=" not in link, "every page"
