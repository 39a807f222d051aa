"""The usage rollup: per (UTC day, scope, deploy, model) totals of the usage rows, kept by the database.

Cost & Usage sums these rows instead of every model call's UsageRecord. A rollup row holds, for its key:
`calls`, `unpriced_calls` (calls whose `cost_micros` is NULL), `cost_micros` (the sum over the priced calls
only, so "unpriced" stays distinguishable from $0: a group's cost is unknown when all its calls are
unpriced), the four token sums, and a latency histogram.

**Kept in the same transaction as the usage rows, by triggers** on `agents_usagerecord` that the migration
creates (`install_triggers`), so every write path stays right without application code: the ORM's
create/bulk_create/update/delete, raw SQL, PostgreSQL's COPY (the demo generator), a rewrite of a whole
scope's rows. Nothing runs later: no cron, no drift.

- PostgreSQL: statement-level AFTER INSERT/UPDATE/DELETE triggers with transition tables. Each statement
  does one aggregated `INSERT ... ON CONFLICT DO UPDATE` of its rows' signed deltas (a COPY of 20,000 rows
  is one GROUP BY, a single model call one upsert), keys in order so concurrent writers lock them in the
  same order; then deletes the keys whose count fell to zero.
- SQLite: row-level triggers: an UPSERT for a new row, an UPDATE (then a delete at zero) for an old one.
- An UPDATE that changes none of the summed columns (a deleted session's SET NULL) changes nothing.
- TRUNCATE fires no row trigger: whoever truncates the usage table truncates the rollup with it
  (studio.demo.clearing does; so do Django's test flushes, which truncate every table).

`rebuild` (the `rebuild_usage_rollup` command) recomputes the table or a range of days from the usage rows
in one transaction, and `differences` compares the two without writing.

**Latency histogram**: `latency_b00` … `latency_b29` count calls by `latency_ms` in fixed log-scale buckets:
b00 is [0, 16 ms), then each bucket is √2 ≈ 1.41 times as wide as the one before (16, 23, 32, 45, 64, 91,
128, 181, 256, … 185,364, 262,144 ms, the `LATENCY_EDGES_MS`), and b29 is 262 s and more. A percentile read
from the sums (`latency_percentile`) lies in the same bucket as the exact one: its resolution is a factor
of √2 (within ±19% of the bucket's geometric middle).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.db import transaction
from django.db.backends.base.base import BaseDatabaseWrapper

USAGE_TABLE = "agents_usagerecord"
ROLLUP_TABLE = "agents_usagerollup"
KEY = ("day", "scope", "deploy_id", "model")
TOKEN_FIELDS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
# The lower edge of each latency bucket after the first, in ms: round(16 × √2^k).
LATENCY_EDGES_MS: tuple[int, ...] = (
    16, 23, 32, 45, 64, 91, 128, 181, 256, 362, 512, 724, 1024, 1448, 2048, 2896, 4096, 5793, 8192,
    11585, 16384, 23170, 32768, 46341, 65536, 92682, 131072, 185364, 262144,
)  # fmt: skip
TRIGGER_NAMES = ("agents_usage_rollup_insert", "agents_usage_rollup_update", "agents_usage_rollup_delete")


def latency_fields(edges: Sequence[int] = LATENCY_EDGES_MS) -> list[str]:
    return [f"latency_b{index:02d}" for index in range(len(edges) + 1)]


def latency_bounds(edges: Sequence[int] = LATENCY_EDGES_MS) -> list[tuple[int, int | None]]:
    """[low, high) of each bucket in ms; the last has no upper edge."""
    lows = [0, *edges]
    return [(low, edges[index] if index < len(edges) else None) for index, low in enumerate(lows)]


LATENCY_FIELDS = latency_fields()
SUMMED_FIELDS = ("calls", "unpriced_calls", "cost_micros", *TOKEN_FIELDS, *LATENCY_FIELDS)


# --- the SQL -----------------------------------------------------------------------------------------------


def measures(row: str, edges: Sequence[int]) -> list[tuple[str, str]]:
    """(rollup column, what one usage row adds to it), the row's columns prefixed with `row`."""
    columns = [
        ("calls", "1"),
        ("unpriced_calls", f"CASE WHEN {row}cost_micros IS NULL THEN 1 ELSE 0 END"),
        ("cost_micros", f"COALESCE({row}cost_micros, 0)"),
        *((name, f"{row}{name}") for name in TOKEN_FIELDS),
    ]
    for name, (low, high) in zip(latency_fields(edges), latency_bounds(edges), strict=True):
        condition = " AND ".join(
            part
            for part in (f"{row}latency_ms >= {low}" if low else "", f"{row}latency_ms < {high}" if high else "")
            if part
        )
        columns.append((name, f"CASE WHEN {condition} THEN 1 ELSE 0 END"))
    return columns


def day_of(vendor: str, row: str = "") -> str:
    """The UTC day of a usage row's `created_at` (PostgreSQL: timestamptz; SQLite: UTC text)."""
    if vendor == "postgresql":
        return f"({row}created_at AT TIME ZONE 'UTC')::date"
    return f"date({row}created_at)"


def column_list(edges: Sequence[int]) -> str:
    return ", ".join([*KEY, *(name for name, _ in measures("", edges))])


def grouped_select(vendor: str, source: str, edges: Sequence[int], *, where: str = "", signed: bool = False) -> str:
    """SELECT the rollup rows of the usage rows in `source` (a table or a subquery with an alias); `signed`:
    each row carries a `sign` (+1 new, -1 old) and groups whose deltas are all zero are left out."""
    sums = [f"SUM({'sign * ' if signed else ''}({expression}))" for _, expression in measures("", edges)]
    having = f" HAVING {' OR '.join(f'{total} <> 0' for total in sums)}" if signed else ""
    return (
        f"SELECT {day_of(vendor)}, scope, deploy_id, model, {', '.join(sums)} FROM {source}"  # noqa: S608
        f"{f' WHERE {where}' if where else ''} GROUP BY 1, 2, 3, 4{having}"
    )


def upsert_suffix(edges: Sequence[int], *, qualify: bool) -> str:
    """The ON CONFLICT clause adding the new values to a row that exists (PostgreSQL names the table)."""
    target = f"{ROLLUP_TABLE}." if qualify else ""
    sets = ", ".join(f"{name} = {target}{name} + excluded.{name}" for name, _ in measures("", edges))
    return f"ON CONFLICT ({', '.join(KEY)}) DO UPDATE SET {sets}"


def postgresql_statements(edges: Sequence[int]) -> list[str]:
    """The trigger functions and statement-level triggers (transition tables) of PostgreSQL."""
    insert = f"INSERT INTO {ROLLUP_TABLE} ({column_list(edges)}) "
    upsert = upsert_suffix(edges, qualify=True)
    key_match = " AND ".join(f"r.{name} = gone.{name}" for name in KEY)
    delete_zero = (
        f"DELETE FROM {ROLLUP_TABLE} AS r USING (SELECT DISTINCT {day_of('postgresql')} AS day, scope, deploy_id, "
        f"model FROM old_rows) AS gone WHERE {key_match} AND r.calls = 0;"
    )
    changes = (
        "(SELECT *, 1 AS sign FROM new_rows UNION ALL SELECT *, -1 AS sign FROM old_rows) AS changes"  # noqa: S608
    )
    bodies = {
        "insert": f"{insert}{grouped_select('postgresql', 'new_rows', edges)} ORDER BY 1, 2, 3, 4 {upsert};",
        "update": (
            f"{insert}{grouped_select('postgresql', changes, edges, signed=True)} ORDER BY 1, 2, 3, 4 {upsert};"
            f"\n  {delete_zero}"
        ),
        "delete": (
            f"{insert}SELECT day, scope, deploy_id, model, {', '.join(f'-{name}' for name, _ in measures('', edges))} "
            f"FROM ({grouped_select('postgresql', 'old_rows', edges)}) AS gone ({column_list(edges)}) "
            f"ORDER BY 1, 2, 3, 4 {upsert};\n  {delete_zero}"
        ),
    }
    referencing = {
        "insert": "REFERENCING NEW TABLE AS new_rows",
        "update": "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows",
        "delete": "REFERENCING OLD TABLE AS old_rows",
    }
    statements = []
    for operation, body in bodies.items():
        function = f"agents_usage_rollup_on_{operation}"
        statements += [
            f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
            f"BEGIN\n  {body}\n  RETURN NULL;\nEND\n$$",
            f"CREATE TRIGGER agents_usage_rollup_{operation} AFTER {operation.upper()} ON {USAGE_TABLE} "
            f"{referencing[operation]} FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
        ]
    return statements


def sqlite_statements(edges: Sequence[int]) -> list[str]:
    """Row-level triggers of SQLite: UPSERT the new row, subtract the old one (and delete its key at zero)."""
    new = measures("NEW.", edges)
    old = measures("OLD.", edges)
    add = (
        f"INSERT INTO {ROLLUP_TABLE} ({column_list(edges)}) VALUES ({day_of('sqlite', 'NEW.')}, NEW.scope, "
        f"NEW.deploy_id, NEW.model, {', '.join(expression for _, expression in new)}) "
        f"{upsert_suffix(edges, qualify=False)};"
    )
    old_key = (
        f"day = {day_of('sqlite', 'OLD.')} AND scope = OLD.scope AND deploy_id = OLD.deploy_id AND model = OLD.model"
    )
    subtract = (
        f"UPDATE {ROLLUP_TABLE} SET {', '.join(f'{name} = {name} - ({expression})' for name, expression in old)} "
        f"WHERE {old_key};\n  DELETE FROM {ROLLUP_TABLE} WHERE {old_key} AND calls = 0;"
    )
    summed_columns = ", ".join(
        ["created_at", "scope", "deploy_id", "model", "cost_micros", *TOKEN_FIELDS, "latency_ms"]
    )
    return [
        f"CREATE TRIGGER agents_usage_rollup_insert AFTER INSERT ON {USAGE_TABLE} BEGIN\n  {add}\nEND",
        f"CREATE TRIGGER agents_usage_rollup_update AFTER UPDATE OF {summed_columns} ON {USAGE_TABLE} BEGIN\n"
        f"  {subtract}\n  {add}\nEND",
        f"CREATE TRIGGER agents_usage_rollup_delete AFTER DELETE ON {USAGE_TABLE} BEGIN\n  {subtract}\nEND",
    ]


def check_vendor(connection: BaseDatabaseWrapper) -> str:
    if connection.vendor not in ("postgresql", "sqlite"):
        raise NotImplementedError(
            f"The usage rollup's triggers exist for PostgreSQL and SQLite, not {connection.vendor}."
        )
    return str(connection.vendor)


def drop_statements(vendor: str) -> list[str]:
    if vendor == "postgresql":
        return [f"DROP TRIGGER IF EXISTS {name} ON {USAGE_TABLE}" for name in TRIGGER_NAMES] + [
            f"DROP FUNCTION IF EXISTS agents_usage_rollup_on_{operation}()"
            for operation in ("insert", "update", "delete")
        ]
    return [f"DROP TRIGGER IF EXISTS {name}" for name in TRIGGER_NAMES]


def install_triggers(connection: BaseDatabaseWrapper, edges: Sequence[int] = LATENCY_EDGES_MS) -> None:
    """(Re)create the triggers. Migrations pass the bucket edges of their own time."""
    vendor = check_vendor(connection)
    create = postgresql_statements(edges) if vendor == "postgresql" else sqlite_statements(edges)
    with connection.cursor() as cursor:
        for statement in [*drop_statements(vendor), *create]:
            cursor.execute(statement)


def drop_triggers(connection: BaseDatabaseWrapper) -> None:
    vendor = check_vendor(connection)
    with connection.cursor() as cursor:
        for statement in drop_statements(vendor):
            cursor.execute(statement)


# --- rebuilding and checking ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DayRange:
    """Inclusive UTC days; `None` ends are open."""

    first: date | None = None
    last: date | None = None

    def __str__(self) -> str:
        if self.first is None and self.last is None:
            return "every day"
        return f"{self.first or '…'} to {self.last or '…'}"


@dataclass(frozen=True)
class RebuildResult:
    usage_rows: int
    rollup_rows: int
    removed: int


def usage_where(connection: BaseDatabaseWrapper, days: DayRange) -> tuple[str, list[Any]]:
    """The usage rows of the days, as a WHERE clause on `created_at` (an index range) and its parameters."""
    clauses, params = [], []
    if days.first is not None:
        clauses.append("created_at >= %s")
        params.append(connection.ops.adapt_datetimefield_value(datetime.combine(days.first, time.min, tzinfo=UTC)))
    if days.last is not None:
        clauses.append("created_at < %s")
        params.append(
            connection.ops.adapt_datetimefield_value(
                datetime.combine(days.last + timedelta(days=1), time.min, tzinfo=UTC)
            )
        )
    return " AND ".join(clauses), params


def rollup_where(connection: BaseDatabaseWrapper, days: DayRange) -> tuple[str, list[Any]]:
    clauses, params = [], []
    for operator, day in ((">=", days.first), ("<=", days.last)):
        if day is not None:
            clauses.append(f"day {operator} %s")
            params.append(connection.ops.adapt_datefield_value(day))
    return " AND ".join(clauses), params


def rebuild(
    connection: BaseDatabaseWrapper, days: DayRange = DayRange(), edges: Sequence[int] = LATENCY_EDGES_MS
) -> RebuildResult:
    """Recompute the rollup rows of the days from the usage rows, in one transaction. On PostgreSQL the usage
    table is locked against writes meanwhile (reads go on), so no write lands between the two steps."""
    vendor = check_vendor(connection)
    rollup_clause, rollup_params = rollup_where(connection, days)
    usage_clause, usage_params = usage_where(connection, days)
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        if vendor == "postgresql":
            cursor.execute(f"LOCK TABLE {USAGE_TABLE} IN SHARE MODE")
        cursor.execute(
            f"DELETE FROM {ROLLUP_TABLE}{f' WHERE {rollup_clause}' if rollup_clause else ''}",  # noqa: S608
            rollup_params,
        )
        removed = cursor.rowcount
        cursor.execute(
            f"INSERT INTO {ROLLUP_TABLE} ({column_list(edges)}) "
            f"{grouped_select(vendor, USAGE_TABLE, edges, where=usage_clause)}",
            usage_params,
        )
        written = cursor.rowcount
        cursor.execute(
            f"SELECT COALESCE(SUM(calls), 0) FROM {ROLLUP_TABLE}{f' WHERE {rollup_clause}' if rollup_clause else ''}",  # noqa: S608
            rollup_params,
        )
        usage_rows = int(cursor.fetchone()[0])
    return RebuildResult(usage_rows=usage_rows, rollup_rows=written, removed=removed)


RollupKey = tuple[date, str, str, str]


def as_day(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def keyed(rows: Iterable[Sequence[Any]]) -> dict[RollupKey, tuple[int, ...]]:
    return {(as_day(row[0]), row[1], row[2], row[3]): tuple(int(value) for value in row[4:]) for row in rows}


def differences(
    connection: BaseDatabaseWrapper, days: DayRange = DayRange(), edges: Sequence[int] = LATENCY_EDGES_MS
) -> list[RollupKey]:
    """The keys whose rollup row differs from the aggregate of the usage rows (missing or extra included)."""
    vendor = check_vendor(connection)
    rollup_clause, rollup_params = rollup_where(connection, days)
    usage_clause, usage_params = usage_where(connection, days)
    summed = ", ".join(name for name, _ in measures("", edges))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {', '.join(KEY)}, {summed} FROM {ROLLUP_TABLE}"  # noqa: S608
            f"{f' WHERE {rollup_clause}' if rollup_clause else ''}",
            rollup_params,
        )
        stored = keyed(cursor.fetchall())
        cursor.execute(grouped_select(vendor, USAGE_TABLE, edges, where=usage_clause), usage_params)
        expected = keyed(cursor.fetchall())
    return sorted(key for key in stored.keys() | expected.keys() if stored.get(key) != expected.get(key))


# --- reading the histogram -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LatencyEstimate:
    """A percentile from the histogram: the exact value lies in [low, high) ms (`high` None: no upper
    edge); `ms` is an estimate inside it (log-linear by rank within the bucket)."""

    ms: int
    low: int
    high: int | None


def latency_percentile(
    counts: Sequence[int], share: float, edges: Sequence[int] = LATENCY_EDGES_MS
) -> LatencyEstimate | None:
    """The `share` percentile (0.5, 0.95) of the calls counted per bucket, by nearest rank (the value of
    the call at rank ⌈share × n⌉); None without calls."""
    total = sum(counts)
    if total <= 0:
        return None
    rank = max(1, math.ceil(share * total - 1e-9))
    seen = 0
    for count, (low, high) in zip(counts, latency_bounds(edges), strict=True):
        if count and seen + count >= rank:
            fraction = (rank - seen - 0.5) / count  # the middle of the rank's slot in the bucket
            if high is None:
                return LatencyEstimate(low, low, None)
            if low == 0:
                return LatencyEstimate(round(high * fraction), 0, high)
            return LatencyEstimate(round(low * (high / low) ** fraction), low, high)
        seen += count
    raise AssertionError("unreachable: the rank is within the total")
