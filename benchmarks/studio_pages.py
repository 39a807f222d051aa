"""Studio page benchmark: server time and query count of each Studio page at a large data size.

Run (one command; PostgreSQL on 127.0.0.1, a database of its own that is dropped at the end):

    .venv/bin/python -m benchmarks.studio_pages                         # 1,000,000 usage rows, 200,000 sessions
    .venv/bin/python -m benchmarks.studio_pages --usage-rows 100000 --sessions 20000 --scopes 1000   # quicker
    .venv/bin/python -m benchmarks.studio_pages --existing postgres://postgres@127.0.0.1:5432/mydb  # no setup

What it does:
1. Creates `amodal_studio_bench_<pid>_<hex>` on the server of `DATABASE_URL` (or
   postgres://postgres@127.0.0.1:5432), migrates it and fills it with
   `manage.py generate_demo_data --scopes N --sessions M --usage-rows K --days D` (timed).
2. Renders each Studio page `--repeat` times (after one warm-up) through Django's test client as a
   logged-in staff user, in this process: the time is the server's (URL routing, views, queries,
   templates), without a network or an HTTP server. One extra render per page counts its queries.
3. Prints, per page, mean and p95 milliseconds, the query count, the response size, and the ratio of the
   mean to the baseline: the Django admin index page (same login, same middleware, almost no queries).
4. Drops the database (unless --keep).

The machine's other load shows in the figures: compare runs on the same machine.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from urllib.parse import quote, urlsplit, urlunsplit

DEFAULT_SERVER = "postgres://postgres@127.0.0.1:5432"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--usage-rows", type=int, default=1_000_000)
    parser.add_argument("--sessions", type=int, default=200_000)
    parser.add_argument("--scopes", type=int, default=5_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=10, help="Renders per page after a warm-up (default 10).")
    parser.add_argument(
        "--existing",
        metavar="DATABASE_URL",
        help="Benchmark an existing, already filled database (nothing created or dropped).",
    )
    parser.add_argument("--keep", action="store_true", help="Keep the benchmark database at the end.")
    parser.add_argument(
        "--only", metavar="TEXT", default="", help="Measure only the pages whose name contains TEXT (and the baseline)."
    )
    return parser.parse_args(argv)


def server_url() -> str:
    url = os.environ.get("DATABASE_URL", "")
    if urlsplit(url).scheme not in {"postgres", "postgresql", "pgsql"}:
        url = DEFAULT_SERVER
    return url


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


@contextmanager
def bench_database(args: argparse.Namespace) -> Iterator[tuple[str, bool]]:
    """(database URL, whether to fill it): a fresh database, or the one given with --existing."""
    if args.existing:
        yield args.existing, False
        return
    import psycopg

    admin_url = with_database(server_url(), "postgres")
    name = f"amodal_studio_bench_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield with_database(server_url(), name), True
    finally:
        if args.keep:
            print(f"kept database {name}")
        else:
            from django.db import connections

            connections.close_all()
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def setup_django(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ["DJANGO_SETTINGS_MODULE"] = "amodal_site.settings"
    os.environ.setdefault("DEBUG", "1")
    os.environ.setdefault("FINANCE_API_URL", "http://127.0.0.1:9/finance-api")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()


def fill(args: argparse.Namespace) -> float:
    from django.core.management import call_command

    started = time.perf_counter()
    call_command("migrate", "--noinput", verbosity=0)
    migrated = time.perf_counter()
    call_command(
        "generate_demo_data",
        "--scopes",
        str(args.scopes),
        "--sessions",
        str(args.sessions),
        "--usage-rows",
        str(args.usage_rows),
        "--days",
        str(args.days),
        "--seed",
        str(args.seed),
    )
    generated = time.perf_counter()
    print(f"migrate {migrated - started:.1f} s, generate_demo_data {generated - migrated:.1f} s")
    return generated - migrated


def pages() -> dict[str, str]:
    """The pages to render, chosen from the data: the busiest scope, a median one, the longest session."""
    from django.db.models import Count
    from django.urls import reverse
    from django.utils import timezone

    from agents.models import Session
    from studio import selectors

    per_scope = list(
        Session.all_scopes.order_by()
        .values("scope")
        .annotate(n=Count("pk"))
        .order_by("-n")
        .values_list("scope", flat=True)
    )
    busiest = per_scope[0]
    median = per_scope[len(per_scope) // 2]
    longest = (
        Session.all_scopes.filter(message_count__lte=selectors.REPLAY_PAGE_MESSAGES).order_by("-message_count").first()
    )
    typical = Session.all_scopes.filter(message_count__gte=6).order_by("-updated_at").first() or longest
    assert longest is not None and typical is not None, "the generated data has sessions"
    sessions = reverse("studio:sessions")
    usage = reverse("studio:usage")
    today = timezone.localdate()
    year = f"from={today - timedelta(days=364)}&to={today}"
    rare = rare_word()
    combined = "status=idle&model=claude-haiku-4-5&cost_min=0.01&latency_max=5000&tag=budget&range=90d&sort=-cost"
    return {
        "baseline: admin index": reverse("admin:index"),
        "sessions": sessions,
        "sessions, busiest scope chip": f"{sessions}?scope={quote(busiest, safe='')}",
        "sessions, 7d + model": f"{sessions}?range=7d&model=claude-haiku-4-5",
        "sessions, page 3": f"{sessions}?page=3",
        "sessions, page 50": f"{sessions}?page=50",
        "sessions, scope search": f"{sessions}?find=household-0",
        "sessions, sort by cost": f"{sessions}?sort=-cost",
        "sessions, busiest scope by cost": f"{sessions}?scope={quote(busiest, safe='')}&sort=-cost",
        f"sessions, search common '{COMMON_WORD}'": f"{sessions}?q={COMMON_WORD}",
        "sessions, search common, page 5": f"{sessions}?q={COMMON_WORD}&page=5",
        "sessions, search common, by cost": f"{sessions}?q={COMMON_WORD}&sort=-cost",
        "sessions, search common, busiest scope": (f"{sessions}?q={COMMON_WORD}&scope={quote(busiest, safe='')}"),
        f"sessions, search rare '{rare}'": f"{sessions}?q={rare}",
        "sessions, filters combined": f"{sessions}?{combined}",
        "sessions CSV, busiest scope": f"{reverse('studio:sessions_csv')}?scope={quote(busiest, safe='')}",
        f"replay, {typical.message_count} messages": reverse("studio:replay", args=[typical.pk]),
        f"replay, {longest.message_count} messages": reverse("studio:replay", args=[longest.pk]),
        "usage, 30d": usage,
        "usage, 7d": f"{usage}?range=7d",
        "usage, 90d": f"{usage}?range=90d",
        "usage, 30d, busiest scope": f"{usage}?scope={quote(busiest, safe='')}",
        "usage, 90d, median scope": f"{usage}?range=90d&scope={quote(median, safe='')}",
        "usage, 365d": f"{usage}?{year}",
        "usage, 365d, busiest scope": f"{usage}?{year}&scope={quote(busiest, safe='')}",
        "usage, 365d, median scope": f"{usage}?{year}&scope={quote(median, safe='')}",
        **{
            f"usage CSV {panel}, 365d": f"{reverse('studio:usage_csv', args=[panel])}?{year}"
            for panel in ("totals", "scopes", "by-model", "by-deploy", "daily", "top-sessions")
        },
        "usage CSV top-sessions, 365d, busiest": (
            f"{reverse('studio:usage_csv', args=['top-sessions'])}?{year}&scope={quote(busiest, safe='')}"
        ),
        "scopes": reverse("studio:scopes"),
        "scopes, search": f"{reverse('studio:scopes')}?q=org_",
        "scope overview, busiest": f"{reverse('studio:scope')}?scope={quote(busiest, safe='')}",
        "scope memory, busiest": f"{reverse('studio:scope_memory')}?scope={quote(busiest, safe='')}",
        "scope stores, busiest": f"{reverse('studio:scope_stores')}?scope={quote(busiest, safe='')}",
    }


COMMON_WORD = "budget"  # in about one message in ten of the demo data (after stemming)


def rare_word() -> str:
    """A word of one message only: the first amount ("123.45") of the newest assistant message with one."""
    import re

    from agents.models import Message

    for text in Message.all_scopes.filter(role="assistant").order_by("-id").values_list("text", flat=True)[:200]:
        match = re.search(r"\b\d{2,}\.\d\d\b", text)
        if match:
            return match.group(0)
    raise SystemExit("no assistant message with an amount: is the database filled?")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))]


def body(response) -> bytes:
    """The whole response: a streamed one (a CSV download) is read to its end, as a client would."""
    return b"".join(response.streaming_content) if response.streaming else response.content


def measure(repeat: int, only: str = "") -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    user, _ = get_user_model().objects.get_or_create(
        username="studio-bench", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client()
    client.force_login(user)
    results = []
    for name, url in pages().items():
        if only and only not in name and not name.startswith("baseline"):
            continue
        response = client.get(url)  # warm-up (and a check)
        if response.status_code != 200:
            raise SystemExit(f"{name}: {url} answered {response.status_code}")
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            body(client.get(url))
            times.append((time.perf_counter() - started) * 1000)
        with CaptureQueriesContext(connection) as queries:
            size = len(body(client.get(url)))
        results.append((name, statistics.mean(times), percentile(times, 0.95), len(queries), size))
        print(f"  measured {name}", file=sys.stderr)
    baseline = results[0][1]
    print()
    print(f"{'page':<40} {'mean ms':>9} {'p95 ms':>9} {'queries':>8} {'KiB':>7} {'x baseline':>11}")
    for name, mean, p95, count, size in results:
        print(f"{name:<40} {mean:>9.1f} {p95:>9.1f} {count:>8} {size / 1024:>7.1f} {mean / baseline:>11.1f}")


def table_sizes() -> None:
    from django.db import connection

    from agents.models import Message, Session, UsageRecord
    from scoping.models import Scope

    counts = {model.__name__: model._base_manager.count() for model in (Scope, Session, Message, UsageRecord)}
    line = ", ".join(f"{count:,} {name}" for name, count in counts.items())
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_size_pretty(pg_database_size(current_database()))")
            line += f"; database {cursor.fetchone()[0]}"
    print(f"data: {line}")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    with bench_database(args) as (database_url, needs_data):
        setup_django(database_url)
        from django.db import connection

        print(f"database: {connection.vendor} {connection.settings_dict['NAME']}, Python {sys.version.split()[0]}")
        if needs_data:
            fill(args)
        table_sizes()
        print(f"each page: 1 warm-up, then {args.repeat} timed renders through django.test.Client (staff user)")
        measure(args.repeat, args.only)


if __name__ == "__main__":
    main()
