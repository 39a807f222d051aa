"""Chat benchmarks: the goals of issue 13 as ratios against baselines measured in the same run.

Run (one command; everything is local to 127.0.0.1, bounded, and stops by itself):

    .venv/bin/python -m benchmarks.chat                 # temporary SQLite files, both providers (make bench)
    .venv/bin/python -m benchmarks.chat --quick         # smaller counts, about a minute
    .venv/bin/python -m benchmarks.chat --postgres      # a fresh PostgreSQL database per provider, dropped after
    .venv/bin/python -m benchmarks.chat --providers local --phases overhead,long --messages 50
    DATABASE_URL=postgres://... .venv/bin/python -m benchmarks.chat   # an existing database (rows are added)

For each provider, the script migrates a database, starts one `daphne amodal_site.asgi:application` on a
free port (DEBUG off, `DJANGO_SETTINGS_MODULE=benchmarks.settings`: the project plus the baseline view
`/bench/bare-sse`), mints HS256 JWTs for `--scopes` scopes and talks to it only through the public HTTP
API (`POST /chat/stream`, `session_id` to continue), so it measures any engine behind that API alike.
- `local`: the bundled example agent (examples/finance-agent) on the offline `local` provider.
- `anthropic`: a copy of that agent with `models.main = {provider: anthropic, model: claude-sonnet-4-5,
  baseUrl: <fake>, credentials: {apiKey: bench-key}}`, the model being benchmarks/fake_messages_api.py in
  its own process (asyncio, keep-alive, the real SSE wire format; it reads every request body).

Phases (each module's docstring says more):
[1] benchmarks/overhead.py: time to `done` p50 and daphne's CPU per message, chat / bare SSE view emitting
    the same frames, for text and for a tool call, new and continued session (goal <= 1.5x);
[2] benchmarks/long_session.py: one session to 400 messages, messages 391..400 vs 2..11 (goal <= 1.2x);
[3] benchmarks/concurrency.py: 500 slow streams at once: errors (goal 0), CPU per message vs one stream at
    a time (goal <= 1.2x), daphne's peak RSS.
Time to `done` is measured by the client (this process) from sending the request to reading the `done`
frame. CPU is daphne's own (per-thread run time from /proc, see benchmarks/procstat.py) over a block of
messages, divided by the messages; the client's and the fake's CPU are not in it. Both run on the same
machine, so under concurrency they compete with daphne for the cores: compare runs on the same machine.

At the end: a table of every goal with its measured ratio and PASS/MISS, the sessions left `running`
(a lease not released) and problems in daphne's log (tracebacks, "database is locked", ...).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

from benchmarks.concurrency import concurrency_phase
from benchmarks.context import BenchContext, Deadline
from benchmarks.fake_messages_api import FakeMessagesApi
from benchmarks.figures import Goal, out, print_table
from benchmarks.long_session import long_session_phase
from benchmarks.observe import LogWatch, session_status_counts
from benchmarks.overhead import overhead_phase
from benchmarks.server import PROJECT_ROOT, BenchServer, fresh_postgres
from benchmarks.streams import Target

EXAMPLE_AGENT = PROJECT_ROOT / "examples" / "finance-agent"
DEFAULT_PG_ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"
PROVIDERS = ("local", "anthropic")
PHASES = ("overhead", "long", "concurrency")
ANTHROPIC_MODEL = "claude-sonnet-4-5"
# Twisted listens with a backlog of 50: 500 connections at once overflow it and the kernel drops or resets
# some (counted as errors before any frame). A deployment expecting bursts sets it; so does the benchmark.
DEFAULT_LISTEN_BACKLOG = 1024
# The counts of a full run and of --quick; an option given on the command line wins over both.
DEFAULTS = {
    "messages": 100,
    "rounds": 2,
    "warmup": 5,
    "long_messages": 400,
    "window": 10,
    "concurrency": 500,
    "single_streams": 10,
    "slow_ms": 50,
    "slow_words": 20,
    "db_cost_messages": 50,
}
QUICK = {
    **DEFAULTS,
    "messages": 20,
    "warmup": 2,
    "long_messages": 60,
    "concurrency": 100,
    "single_streams": 3,
    "slow_words": 10,
    "db_cost_messages": 0,
}


# --- per provider ------------------------------------------------------------------------------------


@contextmanager
def database(args: argparse.Namespace) -> Iterator[str | None]:
    if args.postgres:
        with fresh_postgres(args.postgres) as url:
            yield url
    else:
        yield os.environ.get("DATABASE_URL") or None


@contextmanager
def anthropic_agent(fake_url: str) -> Iterator[Path]:
    """A copy of the example agent whose main model is the anthropic provider on the fake API."""
    workdir = Path(tempfile.mkdtemp(prefix="amodal-bench-agent-"))
    folder = workdir / EXAMPLE_AGENT.name
    try:
        shutil.copytree(EXAMPLE_AGENT, folder)
        manifest_path = folder / "amodal.json"
        manifest = json.loads(manifest_path.read_text())
        manifest["models"]["main"] = {
            "provider": "anthropic",
            "model": ANTHROPIC_MODEL,
            "baseUrl": fake_url,
            "credentials": {"apiKey": "bench-key"},
        }
        manifest_path.write_text(json.dumps(manifest, indent=2))
        yield folder
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


async def fake_stats(fake: FakeMessagesApi | None) -> str:
    if fake is None:
        return ""
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            stats = (await client.get(f"{fake.base_url}/stats")).json()
    except (httpx.HTTPError, ValueError) as exc:
        return f"unreadable ({exc})"
    return ", ".join(f"{kind} {n}" for kind, n in stats.items())


async def run_provider(
    provider: str, server: BenchServer, fake: FakeMessagesApi | None, args: argparse.Namespace
) -> tuple[list[Goal], dict[str, list[str]]]:
    ctx = BenchContext(
        provider, server, Target(server, args.scopes), args, Deadline(args.max_seconds), LogWatch(server)
    )
    model = f"anthropic {ANTHROPIC_MODEL} on the fake Messages API at {fake.base_url}" if fake else "local"
    out("\n" + "#" * 110)
    out(f"# provider {provider}: {model}")
    out(
        f"# daphne pid {server.pid} on {server.base_url}, database {server.database_kind} (migrate "
        f"{server.migrate_seconds:.1f} s, start {server.startup_seconds:.1f} s), listen backlog "
        f"{server.listen_backlog or 'default (50)'}, CPUs {os.cpu_count()}, "
        f"load average {load_average()}"
    )
    out("#" * 110)
    ctx.log.check("startup")
    phases = {"overhead": overhead_phase, "long": long_session_phase, "concurrency": concurrency_phase}
    for name in args.phases:
        await phases[name](ctx)
    statuses = session_status_counts(server)
    ctx.log.check("the end")
    out(f"\n  sessions by status after the run: {statuses}")
    if isinstance(statuses, dict) and statuses.get("running"):
        out(f"  ! {statuses['running']} sessions are still 'running' after every stream ended (lease not released)")
    if fake is not None:
        out(f"  requests the fake Messages API answered: {await fake_stats(fake)}")
    return ctx.goals, ctx.log.problems


def bench_provider(provider: str, args: argparse.Namespace) -> tuple[list[Goal], dict[str, list[str]]]:
    with ExitStack() as stack:
        url = stack.enter_context(database(args))
        fake = stack.enter_context(FakeMessagesApi()) if provider == "anthropic" else None
        folder = stack.enter_context(anthropic_agent(fake.base_url)) if fake else EXAMPLE_AGENT
        out(f"\nmigrating and starting daphne for the {provider} provider ...")
        server = BenchServer(database_url=url, agent_dir=folder, listen_backlog=args.listen_backlog)
        stack.enter_context(server)
        return asyncio.run(run_provider(provider, server, fake, args))


# --- the summary -------------------------------------------------------------------------------------


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def print_summary(args: argparse.Namespace, goals: list[Goal], log_problems: dict[str, list[str]]) -> None:
    out("\n" + "=" * 110)
    out(
        f"SUMMARY OF GOALS (issue 13)  database={args.database_label}  messages={args.messages}  "
        f"long session={args.long_messages}  concurrency={args.concurrency}  quick={args.quick}"
    )
    out("=" * 110)
    rows = [[goal.provider, goal.goal, goal.measured, goal.target, goal.verdict, goal.note] for goal in goals]
    print_table(rows, ["provider", "goal", "measured", "target", "verdict", "figures"], indent="", left=2)
    verdicts = [goal.verdict for goal in goals]
    out(f"\n{verdicts.count('PASS')} PASS, {verdicts.count('MISS')} MISS, {verdicts.count('n/a')} not measured")
    out("ratios: chat / bare view for time to done p50 and daphne CPU per message; late / early messages of")
    out("one session; at once / one at a time for the CPU per slow stream. figures: the two values divided (ms).")
    out(f"load average at the end: {load_average()}")
    out(
        "daphne log problems: "
        + ("; ".join(f"{phase}: {', '.join(kinds)}" for phase, kinds in log_problems.items()) or "none")
    )


# --- options and main --------------------------------------------------------------------------------


def comma_list(choices: tuple[str, ...]) -> Callable[[str], list[str]]:
    def parse(value: str) -> list[str]:
        items = [item.strip() for item in value.split(",") if item.strip()]
        unknown = [item for item in items if item not in choices]
        if unknown or not items:
            raise argparse.ArgumentTypeError(f"choose from {', '.join(choices)} (comma-separated)")
        return items

    return parse


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.chat", description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--quick", action="store_true", help="smaller counts for a quick check: " + quick_help())
    add("--providers", type=comma_list(PROVIDERS), default=list(PROVIDERS), help="local,anthropic (both)")
    add("--phases", type=comma_list(PHASES), default=list(PHASES), help="overhead,long,concurrency (all)")
    add("--messages", type=int, help="[1] measured messages per row and kind (100)")
    add("--rounds", type=int, help="[1] rounds the messages are split into, bare block then chat block (2)")
    add("--warmup", type=int, help="[1] warm-up messages per row and kind, not counted (5)")
    add(
        "--db-cost-messages",
        type=int,
        help="[1] PostgreSQL: messages per row for conns/xacts per message (50; 0 skips)",
    )
    add("--long-messages", type=int, help="[2] messages of the long session (400)")
    add("--window", type=int, help="[2] messages compared at the start and the end of the session (10)")
    add("--concurrency", type=int, help="[3] streams at once (500)")
    add("--single-streams", type=int, help="[3] streams one at a time for the single-stream CPU (10)")
    add("--slow-ms", type=int, help="[3] ms between the words of a slow stream (50)")
    add("--slow-words", type=int, help="[3] words of a slow stream (20)")
    add("--scopes", type=int, default=20, help="scopes (JWTs) the messages are spread over (20)")
    add(
        "--listen-backlog",
        type=int,
        default=DEFAULT_LISTEN_BACKLOG,
        help=f"daphne's listen backlog ({DEFAULT_LISTEN_BACKLOG}; 0: Twisted's default of 50, which makes the "
        "kernel drop connections when hundreds arrive at once)",
    )
    add(
        "--postgres",
        nargs="?",
        const=DEFAULT_PG_ADMIN_URL,
        metavar="ADMIN_URL",
        help=f"a fresh PostgreSQL database per provider on this server, dropped after ({DEFAULT_PG_ADMIN_URL})",
    )
    add("--max-seconds", type=float, default=900.0, help="time budget of the phases of each provider (900)")
    add(
        "--strict",
        action="store_true",
        help="exit 1 when a goal is missed, a request failed or daphne logged a problem",
    )
    args = parser.parse_args(argv)
    for name, value in (QUICK if args.quick else DEFAULTS).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    check_args(parser, args)
    args.database_label = (
        "postgresql" if args.postgres else "sqlite" if not os.environ.get("DATABASE_URL") else "DATABASE_URL"
    )
    return args


def quick_help() -> str:
    return ", ".join(f"--{name.replace('_', '-')} {value}" for name, value in QUICK.items() if DEFAULTS[name] != value)


def check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    for name in (
        "messages",
        "rounds",
        "long_messages",
        "window",
        "concurrency",
        "single_streams",
        "slow_words",
        "scopes",
    ):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.slow_ms < 0 or args.warmup < 0 or args.db_cost_messages < 0:
        parser.error("--slow-ms, --warmup and --db-cost-messages cannot be negative")
    if args.long_messages < 2 * args.window + 1:
        parser.error("--long-messages must be at least 2 x --window + 1 (the two windows cannot overlap)")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    goals: list[Goal] = []
    log_problems: dict[str, list[str]] = {}
    try:
        for provider in args.providers:
            provider_goals, problems = bench_provider(provider, args)
            goals += provider_goals
            log_problems.update({f"{provider} {phase}": kinds for phase, kinds in problems.items()})
    except KeyboardInterrupt:
        out("interrupted")
        return 130
    print_summary(args, goals, log_problems)
    missed = any(goal.verdict in {"MISS", "n/a"} for goal in goals)
    return 1 if args.strict and (missed or log_problems) else 0


if __name__ == "__main__":
    sys.exit(main())
