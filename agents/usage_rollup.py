"""The usage rollup: the usage rows' totals per UTC day, kept by the database.

Cost & Usage sums these rows instead of every model call's UsageRecord. Two tables:

- `agents_usagerollup` (UsageRollup): per (UTC day, scope, deploy, model), for the scope ranking and every
  panel focused on a scope;
- `agents_usagedailytotal` (UsageDailyTotal): per (UTC day, deploy, model) of every scope, split in 8
  stripes (the usage row's id modulo 8) so that concurrent calls of different tenants do not queue on one
  row's lock; the all-scope panels read these few rows a day;
- `agents_usagescopemonth` (UsageScopeMonth): per (UTC month, scope), without the latency histogram, so
  ranking the scopes over a year sums a row per scope and month (and the rollup's days at the edges).

A row holds `calls`, `unpriced_calls` (calls whose `cost_micros` is NULL), `cost_micros` (the sum over the
priced calls only, so "unpriced" stays distinguishable from $0: a group's cost is unknown when all its calls
are unpriced), the four token sums, and a latency histogram. A key with no call left has no row.

**Kept in the same transaction as the usage rows, by triggers** on `agents_usagerecord` that the migration
creates (`install_triggers`), so every write path stays right without application code: the ORM's
create/bulk_create/update/delete, raw SQL, PostgreSQL's COPY (the demo generator), a rewrite of a whole
scope's rows. Nothing runs later: no cron, no drift.

- PostgreSQL: statement-level AFTER INSERT/UPDATE/DELETE triggers with transition tables. Each statement
  does, per table, one aggregated `INSERT ... ON CONFLICT DO UPDATE` of its rows' signed deltas (a COPY of
  20,000 rows is one GROUP BY, a single model call one upsert), keys in order so concurrent writers lock
  them in the same order; then deletes the keys whose count fell to zero.
- SQLite: row-level triggers: an UPSERT for a new row, an UPDATE (then a delete at zero) for an old one.
- An UPDATE that changes none of the summed columns (a deleted session's SET NULL) changes nothing.
- TRUNCATE fires no row trigger: whoever truncates the usage table truncates the rollup with it
  (studio.demo.clearing does; so do Django's test flushes, which truncate every table).

`rebuild` (the `rebuild_usage_rollup` command) recomputes the tables or a range of days from the usage rows
in one transaction, and `differences` compares them without writing.

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
DAILY_TOTAL_TABLE = "agents_usagedailytotal"
SCOPE_MONTH_TABLE = "agents_usagescopemonth"
STRIPES = 8
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


def day_of(vendor: str, row: str = "") -> str:
    """The UTC day of a usage row's `created_at` (PostgreSQL: timestamptz; SQLite: UTC text)."""
    if vendor == "postgresql":
        return f"({row}created_at AT TIME ZONE 'UTC')::date"
    return f"date({row}created_at)"


def month_of(vendor: str, row: str = "") -> str:
    """The first day of the UTC month of a usage row's `created_at`."""
    if vendor == "postgresql":
        return f"date_trunc('month', {row}created_at AT TIME ZONE 'UTC')::date"
    return f"date({row}created_at, 'start of month')"


def month_start(day: date) -> date:
    return day.replace(day=1)


def month_end(day: date) -> date:
    """The last day of the day's month."""
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)


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
class Target:
    """A table the triggers keep: its key columns (with what a usage row puts in each) and its sums."""

    table: str
    key: tuple[str, ...]  # the first is the date column: `day`, or `month` (its first day)
    stripes: int = 0  # a power of two: a `stripe` key column, the usage row's id modulo this
    histogram: bool = True  # the latency buckets too

    def __post_init__(self) -> None:
        if self.stripes & (self.stripes - 1):
            raise ValueError("stripes: a power of two (the stripe is id & (stripes - 1))")

    def key_values(self, vendor: str, row: str = "") -> list[str]:
        values = {
            "day": day_of(vendor, row),
            "month": month_of(vendor, row),
            "scope": f"{row}scope",
            "deploy_id": f"{row}deploy_id",
            "model": f"{row}model",
            "stripe": f"({row}id & {self.stripes - 1})",  # id modulo stripes; no % (a placeholder for DB-API)
        }
        return [values[name] for name in self.key]

    def measures(self, row: str, edges: Sequence[int]) -> list[tuple[str, str]]:
        return measures(row, edges if self.histogram else None)

    def days(self, days: DayRange) -> DayRange:
        """The days whose usage rows make the target's rows of the days: whole months for a month table."""
        if self.key[0] != "month":
            return days
        return DayRange(days.first and month_start(days.first), days.last and month_end(days.last))


ROLLUP = Target(ROLLUP_TABLE, ("day", "scope", "deploy_id", "model"))
# Every scope's totals, so the all-scope panels read a few rows a day. A usage row goes to stripe id % 8: with
# one row per (day, deploy, model), every model call of every tenant would queue on its lock.
DAILY_TOTALS = Target(DAILY_TOTAL_TABLE, ("day", "deploy_id", "model", "stripe"), stripes=STRIPES)
# Per scope and month, so a ranking of scopes over a year sums twelve rows a scope (and days at the edges).
SCOPE_MONTHS = Target(SCOPE_MONTH_TABLE, ("month", "scope"), histogram=False)
TARGETS = (ROLLUP, DAILY_TOTALS, SCOPE_MONTHS)


def measures(row: str, edges: Sequence[int] | None) -> list[tuple[str, str]]:
    """(summed column, what one usage row adds to it), the row's columns prefixed with `row`; the latency
    buckets of `edges` too, unless None."""
    columns = [
        ("calls", "1"),
        ("unpriced_calls", f"CASE WHEN {row}cost_micros IS NULL THEN 1 ELSE 0 END"),
        ("cost_micros", f"COALESCE({row}cost_micros, 0)"),
        *((name, f"{row}{name}") for name in TOKEN_FIELDS),
    ]
    if edges is None:
        return columns
    for name, (low, high) in zip(latency_fields(edges), latency_bounds(edges), strict=True):
        condition = " AND ".join(
            part
            for part in (f"{row}latency_ms >= {low}" if low else "", f"{row}latency_ms < {high}" if high else "")
            if part
        )
        columns.append((name, f"CASE WHEN {condition} THEN 1 ELSE 0 END"))
    return columns


def column_list(target: Target, edges: Sequence[int]) -> str:
    return ", ".join([*target.key, *(name for name, _ in target.measures("", edges))])


def grouped_select(
    vendor: str, target: Target, source: str, edges: Sequence[int], *, where: str = "", sign: str = ""
) -> str:
    """SELECT the target's rows of the usage rows in `source` (a table or an aliased subquery), keys in order.
    `sign`: each row's factor (a column of the source, or "-1"); with a column, all-zero groups are left out."""
    factor = f"{sign} * " if sign else ""
    sums = [f"SUM({factor}({expression}))" for _, expression in target.measures("", edges)]
    keys = ", ".join(str(position) for position in range(1, len(target.key) + 1))
    having = f" HAVING {' OR '.join(f'{total} <> 0' for total in sums)}" if sign and sign != "-1" else ""
    return (
        f"SELECT {', '.join(target.key_values(vendor))}, {', '.join(sums)} FROM {source}"  # noqa: S608
        f"{f' WHERE {where}' if where else ''} GROUP BY {keys}{having} ORDER BY {keys}"
    )


def upsert_suffix(target: Target, edges: Sequence[int], *, qualify: bool) -> str:
    """The ON CONFLICT clause adding the new values to a row that exists (PostgreSQL names the table)."""
    prefix = f"{target.table}." if qualify else ""
    sets = ", ".join(f"{name} = {prefix}{name} + excluded.{name}" for name, _ in target.measures("", edges))
    return f"ON CONFLICT ({', '.join(target.key)}) DO UPDATE SET {sets}"


def postgresql_body(operation: str, edges: Sequence[int]) -> str:
    """One statement function's SQL: per target an aggregated upsert of the signed deltas (keys in order, so
    concurrent statements lock rows in the same order), then the delete of the keys left with no call."""
    source = {
        "insert": ("new_rows", ""),
        "update": (
            "(SELECT *, 1 AS sign FROM new_rows UNION ALL SELECT *, -1 AS sign FROM old_rows) AS changes",
            "sign",
        ),
        "delete": ("old_rows", "-1"),
    }[operation]
    statements = []
    for target in TARGETS:
        statements.append(
            f"INSERT INTO {target.table} ({column_list(target, edges)}) "
            f"{grouped_select('postgresql', target, source[0], edges, sign=source[1])} "
            f"{upsert_suffix(target, edges, qualify=True)};"
        )
        if operation != "insert":
            match = " AND ".join(f"r.{name} = gone.{name}" for name in target.key)
            keys = ", ".join(
                f"{value} AS {name}" for name, value in zip(target.key, target.key_values("postgresql"), strict=True)
            )
            statements.append(
                f"DELETE FROM {target.table} AS r USING (SELECT DISTINCT {keys} FROM old_rows) AS gone "  # noqa: S608
                f"WHERE {match} AND r.calls = 0;"
            )
    return "\n  ".join(statements)


def postgresql_statements(edges: Sequence[int]) -> list[str]:
    """The trigger functions and statement-level triggers (transition tables) of PostgreSQL."""
    referencing = {
        "insert": "REFERENCING NEW TABLE AS new_rows",
        "update": "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows",
        "delete": "REFERENCING OLD TABLE AS old_rows",
    }
    statements = []
    for operation, transition in referencing.items():
        function = f"agents_usage_rollup_on_{operation}"
        statements += [
            f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
            f"BEGIN\n  {postgresql_body(operation, edges)}\n  RETURN NULL;\nEND\n$$",
            f"CREATE TRIGGER agents_usage_rollup_{operation} AFTER {operation.upper()} ON {USAGE_TABLE} "
            f"{transition} FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
        ]
    return statements


def sqlite_add(target: Target, edges: Sequence[int]) -> str:
    values = [*target.key_values("sqlite", "NEW."), *(expression for _, expression in target.measures("NEW.", edges))]
    return (
        f"INSERT INTO {target.table} ({column_list(target, edges)}) VALUES ({', '.join(values)}) "  # noqa: S608
        f"{upsert_suffix(target, edges, qualify=False)};"
    )


def sqlite_subtract(target: Target, edges: Sequence[int]) -> str:
    old_key = " AND ".join(
        f"{name} = {value}" for name, value in zip(target.key, target.key_values("sqlite", "OLD."), strict=True)
    )
    sets = ", ".join(f"{name} = {name} - ({expression})" for name, expression in target.measures("OLD.", edges))
    return (
        f"UPDATE {target.table} SET {sets} WHERE {old_key};\n"  # noqa: S608
        f"  DELETE FROM {target.table} WHERE {old_key} AND calls = 0;"
    )


def sqlite_statements(edges: Sequence[int]) -> list[str]:
    """Row-level triggers of SQLite: UPSERT the new row, subtract the old one (and delete its key at zero).
    Subtracting never inserts, so deleting the rollup before the usage rows (a test flush) leaves nothing."""
    add = "\n  ".join(sqlite_add(target, edges) for target in TARGETS)
    subtract = "\n  ".join(sqlite_subtract(target, edges) for target in TARGETS)
    summed_columns = ", ".join(
        ["id", "created_at", "scope", "deploy_id", "model", "cost_micros", *TOKEN_FIELDS, "latency_ms"]
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
class RebuildResult:
    usage_rows: int
    rollup_rows: int  # per (day, scope, deploy, model)
    removed: int
    daily_total_rows: int
    scope_month_rows: int


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


def date_where(target: Target, days: DayRange) -> str:
    """The target's rows of the days as a WHERE clause on its date column (literal dates of date objects)."""
    clauses = []
    for operator, day in ((">=", days.first), ("<=", days.last)):
        if day is not None:
            clauses.append(f"{target.key[0]} {operator} '{day.isoformat()}'")
    return f" WHERE {' AND '.join(clauses)}" if clauses else ""


def rebuild(
    connection: BaseDatabaseWrapper, days: DayRange = DayRange(), edges: Sequence[int] = LATENCY_EDGES_MS
) -> RebuildResult:
    """Recompute the tables' rows of the days (of their whole months, for the month table) from the usage
    rows, in one transaction. On PostgreSQL the usage table is locked against writes meanwhile (reads go
    on), so no write lands between the steps."""
    vendor = check_vendor(connection)
    counts: dict[str, tuple[int, int]] = {}
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        if vendor == "postgresql":
            cursor.execute(f"LOCK TABLE {USAGE_TABLE} IN SHARE MODE")
        for target in TARGETS:
            target_days = target.days(days)
            cursor.execute(f"DELETE FROM {target.table}{date_where(target, target_days)}")  # noqa: S608
            removed = cursor.rowcount
            usage_clause, usage_params = usage_where(connection, target_days)
            cursor.execute(
                f"INSERT INTO {target.table} ({column_list(target, edges)}) "
                f"{grouped_select(vendor, target, USAGE_TABLE, edges, where=usage_clause)}",
                usage_params,
            )
            counts[target.table] = (cursor.rowcount, removed)
        cursor.execute(f"SELECT COALESCE(SUM(calls), 0) FROM {ROLLUP_TABLE}{date_where(ROLLUP, days)}")  # noqa: S608
        usage_rows = int(cursor.fetchone()[0])
    return RebuildResult(
        usage_rows=usage_rows,
        rollup_rows=counts[ROLLUP_TABLE][0],
        removed=counts[ROLLUP_TABLE][1],
        daily_total_rows=counts[DAILY_TOTAL_TABLE][0],
        scope_month_rows=counts[SCOPE_MONTH_TABLE][0],
    )


def as_day(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def keyed(rows: Iterable[Sequence[Any]], size: int) -> dict[tuple[Any, ...], tuple[int, ...]]:
    return {(as_day(row[0]), *row[1:size]): tuple(int(value) for value in row[size:]) for row in rows}


def differences(
    connection: BaseDatabaseWrapper, days: DayRange = DayRange(), edges: Sequence[int] = LATENCY_EDGES_MS
) -> list[tuple[str, tuple[Any, ...]]]:
    """(table, key) of every row of either table that differs from the aggregate of the usage rows
    (missing or extra rows included)."""
    vendor = check_vendor(connection)
    found = []
    with connection.cursor() as cursor:
        for target in TARGETS:
            size = len(target.key)
            target_days = target.days(days)
            usage_clause, usage_params = usage_where(connection, target_days)
            summed = ", ".join(name for name, _ in target.measures("", edges))
            cursor.execute(
                f"SELECT {', '.join(target.key)}, {summed} FROM {target.table}{date_where(target, target_days)}"  # noqa: S608
            )
            stored = keyed(cursor.fetchall(), size)
            cursor.execute(grouped_select(vendor, target, USAGE_TABLE, edges, where=usage_clause), usage_params)
            expected = keyed(cursor.fetchall(), size)
            found += [
                (target.table, key)
                for key in sorted(stored.keys() | expected.keys())
                if stored.get(key) != expected.get(key)
            ]
    return found


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
