"""Agents with stores for the store tests: every field type, a TTL, history, a shared store."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings

from core.agent_folder import AgentFolder
from tests.conftest import write_agent_folder

ITEMS = {
    "name": "items",
    "description": "A catalogue of items.",
    "entity": {
        "name": "Item",
        "key": "item-{sku}",
        "schema": {
            "sku": {"type": "string", "min": 1, "max": 20},
            "price": {"type": "number", "min": 0, "max": 10000},
            "in_stock": {"type": "boolean"},
            "added": {"type": "datetime"},
            "kind": {"type": "enum", "values": ["tool", "toy", "food"]},
            "tags": {"type": "array", "item": {"type": "string", "max": 10}, "max": 3},
            "dims": {"type": "object", "fields": {"w": {"type": "number"}, "h": {"type": "number", "min": 0}}},
            "note": {"type": "string", "nullable": True},
        },
    },
    "history": {"versions": 3},
}
PREFERENCES = {
    "name": "preferences",
    "entity": {
        "name": "Preference",
        "key": "{key}",
        "schema": {"key": {"type": "string"}, "value": {"type": "string"}},
    },
    "history": {"versions": 5},
}
CATEGORIES = {
    "name": "categories",
    "shared": True,
    "entity": {
        "name": "Category",
        "key": "{slug}",
        "schema": {"slug": {"type": "string"}, "label": {"type": "string"}},
    },
}
CACHE = {
    "name": "quote-cache",
    "entity": {
        "name": "Quote",
        "key": "{symbol}",
        "schema": {"symbol": {"type": "string"}, "price": {"type": "number"}},
    },
    "ttl": 60,
}
# (document changes, the field path the problem must name, a fragment of its message)
INVALID = [
    ({"sku": 5}, "sku", "must be a string"),
    ({"sku": ""}, "sku", "minimum is 1 characters"),
    ({"sku": "x" * 21}, "sku", "maximum is 20 characters"),
    ({"price": "12"}, "price", "must be a number"),
    ({"price": True}, "price", "must be a number"),
    ({"price": -1}, "price", "minimum is 0"),
    ({"price": 10001}, "price", "maximum is 10000"),
    ({"in_stock": "yes"}, "in_stock", "true or false"),
    ({"added": "yesterday"}, "added", "ISO 8601"),
    ({"added": 1714550400}, "added", "ISO 8601"),
    ({"kind": "weapon"}, "kind", "must be one of tool, toy, food"),
    ({"tags": "red"}, "tags", "must be an array"),
    ({"tags": ["a", "b", "c", "d"]}, "tags", "maximum is 3 items"),
    ({"tags": ["ok", 7]}, "tags[1]", "must be a string"),
    ({"tags": ["this-is-too-long"]}, "tags[0]", "maximum is 10 characters"),
    ({"dims": [1, 2]}, "dims", "must be an object"),
    ({"dims": {"w": 1}}, "dims.h", "is required"),
    ({"dims": {"w": 1, "h": -2}}, "dims.h", "minimum is 0"),
    ({"dims": {"w": 1, "h": 2, "d": 3}}, "dims.d", "is not a field"),
    ({"price": None}, "price", "must not be null"),
    ({"colour": "red"}, "colour", "is not a field"),
    ({"scope_id": "someone-else"}, "scope_id", "is not a field"),
]

FINANCE_AGENT_DIR = Path(settings.BASE_DIR) / "examples" / "finance-agent"


def item(sku: str = "a1", **overrides) -> dict:
    document = {
        "sku": sku,
        "price": 12.5,
        "in_stock": True,
        "added": "2024-05-01T10:00:00+02:00",
        "kind": "tool",
        "tags": ["red"],
        "dims": {"w": 1, "h": 2},
        "note": None,
    }
    document.update(overrides)
    return document


def store_agent_folder(path: Path, *, require_scope: bool = False, memory: dict | None = None) -> Path:
    amodal = {"scope": {"requireScope": require_scope}}
    if memory is not None:
        amodal["memory"] = memory
    return write_agent_folder(
        path,
        amodal=amodal,
        files={
            "stores/items.json": ITEMS,
            "stores/preferences.json": PREFERENCES,
            "stores/categories.json": CATEGORIES,
            "stores/quote-cache.json": CACHE,
        },
    )


@pytest.fixture
def store_agent(tmp_path, use_agent) -> AgentFolder:
    return use_agent(store_agent_folder(tmp_path / "agent"))


@pytest.fixture
def finance_agent(use_agent) -> AgentFolder:
    return use_agent(FINANCE_AGENT_DIR)
