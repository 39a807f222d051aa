"""Store services and selectors: upsert and versions, batches, TTL and the purge command, sorting and
filtering on the database at hand, shared partitions, the seed command and the admin."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from scoping.context import GLOBAL_SCOPE, NoActiveScope, scope
from stores import selectors, services
from stores.definitions import stores_of
from stores.documents import DocumentInvalid
from stores.errors import DocumentNotFound, SharedStoreReadOnly
from stores.models import StoreDocument, StoreDocumentVersion
from tests.stores.conftest import FINANCE_AGENT_DIR, item

pytestmark = pytest.mark.django_db


def expire(store: str, key: str, scope_id: str, seconds_ago: int = 1) -> None:
    StoreDocument.all_scopes.filter(scope=scope_id, store=store, key=key).update(
        expires_at=timezone.now() - timedelta(seconds=seconds_ago)
    )


def test_store_operations_need_an_active_scope(store_agent):
    items = stores_of(store_agent)["items"]
    with pytest.raises(NoActiveScope):
        services.put_document(definition=items, document=item())
    with pytest.raises(NoActiveScope):
        selectors.query_documents(definition=items)


def test_upsert_bumps_the_version_and_keeps_created_at(store_agent):
    items = stores_of(store_agent)["items"]
    with scope("tenant-a"):
        first = services.put_document(definition=items, document=item(price=1))
        second = services.put_document(definition=items, document=item(price=2))
        stored = StoreDocument.objects.get()
    assert (first.created, second.created) == (True, False)
    assert stored.version == 2 and stored.data["price"] == 2
    assert stored.created_at == first.document.created_at
    assert stored.updated_at >= stored.created_at


def test_a_batch_with_one_invalid_or_duplicate_document_writes_nothing(store_agent):
    items = stores_of(store_agent)["items"]
    with scope("tenant-a"):
        with pytest.raises(DocumentInvalid) as caught:
            services.put_documents(definition=items, documents=[item("a"), item("b", kind="?"), item("c", price=-1)])
        assert [p.field for p in caught.value.problems] == ["documents[1].kind", "documents[2].price"]
        with pytest.raises(DocumentInvalid) as caught:
            services.put_documents(definition=items, documents=[item("a"), item("a", price=3)])
        assert "same key 'item-a' as documents[0]" in str(caught.value)
        with pytest.raises(DocumentInvalid):
            services.put_documents(definition=items, documents=[item(f"n{i}") for i in range(101)])
        assert StoreDocument.objects.count() == 0
        results = services.put_documents(definition=items, documents=[item("a"), item("b")])
    assert [r.document.key for r in results] == ["item-a", "item-b"]


def test_shared_stores_are_written_in_the_global_partition_only_when_allowed(store_agent):
    categories = stores_of(store_agent)["categories"]
    with scope("tenant-a"):
        with pytest.raises(SharedStoreReadOnly):
            services.put_document(definition=categories, document={"slug": "food", "label": "Food"})
        with pytest.raises(SharedStoreReadOnly):
            services.put_documents(definition=categories, documents=[{"slug": "food", "label": "Food"}])
        result = services.put_document(
            definition=categories, document={"slug": "food", "label": "Food"}, shared_write=True
        )
    assert result.document.scope == GLOBAL_SCOPE
    with scope("tenant-b"):
        assert selectors.get_document(definition=categories, key="food").data["label"] == "Food"
        with pytest.raises(SharedStoreReadOnly):
            services.delete_document(definition=categories, key="food")


def test_delete_removes_the_document_and_its_versions(store_agent):
    prefs = stores_of(store_agent)["preferences"]
    with scope("tenant-a"):
        services.put_document(definition=prefs, document={"key": "k", "value": "1"})
        services.put_document(definition=prefs, document={"key": "k", "value": "2"})
    with scope("tenant-b"), pytest.raises(DocumentNotFound):
        services.delete_document(definition=prefs, key="k")
    with scope("tenant-a"):
        services.delete_document(definition=prefs, key="k")
        with pytest.raises(DocumentNotFound):
            services.delete_document(definition=prefs, key="k")
    assert StoreDocument.all_scopes.count() == StoreDocumentVersion.all_scopes.count() == 0


def test_ttl_hides_expired_documents_from_lists_marks_them_stale_and_the_purge_deletes_them(store_agent):
    cache = stores_of(store_agent)["quote-cache"]
    for tenant in ("tenant-a", "tenant-b"):
        with scope(tenant):
            for symbol in ("AAA", "BBB"):
                result = services.put_document(definition=cache, document={"symbol": symbol, "price": 1})
                assert result.document.expires_at is not None
                assert timedelta(seconds=59) < result.document.expires_at - timezone.now() <= timedelta(seconds=60)
    expire("quote-cache", "AAA", "tenant-a")
    expire("quote-cache", "AAA", "tenant-b")

    with scope("tenant-a"):
        page = selectors.query_documents(definition=cache)
        assert [d.key for d in page.documents] == ["BBB"]
        assert selectors.document_counts(definitions={"quote-cache": cache}) == {"quote-cache": 1}
        stale = selectors.get_document(definition=cache, key="AAA")
        assert stale is not None and stale.stale is True
        assert selectors.get_document(definition=cache, key="BBB").stale is False
        assert selectors.query_documents(definition=cache, filters={"symbol": "AAA"}).documents == []

    out = StringIO()
    call_command("purge_expired_documents", stdout=out)
    assert out.getvalue().strip() == "Purged 2 expired documents."
    out = StringIO()
    call_command("purge_expired_documents", "--batch-size", "1", stdout=out)
    assert out.getvalue().strip() == "Purged 0 expired documents."
    assert sorted(StoreDocument.all_scopes.values_list("scope", "key")) == [("tenant-a", "BBB"), ("tenant-b", "BBB")]


def test_purge_works_in_batches_across_scopes(store_agent):
    cache = stores_of(store_agent)["quote-cache"]
    for tenant in ("t1", "t2", "t3"):
        with scope(tenant):
            services.put_documents(definition=cache, documents=[{"symbol": f"S{i}", "price": i} for i in range(5)])
    StoreDocument.all_scopes.update(expires_at=timezone.now() - timedelta(seconds=5))
    assert services.purge_expired_documents(batch_size=4) == 15
    assert services.purge_expired_documents(batch_size=4) == 0


def test_writing_an_expired_document_revives_it(store_agent):
    cache = stores_of(store_agent)["quote-cache"]
    with scope("tenant-a"):
        services.put_document(definition=cache, document={"symbol": "AAA", "price": 1})
        expire("quote-cache", "AAA", "tenant-a")
        result = services.put_document(definition=cache, document={"symbol": "AAA", "price": 2})
        assert result.document.version == 2
        assert [d.key for d in selectors.query_documents(definition=cache).documents] == ["AAA"]


def test_sort_numbers_numerically_and_datetimes_as_instants(store_agent):
    items = stores_of(store_agent)["items"]
    added = {
        "a": "2024-05-01T10:00:00+02:00",  # 08:00Z
        "b": "2024-05-01T07:30:00-01:00",  # 08:30Z
        "c": "2024-05-01T08:00:00.5Z",  # 08:00:00.5Z
        "d": "2023-12-31",  # midnight
    }
    prices = {"a": 9, "b": 10, "c": 100, "d": 2.5}
    with scope("tenant-a"):
        for sku in added:
            services.put_document(definition=items, document=item(sku, price=prices[sku], added=added[sku]))

        def keys(sort):
            return [d.data["sku"] for d in selectors.query_documents(definition=items, sort=sort).documents]

        assert keys("price") == ["d", "a", "b", "c"]
        assert keys("-price") == ["c", "b", "a", "d"]
        assert keys("added") == ["d", "a", "c", "b"]
        assert keys("-added") == ["b", "c", "a", "d"]
        assert keys(None) == ["a", "b", "c", "d"]  # default: by key


def test_filters_by_each_scalar_type_and_null(store_agent):
    items = stores_of(store_agent)["items"]
    with scope("tenant-a"):
        services.put_document(definition=items, document=item("a", in_stock=True, note="fragile", price=5))
        services.put_document(definition=items, document=item("b", in_stock=False, kind="toy", price=5.0))
        without_note = item("c", in_stock=True, price=7, added="2024-05-01T08:00:00Z")
        del without_note["note"]  # nullable: stored as null
        services.put_document(definition=items, document=without_note)

        def skus(filters):
            return sorted(d.data["sku"] for d in selectors.query_documents(definition=items, filters=filters).documents)

        assert skus({"in_stock": True}) == ["a", "c"]
        assert skus({"in_stock": False}) == ["b"]
        assert skus({"price": 5}) == ["a", "b"]
        assert skus({"kind": "toy"}) == ["b"]
        assert skus({"note": None}) == ["b", "c"]
        assert skus({"note": "fragile", "price": 5}) == ["a"]
        # a datetime filter compares instants, whatever offset it is written with
        assert skus({"added": "2024-05-01T10:00:00+02:00"}) == ["a", "b", "c"]
        assert skus({"sku": "zzz"}) == []


def test_limit_offset_has_more(store_agent):
    prefs = stores_of(store_agent)["preferences"]
    with scope("tenant-a"):
        services.put_documents(definition=prefs, documents=[{"key": f"k{i:03}", "value": "v"} for i in range(100)])
        services.put_document(definition=prefs, document={"key": "k100", "value": "v"})
        page = selectors.query_documents(definition=prefs, limit=100)
        assert len(page.documents) == 100 and page.has_more is True
        page = selectors.query_documents(definition=prefs, limit=100, offset=100)
        assert [d.key for d in page.documents] == ["k100"] and page.has_more is False


def test_seed_store_writes_a_shared_store_idempotently(finance_agent, tmp_path):
    seed = FINANCE_AGENT_DIR.parent / "seed" / "finance-categories.json"
    out = StringIO()
    call_command("seed_store", "categories", str(seed), stdout=out)
    count = len(json.loads(seed.read_text()))
    assert out.getvalue().strip() == (
        f"Seeded store 'categories' (shared, global partition): {count} created, 0 updated, 0 unchanged."
    )
    out = StringIO()
    call_command("seed_store", "categories", str(seed), stdout=out)
    assert f"0 created, 0 updated, {count} unchanged" in out.getvalue()
    assert StoreDocument.all_scopes.filter(scope=GLOBAL_SCOPE, store="categories", version=1).count() == count

    with pytest.raises(CommandError, match="shared store"):
        call_command("seed_store", "categories", str(seed), "--scope", "tenant-a")
    with pytest.raises(CommandError, match="--scope"):
        call_command("seed_store", "preferences", str(seed))
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            [
                {"slug": "x", "label": "X", "kind": "expense", "budget_hint": 1},
                {"slug": "y", "label": "Y", "kind": "gift", "budget_hint": None},
            ]
        )
    )
    with pytest.raises(CommandError, match=r"documents\[1\]\.kind"):
        call_command("seed_store", "categories", str(bad))
    assert not StoreDocument.all_scopes.filter(key="x").exists()

    prefs = tmp_path / "prefs.json"
    prefs.write_text(json.dumps({"documents": [{"key": "currency", "value": "EUR"}]}))
    call_command("seed_store", "preferences", str(prefs), "--scope", "household-1", stdout=StringIO())
    assert StoreDocument.all_scopes.get(store="preferences").scope == "household-1"


def test_admin_lists_every_scope_and_seeds_a_shared_store(admin_client, finance_agent):
    with scope("household-1"):
        services.put_document(
            definition=stores_of(finance_agent)["preferences"], document={"key": "currency", "value": "EUR"}
        )
        services.put_document(
            definition=stores_of(finance_agent)["preferences"], document={"key": "currency", "value": "USD"}
        )
    response = admin_client.get("/admin/stores/storedocument/")
    assert response.status_code == 200
    assert b"household-1" in response.content and b"currency" in response.content

    document = StoreDocument.all_scopes.get()
    response = admin_client.get(f"/admin/stores/storedocument/{document.pk}/change/")
    assert response.status_code == 200
    assert b"EUR" in response.content  # the kept previous version

    data = {"slug": "groceries", "label": "Groceries", "kind": "expense", "budget_hint": 500}
    form = {
        "scope": "someone",
        "store": "categories",
        "data": json.dumps(data),
        "versions-TOTAL_FORMS": "0",
        "versions-INITIAL_FORMS": "0",
    }
    response = admin_client.post("/admin/stores/storedocument/add/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    seeded = StoreDocument.all_scopes.get(store="categories")
    assert (seeded.scope, seeded.key, seeded.version) == (GLOBAL_SCOPE, "groceries", 1)

    form["data"] = json.dumps({**data, "kind": "gift"})
    response = admin_client.post("/admin/stores/storedocument/add/", form)
    assert response.status_code == 200
    assert b"kind: must be one of" in response.content

    form = {
        "data": json.dumps({**data, "budget_hint": 450}),
        "versions-TOTAL_FORMS": "0",
        "versions-INITIAL_FORMS": "0",
    }
    response = admin_client.post(f"/admin/stores/storedocument/{seeded.pk}/change/", form)
    assert response.status_code == 302
    seeded.refresh_from_db()
    assert (seeded.version, seeded.data["budget_hint"]) == (2, 450)


def test_admin_answers_a_bad_document_id_as_missing(admin_client, store_agent):
    response = admin_client.get("/admin/stores/storedocument/not-a-number/change/")
    assert response.status_code == 302  # back to the list with "doesn't exist"
    response = admin_client.get("/admin/stores/storedocument/add/")
    assert response.status_code == 200


def test_sorting_documents_left_from_an_older_schema_is_a_clear_error_not_a_crash(store_agent):
    items = stores_of(store_agent)["items"]
    with scope("tenant-a"):
        services.put_document(definition=items, document=item("a"))
        legacy = item("b")
        StoreDocument.objects.create(
            store="items",
            key="item-b",
            data={**legacy, "price": "cheap"},
            created_at=timezone.now(),
            updated_at=timezone.now(),
        )
        try:
            page = selectors.query_documents(definition=items, sort="price")
        except selectors.QueryInvalid as exc:  # PostgreSQL cannot cast "cheap"
            assert "sort:" in exc.message
        else:  # SQLite casts it to 0
            assert {d.key for d in page.documents} == {"item-a", "item-b"}
        assert StoreDocument.objects.count() == 2  # the transaction is still usable
