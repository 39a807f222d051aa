"""export_scope and erase_scope on a scope of about 100,000 rows, on PostgreSQL, against plain baselines measured
in the same run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/amodal .venv/bin/python -m benchmarks.scope_lifecycle
    DATABASE_URL=postgres://... .venv/bin/python -m benchmarks.scope_lifecycle --sessions 20000

DATABASE_URL names the PostgreSQL server (its database is not touched): the script creates its own database
there, migrates it, and drops it at the end, even on error (benchmarks.server.fresh_postgres).

Each measured scope gets, per session: 5 messages (every other assistant message with a tool call), 2 usage
rows, its transcript, a store document and half a document version (`--sessions` 10,000: 10,000 sessions,
50,000 messages, 20,000 usage rows, 10,000 transcripts, 10,000 documents, 5,000 versions = 105,000 rows).
Two such scopes, a scope a tenth of the size and 20 other small scopes are inserted with INSERT ... SELECT
generate_series (the usage rollup's triggers run as for any insert), then ANALYZE. Then:

- `walk`     the baseline of the export: the same rows read with the ORM (values_list().iterator(), the same
             chunked cursor), without turning them into JSON;
- `export`   scoping.services.export_scope of the large scope, its JSON Lines counted and dropped;
- `export small` the same of the scope a tenth of the size: its peak memory against the large one's shows that
             memory does not grow with the rows;
- `delete`   the baseline of the erase: the second large scope removed with one statement per table in one
             transaction (the usage rows moved to the anonymous id in one UPDATE), as a one-off script would;
- `erase`    scoping.services.erase_scope of the first large scope (1,000-row batches, a transaction each).

Each prints its time, ms per 1,000 rows, and its peak Python memory (tracemalloc, in a second run for the
export, as tracing slows it) and the growth of the process's peak RSS; then the ratios export / walk and
erase / delete. The usage rollup is checked against the raw aggregate after both erasures.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from benchmarks.server import fresh_postgres

LARGE, BASELINE, SMALL = "bench-tenant-large", "bench-tenant-baseline", "bench-tenant-small"
OTHER_SCOPES = 20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=10_000, help="Sessions of each large scope (~10.5 rows each).")
    args = parser.parse_args()
    server_url = os.environ.get("DATABASE_URL", "")
    if urlsplit(server_url).scheme not in {"postgres", "postgresql", "pgsql"}:
        sys.stderr.write("benchmarks.scope_lifecycle needs DATABASE_URL=postgres://... (a PostgreSQL server).\n")
        return 2
    admin_url = urlunsplit(urlsplit(server_url)._replace(path="/postgres"))
    with fresh_postgres(admin_url) as database_url, tempfile.TemporaryDirectory() as agent_dir:
        configure_django(database_url, Path(agent_dir))
        try:
            run(args.sessions)
        finally:
            from django.db import connections

            connections.close_all()
    return 0


def configure_django(database_url: str, agent_dir: Path) -> None:
    (agent_dir / "amodal.json").write_text(
        '{"name": "lifecycle-bench", "version": "1", "models": {"main": {"provider": "local"}}}'
    )
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


SESSION_ID = "md5(%(scope)s || ':' || s)::uuid"


def insert_scope(scope_id: str, sessions: int) -> None:
    """`sessions` sessions of `scope_id` and everything that goes with them (see the module's docstring)."""
    from django.db import connection

    values: dict[str, str | int] = {"scope": scope_id, "sessions": sessions}
    statements = [
        f"""INSERT INTO agents_session (id, scope, deploy_id, title, tags, status, provider, model, user_sub,
                created_at, updated_at, message_count, input_tokens, output_tokens, cache_read_tokens,
                cache_write_tokens, cost_micros, unpriced_calls, model_calls, model_latency_ms, lock_token)
            SELECT {SESSION_ID}, %(scope)s, 'deploy-1', 'Session ' || s, '["billing"]', 'idle', 'anthropic',
                   'claude-haiku-4-5', 'user-' || (s %% 50), now() - s * interval '1 minute', now(), 5, 900, 300,
                   0, 0, 4200, 0, 2, 1600, ''
            FROM generate_series(1, %(sessions)s) AS s""",
        f"""INSERT INTO agents_sessiontranscript (session_id, scope, body, index, tokens)
            SELECT {SESSION_ID}, %(scope)s, repeat('[{{"role": "user"}}]', 20), '', 1200
            FROM generate_series(1, %(sessions)s) AS s""",
        f"""INSERT INTO agents_message (public_id, scope, session_id, seq, role, text, tool_calls, interrupted,
                error_code, context_dropped, created_at)
            SELECT md5(%(scope)s || ':' || s || ':' || m)::uuid, %(scope)s, {SESSION_ID}, m,
                   CASE WHEN m %% 2 = 0 THEN 'user' ELSE 'assistant' END,
                   'Message ' || m || ' of session ' || s || ': ' || repeat('lorem ipsum ', 12),
                   CASE WHEN m %% 4 = 1 THEN '[{{"tool_id": "toolu_1", "tool_name": "request", "parameters":
                        {{"path": "/transactions"}}, "status": "success", "result": {{"total": 42}},
                        "duration_ms": 30}}]'::jsonb ELSE '[]'::jsonb END,
                   false, '', 0, now() - s * interval '1 minute'
            FROM generate_series(1, %(sessions)s) AS s, generate_series(0, 4) AS m""",
        f"""INSERT INTO agents_usagerecord (scope, session_id, deploy_id, provider, model, input_tokens,
                output_tokens, cache_read_tokens, cache_write_tokens, latency_ms, cost_micros, created_at)
            SELECT %(scope)s, {SESSION_ID}, 'deploy-1', 'anthropic', 'claude-haiku-4-5', 450, 150, 0, 0,
                   700 + s %% 900, 2100, now() - (s * 2 + u) * interval '1 minute'
            FROM generate_series(1, %(sessions)s) AS s, generate_series(0, 1) AS u""",
        """INSERT INTO stores_storedocument (scope, store, key, data, version, created_at, updated_at)
            SELECT %(scope)s, 'preferences', 'pref-' || s,
                   jsonb_build_object('currency', 'EUR', 'note', 'preference ' || s), 1 + s %% 2, now(), now()
            FROM generate_series(1, %(sessions)s) AS s""",
        """INSERT INTO stores_storedocumentversion (scope, document_id, version, data, created_at)
            SELECT scope, id, 1, jsonb_build_object('currency', 'USD'), now()
            FROM stores_storedocument WHERE scope = %(scope)s AND version = 2""",
        """INSERT INTO scoping_scope (scope_id, label, metadata, first_seen_at, last_seen_at)
            VALUES (%(scope)s, 'Bench ' || %(scope)s, '{}', now(), now())""",
    ]
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement, values)


def peak_rss_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def measured(work: Callable[[], int], *, trace: bool) -> tuple[float, int, int, int]:
    """(seconds, what `work` returned, peak Python memory in bytes or 0, growth of the peak RSS in kB)."""
    rss_before = peak_rss_kb()
    if trace:
        tracemalloc.start()
    started = time.perf_counter()
    result = work()
    seconds = time.perf_counter() - started
    peak = 0
    if trace:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return seconds, result, peak, peak_rss_kb() - rss_before


def run(sessions: int) -> None:
    from django.db import connection, transaction

    from agents import usage_rollup
    from scoping.scope_data import EXPORT_CHUNK_ROWS, scope_data_kinds
    from scoping.services import erase_scope, erased_scope_id, export_scope

    started = time.perf_counter()
    for scope_id, count in ((LARGE, sessions), (BASELINE, sessions), (SMALL, sessions // 10)):
        insert_scope(scope_id, count)
    for number in range(OTHER_SCOPES):
        insert_scope(f"bench-other-{number}", max(1, sessions // 100))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    rows = {kind.name: kind.remaining(LARGE) for kind in scope_data_kinds() if kind.model is not None}
    total = sum(rows.values())
    major = connection.pg_version // 10000  # type: ignore[attr-defined]  # PostgreSQL's
    print(
        f"PostgreSQL {major}; the measured scope holds {total} rows "
        f"({', '.join(f'{name} {count}' for name, count in rows.items() if count)}); "
        f"3 such scopes (one a tenth of the size) and {OTHER_SCOPES} small ones inserted in "
        f"{time.perf_counter() - started:.1f} s"
    )

    def walk() -> int:
        walked = 0
        for kind in scope_data_kinds():
            for model in kind.tables():
                queryset = model._base_manager.filter(**{kind.scope_field: LARGE})
                for _ in queryset.values_list().iterator(chunk_size=EXPORT_CHUNK_ROWS):
                    walked += 1
        return walked

    def export(scope_id: str) -> Callable[[], int]:
        def work() -> int:
            lines = 0
            for chunk in export_scope(scope_id=scope_id, actor="benchmark"):
                lines += chunk.count("\n")
            return lines

        return work

    def delete_baseline() -> int:
        done = 0
        with transaction.atomic(), connection.cursor() as cursor:
            for kind in reversed(scope_data_kinds()):
                if kind.model is None:
                    continue
                table = kind.model._meta.db_table
                column = kind.model._meta.get_field(kind.scope_field).column  # type: ignore[union-attr]
                if table == "agents_usagerecord":
                    cursor.execute(
                        f"UPDATE {table} SET scope = %s, session_id = NULL, message_id = NULL WHERE scope = %s",  # noqa: S608
                        [erased_scope_id(BASELINE), BASELINE],
                    )
                else:
                    cursor.execute(f"DELETE FROM {table} WHERE {column} = %s", [BASELINE])  # noqa: S608
                done += cursor.rowcount
        return done

    def erase() -> int:
        return sum(erase_scope(scope_id=LARGE, actor="benchmark").values())

    results = {
        "walk": measured(walk, trace=False),
        "export": measured(export(LARGE), trace=False),
        "export small": measured(export(SMALL), trace=False),
    }
    peaks = {
        name: measured(work, trace=True)[2]
        for name, work in (("export", export(LARGE)), ("export small", export(SMALL)))
    }
    # Run once each, traced: their Python work is a statement per batch, so tracing adds little to their time.
    results["delete"] = measured(delete_baseline, trace=True)
    results["erase"] = measured(erase, trace=True)
    assert results["export"][1] > 0.95 * total, results["export"]
    assert usage_rollup.differences(connection) == [], "the usage rollup equals the raw aggregate"
    assert not any(kind.remaining(LARGE) or kind.remaining(BASELINE) for kind in scope_data_kinds())

    print(
        f"\n{'operation':<14}{'rows':>9}{'seconds':>10}{'ms / 1k rows':>14}{'peak Python MB':>16}{'RSS growth MB':>15}"
    )
    for name, (seconds, done, peak, rss_kb) in results.items():
        peak = peaks.get(name, peak)
        shown_peak = f"{peak / 1e6:.1f}" if peak else "-"
        print(f"{name:<14}{done:>9}{seconds:>10.2f}{seconds * 1e6 / done:>14.1f}{shown_peak:>16}{rss_kb / 1024:>15.1f}")
    print(
        f"\nexport / walk = {results['export'][0] / results['walk'][0]:.2f}x (time per row: "
        f"{results['export'][0] / results['export'][1] / (results['walk'][0] / results['walk'][1]):.2f}x); "
        f"erase / delete = {results['erase'][0] / results['delete'][0]:.2f}x; "
        f"export peak memory, {results['export'][1]} lines / {results['export small'][1]} lines = "
        f"{peaks['export'] / peaks['export small']:.2f}x"
    )


if __name__ == "__main__":
    sys.exit(main())
