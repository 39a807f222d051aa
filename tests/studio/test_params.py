"""Reading Studio's GET parameters: the strict ParamReader (every problem named), the lenient helpers the other
pages use (unchanged behaviour), the status filter that agrees with the shown status, and the migrations of
the sessions list (latency totals from usage rows; the search indexes the search uses)."""

from __future__ import annotations

import importlib
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace
from urllib.parse import quote

import pytest
from django.apps import apps
from django.db import connection
from django.http import QueryDict
from django.utils import timezone

from agents.models import Session, SessionStatus, shown_status, shown_status_filter
from studio.filters import ParamReader, parse_date_range, parse_int, parse_scope
from studio.selectors.sessions import SessionSort, search_filter
from tests.studio.factories import Call, Turn

NOW = datetime(2025, 6, 15, 12, 0, tzinfo=UTC)
latency_migration = importlib.import_module("agents.migrations.0007_session_latency")
search_migration = importlib.import_module("studio.migrations.0003_message_search_index")


def sql_runner() -> SimpleNamespace:
    """What the migrations' functions use of a schema editor: its connection and execute()."""

    def execute(sql: str) -> None:
        with connection.cursor() as cursor:
            cursor.execute(sql)

    return SimpleNamespace(connection=connection, execute=execute)


def read(query: str) -> ParamReader:
    return ParamReader(QueryDict(query))


def test_the_lenient_helpers_keep_falling_back_silently():
    assert parse_int("abc", default=7, low=1, high=9) == 7
    assert parse_int("99", default=7, low=1, high=9) == 9
    assert parse_int(" 3 ", default=7, low=1, high=9) == 3
    assert parse_int("", default=7, low=1, high=9) == 7
    assert parse_date_range(QueryDict("range=nonsense"), default="30d", now=NOW).key == "30d"
    assert parse_date_range(QueryDict("from=garbage"), default="90d", now=NOW).key == "90d"
    swapped = parse_date_range(QueryDict("from=2025-06-10&to=2025-06-01"), default="30d", now=NOW)
    assert (swapped.first_day, swapped.last_day) == (date(2025, 6, 1), date(2025, 6, 10))
    assert not parse_scope(QueryDict("scope=%00")).selected


def test_the_reader_names_every_invalid_parameter_and_falls_back_like_the_lenient_helpers():
    reader = read("page=x&per=999&from=2025-02-30&to=2025-06-01&scope=a%00b&status=odd")
    assert reader.integer("page", default=1, low=1, high=10) == 1
    assert reader.integer("per", default=50, low=5, high=200) == 200
    assert reader.date_range(default="all", now=NOW).last_day == date(2025, 6, 1)
    assert not reader.scope().selected
    assert reader.choice("status", SessionStatus.values) == ""
    assert {e.name: e.message for e in reader.errors} == {
        "scope": "contains a NUL character",
        "page": "not a whole number",
        "per": "must be between 5 and 200",
        "from": "not a date (YYYY-MM-DD)",
        "status": "not one of: idle, running, interrupted, error",
    }
    reader = read("range=soon")
    assert reader.date_range(default="30d", now=NOW).key == "30d"
    assert [(e.name, e.message) for e in reader.errors] == [("range", "not one of today, 7d, 30d, 90d, all, custom")]
    reader = read("range=7d&from=2025-06-01")
    assert reader.date_range(default="30d", now=NOW).key == "7d"
    assert [(e.name, e.message) for e in reader.errors] == [("from", "cannot be combined with range=7d")]


def test_one_error_per_parameter_and_the_value_is_shown_short():
    reader = read("q=" + "x" * 5000)
    assert reader.text("q", max_length=10) == ""
    assert reader.text("q", max_length=10) == ""
    assert len(reader.errors) == 1
    assert reader.errors[0].shown_value.endswith("… (5,000 characters)") and len(reader.errors[0].shown_value) < 90


@pytest.mark.parametrize(
    "raw, micros",
    [("0", 0), ("0.25", 250_000), ("$1.5", 1_500_000), (".000001", 1), ("12.", 12_000_000), (" 3 ", 3_000_000)],
)
def test_dollars_are_micro_dollars(raw, micros):
    reader = read("cost=" + quote(raw))
    assert reader.dollars("cost", high=1000) == micros
    assert reader.errors == []


@pytest.mark.parametrize("raw", ["abc", "-1", "1e3", "1,000", "inf", "NaN", "$", "0.0000001", "1001"])
def test_bad_dollars_are_errors(raw):
    reader = read("cost=" + quote(raw))
    assert reader.dollars("cost", high=1000) is None
    assert [e.name for e in reader.errors] == ["cost"]


def test_repeated_and_comma_separated_values():
    reader = read("tag=a,%20b&tag=c&tag=a&tag=")
    assert reader.texts("tag", max_length=5, max_count=3) == ("a", "b", "c")
    reader = read("tag=a,b,c,d")
    assert reader.texts("tag", max_length=5, max_count=3) == ()
    assert reader.errors[0].message == "more than 3 values"


def test_an_ordered_range_with_the_bounds_swapped_is_an_error():
    reader = read("low=5&high=1")
    reader.ordered("low", 5, "high", 1)
    assert [(e.name, e.message) for e in reader.errors] == [("high", "is below low")]
    reader = read("")
    reader.ordered("low", 1, "high", 1)
    reader.ordered("low", None, "high", 1)
    assert reader.errors == []


def test_sort_values():
    assert SessionSort.parse("-cost") == SessionSort("cost", True)
    assert SessionSort.parse("messages") == SessionSort("messages", False)
    assert SessionSort.parse("title") is None and SessionSort.parse("--cost") is None
    assert SessionSort("cost", True).link("cost") == "cost"
    assert SessionSort("cost", False).link("cost") == "-cost"
    assert SessionSort("cost", False).link("tokens") == "-tokens"


@pytest.mark.django_db
def test_the_status_filter_is_the_sql_twin_of_the_shown_status(make_session):
    now = timezone.now()
    leases = [None, now - timedelta(seconds=1), now + timedelta(seconds=30)]
    made = [
        make_session(scope="s", status=status, lock_expires_at=lease)
        for status in SessionStatus.values
        for lease in leases
    ]
    for status in SessionStatus.values:
        matched = set(Session.all_scopes.filter(shown_status_filter(status, now)).values_list("pk", flat=True))
        expected = {s.pk for s in made if shown_status(s.status, s.lock_expires_at, now) == status}
        assert matched == expected, status
    assert sum(len(Session.all_scopes.filter(shown_status_filter(s, now))) for s in SessionStatus.values) == len(made)


@pytest.mark.django_db
def test_the_latency_migration_fills_existing_sessions_from_their_usage_rows(make_session):
    two_calls = make_session(scope="m", turns=[Turn("a", [Call(latency_ms=300), Call(latency_ms=500)])])
    no_calls = make_session(scope="m", turns=[Turn("a", [])])
    Session.all_scopes.update(model_calls=0, model_latency_ms=0)
    latency_migration.fill_from_usage(apps, sql_runner())
    assert Session.all_scopes.values_list("model_calls", "model_latency_ms").get(pk=two_calls.pk) == (2, 800)
    assert Session.all_scopes.values_list("model_calls", "model_latency_ms").get(pk=no_calls.pk) == (0, 0)


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="the search indexes are PostgreSQL's")
def test_the_search_uses_the_indexes_the_migration_makes_and_the_migration_reverses(make_session):
    make_session(scope="x", title="Refund question", turns=[Turn("Where is my refund?")])
    queryset = Session.all_scopes.filter(search_filter("refund"))
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
        try:
            plan = queryset.explain()
        finally:
            cursor.execute("RESET enable_seqscan")
    assert "message_text_search" in plan and "session_title_search" in plan
    editor = sql_runner()
    search_migration.drop_search_indexes(apps, editor)
    assert not _indexes()
    search_migration.create_search_indexes(apps, editor)
    search_migration.create_search_indexes(apps, editor)  # a second run rebuilds, never fails
    assert _indexes() == {"message_text_search", "session_title_search"}
    assert queryset.count() == 1


def _indexes() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE indexname IN ('message_text_search', 'session_title_search')"
        )
        return {row[0] for row in cursor.fetchall()}
