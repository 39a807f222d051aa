"""Watching the server while a phase runs: memory and threads, database connections and transactions,
sessions left running, and problems in daphne's log."""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from benchmarks.figures import out
from benchmarks.procstat import listen_overflows
from benchmarks.server import BenchServer

SAMPLE_SECONDS = 0.05
# PostgreSQL 15+ publishes a backend's counts when it goes idle, but at most once a second; counts held back
# that way wait for the idle timeout (PGSTAT_IDLE_INTERVAL, 10 s). A pooled connection stays open, so a
# reading waits that long for the counts of the requests before it to be complete.
STATS_SETTLE_SECONDS = 11.0
PG_CONNECTIONS_SQL = (
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
)
PG_COUNTERS_SQL = (
    "SELECT sessions, xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()"
)


def is_postgres(server: BenchServer) -> bool:
    return server.database_kind.startswith("postgres")


@dataclass
class Samples:
    rss_before_kib: int = 0
    rss_peak_kib: int = 0
    hwm_kib: int = 0
    threads_peak: int = 0
    db_connections_peak: int | None = None
    db_connections_after: int | None = None
    listen_overflows: int | None = None  # connections the kernel dropped: a listen queue was full


class Sampler:
    """Samples daphne's memory, threads and database connections every 50 ms while a phase runs."""

    def __init__(self, server: BenchServer) -> None:
        self.server = server
        self.samples = Samples()
        self._task: asyncio.Task[None] | None = None
        self._pg: Any = None
        self._overflows_before = listen_overflows()

    async def __aenter__(self) -> Samples:
        self.samples.rss_before_kib = self.server.proc_status().get("VmRSS", 0)
        self._overflows_before = listen_overflows()
        if is_postgres(self.server):
            import psycopg

            try:
                self._pg = await psycopg.AsyncConnection.connect(self.server.database_url, autocommit=True)
            except psycopg.Error as exc:
                out(f"  (cannot count PostgreSQL connections: {exc})")
        self._task = asyncio.create_task(self._run())
        return self.samples

    async def __aexit__(self, *exc_info: object) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._sample_once()
        self.samples.hwm_kib = self.server.proc_status().get("VmHWM", 0)
        overflows = listen_overflows()
        if overflows is not None and self._overflows_before is not None:
            self.samples.listen_overflows = overflows - self._overflows_before
        if self._pg is not None:
            await self._pg.close()

    async def _run(self) -> None:
        while True:
            await self._sample_once()
            await asyncio.sleep(SAMPLE_SECONDS)

    async def _sample_once(self) -> None:
        status = self.server.proc_status()
        self.samples.rss_peak_kib = max(self.samples.rss_peak_kib, status.get("VmRSS", 0))
        self.samples.threads_peak = max(self.samples.threads_peak, status.get("Threads", 0))
        if self._pg is not None:
            row = await (await self._pg.execute(PG_CONNECTIONS_SQL)).fetchone()
            connections: int | None = int(row[0])
        else:
            connections = self.server.open_sqlite_handles()
        if connections is not None:
            self.samples.db_connections_peak = max(self.samples.db_connections_peak or 0, connections)


async def db_connections_now(server: BenchServer) -> int | None:
    if is_postgres(server):
        import psycopg

        async with await psycopg.AsyncConnection.connect(server.database_url, autocommit=True) as conn:
            row = await (await conn.execute(PG_CONNECTIONS_SQL)).fetchone()
        return int(row[0]) if row else None
    return server.open_sqlite_handles()


@dataclass
class PgWork:
    """PostgreSQL's running totals for the database: sessions (connections) opened, transactions ended."""

    connections: int = 0
    transactions: int = 0


async def pg_work(url: str) -> PgWork:
    """The totals, read after a pause: statistics reach pg_stat_database when a backend goes idle."""
    import psycopg

    await asyncio.sleep(STATS_SETTLE_SECONDS)
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        row = await (await conn.execute(PG_COUNTERS_SQL)).fetchone()
    return PgWork(int(row[0]), int(row[1])) if row else PgWork()


def pg_work_per_message(before: PgWork, after: PgWork, messages: int) -> tuple[float, float]:
    """Connections opened and transactions per message, the reading's own taken off (one connection, two
    transactions: measured with two readings and nothing between them)."""
    return (
        (after.connections - before.connections - 1) / messages,
        (after.transactions - before.transactions - 2) / messages,
    )


def session_status_counts(server: BenchServer) -> dict[str, int] | str:
    query = "SELECT status, count(*) FROM agents_session GROUP BY status ORDER BY status"
    try:
        if server.sqlite_path is not None:
            with sqlite3.connect(f"file:{server.sqlite_path}?mode=ro", uri=True, timeout=10) as conn:
                return dict(conn.execute(query).fetchall())
        if is_postgres(server):
            import psycopg

            with psycopg.connect(server.database_url) as conn:
                return {str(status): int(n) for status, n in conn.execute(query).fetchall()}
    except Exception as exc:  # a figure we could not read is reported, not fatal
        return f"unreadable ({type(exc).__name__}: {exc})"
    return "not read for this database"


@dataclass
class LogWatch:
    """Problems daphne logged, phase by phase."""

    server: BenchServer
    problems: dict[str, list[str]] = field(default_factory=dict)

    def check(self, phase: str) -> None:
        counts, samples = self.server.new_log_problems()
        if counts:
            out(f"  daphne log during {phase}: " + ", ".join(f"{kind} x{n}" for kind, n in counts.items()))
            for sample in samples:
                out(f"    | {sample}")
            self.problems[phase] = [f"{kind} x{n}" for kind, n in counts.items()]
