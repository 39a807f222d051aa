"""The Python client's event dataclasses (clients/python, amodal_client.events) against the published event
schemas (docs/schemas/events/): each class reads only fields the contract has, and every field the contract
requires, so the client and the server cannot drift apart silently."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

client_events = pytest.importorskip("amodal_client.events")
client_models = pytest.importorskip("amodal_client.models")

SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "schemas"
# Fields the contract sends that the client leaves in `raw` on purpose (SPEC §3: equal to another field).
ALIASES = {"confirmation_required": {"connection_name"}}
SERVER_ONLY = {"auth_ok"}  # WebSocket only; the client speaks HTTP


def client_event_classes() -> dict[str, type]:
    classes = {}
    for value in vars(client_events).values():
        if dataclasses.is_dataclass(value) and isinstance(value, type):
            kind = {f.name: f.default for f in dataclasses.fields(value)}.get("type")
            if isinstance(kind, str):
                classes[kind] = value
    return classes


def schema(kind: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / "events" / f"{kind}.schema.json").read_text())


def field_names(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)} - {"raw"}


def test_the_client_has_a_class_for_every_event_type_it_can_receive():
    published = {path.name.removesuffix(".schema.json") for path in (SCHEMAS / "events").glob("*.schema.json")}
    assert set(client_event_classes()) == published - SERVER_ONLY


@pytest.mark.parametrize("kind", sorted(client_event_classes()))
def test_a_client_event_reads_exactly_the_contracts_fields(kind):
    fields = field_names(client_event_classes()[kind])
    contract = schema(kind)
    assert fields <= set(contract["properties"]), f"{kind}: the client reads fields the contract lacks"
    missing = set(contract["required"]) - fields - ALIASES.get(kind, set())
    assert not missing, f"{kind}: the client drops required fields {sorted(missing)}"


def test_the_clients_message_usage_is_the_contracts():
    usage = json.loads((SCHEMAS / "events.schema.json").read_text())["$defs"]["MessageUsage"]
    assert field_names(client_models.MessageUsage) == set(usage["properties"]) == set(usage["required"])
