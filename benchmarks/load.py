"""Load through the load balancer: N concurrent streaming conversations across many scopes.

`python -m benchmarks.load --n 50,200,500,1000` (or `make bench-load`) creates a throw-away PostgreSQL
database, starts the local cluster (deploy/cluster.py: nginx in front of `--workers` daphne processes,
sharing it and Redis, DEBUG off, the `local` provider), and for every N:

1. **cluster**: N conversations at once through nginx, each in one of `--scopes` scopes: a message that
   calls the finance API (a tool call, two model calls) and a second message continuing the session;
2. **one worker**: the same N against worker 0 directly, over its unix socket (the baseline);

and prints, for each, the throughput (messages per second), the errors, p50/p95/p99 of the first event
and of `done` (client side), the CPU each process used, the peak of the database's connections, and the
ratios cluster / one worker. After each run it checks in the database that every session, message, tool
call and usage row the streams reported exists exactly once, in the conversation's scope.

The client (async httpx) shares the machine's cores with the servers; its CPU is reported too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.fernet import Fernet

from benchmarks import procstat
from benchmarks.server import fresh_postgres
from deploy.cluster import Cluster, find_nginx, free_port

DEFAULT_PG = "postgres://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
TOOL_MESSAGE = "show my recent transactions"
SAMPLE_SECONDS = 0.25


@dataclass
class Message:
    first_event: float | None = None  # seconds from sending the request
    done: float | None = None
    error: str = ""
    usage_events: int = 0
    tool_ids: list[str] = field(default_factory=list)


@dataclass
class Conversation:
    scope: str
    session_id: str = ""
    messages: list[Message] = field(default_factory=list)


@dataclass
class Run:
    label: str
    n: int
    seconds: float
    conversations: list[Conversation]
    cpu: dict[str, float]
    peak_connections: int
    peak_active: int
    machine_busy: float  # share of all cores busy during the run (everyone's work on the machine)
    mean_states: dict[str, float]  # PostgreSQL connections to the database by state, mean over the run

    @property
    def messages(self) -> list[Message]:
        return [message for conversation in self.conversations for message in conversation.messages]

    @property
    def errors(self) -> int:
        return sum(1 for message in self.messages if message.error)

    @property
    def throughput(self) -> float:
        return sum(1 for message in self.messages if not message.error) / self.seconds

    def percentile(self, attribute: str, q: int) -> float:
        values = sorted(v for m in self.messages if (v := getattr(m, attribute)) is not None)
        if not values:
            return float("nan")
        if len(values) == 1:
            return values[0]
        return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


# --- the conversations ---------------------------------------------------------------------------------


def token(secret: str, scope: str) -> str:
    now = int(time.time())
    claims = {"sub": f"load-{scope}", "scope_id": scope, "scopeContext": {"household_id": scope}}
    return jwt.encode({**claims, "iat": now, "exp": now + 3600}, secret, algorithm="HS256")


async def send(client: httpx.AsyncClient, headers: dict[str, str], body: dict[str, Any]) -> tuple[Message, str]:
    """One message over POST /chat/stream, read to its end: its figures and the session id."""
    message = Message()
    session_id = ""
    started = time.perf_counter()
    try:
        async with client.stream("POST", "/chat/stream", json=body, headers=headers) as response:
            if response.status_code != 200:
                await response.aread()
                message.error = f"HTTP {response.status_code}: {response.text[:120]}"
                return message, session_id
            async for line in response.aiter_lines():
                if not line.startswith("data: "):
                    continue
                event = json.loads(line[len("data: ") :])
                if message.first_event is None:
                    message.first_event = time.perf_counter() - started
                kind = event["type"]
                if kind == "init":
                    session_id = event["session_id"]
                elif kind == "usage":
                    message.usage_events += 1
                elif kind == "tool_call_start":
                    message.tool_ids.append(event["tool_id"])
                elif kind == "error":
                    message.error = f"error event {event.get('code')}"
                elif kind == "done":
                    message.done = time.perf_counter() - started
                    if event["reason"] != "model_stop" and not message.error:
                        message.error = f"done with reason {event['reason']}"
        if message.done is None and not message.error:
            message.error = "the stream ended without done"
    except (httpx.HTTPError, OSError) as exc:
        message.error = f"{type(exc).__name__}: {exc}"[:160]
    return message, session_id


async def converse(client: httpx.AsyncClient, secret: str, scope: str, index: int, tag: str) -> Conversation:
    conversation = Conversation(scope=scope)
    headers = {"Authorization": f"Bearer {token(secret, scope)}"}
    first, conversation.session_id = await send(client, headers, {"message": f"{TOOL_MESSAGE} ({tag} {index})"})
    conversation.messages.append(first)
    if conversation.session_id and not first.error:
        body = {"message": f"/say thanks from {tag} {index}", "session_id": conversation.session_id}
        second, _ = await send(client, headers, body)
        conversation.messages.append(second)
    return conversation


# Conversations per client: httpcore's pool looks through its connections on every request, so one client
# holding a thousand connections spent more CPU than both workers together (57 ms per message at N = 500).
CONVERSATIONS_PER_CLIENT = 50


async def drive(base_url: str, uds: str | None, secret: str, n: int, scopes: int, tag: str) -> list[Conversation]:
    # Idle connections are dropped after 30 s, before nginx's keepalive_timeout (75 s) closes them: reusing
    # one the server is closing at that moment fails the request (seen once in 2 000 messages).
    size = min(n, CONVERSATIONS_PER_CLIENT) + 2
    limits = httpx.Limits(max_connections=size, max_keepalive_connections=size, keepalive_expiry=30.0)
    timeout = httpx.Timeout(300.0, connect=60.0)
    clients = [
        httpx.AsyncClient(
            base_url=base_url,
            transport=httpx.AsyncHTTPTransport(uds=uds, limits=limits, retries=0),
            timeout=timeout,
            trust_env=False,
        )
        for _ in range(-(-n // CONVERSATIONS_PER_CLIENT))
    ]
    try:
        tasks = [converse(clients[i % len(clients)], secret, f"load-scope-{i % scopes:04d}", i, tag) for i in range(n)]
        return list(await asyncio.gather(*tasks))
    finally:
        for client in clients:
            await client.aclose()


# --- what the machine did meanwhile --------------------------------------------------------------------


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all cores since boot (/proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def redis_cpu(redis_url: str) -> float:
    import redis

    info = redis.Redis.from_url(redis_url).info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


class Sampler:
    """CPU of every process of the run, and the database's connections sampled every 0.25 s."""

    def __init__(self, cluster: Cluster, database_url: str, redis_url: str) -> None:
        self.cluster = cluster
        self.database_url = database_url
        self.redis_url = redis_url
        self.stop_event = threading.Event()
        self.peak_connections = 0
        self.peak_active = 0
        self.backend_pids: set[int] = set()
        self.samples = 0
        self.state_totals: Counter[str] = Counter()
        self.thread = threading.Thread(target=self.sample, daemon=True)

    def cpu(self) -> dict[str, float]:
        nginx = self.cluster.nginx_process
        nginx_pids = [nginx.pid, *children(nginx.pid)] if nginx else []
        return {
            **{f"worker {w.index}": procstat.cpu_seconds(w.process.pid) for w in self.cluster.workers},
            "nginx": sum(procstat.ticks_seconds(pid) for pid in nginx_pids),
            "redis": redis_cpu(self.redis_url),
            # This database's backends only (seen in pg_stat_activity during the run), not other databases'.
            "postgres": sum(safe_ticks(pid) for pid in self.backend_pids),
            "client": time.process_time(),
        }

    def sample(self) -> None:
        import psycopg

        name = self.database_url.rsplit("/", 1)[1]
        with psycopg.connect(self.database_url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as connection:
            while not self.stop_event.wait(SAMPLE_SECONDS):
                rows = connection.execute(
                    "SELECT pid, state FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (name,)
                ).fetchall()
                self.backend_pids.update(pid for pid, _ in rows)
                states = Counter(state for _, state in rows)
                self.peak_connections = max(self.peak_connections, sum(states.values()))
                self.peak_active = max(self.peak_active, states["active"] + states["idle in transaction"])
                self.samples += 1
                self.state_totals.update(states)

    def __enter__(self) -> Sampler:
        import psycopg

        with psycopg.connect(self.database_url) as connection:
            name = self.database_url.rsplit("/", 1)[1]
            rows = connection.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (name,)
            )
            self.backend_pids.update(pid for (pid,) in rows.fetchall())
        self.cpu_before = self.cpu()
        self.ticks_before = machine_ticks()
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop_event.set()
        self.thread.join(5)
        after = self.cpu()
        self.cpu_used = {name: after[name] - self.cpu_before.get(name, 0.0) for name in after}
        busy, total = machine_ticks()
        self.machine_busy = (busy - self.ticks_before[0]) / max(1, total - self.ticks_before[1])


def safe_ticks(pid: int) -> float:
    try:
        return procstat.ticks_seconds(pid)
    except OSError:
        return 0.0


# --- the database check ----------------------------------------------------------------------------------


def check_rows(database_url: str, conversations: list[Conversation]) -> list[str]:
    """Every session, message, tool call and usage row the streams reported, exactly once and in the
    conversation's scope; the problems found (empty when all is well)."""
    import psycopg

    expected = {c.session_id: c for c in conversations if c.session_id}
    ids = list(expected)
    problems: list[str] = []
    with psycopg.connect(database_url) as connection:
        sessions = connection.execute("SELECT id::text, scope FROM agents_session WHERE id::text = ANY(%s)", (ids,))
        session_rows = Counter((row[0], row[1]) for row in sessions.fetchall())
        messages = connection.execute(
            "SELECT session_id::text, scope, role, tool_calls, interrupted FROM agents_message "
            "WHERE session_id::text = ANY(%s)",
            (ids,),
        ).fetchall()
        usage = connection.execute(
            "SELECT session_id::text, scope, message_id FROM agents_usagerecord WHERE session_id::text = ANY(%s)",
            (ids,),
        ).fetchall()
    by_session_messages: dict[str, list[tuple[Any, ...]]] = {}
    for row in messages:
        by_session_messages.setdefault(row[0], []).append(row)
    by_session_usage: dict[str, list[tuple[Any, ...]]] = {}
    for row in usage:
        by_session_usage.setdefault(row[0], []).append(row)
    for session_id, conversation in expected.items():
        if session_rows.get((session_id, conversation.scope)) != 1:
            problems.append(f"session {session_id}: not exactly once in scope {conversation.scope}")
        done = [m for m in conversation.messages if m.done is not None]
        rows = by_session_messages.get(session_id, [])
        want_messages = sum(1 + m.usage_events for m in done)  # the user's, and one per model call
        if len(rows) != want_messages:
            problems.append(f"session {session_id}: {len(rows)} messages, streams reported {want_messages}")
        if any(row[1] != conversation.scope for row in rows):
            problems.append(f"session {session_id}: a message in another scope")
        if any(row[4] for row in rows):
            problems.append(f"session {session_id}: an interrupted message")
        saved_tools = Counter(call["tool_id"] for row in rows for call in row[3] or [])
        streamed_tools = Counter(tool_id for m in done for tool_id in m.tool_ids)
        if saved_tools != streamed_tools:
            problems.append(f"session {session_id}: tool calls {dict(saved_tools)} != streamed {dict(streamed_tools)}")
        usage_rows = by_session_usage.get(session_id, [])
        if len(usage_rows) != sum(m.usage_events for m in done) or any(r[1] != conversation.scope for r in usage_rows):
            problems.append(f"session {session_id}: {len(usage_rows)} usage rows, or one in another scope")
        if len({r[2] for r in usage_rows}) != len(usage_rows):
            problems.append(f"session {session_id}: two usage rows for one message")
    return problems


# --- py-spy --------------------------------------------------------------------------------------------


def start_profile(cluster: Cluster, seconds: float) -> tuple[subprocess.Popen[bytes], Path]:
    """py-spy sampling worker 0 (all threads, idle ones left out) for the first `seconds` of a run."""
    output = cluster.run_dir / "worker-0.pyspy.txt"
    spy = Path(sys.executable).with_name("py-spy")
    command = [str(spy), "record", "--pid", str(cluster.workers[0].process.pid), "--duration", str(int(seconds))]
    command += ["--rate", "100", "--format", "raw", "--output", str(output), "--nonblocking"]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), output


def summarise_profile(process: subprocess.Popen[bytes], output: Path) -> str:
    """The functions worker 0 spent its samples in (own time), and the share under a few callers."""
    process.wait(120)
    try:
        lines = output.read_text().splitlines()
    except OSError:
        return "  py-spy: no profile (is py-spy installed, may it ptrace the worker?)"
    own: Counter[str] = Counter()
    under: Counter[str] = Counter()
    total = 0
    for line in lines:
        stack, _, count = line.rpartition(" ")
        samples = int(count)
        frames = stack.split(";")
        total += samples
        own[frames[-1].split(" (")[0]] += samples
        for marker in PROFILE_MARKERS:
            if any(marker in frame for frame in frames):
                under[marker] += samples
    if not total:
        return "  py-spy: no samples"
    top = ", ".join(f"{name} {count / total:.0%}" for name, count in own.most_common(8))
    inside = ", ".join(f"{marker} {under[marker] / total:.0%}" for marker in PROFILE_MARKERS)
    return f"  py-spy worker 0 ({total} samples): own time {top}\n  under: {inside}"


# Where a worker's time goes, by the modules its samples pass through.
PROFILE_MARKERS = ("psycopg", "channels_redis", "django/db", "agents/", "twisted", "daphne", "json")


# --- running it ------------------------------------------------------------------------------------------


def run_once(
    label: str,
    cluster: Cluster,
    database_url: str,
    redis_url: str,
    secret: str,
    n: int,
    scopes: int,
    uds: str | None,
    profile_seconds: float = 0,
) -> tuple[Run, list[str]]:
    base_url = cluster.base_url if uds is None else "http://127.0.0.1"
    tag = f"{label}-{n}-{secrets.token_hex(3)}"
    profiler = start_profile(cluster, profile_seconds) if profile_seconds else None
    with Sampler(cluster, database_url, redis_url) as sampler:
        started = time.perf_counter()
        conversations = asyncio.run(drive(base_url, uds, secret, n, scopes, tag))
        seconds = time.perf_counter() - started
    if profiler is not None:
        print(summarise_profile(*profiler), flush=True)
    run = Run(
        label=label,
        n=n,
        seconds=seconds,
        conversations=conversations,
        cpu=sampler.cpu_used,
        peak_connections=sampler.peak_connections,
        peak_active=sampler.peak_active,
        machine_busy=sampler.machine_busy,
        mean_states={state: count / max(1, sampler.samples) for state, count in sampler.state_totals.items()},
    )
    return run, check_rows(database_url, conversations)


def describe(run: Run, problems: list[str]) -> str:
    errors = Counter(m.error.split(":")[0] for m in run.messages if m.error)
    cpu = ", ".join(f"{name} {seconds:.1f}" for name, seconds in run.cpu.items())
    cores = os.cpu_count() or 1
    states = ", ".join(f"{count:.1f} {state}" for state, count in sorted(run.mean_states.items()))
    ours, machine = sum(run.cpu.values()), run.machine_busy * cores * run.seconds
    lines = [
        f"  {run.label:<10} {len(run.messages)} messages in {run.seconds:.1f} s: {run.throughput:.1f} msg/s, "
        f"{run.errors} errors{' ' + str(dict(errors)) if errors else ''}",
        f"             first event p50/p95/p99 {ms(run, 'first_event')}; done p50/p95/p99 {ms(run, 'done')}",
        f"             CPU s: {cpu}; machine busy {run.machine_busy:.0%} of {cores} cores, "
        f"{ours:.0f} of its {machine:.0f} CPU-s were this run's",
        f"             database connections: peak {run.peak_connections} open, {run.peak_active} busy; mean {states}",
        f"             rows checked: {'all present once, in scope' if not problems else f'{len(problems)} PROBLEMS'}",
    ]
    lines += [f"               {problem}" for problem in problems[:5]]
    return "\n".join(lines)


def ms(run: Run, attribute: str) -> str:
    return "/".join(f"{run.percentile(attribute, q) * 1000:.0f}" for q in (50, 95, 99)) + " ms"


def table(pairs: list[tuple[Run, Run | None]]) -> str:
    head = "| N | msg/s (cluster / one worker) | errors | first event p50/p95/p99 | done p50/p95/p99 | DB conns peak |"
    lines = [head, "|---|---|---|---|---|---|"]
    for cluster_run, single in pairs:
        ratio = f" / {single.throughput:.0f} = {cluster_run.throughput / single.throughput:.2f}x" if single else ""
        lines.append(
            f"| {cluster_run.n} | {cluster_run.throughput:.0f}{ratio} | {cluster_run.errors}"
            f"{f' / {single.errors}' if single else ''} | {ms(cluster_run, 'first_event')} | {ms(cluster_run, 'done')} "
            f"| {cluster_run.peak_connections} |"
        )
    return "\n".join(lines)


def deployment_env(database_url: str, redis_url: str, secret: str, port: int, **extra: str) -> dict[str, str]:
    """The workers' environment: production settings (DEBUG off), tokens signed with `secret`, the finance API
    the tool calls reach served by the deployment itself on `port`, then `extra`."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "amodal_site.settings",
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(40),
        "AMODAL_CREDENTIALS_KEY": Fernet.generate_key().decode(),
        "AMODAL_JWT_SECRET": secret,
        "AMODAL_AUTH": "token",
        "AMODAL_DEMO_API": "1",
        "FINANCE_API_URL": f"http://127.0.0.1:{port}/demo/finance-api",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", default="50,200,500,1000", help="concurrent conversations, comma-separated")
    parser.add_argument("--scopes", type=int, default=100, help="scopes the conversations are spread over")
    parser.add_argument("--workers", type=int, default=2, help="daphne workers behind nginx")
    parser.add_argument("--no-baseline", action="store_true", help="skip the one-worker runs")
    parser.add_argument("--pool-size", type=int, default=20, help="each worker's AMODAL_DB_POOL_SIZE")
    parser.add_argument(
        "--profile", type=float, default=0, metavar="SECONDS", help="py-spy worker 0 in the largest N's cluster run"
    )
    args = parser.parse_args(argv)
    sizes = [int(value) for value in args.n.split(",")]

    if find_nginx() is None:
        print("benchmarks.load: nginx is not installed (apt-get install nginx; `make services`)", file=sys.stderr)
        return 2
    admin_url = os.environ.get("DATABASE_URL") or DEFAULT_PG
    admin_url = admin_url.rsplit("/", 1)[0] + "/postgres"
    redis_url = os.environ.get("REDIS_URL") or DEFAULT_REDIS
    secret = secrets.token_urlsafe(32)
    port = free_port()
    with fresh_postgres(admin_url) as database_url:
        env = deployment_env(database_url, redis_url, secret, port, AMODAL_DB_POOL_SIZE=str(args.pool_size))
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], env=env, check=True, capture_output=True)
        with Cluster(env, workers=args.workers, port=port, access_log=False) as cluster:
            print(
                f"benchmarks.load: nginx + {args.workers} daphne workers (pool {args.pool_size} each), "
                f"{args.scopes} scopes, {os.cpu_count()} cores shared with the client and everything else",
                flush=True,
            )
            pairs: list[tuple[Run, Run | None]] = []
            for n in sizes:
                print(f"N = {n} conversations x 2 messages", flush=True)
                profile = args.profile if n == max(sizes) else 0
                cluster_run, problems = run_once(
                    "cluster", cluster, database_url, redis_url, secret, n, args.scopes, None, profile
                )
                print(describe(cluster_run, problems), flush=True)
                single = None
                if not args.no_baseline:
                    uds = str(cluster.workers[0].socket_path)
                    single, problems = run_once(
                        "one worker", cluster, database_url, redis_url, secret, n, args.scopes, uds
                    )
                    print(describe(single, problems), flush=True)
                pairs.append((cluster_run, single))
            print("\n" + table(pairs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
