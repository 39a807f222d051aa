"""PostgreSQL only: concurrent writes to one document lose nothing, and query_store over 100 000
documents of one scope is answered from indexes (the GIN index on data for filters, the unique
(scope, store, key) index for a key)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections

from scoping.context import scope
from stores import selectors, services
from stores.definitions import stores_of
from stores.models import StoreDocument, StoreDocumentVersion

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="row locks, concurrent connections and EXPLAIN plans are PostgreSQL's; "
        "run with DATABASE_URL=postgres://...",
    ),
]

WRITERS = 20


def run_concurrently(count: int, work) -> tuple[list, list[BaseException]]:
    """Run work(i) in `count` threads released together; each thread has (and closes) its own connection."""
    barrier = threading.Barrier(count)
    results: list = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def target(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            outcome = work(index)
            with lock:
                results.append(outcome)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            with lock:
                errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results, errors


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_writes_to_one_document_end_at_version_21(store_agent):
    prefs = stores_of(store_agent)["preferences"]  # keeps 5 previous versions
    with scope("tenant-a"):
        services.put_document(definition=prefs, document={"key": "k", "value": "initial"})

    def write(index: int):
        with scope("tenant-a"):
            result = services.put_document(definition=prefs, document={"key": "k", "value": f"writer-{index}"})
        return result.document.version, f"writer-{index}"

    results, errors = run_concurrently(WRITERS, write)
    assert errors == []
    assert sorted(version for version, _ in results) == list(range(2, WRITERS + 2))  # every write got its own
    by_version = dict(results)
    with scope("tenant-a"):
        document = StoreDocument.objects.get(key="k")
        kept = list(StoreDocumentVersion.objects.filter(document=document).order_by("version"))
    assert document.version == WRITERS + 1
    assert document.data["value"] == by_version[WRITERS + 1]  # the last write is the document
    # history keeps only the last 5 previous versions, each the data that version was written with
    assert [v.version for v in kept] == [16, 17, 18, 19, 20]
    assert [v.data["value"] for v in kept] == [by_version[n] for n in range(16, 21)]


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_creates_of_one_key_make_one_document(store_agent):
    prefs = stores_of(store_agent)["preferences"]

    def write(index: int):
        with scope("tenant-a"):
            result = services.put_document(definition=prefs, document={"key": "new", "value": f"w{index}"})
        return result.created, result.document.version

    results, errors = run_concurrently(WRITERS, write)
    assert errors == []
    assert sum(created for created, _ in results) == 1
    assert sorted(version for _, version in results) == list(range(1, WRITERS + 1))
    assert StoreDocument.all_scopes.get(key="new").version == WRITERS


def explain(queryset) -> str:
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


@pytest.mark.django_db
def test_query_store_over_100k_documents_uses_indexes(store_agent):
    with connection.cursor() as cursor:
        cursor.execute("""
            INSERT INTO stores_storedocument (scope, store, key, data, version, created_at, updated_at)
            SELECT CASE WHEN i <= 100000 THEN 'big-tenant' ELSE 'other-' || (i % 50) END,
                   'items', 'item-s' || i,
                   jsonb_build_object(
                       'sku', 's' || i, 'price', i % 1000, 'in_stock', i % 2 = 0,
                       'added', to_char(timestamp '2024-01-01' + i * interval '1 minute',
                                        'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                       'kind', (ARRAY['tool', 'toy', 'food'])[i % 3 + 1], 'tags', '[]'::jsonb,
                       'dims', '{"w": 1, "h": 1}'::jsonb, 'note', 'batch-' || (i % 500)),
                   1, now() - i * interval '1 second', now() - i * interval '1 second'
            FROM generate_series(1, 110000) AS i
        """)
        cursor.execute("ANALYZE stores_storedocument")
    items = stores_of(store_agent)["items"]
    with scope("big-tenant"):
        assert StoreDocument.objects.count() == 100_000
        filtered = selectors.documents_query(
            definition=items, filters={"note": "batch-17", "in_stock": False}, sort="-price"
        )[:21]
        by_key = StoreDocument.objects.filter(store="items", key="item-s4242")
        page = selectors.query_documents(
            definition=items, filters={"note": "batch-17", "in_stock": False}, sort="-price", limit=20
        )
        document = selectors.get_document(definition=items, key="item-s4242")

    plan = explain(filtered)
    assert "storedoc_data_gin" in plan, plan
    assert "Seq Scan on stores_storedocument" not in plan, plan
    plan = explain(by_key)
    assert "Index Scan" in plan and "storedoc_scope_store_key" in plan, plan
    assert "Seq Scan" not in plan, plan

    assert len(page.documents) == 20 and page.has_more is True
    prices = [d.data["price"] for d in page.documents]
    assert prices == sorted(prices, reverse=True)
    assert all(d.data["note"] == "batch-17" and d.data["in_stock"] is False for d in page.documents)
    assert document is not None and document.data["sku"] == "s4242"
