"""What row-level security costs a message: the same load with `AMODAL_DB_ROW_SECURITY` off and on, in one run.

`python -m benchmarks.row_security` (or `make bench-rls`) creates a throw-away PostgreSQL database, migrates it
with the setting on (the role and the policies installed; the tables' owner, which a worker with the setting
off connects as, is never restricted by them), and starts two one-worker deployments on it (deploy/cluster.py),
one with the setting off and one with it on. After a warm-up, each round drives the same load at each worker
over its own unix socket, off then on, the next round on then off, so a drift of the shared machine falls on
both: N concurrent conversations (a message with a tool call, then a second message in the same session),
spread over `--scopes` scopes; N = 1 is `--sequential` conversations one after another, each in a scope of its
own (what a switch adds to a message with nothing queued before it). By default there are as many scopes as
conversations, so almost every checkout of a pooled connection meets another scope than its
last user's and switches: the worst case for the switch, the common case of a busy multi-tenant server.

Per setting, summed over the rounds: messages per second, the worker's CPU per message, the CPU per message of
the database's backends, PostgreSQL transactions per message (pg_stat_database, read after the statistics
settle), done p50 and p95; then each figure on / off. Every round's rows are checked (each message, tool call
and usage row once, in its scope), as in benchmarks.load.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from benchmarks.load import (
    DEFAULT_PG,
    DEFAULT_REDIS,
    Conversation,
    Message,
    Sampler,
    check_rows,
    converse,
    deployment_env,
    drive,
)
from benchmarks.observe import PG_COUNTERS_SQL, STATS_SETTLE_SECONDS
from benchmarks.server import fresh_postgres
from deploy.cluster import Cluster, find_nginx, free_port

SETTINGS = ("off", "on")
WARM_UP = 10  # conversations sent to each worker before the rounds


@dataclass
class Totals:
    """One setting's figures, summed over its rounds."""

    seconds: float = 0.0
    messages: list[Message] = field(default_factory=list)
    worker_cpu: float = 0.0
    postgres_cpu: float = 0.0
    transactions: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> int:
        return sum(1 for message in self.messages if not message.error)

    @property
    def errors(self) -> int:
        return len(self.messages) - self.ok

    def per_message(self, total: float) -> float:
        return total / max(1, self.ok)

    def done(self, q: float) -> float:
        values = sorted(m.done for m in self.messages if m.done is not None)
        return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")

    def figures(self) -> dict[str, float]:
        return {
            "msg/s": self.ok / self.seconds if self.seconds else 0.0,
            "worker CPU ms/msg": self.per_message(self.worker_cpu) * 1000,
            "PostgreSQL CPU ms/msg": self.per_message(self.postgres_cpu) * 1000,
            "transactions/msg": self.per_message(self.transactions),
            "done p50 ms": self.done(0.5) * 1000,
            "done p95 ms": self.done(0.95) * 1000,
        }


def transactions(database_url: str) -> int:
    """The database's committed and rolled-back transactions so far, once its backends' statistics settle."""
    import psycopg

    time.sleep(STATS_SETTLE_SECONDS)
    with psycopg.connect(database_url, autocommit=True) as connection:
        row = connection.execute(PG_COUNTERS_SQL).fetchone()
    return int(row[1]) if row else 0


async def one_at_a_time(uds: str, secret: str, count: int, tag: str) -> list[Conversation]:
    transport = httpx.AsyncHTTPTransport(uds=uds, retries=0)
    client = httpx.AsyncClient(base_url="http://127.0.0.1", transport=transport, timeout=60, trust_env=False)
    async with client:
        return [await converse(client, secret, f"rls-seq-{index:04d}", index, tag) for index in range(count)]


def one_round(
    cluster: Cluster, totals: Totals, database_url: str, redis_url: str, secret: str, n: int, scopes: int, count: int
) -> None:
    uds = str(cluster.workers[0].socket_path)
    tag = f"rls-{secrets.token_hex(3)}"
    load = one_at_a_time(uds, secret, count, tag) if n == 1 else drive("http://127.0.0.1", uds, secret, n, scopes, tag)
    before = transactions(database_url)
    with Sampler(cluster, database_url, redis_url) as sampler:
        started = time.perf_counter()
        conversations: list[Conversation] = asyncio.run(load)
        totals.seconds += time.perf_counter() - started
    # The reading's own two transactions (one connection for each of two readings) are not the run's.
    totals.transactions += transactions(database_url) - before - 2
    totals.messages += [message for conversation in conversations for message in conversation.messages]
    totals.worker_cpu += sampler.cpu_used["worker 0"]
    totals.postgres_cpu += sampler.cpu_used["postgres"]
    totals.problems += check_rows(database_url, conversations)


def report(title: str, rounds: int, totals: dict[str, Totals]) -> str:
    off, on = totals["off"].figures(), totals["on"].figures()
    lines = [
        f"{title}, {rounds} rounds of each setting",
        "| figure | off | on | on / off |",
        "|---|---|---|---|",
    ]
    for name in off:
        ratio = on[name] / off[name] if off[name] else float("nan")
        lines.append(f"| {name} | {off[name]:.2f} | {on[name]:.2f} | {ratio:.3f} |")
    for setting in SETTINGS:
        result = totals[setting]
        checked = "all present once, in scope" if not result.problems else f"{len(result.problems)} PROBLEMS"
        lines.append(f"  {setting}: {len(result.messages)} messages, {result.errors} errors; rows: {checked}")
        lines += [f"    {problem}" for problem in result.problems[:5]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.row_security", description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", default="1,20,100", help="concurrent conversations, comma-separated (1: in turn)")
    parser.add_argument("--sequential", type=int, default=40, help="conversations of N = 1, one after another")
    parser.add_argument("--scopes", type=int, default=0, help="scopes the conversations use (default: one each)")
    parser.add_argument("--rounds", type=int, default=4, help="rounds of each setting per N (off-on, on-off, ...)")
    args = parser.parse_args(argv)
    sizes = [int(value) for value in args.n.split(",")]
    if find_nginx() is None:
        print("benchmarks.row_security: nginx is not installed (`make services` installs it)", file=sys.stderr)
        return 2
    admin_url = (os.environ.get("DATABASE_URL") or DEFAULT_PG).rsplit("/", 1)[0] + "/postgres"
    redis_url = os.environ.get("REDIS_URL") or DEFAULT_REDIS
    secret = secrets.token_urlsafe(32)
    with fresh_postgres(admin_url) as database_url:
        ports = {setting: free_port() for setting in SETTINGS}
        envs = {
            setting: deployment_env(
                database_url, redis_url, secret, ports[setting], AMODAL_DB_ROW_SECURITY="1" if setting == "on" else "0"
            )
            for setting in SETTINGS
        }
        migrate = [sys.executable, "manage.py", "migrate", "--noinput"]
        subprocess.run(migrate, env=envs["on"], check=True, capture_output=True, cwd=Path(__file__).parent.parent)
        clusters = {s: Cluster(envs[s], workers=1, port=ports[s], access_log=False) for s in SETTINGS}
        try:
            for cluster in clusters.values():
                cluster.start()
            print(
                f"benchmarks.row_security: one daphne worker per setting on one database, {os.cpu_count()} cores "
                "shared with the client and everything else",
                flush=True,
            )
            for setting in SETTINGS:  # warm up (imports, caches, the pools' connections), not counted
                uds = str(clusters[setting].workers[0].socket_path)
                asyncio.run(drive("http://127.0.0.1", uds, secret, WARM_UP, WARM_UP, f"warm-{setting}"))
            for n in sizes:
                scopes = args.scopes or n
                totals = {setting: Totals() for setting in SETTINGS}
                for round_number in range(1, args.rounds + 1):
                    # off, on, then on, off: a drift of the machine over the rounds falls on both alike
                    for setting in SETTINGS if round_number % 2 else SETTINGS[::-1]:
                        cluster = clusters[setting]
                        one_round(cluster, totals[setting], database_url, redis_url, secret, n, scopes, args.sequential)
                        print(f"  N = {n}, round {round_number}, {setting}: done", flush=True)
                if n == 1:
                    title = f"N = 1: {args.sequential} conversations x 2 messages in turn, each in a scope of its own"
                else:
                    title = f"N = {n} concurrent conversations x 2 messages over {scopes} scopes"
                print(report(title, args.rounds, totals), flush=True)
        finally:
            for cluster in clusters.values():
                cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
