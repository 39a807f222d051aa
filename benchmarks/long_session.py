"""Phase 2: does a message cost more as its session grows? One session driven to `--long-messages`.

The session is filled through the API, one `/say hello world from message NNNN` after another (the
answer repeats the text, so every exchange is the same size), and each message's time to `done` and
daphne's CPU are read. The goal compares the last `--window` messages (391..400 by default) with the
first ones after the one that opened the session (2..11): the mean time to `done` and the mean CPU per
message, late / early <= 1.2x. On the anthropic provider every message sends the whole history to the
fake Messages API, which reads and parses the body as the real one does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from benchmarks.context import BenchContext
from benchmarks.figures import Stats, describe_errors, divide, mean, ms, out, print_table, times
from benchmarks.procstat import CpuMeter
from benchmarks.streams import StreamResult

GOAL = 1.2
SCOPE_INDEX = 0
BUCKET = 50


def message_number(number: int) -> tuple[str, str]:
    text = f"hello world from message {number:04d}"
    return f"/say {text}", text


@dataclass
class Sent:
    number: int  # 1 opens the session
    result: StreamResult
    cpu_seconds: float


def window_stats(label: str, sent: list[Sent]) -> Stats:
    return Stats(label, [item.result for item in sent], sum(item.cpu_seconds for item in sent))


async def fill_session(ctx: BenchContext, count: int) -> list[Sent]:
    sent: list[Sent] = []
    session_id = ""
    async with ctx.target.client() as client:
        for number in range(1, count + 1):
            if ctx.deadline.left() <= 0:
                out(f"  time budget spent: stopped at message {number - 1} of {count}")
                break
            message, expected = message_number(number)
            with CpuMeter(ctx.server.pid) as meter:
                result = await ctx.target.chat(client, message, SCOPE_INDEX, session_id)
            if result.ok and result.text.strip() != expected:
                result.problem = f"unexpected answer {result.text[:40]!r}"
            session_id = session_id or result.session_id
            sent.append(Sent(number, result, meter.seconds))
    return sent


async def long_session_phase(ctx: BenchContext) -> None:
    count, window = ctx.args.long_messages, ctx.args.window
    out(
        f"\n[2] long session: one session driven to {count} messages (/say, sequential); "
        f"messages 2..{window + 1} vs {count - window + 1}..{count}"
    )
    sent = await fill_session(ctx, count)
    early = window_stats(f"2..{window + 1}", sent[1 : window + 1])
    late = window_stats(f"{count - window + 1}..{count}", sent[-window:] if len(sent) == count else [])
    report_buckets(sent)
    table = []
    for stats in (early, late):
        cpu = stats.cpu_per_message
        table.append(
            [f"messages {stats.label}", str(len(stats.ok)), ms(stats.done_mean()), ms(stats.done_p(0.5)), ms(cpu)]
        )
    done_ratio = divide(late.done_mean(), early.done_mean())
    cpu_ratio = divide(late.cpu_per_message, early.cpu_per_message)
    table.append(
        ["late / early", "", times(done_ratio), times(divide(late.done_p(0.5), early.done_p(0.5))), times(cpu_ratio)]
    )
    out()
    print_table(table, ["window", "ok", "done mean ms", "done p50 ms", "CPU/msg ms"])
    out("  (goal: late / early <= 1.2x for the mean time to done and the CPU per message)")
    errors = window_stats("all", sent).errors
    if errors:
        out(f"  errors over the session: {describe_errors(errors)}")
    done_note = f"{ms(late.done_mean())} vs {ms(early.done_mean())} ms"
    cpu_note = f"{ms(late.cpu_per_message)} vs {ms(early.cpu_per_message)} ms"
    ctx.goal(f"message {late.label} vs {early.label}: time to done (mean)", done_ratio, GOAL, note=done_note)
    ctx.goal(f"message {late.label} vs {early.label}: CPU per message", cpu_ratio, GOAL, note=cpu_note)
    error_count = float(sum(errors.values()))
    ctx.goal(f"long session: failed messages of {count}", error_count, 0, "errors", describe_errors(errors))
    ctx.log.check("long session")


def report_buckets(sent: list[Sent]) -> None:
    """How the cost grows: time to done and CPU per message, BUCKET messages at a time."""
    rows = []
    for start in range(0, len(sent), BUCKET):
        part = sent[start : start + BUCKET]
        stats = window_stats("", part)
        cpu = mean([item.cpu_seconds for item in part]) if part else math.nan
        label = f"{part[0].number}..{part[-1].number}"
        rows.append([label, str(len(stats.ok)), ms(stats.done_mean()), ms(stats.done_p(0.5)), ms(cpu)])
    print_table(rows, ["messages", "ok", "done mean ms", "done p50 ms", "CPU/msg ms"])
