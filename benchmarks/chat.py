"""Chat benchmarks: server overhead per message and many concurrent streams, against a real daphne.

Run (one command; everything is local to 127.0.0.1, bounded, and stops by itself):

    .venv/bin/python -m benchmarks.chat                     # temporary SQLite file, 200 messages, 200 streams
    .venv/bin/python -m benchmarks.chat --messages 50 --concurrency 50          # a quick run
    .venv/bin/python -m benchmarks.chat --postgres          # a fresh PostgreSQL database, dropped afterwards
    .venv/bin/python -m benchmarks.chat --postgres postgres://postgres@127.0.0.1:5432/postgres
    DATABASE_URL=postgres://... .venv/bin/python -m benchmarks.chat   # an existing database (rows are added)

The script migrates the database, starts `daphne amodal_site.asgi:application` on a free port with
`DJANGO_SETTINGS_MODULE=benchmarks.settings` (the project plus the baseline view `/bench/bare-sse`), mints
HS256 JWTs for 20 scopes, runs the phases below, prints a summary table and stops the server.

What the figures mean:

(a) Overhead per message (sequential, one request at a time, keep-alive connection, a new session each):
    - `bare`  POST /bench/bare-sse: an async Django view streaming the same frames a `/say` answer has
      (init, 3 text_delta, usage, done) with no auth, no database, no agent. The baseline.
    - `say`   POST /chat/stream `/say hello world from the benchmark`: one model call of the offline
      `local` provider, no tool.
    - `tool`  POST /chat/stream `/tool NAME {json}`: one tool call, then a second model call that
      summarises it. NAME is the first offline tool the agent has (memory list, query_store), else
      `no_such_tool`, which goes through the whole tool path and comes back as an error result; the
      output says which.
    Each row gives the latency of the full request (send to last byte of the stream) as mean, p50 and
    p95 and max, the time to the first frame (p50), and the ratio to `bare` (chat / bare): the price of
    auth, scope resolution, session, lease and message rows, usage rows and the agent loop. On PostgreSQL
    it also prints, from pg_stat_database over --db-cost-messages more requests of each kind, the database
    connections opened and the transactions run per request.

(b) Concurrency (all streams started at once on the one daphne process, a new session each, spread over
    the scopes): `/slow MS w1 ... wN` (default 50 ms x 20 words, about 1 s a stream). First the same
    number of bare streams (same frames, same pacing, no database) as the baseline, then the chat ones.
    Printed: completed streams, errors by kind (HTTP status and error code, `error` events, `done`
    reasons other than model_stop, client exceptions), total wall time and its ratio to the bare run,
    per-stream latency p50/p95, time to first frame p95, daphne's resident memory (before the phase,
    peak sampled every 50 ms, and the kernel's high-water mark VmHWM since the process started), its
    peak thread count, and the number of database connections at the peak and 2 s after the last stream
    ended (PostgreSQL: pg_stat_activity rows for the database; SQLite: open descriptors on the file).

After the phases, the sessions table is read (status counts: sessions left `running` mean a lease was not
released) and the daphne log is scanned for tracebacks, "database is locked" and "too many clients".

The client runs on the same machine (2 cores here), so under concurrency it competes with daphne for CPU:
the figures are for comparing runs and spotting regressions, not absolute capacity.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sqlite3
import statistics
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt

from benchmarks.server import BenchServer, fresh_postgres

SAY_MESSAGE = "/say hello world from the benchmark"
SAY_TEXT = "hello world from the benchmark"
# Offline tools to try for the one-tool-call message, in order; the last always exists as a path.
TOOL_CANDIDATES = [("memory", {"action": "list"}), ("query_store", {"store": "preferences"})]
MISSING_TOOL = ("no_such_tool", {})
NO_TOOL_MARK = "There is no tool named"
DEFAULT_PG_ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"
SAMPLE_SECONDS = 0.05
STATS_SETTLE_SECONDS = 1.5


# --- one stream ------------------------------------------------------------------------------------


@dataclass
class StreamResult:
    seconds: float
    first_frame_seconds: float | None = None
    frames: list[dict[str, Any]] = field(default_factory=list)
    problem: str = ""  # "" when the stream was complete and as expected

    @property
    def ok(self) -> bool:
        return not self.problem

    @property
    def text(self) -> str:
        return "".join(f.get("content", "") for f in self.frames if f.get("type") == "text_delta")

    def first(self, type_: str) -> dict[str, Any] | None:
        return next((f for f in self.frames if f.get("type") == type_), None)


def problem_in_frames(frames: list[dict[str, Any]]) -> str:
    if not frames:
        return "empty stream"
    if frames[0].get("type") != "init":
        return f"first frame is {frames[0].get('type')!r}, not init"
    errors = [f for f in frames if f.get("type") == "error"]
    if errors:
        return f"error event {errors[0].get('code')}"
    if frames[-1].get("type") != "done":
        return "stream ended without done"
    if frames[-1].get("reason") != "model_stop":
        return f"done reason {frames[-1].get('reason')}"
    return ""


def error_kind(raw: bytes) -> str:
    """The error code of a JSON error body, else what a non-JSON body (Django's 500 page) says."""
    try:
        return str(json.loads(raw)["error"]["code"])
    except (ValueError, KeyError, TypeError):
        pass
    text = raw.decode("utf-8", "replace")
    title = re.search(r"<title>\s*(.*?)\s*</title>", text, re.DOTALL)
    summary = " ".join((title.group(1) if title else text).split())[:100]
    return f"non-JSON body: {summary}"


async def run_stream(client: httpx.AsyncClient, url: str, *, headers: dict[str, str], body: dict) -> StreamResult:
    started = time.perf_counter()
    frames: list[dict[str, Any]] = []
    first_frame = None
    try:
        async with client.stream("POST", url, json=body, headers=headers) as response:
            if response.status_code != 200:
                raw = await response.aread()
                return StreamResult(
                    time.perf_counter() - started, problem=f"HTTP {response.status_code} {error_kind(raw)}"
                )
            buffer = ""
            async for chunk in response.aiter_text():
                buffer += chunk
                while "\n\n" in buffer:
                    block, buffer = buffer.split("\n\n", 1)
                    for line in block.splitlines():
                        if line.startswith("data: "):
                            if first_frame is None:
                                first_frame = time.perf_counter() - started
                            frames.append(json.loads(line[len("data: ") :]))
    except (httpx.HTTPError, OSError, ValueError) as exc:
        cause = exc.__cause__ or exc.__context__
        kind = f"client {type(exc).__name__}" + (f" ({type(cause).__name__})" if cause else "")
        kind += " after the first frame" if frames else " before any frame"
        return StreamResult(time.perf_counter() - started, first_frame, frames, kind)
    result = StreamResult(time.perf_counter() - started, first_frame, frames)
    result.problem = problem_in_frames(frames)
    return result


# --- the server side -----------------------------------------------------------------------------


class Target:
    """Tokens, URLs and message bodies for one running BenchServer."""

    def __init__(self, server: BenchServer, scopes: int) -> None:
        self.server = server
        now = int(time.time())
        self.tokens = [
            jwt.encode(
                {
                    "sub": f"bench-user-{i}",
                    "scope_id": f"bench-scope-{i:02d}",
                    "scopeContext": {"tier": "bench"},
                    "iat": now,
                    "exp": now + 3600,
                },
                server.jwt_secret,
                algorithm="HS256",
            )
            for i in range(scopes)
        ]
        self.chat_url = f"{server.base_url}/chat/stream"
        self.bare_url = f"{server.base_url}/bench/bare-sse"

    def headers(self, index: int) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[index % len(self.tokens)]}"}

    async def chat(self, client: httpx.AsyncClient, message: str, index: int) -> StreamResult:
        return await run_stream(client, self.chat_url, headers=self.headers(index), body={"message": message})

    async def bare(self, client: httpx.AsyncClient, message: str, index: int) -> StreamResult:
        return await run_stream(client, self.bare_url, headers={}, body={"message": message})


async def choose_tool(target: Target, client: httpx.AsyncClient) -> tuple[str, str]:
    """The `/tool` message to benchmark and a note saying which tool it is."""
    for name, arguments in TOOL_CANDIDATES:
        message = f"/tool {name} {json.dumps(arguments)}"
        result = await target.chat(client, message, 0)
        outcome = result.first("tool_call_result")
        if outcome is None:
            continue
        if outcome.get("status") == "success":
            return message, f"{name} {json.dumps(arguments)} (an offline tool of the agent; success)"
        if NO_TOOL_MARK not in str(outcome.get("error", "")):
            return message, f"{name} {json.dumps(arguments)} (an offline tool of the agent; returned an error)"
    name, arguments = MISSING_TOOL
    return (
        f"/tool {name} {json.dumps(arguments)}",
        f"{name} {{}} - the agent registers no offline tool yet, so this call goes through the full tool "
        "path and returns an error result",
    )


# --- figures -------------------------------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


@dataclass
class Stats:
    label: str
    results: list[StreamResult]

    @property
    def ok(self) -> list[StreamResult]:
        return [r for r in self.results if r.ok]

    @property
    def errors(self) -> Counter:
        return Counter(r.problem for r in self.results if not r.ok)

    def latencies(self) -> list[float]:
        return [r.seconds for r in self.ok]

    def mean(self) -> float:
        values = self.latencies()
        return statistics.fmean(values) if values else float("nan")

    def p(self, fraction: float) -> float:
        return percentile(self.latencies(), fraction)

    def first_frame_p(self, fraction: float) -> float:
        return percentile([r.first_frame_seconds for r in self.ok if r.first_frame_seconds is not None], fraction)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.2f}"


def ratio(value: float, base: float) -> str:
    return f"{value / base:6.2f}x" if base and base == base and value == value else "     -"


def print_table(rows: list[list[str]], header: list[str]) -> None:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    line = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    print(line.format(*header))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(line.format(*row))


def describe_errors(errors: Counter) -> str:
    return ", ".join(f"{kind} x{n}" for kind, n in errors.most_common()) or "none"


def out(text: str = "") -> None:
    print(text, flush=True)


# --- sampling the daphne process -------------------------------------------------------------------


@dataclass
class Samples:
    rss_before_kib: int = 0
    rss_peak_kib: int = 0
    hwm_kib: int = 0
    threads_peak: int = 0
    db_connections_peak: int | None = None
    db_connections_after: int | None = None


class Sampler:
    """Samples daphne's memory, threads and database connections while a phase runs."""

    def __init__(self, server: BenchServer) -> None:
        self.server = server
        self.samples = Samples()
        self._task: asyncio.Task | None = None
        self._pg = None

    async def __aenter__(self) -> Samples:
        status = self.server.proc_status()
        self.samples.rss_before_kib = status.get("VmRSS", 0)
        if self.server.database_kind.startswith("postgres"):
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
        connections = await self._db_connections()
        if connections is not None:
            self.samples.db_connections_peak = max(self.samples.db_connections_peak or 0, connections)

    async def _db_connections(self) -> int | None:
        if self._pg is not None:
            cursor = await self._pg.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            row = await cursor.fetchone()
            return int(row[0])
        return self.server.open_sqlite_handles()


async def pg_counters(url: str) -> tuple[int, int]:
    """PostgreSQL's running totals for the database: sessions opened and transactions ended."""
    import psycopg

    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cursor = await conn.execute(
            "SELECT sessions, xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()"
        )
        row = await cursor.fetchone()
    return int(row[0]), int(row[1])


async def db_cost_per_message(target: Target, message: str, count: int, *, bare: bool = False) -> tuple[float, float]:
    """PostgreSQL connections opened and transactions run per request, over `count` sequential requests.

    Statistics reach pg_stat_database when a backend goes idle or exits, so readings wait a moment; the
    reading connection itself (one session, one transaction) is subtracted.
    """
    async with httpx.AsyncClient(timeout=httpx.Timeout(30.0)) as client:
        await asyncio.sleep(STATS_SETTLE_SECONDS)
        sessions_before, xacts_before = await pg_counters(target.server.database_url)
        for i in range(count):
            await (target.bare if bare else target.chat)(client, message, i)
    await asyncio.sleep(STATS_SETTLE_SECONDS)
    sessions_after, xacts_after = await pg_counters(target.server.database_url)
    return (sessions_after - sessions_before - 1) / count, (xacts_after - xacts_before - 1) / count


async def db_connections_now(server: BenchServer) -> int | None:
    if server.database_kind.startswith("postgres"):
        import psycopg

        async with await psycopg.AsyncConnection.connect(server.database_url, autocommit=True) as conn:
            cursor = await conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            row = await cursor.fetchone()
        return int(row[0])
    return server.open_sqlite_handles()


# --- phases --------------------------------------------------------------------------------------


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return self.end - time.monotonic()


async def sequential_phase(target: Target, args: argparse.Namespace, deadline: Deadline) -> list[Stats]:
    timeout = httpx.Timeout(30.0)
    async with httpx.AsyncClient(timeout=timeout) as client:
        tool_message, tool_note = await choose_tool(target, client)
        out(f"  tool message: /tool {tool_note}")
        runs = {
            "bare": lambda i: target.bare(client, SAY_MESSAGE, i),
            "say": lambda i: target.chat(client, SAY_MESSAGE, i),
            "tool": lambda i: target.chat(client, tool_message, i),
        }
        for i in range(args.warmup):
            for run in runs.values():
                await run(i)
        results: dict[str, list[StreamResult]] = {name: [] for name in runs}
        # Interleaved, so drift (a growing database, a warming process) touches every kind alike.
        for i in range(args.messages):
            if deadline.left() <= 0:
                out(f"  time budget spent: stopped after {i} of {args.messages} rounds")
                break
            for name, run in runs.items():
                results[name].append(await run(i))
        say_texts = {r.text for r in results["say"] if r.ok}
        if say_texts and say_texts != {SAY_TEXT}:
            out(f"  unexpected /say answers: {sorted(say_texts)[:3]}")
        tool_missing = [r for r in results["tool"] if r.ok and r.first("tool_call_result") is None]
        if tool_missing:
            out(f"  {len(tool_missing)} tool streams had no tool_call_result frame")
    if target.server.database_kind.startswith("postgres") and args.db_cost_messages and deadline.left() > 30:
        out(f"  PostgreSQL work per request (pg_stat_database over {args.db_cost_messages} sequential requests):")
        for label, message, bare in (
            ("bare", SAY_MESSAGE, True),
            ("say", SAY_MESSAGE, False),
            ("tool", tool_message, False),
        ):
            connections, transactions = await db_cost_per_message(target, message, args.db_cost_messages, bare=bare)
            out(
                f"    {label:4}  connections opened {connections:5.2f}   transactions (autocommit statements "
                f"count one each) {transactions:6.2f}"
            )
    return [Stats(name, values) for name, values in results.items()]


@dataclass
class ConcurrentRun:
    stats: Stats
    wall_seconds: float
    samples: Samples
    timed_out: int = 0


async def concurrent_streams(
    target: Target, server: BenchServer, *, bare: bool, args: argparse.Namespace, deadline: Deadline
) -> ConcurrentRun:
    words = " ".join(f"w{i}" for i in range(1, args.slow_words + 1))
    message = f"/slow {args.slow_ms} {words}"
    limits = httpx.Limits(max_connections=args.concurrency + 16, max_keepalive_connections=args.concurrency + 16)
    timeout = httpx.Timeout(connect=30.0, read=60.0, write=30.0, pool=60.0)
    budget = max(30.0, min(deadline.left(), 300.0))
    async with httpx.AsyncClient(limits=limits, timeout=timeout) as client, Sampler(server) as samples:
        run = target.bare if bare else target.chat
        started = time.perf_counter()
        tasks = [asyncio.create_task(run(client, message, i)) for i in range(args.concurrency)]
        done, pending = await asyncio.wait(tasks, timeout=budget)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        wall = time.perf_counter() - started
    await asyncio.sleep(2.0)  # what is still open once every stream has ended
    samples.db_connections_after = await db_connections_now(server)
    results = [task.result() for task in tasks if task in done]
    results += [StreamResult(budget, problem="unfinished at the phase time limit") for _ in pending]
    for result in results:
        if result.ok and len([f for f in result.frames if f.get("type") == "text_delta"]) != args.slow_words:
            result.problem = "wrong number of text_delta frames"
    return ConcurrentRun(Stats("bare" if bare else "chat", results), wall, samples, len(pending))


# --- after the run -------------------------------------------------------------------------------


def session_status_counts(server: BenchServer) -> dict[str, int] | str:
    query = "SELECT status, count(*) FROM agents_session GROUP BY status ORDER BY status"
    try:
        if server.sqlite_path is not None:
            with sqlite3.connect(f"file:{server.sqlite_path}?mode=ro", uri=True, timeout=10) as conn:
                return dict(conn.execute(query).fetchall())
        if server.database_kind.startswith("postgres"):
            import psycopg

            with psycopg.connect(server.database_url) as conn:
                return dict(conn.execute(query).fetchall())
    except Exception as exc:  # a figure we could not read is reported, not fatal
        return f"unreadable ({type(exc).__name__}: {exc})"
    return "not read for this database"


def report_log(server: BenchServer, phase: str, problems: dict[str, list[str]]) -> None:
    counts, samples = server.new_log_problems()
    if counts:
        out(f"  daphne log during {phase}: " + ", ".join(f"{kind} x{n}" for kind, n in counts.items()))
        for sample in samples:
            out(f"    | {sample}")
        problems[phase] = [f"{kind} x{n}" for kind, n in counts.items()]


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def mib(kib: int) -> str:
    return f"{kib / 1024:.1f}"


# --- main ----------------------------------------------------------------------------------------


@contextmanager
def database(args: argparse.Namespace) -> Iterator[str | None]:
    if args.postgres:
        with fresh_postgres(args.postgres) as url:
            yield url
    else:
        yield os.environ.get("DATABASE_URL") or None


async def benchmark(server: BenchServer, args: argparse.Namespace) -> int:
    deadline = Deadline(args.max_seconds)
    target = Target(server, args.scopes)
    log_problems: dict[str, list[str]] = {}
    any_errors = False
    summary: list[list[str]] = []

    out(
        f"daphne pid {server.pid} on {server.base_url}, database: {server.database_kind} "
        f"(migrate {server.migrate_seconds:.1f} s, start to /health {server.startup_seconds:.1f} s), "
        f"CPUs: {os.cpu_count()}, load average {load_average()} (other work on the machine skews the figures)"
    )
    report_log(server, "startup", log_problems)

    if args.only in (None, "sequential"):
        out(
            f"\n(a) overhead per message: {args.messages} sequential requests of each kind "
            f"(+{args.warmup} warm-up), interleaved"
        )
        stats = await sequential_phase(target, args, deadline)
        base = stats[0]
        rows = []
        for item in stats:
            rows.append(
                [
                    item.label,
                    str(len(item.ok)),
                    str(sum(item.errors.values())),
                    ms(item.mean()),
                    ms(item.p(0.5)),
                    ms(item.p(0.95)),
                    ms(item.p(1.0)),
                    ms(item.first_frame_p(0.5)),
                    ratio(item.mean(), base.mean()),
                    ratio(item.p(0.5), base.p(0.5)),
                    ratio(item.p(0.95), base.p(0.95)),
                ]
            )
            if item.errors:
                any_errors = True
                out(f"  {item.label} errors: {describe_errors(item.errors)}")
            summary.append(
                [
                    f"(a) {item.label}",
                    f"{len(item.ok)}/{len(item.results)}",
                    describe_errors(item.errors),
                    f"mean {ms(item.mean()).strip()} ms, "
                    f"p50 {ms(item.p(0.5)).strip()} ms, p95 {ms(item.p(0.95)).strip()} ms",
                    ratio(item.mean(), base.mean()).strip() + " (mean)",
                ]
            )
        out()
        print_table(
            rows,
            [
                "kind",
                "ok",
                "err",
                "mean ms",
                "p50 ms",
                "p95 ms",
                "max ms",
                "1st frame p50",
                "mean/bare",
                "p50/bare",
                "p95/bare",
            ],
        )
        report_log(server, "sequential", log_problems)

    if args.only in (None, "concurrency"):
        out(
            f"\n(b) concurrency: {args.concurrency} streams at once, /slow {args.slow_ms} x {args.slow_words} words "
            f"(~{args.slow_ms * args.slow_words / 1000:g} s each), new session each, {args.scopes} scopes"
        )
        runs = []
        for bare in (True, False):
            if deadline.left() <= 10:
                out("  time budget spent: skipped the rest of the concurrency phase")
                break
            run = await concurrent_streams(target, server, bare=bare, args=args, deadline=deadline)
            runs.append(run)
            report_log(server, f"concurrency ({run.stats.label})", log_problems)
            await asyncio.sleep(1.0)  # let daphne close the connections before the next run
        if runs:
            base = runs[0]
            rows = []
            for run in runs:
                item, s = run.stats, run.samples
                rows.append(
                    [
                        item.label,
                        f"{len(item.ok)}/{len(item.results)}",
                        str(sum(item.errors.values())),
                        f"{run.wall_seconds:.2f}",
                        ratio(run.wall_seconds, base.wall_seconds),
                        ms(item.p(0.5)),
                        ms(item.p(0.95)),
                        ms(item.first_frame_p(0.95)),
                        mib(s.rss_before_kib),
                        mib(s.rss_peak_kib),
                        mib(s.hwm_kib),
                        str(s.threads_peak),
                        "-" if s.db_connections_peak is None else str(s.db_connections_peak),
                        "-" if s.db_connections_after is None else str(s.db_connections_after),
                    ]
                )
                if item.errors:
                    any_errors = any_errors or item.label == "chat"
                    out(f"  {item.label} errors: {describe_errors(item.errors)}")
                summary.append(
                    [
                        f"(b) {item.label} x{args.concurrency}",
                        f"{len(item.ok)}/{len(item.results)}",
                        describe_errors(item.errors),
                        f"wall {run.wall_seconds:.2f} s, p95 {ms(item.p(0.95)).strip()} ms, "
                        f"peak RSS {mib(s.rss_peak_kib)} MiB",
                        ratio(run.wall_seconds, base.wall_seconds).strip() + " (wall)",
                    ]
                )
            out()
            print_table(
                rows,
                [
                    "kind",
                    "completed",
                    "err",
                    "wall s",
                    "wall/bare",
                    "p50 ms",
                    "p95 ms",
                    "1st frame p95",
                    "RSS before MiB",
                    "RSS peak MiB",
                    "VmHWM MiB",
                    "threads",
                    "db conns peak",
                    "db conns 2 s after",
                ],
            )

    statuses = session_status_counts(server)
    report_log(server, "the end", log_problems)

    out("\n" + "=" * 100)
    out(
        f"SUMMARY  database={server.database_kind}  messages={args.messages}  concurrency={args.concurrency}  "
        f"scopes={args.scopes}"
    )
    out("=" * 100)
    print_table(summary, ["phase", "ok", "errors", "figures", "ratio to bare"])
    out(f"\nload average at the end: {load_average()}")
    out(f"sessions by status after the run: {statuses}")
    if isinstance(statuses, dict) and statuses.get("running"):
        out(f"  ! {statuses['running']} sessions are still 'running' after every stream ended (lease not released)")
    out(
        "daphne log problems: "
        + ("; ".join(f"{phase}: {', '.join(kinds)}" for phase, kinds in log_problems.items()) or "none")
    )
    return 1 if args.strict and (any_errors or log_problems) else 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.chat", description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=200, help="sequential requests of each kind (200)")
    parser.add_argument("--warmup", type=int, default=5, help="warm-up requests of each kind, not counted (5)")
    parser.add_argument("--concurrency", type=int, default=200, help="concurrent streams (200)")
    parser.add_argument("--scopes", type=int, default=20, help="scopes the requests are spread over (20)")
    parser.add_argument("--slow-ms", type=int, default=50, help="ms between words of a concurrent stream (50)")
    parser.add_argument("--slow-words", type=int, default=20, help="words of a concurrent stream (20)")
    parser.add_argument(
        "--db-cost-messages",
        type=int,
        default=50,
        help="PostgreSQL only: sequential requests of each kind for connections/transactions per request (50; 0 skips)",
    )
    parser.add_argument("--only", choices=["sequential", "concurrency"], help="run one phase only")
    parser.add_argument(
        "--postgres",
        nargs="?",
        const=DEFAULT_PG_ADMIN_URL,
        metavar="ADMIN_URL",
        help=f"create a fresh PostgreSQL database on this server and drop it afterwards "
        f"(default {DEFAULT_PG_ADMIN_URL})",
    )
    parser.add_argument("--max-seconds", type=float, default=900.0, help="time budget for all phases (900)")
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 when any request failed or daphne logged a problem"
    )
    args = parser.parse_args(argv)
    for name in ("messages", "concurrency", "scopes", "slow_words"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.slow_ms < 0 or args.warmup < 0:
        parser.error("--slow-ms and --warmup cannot be negative")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with ExitStack() as stack:
        url = stack.enter_context(database(args))
        out("migrating and starting daphne ...")
        server = stack.enter_context(BenchServer(database_url=url))
        try:
            return asyncio.run(benchmark(server, args))
        except KeyboardInterrupt:
            out("interrupted")
            return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
