"""Phase 3: many slow streams at once on the one daphne process.

The message is `/slow MS w1 ... wN` (default 50 ms x 20 words, about 1 s a stream): the `local` provider
streams one word every MS ms, and so does the fake Messages API for the anthropic provider. First
`--single-streams` of them one after another (the single-stream CPU per message), then `--concurrency`
all started at once, a new session each, spread over the scopes; the bare view does the same as a
baseline. Per kind: streams completed with the right words, errors by kind (HTTP status and code, `error`
events, `done` reasons other than model_stop, client exceptions), wall time, time to `done` p50/p95, time
to the first frame p95, daphne's CPU per message at once vs one at a time (goal <= 1.2x for the chat, and
0 errors), its resident memory (before, peak sampled every 50 ms, the kernel's high-water mark VmHWM since
start), its peak thread count and the database connections at the peak and 2 s after the last stream.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from benchmarks.context import BenchContext
from benchmarks.figures import Stats, describe_errors, divide, mib, ms, out, print_table, times
from benchmarks.http_client import Client
from benchmarks.observe import Sampler, Samples, db_connections_now
from benchmarks.procstat import CpuMeter
from benchmarks.streams import StreamResult

GOAL = 1.2
AFTER_SECONDS = 2.0

Send = Callable[[Client, str, int], Coroutine[Any, Any, StreamResult]]


@dataclass
class Concurrent:
    label: str
    single: Stats
    together: Stats
    wall_seconds: float
    samples: Samples
    client_cpu_seconds: float  # this process's CPU while the streams ran (it shares the cores with daphne)


def slow_message(ms_per_word: int, words: int) -> tuple[str, list[str]]:
    expected = [f"w{i}" for i in range(1, words + 1)]
    return f"/slow {ms_per_word} {' '.join(expected)}", expected


def check_words(results: list[StreamResult], expected: list[str]) -> None:
    for result in results:
        if result.ok and result.text.split() != expected:
            result.problem = "wrong words in the text"


async def one_at_a_time(ctx: BenchContext, send: Send, label: str) -> Stats:
    message, expected = slow_message(ctx.args.slow_ms, ctx.args.slow_words)
    async with ctx.target.client() as client:
        await send(client, message, 0)  # warm-up: connection, and on anthropic the model client's pool
        with CpuMeter(ctx.server.pid) as meter:
            results = [await send(client, message, i) for i in range(ctx.args.single_streams)]
    check_words(results, expected)
    return Stats(label, results, meter.seconds)


async def all_at_once(ctx: BenchContext, send: Send, single: Stats) -> Concurrent:
    count = ctx.args.concurrency
    message, expected = slow_message(ctx.args.slow_ms, ctx.args.slow_words)
    budget = max(60.0, min(ctx.deadline.left(), 300.0))
    async with ctx.target.client() as client, Sampler(ctx.server) as samples:
        with CpuMeter(ctx.server.pid) as meter:
            started, client_cpu = time.perf_counter(), time.process_time()
            tasks = [asyncio.create_task(send(client, message, i)) for i in range(count)]
            done, pending = await asyncio.wait(tasks, timeout=budget)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            wall, client_cpu = time.perf_counter() - started, time.process_time() - client_cpu
    await asyncio.sleep(AFTER_SECONDS)  # what is still open once every stream has ended
    samples.db_connections_after = await db_connections_now(ctx.server)
    results = [task.result() for task in tasks if task in done]
    results += [StreamResult(budget, problem="unfinished at the phase time limit") for _ in pending]
    check_words(results, expected)
    together = Stats(single.label, results, meter.seconds)
    return Concurrent(single.label, single, together, wall, samples, client_cpu)


async def concurrency_phase(ctx: BenchContext) -> None:
    args = ctx.args
    out(
        f"\n[3] concurrency: {args.concurrency} streams at once of /slow {args.slow_ms} x {args.slow_words} words "
        f"(~{args.slow_ms * args.slow_words / 1000:g} s each), a new session each over {args.scopes} scopes; "
        f"single-stream figures from {args.single_streams} one at a time"
    )
    runs = []
    for label, send in (("bare", ctx.target.bare), ("chat", ctx.target.chat)):
        single = await one_at_a_time(ctx, send, label)
        runs.append(await all_at_once(ctx, send, single))
        ctx.log.check(f"concurrency ({label})")
        await asyncio.sleep(1.0)  # let daphne close the connections before the next run
    report(ctx, runs)


def report(ctx: BenchContext, runs: list[Concurrent]) -> None:
    table = []
    for run in runs:
        item, s = run.together, run.samples
        table.append(
            [
                run.label,
                f"{len(item.ok)}/{len(item.results)}",
                str(item.error_count),
                f"{run.wall_seconds:.2f}",
                ms(item.done_p(0.5)),
                ms(item.done_p(0.95)),
                ms(item.first_frame_p(0.95)),
                ms(run.single.cpu_per_message),
                ms(item.cpu_per_message),
                times(divide(item.cpu_per_message, run.single.cpu_per_message)),
                mib(s.rss_before_kib),
                mib(s.rss_peak_kib),
                mib(s.hwm_kib),
                str(s.threads_peak),
                "-" if s.db_connections_peak is None else str(s.db_connections_peak),
                "-" if s.db_connections_after is None else str(s.db_connections_after),
                "-" if s.listen_overflows is None else str(s.listen_overflows),
                f"{run.client_cpu_seconds:.2f}",
            ]
        )
        for stats, when in ((run.single, "one at a time"), (item, "at once")):
            if stats.errors:
                out(f"  {run.label} errors ({when}): {describe_errors(stats.errors)}")
    out()
    header = ["kind", "completed", "err", "wall s", "done p50", "done p95", "1st frame p95", "CPU/msg single"]
    header += ["CPU/msg at once", "ratio", "RSS before MiB", "RSS peak MiB", "VmHWM MiB", "threads"]
    print_table(table, header + ["db conns peak", "db conns 2 s after", "listen overflows", "client CPU s"])
    out("  (times in ms; ratio = CPU per message at once / one at a time, goal <= 1.2x for chat, with 0 errors;")
    out("  listen overflows: connections the kernel dropped or reset because daphne's accept queue was full)")
    bare, chat = runs
    out(f"  wall time chat / bare: {times(divide(chat.wall_seconds, bare.wall_seconds))}")
    n = ctx.args.concurrency
    errors = chat.together.errors + chat.single.errors
    ctx.goal(f"{n} slow streams at once: errors", float(sum(errors.values())), 0, "errors", describe_errors(errors))
    ratio = divide(chat.together.cpu_per_message, chat.single.cpu_per_message)
    cpu_note = f"{ms(chat.together.cpu_per_message)} vs {ms(chat.single.cpu_per_message)} ms"
    ctx.goal(f"{n} slow streams at once: CPU per message vs one stream", ratio, GOAL, note=cpu_note)
    rss_note = f"before {mib(chat.samples.rss_before_kib)} MiB, VmHWM {mib(chat.samples.hwm_kib)} MiB"
    ctx.goal(f"{n} slow streams at once: daphne peak RSS", chat.samples.rss_peak_kib / 1024, None, "MiB", rss_note)
