"""Stores over HTTP (SPEC §3, §5): list, query, get/put/delete, create from the key template, shared
stores, errors, and scope isolation for every operation."""

from __future__ import annotations

import json

import pytest

from scoping.context import GLOBAL_SCOPE, scope
from stores.models import StoreDocument, StoreDocumentVersion
from tests.stores.conftest import INVALID, item

pytestmark = pytest.mark.django_db


def put(client, path, data, headers, **extra):
    return client.put(path, data=json.dumps({"data": data, **extra}), content_type="application/json", headers=headers)


def post(client, path, body, headers):
    return client.post(path, data=json.dumps(body), content_type="application/json", headers=headers)


def error_code(response):
    return response.json()["error"]["code"]


@pytest.fixture
def staff_user(django_user_model):
    """An operator allowed to write documents (a staff flag alone allows nothing: scoping.permissions)."""
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("operator", password="pw", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="stores", codename__in=["add_storedocument", "change_storedocument"]
        )
    )
    return user


def test_put_then_get_a_document(client, store_agent, jwt_header):
    headers = jwt_header("tenant-a")
    response = put(client, "/api/stores/items/item-a1", item("a1"), headers)
    assert response.status_code == 201
    body = response.json()
    assert body["key"] == "item-a1"
    assert body["version"] == 1
    assert body["data"]["added"] == "2024-05-01T08:00:00Z"
    assert body["stale"] is False

    response = client.get("/api/stores/items/item-a1", headers=headers)
    assert response.status_code == 200
    assert response.json()["data"]["price"] == 12.5

    response = put(client, "/api/stores/items/item-a1", item("a1", price=20), headers)
    assert response.status_code == 200
    assert response.json()["version"] == 2


def test_post_renders_the_key_from_the_template(client, store_agent, jwt_header):
    response = post(client, "/api/stores/items", {"data": item("b2")}, jwt_header("tenant-a"))
    assert response.status_code == 201
    assert response.json()["key"] == "item-b2"
    with scope("tenant-a"):
        assert StoreDocument.objects.get(store="items").key == "item-b2"


def test_post_a_batch_is_all_or_nothing(client, store_agent, jwt_header):
    headers = jwt_header("tenant-a")
    bad = post(client, "/api/stores/items", {"documents": [item("ok1"), item("bad", price="x")]}, headers)
    assert bad.status_code == 400
    assert "documents[1].price" in bad.json()["error"]["message"]
    assert StoreDocument.all_scopes.count() == 0

    good = post(client, "/api/stores/items", {"documents": [item("ok1"), item("ok2")]}, headers)
    assert good.status_code == 201
    assert [d["key"] for d in good.json()["documents"]] == ["item-ok1", "item-ok2"]


def test_put_with_a_key_that_disagrees_with_the_template_is_refused(client, store_agent, jwt_header):
    response = put(client, "/api/stores/items/item-zz", item("a1"), jwt_header("tenant-a"))
    assert response.status_code == 400
    assert error_code(response) == "key_mismatch"
    assert "item-a1" in response.json()["error"]["message"]
    assert StoreDocument.all_scopes.count() == 0


@pytest.mark.parametrize(("changes", "field", "fragment"), INVALID)
def test_invalid_documents_are_refused_naming_the_field_and_nothing_is_written(
    client, store_agent, jwt_header, changes, field, fragment
):
    response = post(client, "/api/stores/items", {"data": item(**changes)}, jwt_header("tenant-a"))
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["message"].startswith(f"{field}: ")
    assert fragment in error["message"]
    assert StoreDocument.all_scopes.count() == 0


@pytest.mark.parametrize("body", [{}, {"data": None}, {"data": [1]}, {"documents": []}, {"documents": "x"}])
def test_malformed_bodies_are_validation_errors(client, store_agent, jwt_header, body):
    response = post(client, "/api/stores/items", body, jwt_header("tenant-a"))
    assert response.status_code == 400
    assert error_code(response) == "validation_error"


def test_unknown_store_and_document_are_404(client, store_agent, jwt_header):
    headers = jwt_header("tenant-a")
    assert error_code(client.get("/api/stores/nope", headers=headers)) == "store_not_found"
    assert error_code(client.get("/api/stores/nope/k", headers=headers)) == "store_not_found"
    response = client.get("/api/stores/items/item-none", headers=headers)
    assert response.status_code == 404
    assert error_code(response) == "document_not_found"
    assert error_code(client.delete("/api/stores/items/item-none", headers=headers)) == "document_not_found"


def test_list_stores_with_the_callers_counts(client, store_agent, jwt_header, api_key_header):
    put(client, "/api/stores/items/item-a1", item("a1"), jwt_header("tenant-a"))
    put(client, "/api/stores/items/item-a2", item("a2"), jwt_header("tenant-a"))
    put(client, "/api/stores/items/item-b1", item("b1"), jwt_header("tenant-b"))
    put(client, "/api/stores/categories/food", {"slug": "food", "label": "Food"}, api_key_header(shared_write=True))

    stores = {s["name"]: s for s in client.get("/api/stores", headers=jwt_header("tenant-a")).json()["stores"]}
    assert stores["items"]["document_count"] == 2
    assert stores["categories"]["document_count"] == 1
    assert stores["categories"]["shared"] is True
    assert stores["items"]["entity"]["key"] == "item-{sku}"
    assert stores["items"]["entity"]["schema"]["tags"] == {
        "type": "array",
        "item": {"type": "string", "max": 10},
        "max": 3,
    }
    stores = {s["name"]: s for s in client.get("/api/stores", headers=jwt_header("tenant-c")).json()["stores"]}
    assert stores["items"]["document_count"] == 0
    assert stores["categories"]["document_count"] == 1


def test_query_filter_sort_limit_offset(client, store_agent, jwt_header):
    headers = jwt_header("tenant-a")
    prices = [5, 100, 20, 3.5, 42]
    for index, price in enumerate(prices):
        put(
            client,
            f"/api/stores/items/item-s{index}",
            item(f"s{index}", price=price, kind="food" if index % 2 else "tool"),
            headers,
        )

    page = client.get("/api/stores/items", {"sort": "price", "limit": 2}, headers=headers).json()
    assert [d["data"]["price"] for d in page["documents"]] == [3.5, 5]
    assert page["has_more"] is True
    page = client.get("/api/stores/items", {"sort": "-price", "limit": 2, "offset": 4}, headers=headers).json()
    assert [d["data"]["price"] for d in page["documents"]] == [3.5]
    assert page["has_more"] is False

    page = client.get(
        "/api/stores/items", {"filter": json.dumps({"kind": "food"}), "sort": "-price"}, headers=headers
    ).json()
    assert [d["data"]["price"] for d in page["documents"]] == [100, 3.5]


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"filter": "{not json"}, "filter:"),
        ({"filter": "[1]"}, "filter:"),
        ({"filter": json.dumps({"colour": "red"})}, "filter.colour"),
        ({"filter": json.dumps({"price": "cheap"})}, "filter.price"),
        ({"filter": json.dumps({"tags": ["a"]})}, "filter.tags"),
        ({"sort": "colour"}, "sort:"),
        ({"sort": "dims"}, "sort:"),
        ({"limit": "101"}, "limit:"),
        ({"limit": "0"}, "limit:"),
        ({"offset": "-1"}, "offset:"),
    ],
)
def test_bad_queries_are_validation_errors(client, store_agent, jwt_header, params, fragment):
    response = client.get("/api/stores/items", params, headers=jwt_header("tenant-a"))
    assert response.status_code == 400
    assert error_code(response) == "validation_error"
    assert fragment in response.json()["error"]["message"]


def test_every_operation_is_isolated_by_scope(client, store_agent, jwt_header, api_key_header):
    a, b = jwt_header("tenant-a"), jwt_header("tenant-b")
    put(client, "/api/stores/preferences/currency", {"key": "currency", "value": "EUR"}, a)

    # b sees nothing of a's: get, list, delete are exactly like a missing document
    assert error_code(client.get("/api/stores/preferences/currency", headers=b)) == "document_not_found"
    assert client.get("/api/stores/preferences", headers=b).json()["documents"] == []
    assert error_code(client.delete("/api/stores/preferences/currency", headers=b)) == "document_not_found"
    # b writing the same key creates b's own document; a's is untouched
    response = put(client, "/api/stores/preferences/currency", {"key": "currency", "value": "USD"}, b)
    assert response.status_code == 201 and response.json()["version"] == 1
    assert client.get("/api/stores/preferences/currency", headers=a).json()["data"]["value"] == "EUR"
    # a body scope_id never beats the token's claim
    response = put(
        client, "/api/stores/preferences/currency", {"key": "currency", "value": "GBP"}, b, scope_id="tenant-a"
    )
    assert response.json()["version"] == 2
    assert (
        client.get("/api/stores/preferences/currency", {"scope_id": "tenant-a"}, headers=b).json()["data"]["value"]
        == "GBP"
    )
    assert client.get("/api/stores/preferences/currency", headers=a).json()["data"]["value"] == "EUR"
    # an API key chooses the scope in the body / query
    key = api_key_header()
    assert (
        client.get("/api/stores/preferences/currency", {"scope_id": "tenant-a"}, headers=key).json()["data"]["value"]
        == "EUR"
    )
    assert client.delete("/api/stores/preferences/currency?scope_id=tenant-b", headers=key).json() == {"ok": True}
    assert client.get("/api/stores/preferences/currency", headers=a).status_code == 200
    assert client.get("/api/stores/preferences/currency", headers=b).status_code == 404
    # a key restricted to one scope cannot reach another
    restricted = api_key_header(scope_id="tenant-b")
    response = client.get("/api/stores/preferences/currency", {"scope_id": "tenant-a"}, headers=restricted)
    assert response.status_code == 403
    with scope("tenant-a"):
        assert StoreDocument.objects.get(key="currency").version == 1


def test_shared_store_writes_need_an_operator(client, store_agent, jwt_header, api_key_header, staff_user):
    doc = {"slug": "food", "label": "Food"}
    for headers in (jwt_header("tenant-a"), api_key_header(), api_key_header(scope_id="tenant-a")):
        response = put(client, "/api/stores/categories/food", doc, headers)
        assert response.status_code == 403
        assert error_code(response) == "shared_store_read_only"
        response = post(client, "/api/stores/categories", {"data": doc}, headers)
        assert error_code(response) == "shared_store_read_only"
        assert error_code(client.delete("/api/stores/categories/food", headers=headers)) == "shared_store_read_only"
    assert StoreDocument.all_scopes.count() == 0

    response = put(client, "/api/stores/categories/food", doc, api_key_header(shared_write=True))
    assert response.status_code == 201
    client.force_login(staff_user)  # a staff session (Studio, admin) writes shared stores too
    response = put(client, "/api/stores/categories/rent", {"slug": "rent", "label": "Rent"}, {})
    assert response.status_code == 201
    # both live in the global partition, whatever scope the caller acted in
    assert set(StoreDocument.all_scopes.values_list("scope", "key")) == {(GLOBAL_SCOPE, "food"), (GLOBAL_SCOPE, "rent")}
    client.logout()
    for tenant in ("tenant-a", "tenant-b"):
        page = client.get("/api/stores/categories", headers=jwt_header(tenant)).json()
        assert [d["key"] for d in page["documents"]] == ["food", "rent"]
        assert client.get("/api/stores/categories/food", headers=jwt_header(tenant)).status_code == 200


def test_shared_stores_need_no_scope_but_scoped_stores_do(client, tmp_path, use_agent, api_key_header):
    from tests.stores.conftest import store_agent_folder

    use_agent(store_agent_folder(tmp_path / "strict", require_scope=True))
    operator = api_key_header(shared_write=True)
    assert put(client, "/api/stores/categories/food", {"slug": "food", "label": "Food"}, operator).status_code == 201
    response = put(client, "/api/stores/preferences/currency", {"key": "currency", "value": "EUR"}, operator)
    assert response.status_code == 400
    assert error_code(response) == "scope_required"
    assert error_code(client.get("/api/stores", headers=operator)) == "scope_required"
    assert StoreDocument.all_scopes.count() == 1


def test_authentication_is_required(client, store_agent):
    response = client.get("/api/stores")
    assert response.status_code == 401
    response = client.get("/api/stores/items/x", headers={"Authorization": "Bearer not-a-token"})
    assert response.status_code == 401


def test_history_keeps_the_last_n_versions(client, store_agent, jwt_header):
    headers = jwt_header("tenant-a")
    for value in range(1, 8):  # items keeps 3 previous versions
        put(client, "/api/stores/items/item-h", item("h", price=value), headers)
    with scope("tenant-a"):
        document = StoreDocument.objects.get(key="item-h")
        versions = list(StoreDocumentVersion.objects.filter(document=document).order_by("version"))
    assert document.version == 7
    assert [(v.version, v.data["price"]) for v in versions] == [(4, 4), (5, 5), (6, 6)]
    assert all(v.scope == "tenant-a" for v in versions)

    client.delete("/api/stores/items/item-h", headers=headers)
    assert StoreDocumentVersion.all_scopes.count() == 0


def test_the_openapi_schema_still_builds(client, store_agent):
    response = client.get("/api/schema/")
    assert response.status_code == 200
    text = response.content.decode()
    for path in (
        "/api/stores:",
        "/api/stores/{name}:",
        "/api/stores/{name}/{key}:",
        "/api/memory:",
        "/api/memory/{entry_id}:",
    ):
        assert path in text


def test_a_body_without_the_data_envelope_is_the_document_itself(client, store_agent, jwt_header, api_key_header):
    response = client.put(
        "/api/stores/preferences/currency",
        json.dumps({"key": "currency", "value": "EUR"}),
        content_type="application/json",
        headers=jwt_header("tenant-a"),
    )
    assert response.status_code == 201
    response = post(
        client,
        "/api/stores/preferences",
        {"key": "period", "value": "monthly", "scope_id": "tenant-a"},
        api_key_header(),
    )
    assert response.status_code == 201
    with scope("tenant-a"):
        assert sorted(StoreDocument.objects.values_list("key", flat=True)) == ["currency", "period"]
    response = post(client, "/api/stores/preferences", [{"key": "x", "value": "y"}], jwt_header("tenant-a"))
    assert response.status_code == 400
    assert error_code(response) == "validation_error"
