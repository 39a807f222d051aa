"""`manage.py generate_demo_data`: exact sizes, consistent rows, realistic variety, safe re-runs."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.models import Count, F, Sum

from agents import usage_rollup
from agents.models import Deployment, Message, Session, SessionTag, UsageRecord, UsageRollup
from scoping.models import Scope
from studio.demo import DemoGenerator, DemoOptions


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("generate_demo_data", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_sizes_are_exact_and_rows_consistent():
    output = run("--scopes", "30", "--sessions", "200", "--usage-rows", "900", "--seed", "4", "--days", "20")
    assert "Done in" in output
    assert Session.all_scopes.count() == 200
    assert UsageRecord.all_scopes.count() == 900
    assert Scope.objects.count() == 30
    assert Scope.objects.filter(scope_id="").exists(), "the global scope is one of them"
    assert Session.all_scopes.values("scope").distinct().count() == 30, "every scope has activity"
    # One assistant message per usage row, each usage row on its message's session and scope.
    assert Message.all_scopes.filter(role="assistant").count() == 900
    assert UsageRecord.all_scopes.exclude(message__session=F("session")).count() == 0
    assert UsageRecord.all_scopes.exclude(scope=F("session__scope")).count() == 0
    assert Message.all_scopes.exclude(scope=F("session__scope")).count() == 0
    assert UsageRecord.all_scopes.exclude(created_at=F("message__created_at")).count() == 0
    # Session totals are the sums of their usage rows.
    sums = {
        row["session"]: row
        for row in UsageRecord.all_scopes.values("session").annotate(
            i=Sum("input_tokens"), o=Sum("output_tokens"), c=Sum("cost_micros"), n=Count("pk")
        )
    }
    for session in Session.all_scopes.all():
        row = sums.get(session.pk, {"i": 0, "o": 0, "c": 0, "n": 0})
        assert (session.input_tokens, session.output_tokens, session.cost_micros) == (row["i"], row["o"], row["c"] or 0)
        assert session.message_count == Message.all_scopes.filter(session=session).count()
    # Timestamps: within the range, messages in order.
    assert Session.all_scopes.filter(updated_at__lt=F("created_at")).count() == 0
    assert Deployment.objects.count() >= 3
    assert SessionTag.all_scopes.count() > 0


@pytest.mark.django_db
def test_variety_models_statuses_tool_calls_and_skew():
    run("--scopes", "40", "--sessions", "400", "--usage-rows", "2000", "--seed", "9")
    models = set(UsageRecord.all_scopes.values_list("model", flat=True))
    assert {"claude-sonnet-4-5-20250929", "claude-haiku-4-5", "claude-opus-4-5", "local"} <= models
    assert UsageRecord.all_scopes.filter(model="local", cost_micros__isnull=True).exists(), "unpriced"
    assert not UsageRecord.all_scopes.filter(model="claude-haiku-4-5", cost_micros__isnull=True).exists()
    statuses = set(Session.all_scopes.values_list("status", flat=True))
    assert {"idle", "interrupted", "error"} <= statuses
    assert Message.all_scopes.filter(interrupted=True).exists()
    assert Message.all_scopes.exclude(error_code="").exists()
    calls = [
        call
        for tools in Message.all_scopes.exclude(tool_calls=[]).values_list("tool_calls", flat=True)
        for call in tools
    ]
    assert {call["status"] for call in calls} == {"success", "error"}
    assert all({"tool_id", "tool_name", "parameters", "duration_ms"} <= set(call) for call in calls)
    counts = sorted(Session.all_scopes.values("scope").annotate(n=Count("pk")).values_list("n", flat=True))
    assert counts[-1] >= 8 * counts[len(counts) // 2], "Zipf-like: the busiest scope dwarfs the median"


@pytest.mark.django_db
def test_reruns_do_nothing_unless_cleared():
    run("--scopes", "5", "--sessions", "20", "--usage-rows", "50")
    assert "already has 20 sessions" in run("--scopes", "5", "--sessions", "30", "--usage-rows", "50")
    assert Session.all_scopes.count() == 20
    run("--scopes", "6", "--sessions", "30", "--usage-rows", "60", "--clear")
    assert Session.all_scopes.count() == 30 and UsageRecord.all_scopes.count() == 60
    assert Scope.objects.count() == 6
    # The usage rollup went with the rows it summed (TRUNCATE fires no trigger) and follows the new ones.
    assert UsageRollup.all_scopes.aggregate(calls=Sum("calls"))["calls"] == 60
    assert usage_rollup.differences(connection) == []


@pytest.mark.django_db
def test_the_same_seed_gives_the_same_data():
    run("--scopes", "5", "--sessions", "15", "--usage-rows", "40", "--seed", "21")
    first = sorted(Session.all_scopes.values_list("id", "scope", "cost_micros"))
    run("--scopes", "5", "--sessions", "15", "--usage-rows", "40", "--seed", "21", "--clear")
    assert sorted(Session.all_scopes.values_list("id", "scope", "cost_micros")) == first


@pytest.mark.django_db
def test_fewer_usage_rows_than_sessions():
    run("--scopes", "3", "--sessions", "10", "--usage-rows", "4")
    assert UsageRecord.all_scopes.count() == 4
    assert Session.all_scopes.filter(message_count=1, status="error").count() == 6


@pytest.mark.django_db
def test_bad_sizes_are_refused():
    with pytest.raises(CommandError):
        run("--scopes", "0")


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "postgresql", reason="the fast COPY path is PostgreSQL's")
def test_postgres_fast_load_puts_every_index_and_constraint_back():
    tables = [model._meta.db_table for model in (Session, Message, UsageRecord, SessionTag)]

    def schema() -> tuple[list, list]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT indexdef FROM pg_indexes WHERE tablename = ANY(%s) ORDER BY 1", [tables])
            indexes = cursor.fetchall()
            cursor.execute(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = ANY(%s::regclass[]) ORDER BY 1",
                [tables],
            )
            return indexes, cursor.fetchall()

    before = schema()
    summary = DemoGenerator(
        DemoOptions(scopes=5, sessions=30, usage_rows=120, fast_load=True), log=lambda line: None
    ).run()
    assert summary.usage_rows == 120
    assert schema() == before
    assert UsageRecord.all_scopes.count() == 120
    assert usage_rollup.differences(connection) == [], "COPY's statements fire the rollup's triggers"
