"""query_store against a plain primary-key lookup, on PostgreSQL, in one run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/amodal .venv/bin/python -m benchmarks.store_query
    DATABASE_URL=postgres://... .venv/bin/python -m benchmarks.store_query --docs 100000 --repeat 300

DATABASE_URL names the PostgreSQL server (its database is not touched): the script creates its own
database there (`amodal_storebench_<pid>_<random>`), migrates it, and drops it at the end, even on error.

It bulk-inserts `--docs` documents of one store into one scope (plus 10% more spread over 20 other scopes)
with one INSERT ... SELECT generate_series, runs ANALYZE, then times, `--repeat` times each with a random
account every time:

- `pk`        StoreDocument.objects.get(pk=...) in the scope: the baseline, one unique-index probe.
- `key`       query_store {"store", "key"}: the unique (scope, store, key) index.
- `filter`    query_store {"store", "filter": {"account": A}, "sort": "-amount", "limit": 20}: the GIN
              index on data (`data @> '{"account": A}'`, about docs/500 matches), then a top-20 sort.
- `filter+tool` the same through the real `query_store` tool (its thread hop and JSON result included).

Each row prints the median, p95 and mean in milliseconds and the ratio of its median to `pk`'s. The
EXPLAIN of the filter query is printed too, so the plan behind the figures is visible.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from benchmarks.server import fresh_postgres

ACCOUNTS = 500
OTHER_SCOPES = 20
SCOPE = "bench-household"
STORE = {
    "name": "transactions",
    "description": "Booked transactions (benchmark).",
    "entity": {
        "name": "Transaction",
        "key": "{id}",
        "schema": {
            "id": {"type": "string"},
            "account": {"type": "string"},
            "kind": {"type": "enum", "values": ["income", "expense", "transfer"]},
            "amount": {"type": "number"},
            "booked_at": {"type": "datetime"},
            "note": {"type": "string", "nullable": True},
        },
    },
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=100_000, help="Documents in the measured scope.")
    parser.add_argument("--repeat", type=int, default=200, help="Timed calls per operation.")
    args = parser.parse_args()
    server_url = os.environ.get("DATABASE_URL", "")
    if urlsplit(server_url).scheme not in {"postgres", "postgresql", "pgsql"}:
        sys.stderr.write("benchmarks.store_query needs DATABASE_URL=postgres://... (a PostgreSQL server).\n")
        return 2
    with fresh_database(server_url) as database_url, tempfile.TemporaryDirectory() as agent_dir:
        configure_django(database_url, Path(agent_dir))
        try:
            run(args.docs, args.repeat)
        finally:
            from django.db import connections

            connections.close_all()
    return 0


def fresh_database(server_url: str):
    """A new database on the server of `server_url`, dropped at the end (see benchmarks.server)."""
    parts = urlsplit(server_url)
    return fresh_postgres(urlunsplit(parts._replace(path="/postgres")))


def configure_django(database_url: str, agent_dir: Path) -> None:
    (agent_dir / "stores").mkdir()
    (agent_dir / "amodal.json").write_text(
        json.dumps(
            {
                "name": "store-bench",
                "version": "1",
                "models": {"main": {"provider": "local"}},
            }
        )
    )
    (agent_dir / "stores" / "transactions.json").write_text(json.dumps(STORE))
    os.environ.update(
        {
            "DATABASE_URL": database_url,
            "AMODAL_AGENT_DIR": str(agent_dir),
            "DJANGO_SETTINGS_MODULE": "amodal_site.settings",
            "DEBUG": "1",
            "AMODAL_DEMO_API": "0",
        }
    )
    os.environ.pop("REDIS_URL", None)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def insert_documents(docs: int) -> float:
    from django.db import connection

    total = docs + docs // 10
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO stores_storedocument (scope, store, key, data, version, created_at, updated_at)
            SELECT CASE WHEN i <= %(docs)s THEN %(scope)s ELSE 'other-' || (i %% %(others)s) END,
                   'transactions', 't' || i,
                   jsonb_build_object(
                       'id', 't' || i,
                       'account', 'acc-' || (i %% %(accounts)s),
                       'kind', (ARRAY['income', 'expense', 'transfer'])[i %% 3 + 1],
                       'amount', ((i * 7919) %% 100000) / 100.0,
                       'booked_at', to_char(timestamp '2024-01-01' + i * interval '1 minute',
                                            'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                       'note', CASE WHEN i %% 4 = 0 THEN NULL ELSE 'note ' || i END),
                   1, now(), now()
            FROM generate_series(1, %(total)s) AS i
            """,
            {"docs": docs, "scope": SCOPE, "others": OTHER_SCOPES, "accounts": ACCOUNTS, "total": total},
        )
        cursor.execute("ANALYZE stores_storedocument")
    return time.perf_counter() - started


def timed(repeat: int, call: Callable[[int], object]) -> list[float]:
    for warmup in range(min(10, repeat)):
        call(warmup)
    samples = []
    for index in range(repeat):
        started = time.perf_counter()
        call(index)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def run(docs: int, repeat: int) -> None:
    from django.db import connection

    from core.agent_folder import current_agent
    from core.tools import ToolContext, tools_for_agent
    from scoping.context import scope, scoped_db
    from stores import selectors
    from stores.definitions import stores_of
    from stores.models import StoreDocument
    from stores.tools import query

    agent = current_agent()
    definition = stores_of(agent)["transactions"]
    seconds = insert_documents(docs)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), pg_size_pretty(pg_total_relation_size('stores_storedocument')) FROM stores_storedocument"
        )
        rows, size = cursor.fetchone()
    major = connection.pg_version // 10000  # type: ignore[attr-defined]  # PostgreSQL's
    print(
        f"PostgreSQL {major}; {rows} documents ({docs} in the measured scope), "
        f"table with indexes {size}; inserted and analysed in {seconds:.1f} s"
    )

    rng = random.Random(7)
    accounts = [f"acc-{rng.randrange(ACCOUNTS)}" for _ in range(repeat + 10)]
    keys = [f"t{rng.randrange(1, docs + 1)}" for _ in range(repeat + 10)]
    filter_arguments = [
        {"store": "transactions", "filter": {"account": account}, "sort": "-amount", "limit": 20}
        for account in accounts
    ]
    tool = tools_for_agent(agent)["query_store"]
    context = ToolContext(agent=agent, scope_id=SCOPE, scope_context={}, session_id="bench", db=scoped_db(SCOPE))

    with scope(SCOPE):
        pks = list(StoreDocument.objects.filter(key__in=keys).values_list("pk", flat=True))
        pks = (pks * (len(keys) // max(len(pks), 1) + 1))[: len(keys)]
        check = query(definition, filter_arguments[0])
        assert len(check["documents"]) == 20 and check["has_more"], check
        amounts = [d["data"]["amount"] for d in check["documents"]]
        assert amounts == sorted(amounts, reverse=True)
        plan_queryset = selectors.documents_query(
            definition=definition, filters={"account": accounts[0]}, sort="-amount"
        )[:21]
        sql, params = plan_queryset.query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) " + sql, params)
            plan = "\n".join("    " + row[0] for row in cursor.fetchall())

        results = {
            "pk": timed(repeat, lambda i: StoreDocument.objects.get(pk=pks[i])),
            "key": timed(repeat, lambda i: query(definition, {"store": "transactions", "key": keys[i]})),
            "filter": timed(repeat, lambda i: query(definition, filter_arguments[i])),
        }

    async def tool_calls() -> list[float]:
        samples = []
        for index in range(repeat + 10):
            started = time.perf_counter()
            result = await tool.run(context, filter_arguments[index])
            if index >= 10:
                samples.append((time.perf_counter() - started) * 1000)
            assert not result.is_error, result.content
        return samples

    results["filter+tool"] = asyncio.run(tool_calls())

    print(f"\nEXPLAIN ANALYZE of the filter query (account = {accounts[0]}, sort -amount, limit 20):\n{plan}\n")
    baseline = statistics.median(results["pk"])
    print(f"{'operation':<14}{'median ms':>11}{'p95 ms':>10}{'mean ms':>10}{'x pk':>8}")
    for name, samples in results.items():
        ordered = sorted(samples)
        p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
        median = statistics.median(samples)
        print(f"{name:<14}{median:>11.3f}{p95:>10.3f}{statistics.fmean(samples):>10.3f}{median / baseline:>8.1f}")
    print(
        f"\n{repeat} calls each; query_store (filter + sort) / primary-key lookup = "
        f"{statistics.median(results['filter']) / baseline:.1f}x (median)"
    )


if __name__ == "__main__":
    sys.exit(main())
