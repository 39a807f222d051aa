"""Phase 1: the price of a message against a bare async SSE view emitting the same frames.

Four rows, each a block of sequential requests on one keep-alive connection, the bare view's block first
and then the chat's, repeated over `--rounds` rounds so that drift touches both alike:
- text, new session: `/say hello world from the benchmark` without a session_id (a new session each);
- text, continued session: the same message as the 2nd message of a session (each session was opened
  by one unmeasured message of the same kind just before the block);
- tool, new / continued: `/tool NAME {json}`, one tool call then a second model call that summarises it.
Per row: time to `done` (client side, from sending the request to reading the `done` frame) and daphne's
CPU per message (its CPU time over the block divided by the block's messages; the client runs in the
benchmark's own process, so only the server's work counts). The goal is chat / bare <= 1.5x for both.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from benchmarks.context import SAY_MESSAGE, SAY_TEXT, BenchContext, choose_tool
from benchmarks.figures import Stats, describe_errors, divide, ms, out, print_table, times
from benchmarks.http_client import Client
from benchmarks.observe import is_postgres, pg_work, pg_work_per_message
from benchmarks.procstat import CpuMeter
from benchmarks.streams import StreamResult

ROWS = (("text", "new"), ("text", "continued"), ("tool", "new"), ("tool", "continued"))
GOAL = 1.5

Job = tuple[int, str]  # (scope index, session id; "" opens a new session)
Send = Callable[[Client, str, int, str], Awaitable[StreamResult]]


@dataclass
class Row:
    kind: str  # text | tool
    session: str  # new | continued
    bare: Stats
    chat: Stats
    pg: tuple[float, float] | None = None  # PostgreSQL connections opened, transactions, per chat message

    @property
    def label(self) -> str:
        return f"{self.kind}, {self.session} session"


def check_answer(kind: str, result: StreamResult) -> None:
    """Turn a complete stream with the wrong content into a problem, so it is not counted as a success."""
    if not result.ok:
        return
    if kind == "text" and result.text.strip() != SAY_TEXT:
        result.problem = f"unexpected answer {result.text[:40]!r}"
    elif kind == "tool" and result.first("tool_call_result") is None:
        result.problem = "no tool_call_result frame"


class Overhead:
    def __init__(self, ctx: BenchContext, client: Client) -> None:
        self.ctx = ctx
        self.client = client
        self.next_index = 0

    def message(self, kind: str) -> str:
        return SAY_MESSAGE if kind == "text" else self.ctx.tool_message

    async def jobs(self, kind: str, session: str, count: int) -> list[Job]:
        """Who sends each message of a block: a new session, or a session opened here by one message."""
        jobs = []
        for _ in range(count):
            index, self.next_index = self.next_index, self.next_index + 1
            session_id = ""
            if session == "continued":
                session_id = (await self.ctx.target.chat(self.client, self.message(kind), index)).session_id
            jobs.append((index, session_id))
        return jobs

    async def block(self, send: Send, kind: str, jobs: list[Job]) -> Stats:
        message = self.message(kind)
        with CpuMeter(self.ctx.server.pid) as meter:
            results = [await send(self.client, message, index, session_id) for index, session_id in jobs]
        for result in results:
            check_answer(kind, result)
        return Stats(kind, results, meter.seconds)

    async def warm_up(self) -> None:
        for kind, session in ROWS:
            jobs = await self.jobs(kind, session, self.ctx.args.warmup)
            await self.block(self.ctx.target.bare, kind, jobs)
            await self.block(self.ctx.target.chat, kind, jobs)

    async def rounds(self) -> list[Row]:
        args = self.ctx.args
        rows = [Row(kind, session, Stats("bare", []), Stats("chat", []), None) for kind, session in ROWS]
        per_round = math.ceil(args.messages / args.rounds)
        for round_number in range(args.rounds):
            if self.ctx.deadline.left() <= 0:
                out(f"  time budget spent: stopped after {round_number} of {args.rounds} rounds")
                break
            for row in rows:
                jobs = await self.jobs(row.kind, row.session, per_round)
                row.bare = row.bare.merged(await self.block(self.ctx.target.bare, row.kind, jobs))
                row.chat = row.chat.merged(await self.block(self.ctx.target.chat, row.kind, jobs))
        return rows

    async def pg_costs(self, rows: list[Row], count: int) -> None:
        """Connections opened and transactions run per chat message of each row (pg_stat_database), the
        rows one after another with a reading between them; the sessions to continue are opened first."""
        jobs = [await self.jobs(row.kind, row.session, count) for row in rows]
        reading = await pg_work(self.ctx.server.database_url)
        for row, row_jobs in zip(rows, jobs, strict=True):
            await self.block(self.ctx.target.chat, row.kind, row_jobs)
            before, reading = reading, await pg_work(self.ctx.server.database_url)
            row.pg = pg_work_per_message(before, reading, count)


async def overhead_phase(ctx: BenchContext) -> list[Row]:
    args = ctx.args
    out(
        f"\n[1] overhead per message vs the bare SSE view: {args.messages} sequential messages per row and kind "
        f"({args.rounds} rounds of a bare block then a chat block; +{args.warmup} warm-up each)"
    )
    async with ctx.target.client() as client:
        ctx.tool_message, note = await choose_tool(ctx.target, client)
        out(f"  tool message: /tool {note}")
        phase = Overhead(ctx, client)
        await phase.warm_up()
        rows = await phase.rounds()
        if is_postgres(ctx.server) and args.db_cost_messages and ctx.deadline.left() > 120:
            await phase.pg_costs(rows, args.db_cost_messages)
    report(ctx, rows)
    ctx.log.check("overhead")
    return rows


def report(ctx: BenchContext, rows: list[Row]) -> None:
    table = []
    for row in rows:
        done_ratio = divide(row.chat.done_p(0.5), row.bare.done_p(0.5))
        cpu_ratio = divide(row.chat.cpu_per_message, row.bare.cpu_per_message)
        table.append(
            [
                row.label,
                f"{len(row.chat.ok)}/{len(row.chat.results)}",
                ms(row.bare.done_p(0.5)),
                ms(row.chat.done_p(0.5)),
                times(done_ratio),
                ms(row.bare.cpu_per_message),
                ms(row.chat.cpu_per_message),
                times(cpu_ratio),
                ms(row.chat.done_p(0.95)),
                ms(row.chat.first_frame_p(0.5)),
                *([f"{row.pg[0]:.2f} / {row.pg[1]:.2f}" if row.pg else "-"] if is_postgres(ctx.server) else []),
            ]
        )
        done_note = f"{ms(row.chat.done_p(0.5))} vs {ms(row.bare.done_p(0.5))} ms"
        cpu_note = f"{ms(row.chat.cpu_per_message)} vs {ms(row.bare.cpu_per_message)} ms"
        ctx.goal(f"{row.label}: time to done p50, chat/bare", done_ratio, GOAL, note=done_note)
        ctx.goal(f"{row.label}: CPU per message, chat/bare", cpu_ratio, GOAL, note=cpu_note)
        for stats in (row.bare, row.chat):
            if stats.errors:
                out(f"  {row.label} {stats.label} errors: {describe_errors(stats.errors)}")
    out()
    header = ["row", "chat ok", "bare done p50", "chat done p50", "ratio", "bare CPU/msg", "chat CPU/msg", "ratio"]
    header += ["chat done p95", "chat 1st frame p50"]
    print_table(table, header + (["PG conns opened / xacts per msg"] if is_postgres(ctx.server) else []))
    out("  (times in ms; ratio = chat / bare, goal <= 1.5x; CPU/msg = daphne's CPU over the block / messages)")
    if is_postgres(ctx.server):
        out("  (PG: from pg_stat_database over more chat messages of each row; autocommit statements count one each)")
