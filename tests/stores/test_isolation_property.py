"""Property-based scope isolation (hypothesis): random store and memory operations across three scopes,
through the HTTP API, always agree with a plain in-memory model where each scope has its own documents
and memory. Each example runs in a transaction that is rolled back, so examples start empty."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.stores.conftest import store_agent_folder

SCOPES = ("tenant-a", "tenant-b", "tenant-c")
KEYS = ("currency", "period", "detail")
VALUES = ("EUR", "USD", "monthly", "short", "ünïcode ✓")
FACTS = ("likes tea", "likes coffee", "has a cat", "lives in Paris", "prefers EUR")
MAX_ENTRIES = 3

scopes = st.sampled_from(SCOPES)
operations = st.one_of(
    st.tuples(st.just("put"), scopes, st.sampled_from(KEYS), st.sampled_from(VALUES)),
    st.tuples(st.just("delete"), scopes, st.sampled_from(KEYS)),
    st.tuples(st.just("get"), scopes, st.sampled_from(KEYS)),
    st.tuples(st.just("query"), scopes, st.sampled_from([None, *VALUES])),
    st.tuples(st.just("memory_add"), scopes, st.sampled_from(FACTS)),
    st.tuples(st.just("memory_remove"), scopes, st.integers(min_value=0, max_value=8)),
    st.tuples(st.just("memory_list"), scopes),
)


@dataclass
class Expected:
    documents: dict[str, dict[str, tuple[str, int]]] = field(default_factory=lambda: {s: {} for s in SCOPES})
    memory: dict[str, dict[int, str]] = field(default_factory=lambda: {s: {} for s in SCOPES})
    all_entry_ids: list[int] = field(default_factory=list)  # every id ever created, in any scope


@pytest.fixture
def isolation_agent(tmp_path, use_agent):
    return use_agent(
        store_agent_folder(
            tmp_path / "agent",
            require_scope=True,
            memory={"enabled": True, "maxEntries": MAX_ENTRIES, "maxTotalChars": 500},
        )
    )


@pytest.mark.django_db
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(operations, min_size=1, max_size=20))
def test_random_operations_across_three_scopes_match_a_simple_model(client, isolation_agent, jwt_header, steps):
    headers = {s: jwt_header(s) for s in SCOPES}
    with transaction.atomic():
        expected = Expected()
        for step in steps:
            apply(client, headers, expected, step)
        transaction.set_rollback(True)


def apply(client, headers, expected: Expected, step) -> None:
    action, scope_id = step[0], step[1]
    docs, auth = expected.documents[scope_id], headers[scope_id]
    if action == "put":
        _, _, key, value = step
        response = client.put(
            f"/api/stores/preferences/{key}",
            json.dumps({"data": {"key": key, "value": value}}),
            content_type="application/json",
            headers=auth,
        )
        version = docs[key][1] + 1 if key in docs else 1
        assert response.status_code == (201 if version == 1 else 200)
        assert response.json()["version"] == version
        docs[key] = (value, version)
    elif action == "delete":
        response = client.delete(f"/api/stores/preferences/{step[2]}", headers=auth)
        assert response.status_code == (200 if step[2] in docs else 404)
        docs.pop(step[2], None)
    elif action == "get":
        response = client.get(f"/api/stores/preferences/{step[2]}", headers=auth)
        if step[2] in docs:
            body = response.json()
            assert (body["data"]["value"], body["version"]) == docs[step[2]]
        else:
            assert response.status_code == 404
            assert response.json()["error"]["code"] == "document_not_found"
    elif action == "query":
        params = {"filter": json.dumps({"value": step[2]})} if step[2] else {}
        page = client.get("/api/stores/preferences", params, headers=auth).json()
        want = sorted((k, v, n) for k, (v, n) in docs.items() if step[2] in (None, v))
        assert [(d["key"], d["data"]["value"], d["version"]) for d in page["documents"]] == want
    elif action == "memory_add":
        apply_memory_add(client, auth, expected, scope_id, step[2])
    elif action == "memory_remove":
        ids = expected.all_entry_ids
        entry_id = ids[step[2] % len(ids)] if ids else 999_999  # often another scope's id
        response = client.delete(f"/api/memory/{entry_id}", headers=auth)
        mine = expected.memory[scope_id]
        assert response.status_code == (200 if entry_id in mine else 404)
        mine.pop(entry_id, None)
    else:
        body = client.get("/api/memory", headers=auth).json()
        assert {e["id"]: e["content"] for e in body["entries"]} == expected.memory[scope_id]
        assert body["count"] == len(expected.memory[scope_id])


def apply_memory_add(client, auth, expected: Expected, scope_id: str, fact: str) -> None:
    mine = expected.memory[scope_id]
    response = client.post("/api/memory", json.dumps({"content": fact}), content_type="application/json", headers=auth)
    if fact in mine.values():
        assert response.status_code == 200  # already remembered: the same entry
        assert mine[response.json()["id"]] == fact
    elif len(mine) >= MAX_ENTRIES:
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "memory_budget_exceeded"
    else:
        assert response.status_code == 201
        entry_id = response.json()["id"]
        mine[entry_id] = fact
        expected.all_entry_ids.append(entry_id)
