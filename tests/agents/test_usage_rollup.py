"""The usage rollup equals the plain GROUP BY of the usage rows after any writes: ORM create, bulk_create,
raw SQL, updates of one row or many, deletes, a deleted session (SET NULL), a whole scope deleted or
rewritten to another id (an erase). The triggers do it in the database (SQLite and PostgreSQL: run this
file with DATABASE_URL on each); the expected rollup here is computed in Python from the rows."""

from __future__ import annotations

import bisect
import io
import math
from datetime import UTC, date, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.db.models import F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents import usage_rollup
from agents.models import (
    USAGE_ROLLUP_MODELS,
    Session,
    UsageDailyTotal,
    UsageRecord,
    UsageRollup,
    UsageScopeMonth,
)
from agents.scope_data import USAGE
from agents.usage_rollup import (
    LATENCY_EDGES_MS,
    LATENCY_FIELDS,
    SUMMED_FIELDS,
    TARGETS,
    DayRange,
    latency_percentile,
)

SCOPES = ("tenant-a", "tenant-b", "")
MODELS = ("claude-haiku-4-5", "local")
DEPLOYS = ("deploy-1", "deploy-2")
BASE = datetime(2026, 3, 1, tzinfo=UTC)
# Moments on four days, with the instants on either side of midnight UTC, and of the month before.
MOMENTS = st.one_of(
    st.integers(min_value=0, max_value=4 * 86400 - 1).map(lambda s: BASE + timedelta(seconds=s)),
    st.sampled_from(
        [
            BASE - timedelta(microseconds=1),
            BASE + timedelta(days=1) - timedelta(microseconds=1),
            BASE + timedelta(days=1),
            BASE + timedelta(days=3),
        ]
    ),
)
LATENCIES = st.one_of(
    st.integers(min_value=0, max_value=400_000),
    st.sampled_from(LATENCY_EDGES_MS).flatmap(lambda edge: st.sampled_from([edge - 1, edge, edge + 1])),
)
COSTS = st.one_of(st.none(), st.integers(min_value=0, max_value=2_000_000))
TOKENS = st.integers(min_value=0, max_value=200_000)

rows = st.fixed_dictionaries(
    {
        "scope": st.sampled_from(SCOPES),
        "model": st.sampled_from(MODELS),
        "deploy_id": st.sampled_from(DEPLOYS),
        "created_at": MOMENTS,
        "latency_ms": LATENCIES,
        "cost_micros": COSTS,
        "input_tokens": TOKENS,
        "output_tokens": TOKENS,
        "cache_read_tokens": TOKENS,
        "cache_write_tokens": TOKENS,
        "with_session": st.booleans(),
    }
)
changes = st.one_of(
    st.fixed_dictionaries({"cost_micros": COSTS}),
    st.fixed_dictionaries({"latency_ms": LATENCIES}),
    st.fixed_dictionaries({"created_at": MOMENTS}),
    st.fixed_dictionaries({"model": st.sampled_from(MODELS), "deploy_id": st.sampled_from(DEPLOYS)}),
    st.fixed_dictionaries({"input_tokens": TOKENS, "cache_write_tokens": TOKENS}),
    st.fixed_dictionaries({"scope": st.sampled_from(SCOPES)}),
)
index = st.integers(min_value=0, max_value=50)
operations = st.one_of(
    st.tuples(st.just("create"), rows),
    st.tuples(st.just("bulk_create"), st.lists(rows, min_size=1, max_size=6)),
    st.tuples(st.just("raw_insert"), rows),
    st.tuples(st.just("update_one"), index, changes),
    st.tuples(st.just("update_model"), st.sampled_from(MODELS), changes),
    st.tuples(st.just("double_latency_and_tokens"), st.sampled_from(SCOPES)),
    st.tuples(st.just("delete_one"), index),
    st.tuples(st.just("delete_day"), st.integers(min_value=0, max_value=3)),
    st.tuples(st.just("delete_scope"), st.sampled_from(SCOPES)),
    st.tuples(st.just("erase_scope"), st.sampled_from(SCOPES)),
    st.tuples(st.just("delete_session"), index),
)


def expected_rollup(table: str = "rollup") -> dict[tuple, tuple]:
    """A table of the rollup computed here from the usage rows (bucket = how many edges are <= the
    latency): "rollup", "daily totals" (every scope, by stripe: the row's id modulo 8) or "months" (by
    scope, without the histogram)."""
    totals: dict[tuple, list[int]] = {}
    for row in UsageRecord.all_scopes.values():
        day = row["created_at"].astimezone(UTC).date()
        if table == "daily totals":
            key = (day, row["deploy_id"], row["model"], row["id"] % 8)
        elif table == "months":
            key = (day.replace(day=1), row["scope"])
        else:
            key = (day, row["scope"], row["deploy_id"], row["model"])
        sums = totals.setdefault(key, [0] * len(SUMMED_FIELDS))
        sums[0] += 1
        sums[1] += row["cost_micros"] is None
        sums[2] += row["cost_micros"] or 0
        for offset, name in enumerate(("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")):
            sums[3 + offset] += row[name]
        sums[7 + bisect.bisect_right(LATENCY_EDGES_MS, row["latency_ms"])] += 1
    width = 7 if table == "months" else len(SUMMED_FIELDS)
    return {key: tuple(sums[:width]) for key, sums in totals.items()}


def stored_rollup(table: str = "rollup") -> dict[tuple, tuple]:
    if table == "months":
        months = UsageScopeMonth.all_scopes.values_list("month", "scope", *SUMMED_FIELDS[:7])
        return {(row[0], row[1]): tuple(row[2:]) for row in months}
    if table == "daily totals":
        rows = UsageDailyTotal.objects.values_list("day", "deploy_id", "model", "stripe", *SUMMED_FIELDS)
    else:
        rows = UsageRollup.all_scopes.values_list("day", "scope", "deploy_id", "model", *SUMMED_FIELDS)
    return {(row[0], row[1], row[2], row[3]): tuple(row[4:]) for row in rows}


TABLES = ("rollup", "daily totals", "months")


def record(values: dict, sessions: dict[str, Session]) -> UsageRecord:
    values = dict(values)
    session = sessions[values["scope"]] if values.pop("with_session") else None
    return UsageRecord(session=session, provider="anthropic", **values)


def nth(position: int) -> UsageRecord | None:
    ids = list(UsageRecord.all_scopes.order_by("pk").values_list("pk", flat=True))
    return UsageRecord.all_scopes.get(pk=ids[position % len(ids)]) if ids else None


def raw_insert(row: UsageRecord) -> None:
    names = [
        "scope",
        "session_id",
        "deploy_id",
        "provider",
        "model",
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
        "latency_ms",
        "cost_micros",
        "created_at",
    ]
    values = [
        UsageRecord._meta.get_field(name if name != "session_id" else "session").get_db_prep_save(
            getattr(row, name), connection
        )
        for name in names
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO agents_usagerecord ({', '.join(names)}) VALUES ({', '.join(['%s'] * len(names))})",
            values,
        )


def apply(step: tuple, sessions: dict[str, Session]) -> None:
    action = step[0]
    if action == "create":
        row = record(step[1], sessions)
        row.save()
        UsageRecord.all_scopes.filter(pk=row.pk).update(created_at=step[1]["created_at"])  # auto_now_add
    elif action == "bulk_create":
        # bulk_create keeps auto_now_add: the moments are set by one UPDATE of the new rows afterwards.
        made = UsageRecord.all_scopes.bulk_create([record(values, sessions) for values in step[1]])
        for row, values in zip(made, step[1], strict=True):
            UsageRecord.all_scopes.filter(pk=row.pk).update(created_at=values["created_at"])
    elif action == "raw_insert":
        raw_insert(record(step[1], sessions))
    elif action == "update_one":
        row = nth(step[1])
        if row is not None:
            UsageRecord.all_scopes.filter(pk=row.pk).update(**step[2])
    elif action == "update_model":
        UsageRecord.all_scopes.filter(model=step[1]).update(**step[2])
    elif action == "double_latency_and_tokens":
        UsageRecord.all_scopes.filter(scope=step[1]).update(
            latency_ms=F("latency_ms") * 2, output_tokens=F("output_tokens") + 1
        )
    elif action == "delete_one":
        row = nth(step[1])
        if row is not None:
            row.delete()
    elif action == "delete_day":
        day_start = BASE + timedelta(days=step[1])
        UsageRecord.all_scopes.filter(created_at__gte=day_start, created_at__lt=day_start + timedelta(days=1)).delete()
    elif action == "delete_scope":
        UsageRecord.all_scopes.filter(scope=step[1]).delete()
    elif action == "erase_scope":
        # The erase's own step (agents.scope_data.USAGE): the rows move to the scope's anonymous id, two a batch.
        while USAGE.erase_batch(UsageRecord, "scope", step[1], 2) == 2:
            pass
    elif action == "delete_session":
        session = list(sessions.values())[step[1] % len(sessions)]
        Session.all_scopes.filter(pk=session.pk).delete()  # usage rows keep their cost: SET NULL


@pytest.mark.django_db
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(operations, min_size=1, max_size=14))
def test_the_rollup_equals_the_raw_aggregate_after_any_writes(steps):
    with transaction.atomic():
        sessions = {scope: Session.all_scopes.create(scope=scope, deploy_id=DEPLOYS[0]) for scope in SCOPES}
        for step in steps:
            apply(step, sessions)
            for table in TABLES:
                assert stored_rollup(table) == expected_rollup(table), (table, step)
        assert not UsageRollup.all_scopes.filter(calls=0).exists(), "a key with no calls left has no row"
        assert not UsageDailyTotal.objects.filter(calls=0).exists()
        assert not UsageScopeMonth.all_scopes.filter(calls=0).exists()
        assert usage_rollup.differences(connection) == []
        transaction.set_rollback(True)


@pytest.mark.django_db
def test_an_update_of_other_columns_leaves_the_rollup_alone():
    session = Session.all_scopes.create(scope="tenant-a", deploy_id="d")
    UsageRecord.all_scopes.create(
        scope="tenant-a", session=session, deploy_id="d", provider="p", model="m", cost_micros=5, latency_ms=900
    )
    before = stored_rollup()
    UsageRecord.all_scopes.update(provider="other")
    session.delete()
    assert stored_rollup() == before
    for table in TABLES:
        assert stored_rollup(table) == expected_rollup(table)
    (row,) = UsageRollup.all_scopes.all()
    assert (row.calls, row.cost_micros, row.unpriced_calls, row.latency_b12) == (1, 5, 0, 1)  # 724 <= 900 < 1024


def make_rows(count: int, *, scope: str = "tenant-a", day: date | None = None) -> None:
    moment = datetime.combine(day or BASE.date(), datetime.min.time(), tzinfo=UTC) + timedelta(hours=5)
    for number in range(count):
        row = UsageRecord.all_scopes.create(
            scope=scope, deploy_id="d", provider="p", model="m", cost_micros=None if number % 3 == 0 else 100
        )
        UsageRecord.all_scopes.filter(pk=row.pk).update(created_at=moment)


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("rebuild_usage_rollup", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_rebuild_command_repairs_a_range_and_check_reports_drift():
    make_rows(4)
    make_rows(2, day=BASE.date() + timedelta(days=2))
    assert "matches" in run("--check")
    # Drift that only a write around the triggers could make: a wrong count, a missing row.
    UsageRollup.all_scopes.filter(day=BASE.date()).update(calls=99)
    UsageRollup.all_scopes.filter(day=BASE.date() + timedelta(days=2)).delete()
    UsageDailyTotal.objects.filter(day=BASE.date()).delete()
    with pytest.raises(CommandError, match="differs from the usage rows for 6 keys"):
        run("--check")
    day = BASE.date().isoformat()
    assert run("--from", day, "--to", day) == (
        f"Usage rollup rebuilt for {day} to {day}: 4 usage rows in 1 rollup rows (1 rollup rows replaced), "
        "4 daily total rows and 1 scope month rows (of the whole months).\n"
    )
    with pytest.raises(CommandError, match="differs from the usage rows for 1 keys"):
        run("--check")
    assert "6 usage rows in 2 rollup rows (1 rollup rows replaced)" in run()
    assert "matches" in run("--check")
    assert stored_rollup() == expected_rollup()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "args, message",
    [
        (["--from", "2026-13-01"], "--from must be a day"),
        (["--to", "yesterday"], "--to must be a day"),
        (["--from", "2026-03-02", "--to", "2026-03-01"], "--to is before --from"),
    ],
)
def test_rebuild_command_refuses_bad_days(args, message):
    with pytest.raises(CommandError, match=message):
        run(*args)


@pytest.mark.django_db
def test_the_migration_rolled_up_rows_written_before_it():
    """The migration's data step is `rebuild`: rows the triggers never saw (written with them dropped)."""
    usage_rollup.drop_triggers(connection)
    try:
        make_rows(3)
        assert stored_rollup() == {}
        assert usage_rollup.rebuild(connection, DayRange()).usage_rows == 3
    finally:
        usage_rollup.install_triggers(connection)
    for table in TABLES:
        assert stored_rollup(table) == expected_rollup(table)
    make_rows(1)
    for table in TABLES:
        assert stored_rollup(table) == expected_rollup(table), "the triggers are back"


def test_latency_buckets_grow_by_the_square_root_of_two():
    assert len(LATENCY_FIELDS) == len(LATENCY_EDGES_MS) + 1 == 30
    for low, high in zip(LATENCY_EDGES_MS, LATENCY_EDGES_MS[1:], strict=False):
        assert abs(high / low - 2**0.5) < 0.03


@pytest.mark.parametrize(
    "latencies",
    [[5], [900] * 3, [100, 200, 300, 400, 5000], list(range(0, 300_000, 997)), [300_000, 20, 20, 20]],
)
@pytest.mark.parametrize("share", [0.5, 0.95])
def test_a_percentile_from_the_histogram_lies_in_the_bucket_of_the_exact_one(latencies, share):
    counts = [0] * len(LATENCY_FIELDS)
    for value in latencies:
        counts[bisect.bisect_right(LATENCY_EDGES_MS, value)] += 1
    estimate = latency_percentile(counts, share)
    exact = sorted(latencies)[math.ceil(share * len(latencies)) - 1]  # nearest rank
    assert estimate.low <= exact and (estimate.high is None or exact < estimate.high)
    assert estimate.low <= estimate.ms and (estimate.high is None or estimate.ms < estimate.high)


def test_no_calls_no_percentile():
    assert latency_percentile([0] * len(LATENCY_FIELDS), 0.5) is None


def test_the_models_are_the_tables_the_triggers_keep():
    assert [model._meta.db_table for model in USAGE_ROLLUP_MODELS] == [target.table for target in TARGETS]
    for model, target in zip(USAGE_ROLLUP_MODELS, TARGETS, strict=True):
        fields = {field.column for field in model._meta.concrete_fields} - {"id"}
        assert fields == set(target.key) | {name for name, _ in target.measures("", LATENCY_EDGES_MS)}
