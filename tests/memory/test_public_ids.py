"""Public ids (core.public_ids): memory entries and messages are named outside the server by a random UUID,
never by their integer primary key, a counter shared by every scope whose growth would show one tenant how
busy the others are. Lookups take the UUID; an integer or a malformed id is a 404 like a missing entry."""

from __future__ import annotations

import json
import uuid

import pytest

from agents.models import Message
from core.public_ids import parse_public_id
from memory.models import MemoryEntry
from tests.conftest import write_agent_folder


@pytest.fixture
def memory_agent(tmp_path, use_agent):
    return use_agent(write_agent_folder(tmp_path / "agent", amodal={"memory": {"enabled": True, "maxEntries": 50}}))


def add(client, headers, content: str) -> dict:
    response = client.post(
        "/api/memory", json.dumps({"content": content}), content_type="application/json", headers=headers
    )
    assert response.status_code == 201, response.content
    return response.json()


def is_random_uuid(value: object) -> bool:
    parsed = parse_public_id(value)
    return parsed is not None and str(parsed) == value and parsed.version == 4 and parsed.variant == uuid.RFC_4122


@pytest.mark.django_db
def test_two_scopes_writing_in_turn_cannot_count_each_others_writes(client, memory_agent, jwt_header):
    """Scope A sees only its own ids; between two of them scope B writes 0 or 25 entries. Each id is a
    random UUID (version 4): nothing in it (order, gap, size) depends on what B did; and none is a key."""
    a, b = jwt_header("tenant-a"), jwt_header("tenant-b")
    seen_by_a = [add(client, a, "first fact")["id"]]
    for round_index, writes_by_b in enumerate((0, 25, 1, 0, 7)):
        for index in range(writes_by_b):
            add(client, b, f"b fact {round_index}-{index}")
        seen_by_a.append(add(client, a, f"a fact {round_index}")["id"])
    assert all(is_random_uuid(entry_id) for entry_id in seen_by_a), seen_by_a
    assert len(set(seen_by_a)) == len(seen_by_a)
    keys = {str(pk) for pk in MemoryEntry.all_scopes.values_list("pk", flat=True)}
    assert not keys & set(seen_by_a)
    listed = client.get("/api/memory", headers=a).json()["entries"]
    assert [entry["id"] for entry in listed] == seen_by_a  # oldest first, by time: the ids carry no order
    stored = dict(MemoryEntry.all_scopes.filter(scope="tenant-a").values_list("content", "public_id"))
    assert [str(stored[entry["content"]]) for entry in listed] == seen_by_a


@pytest.mark.django_db
def test_delete_takes_the_uuid_and_anything_else_is_a_404_like_a_missing_entry(
    client, memory_agent, jwt_header, api_key_header
):
    a, b = jwt_header("tenant-a"), jwt_header("tenant-b")
    entry = add(client, a, "prefers EUR")
    row = MemoryEntry.all_scopes.get(public_id=entry["id"])
    missing = str(uuid.uuid4())
    answers = {
        "another scope's": client.delete(f"/api/memory/{entry['id']}", headers=b),
        "missing": client.delete(f"/api/memory/{missing}", headers=a),
        "integer key": client.delete(f"/api/memory/{row.pk}", headers=a),
        "malformed": client.delete(f"/api/memory/{entry['id'][:-1]}x", headers=a),
        "through a key, other scope": client.delete(
            f"/api/memory/{entry['id']}?scope_id=tenant-b", headers=api_key_header()
        ),
    }
    for case, response in answers.items():
        assert response.status_code == 404, case
        assert response.json()["error"]["code"] == "memory_entry_not_found", case
    # Another scope's entry answers exactly like a missing one (only the id echoed differs).
    assert answers["another scope's"].json()["error"]["message"].replace(entry["id"], "X") == answers["missing"].json()[
        "error"
    ]["message"].replace(missing, "X")
    assert MemoryEntry.all_scopes.filter(pk=row.pk).exists()
    assert client.delete(f"/api/memory/{entry['id']}", headers=a).json() == {"ok": True}
    assert not MemoryEntry.all_scopes.filter(pk=row.pk).exists()
    assert client.delete(f"/api/memory/{entry['id']}", headers=a).status_code == 404  # gone


@pytest.mark.django_db(transaction=True)
def test_the_tool_and_the_prompt_name_entries_by_uuid(chat, memory_agent, jwt_header):
    a = jwt_header("tenant-a")

    def tool(arguments):
        (end,) = chat.stream({"message": f"/tool memory {json.dumps(arguments)}"}, a).of_type("tool_call_result")
        return end

    added = tool({"action": "add", "content": "likes tea"})
    entry = MemoryEntry.all_scopes.get()
    assert f"Remembered as entry {entry.public_id}." in added["result"]
    assert f"entry {entry.pk}." not in added["result"]
    listed = json.loads(tool({"action": "list"})["result"])["entries"]
    assert [item["id"] for item in listed] == [str(entry.public_id)]
    refused = tool({"action": "remove", "entry_id": entry.pk})
    assert refused["status"] == "error" and f"No memory entry {entry.pk} exists" in refused["error"]
    removed = tool({"action": "remove", "entry_id": str(entry.public_id)})
    assert removed["status"] == "success" and removed["result"] == f"Forgot entry {entry.public_id}: likes tea"
    assert not MemoryEntry.all_scopes.exists()


@pytest.mark.django_db(transaction=True)
def test_history_names_messages_by_uuid(chat, client, test_agent, jwt_header):
    a = jwt_header("tenant-a")
    session_id = chat.stream({"message": "/say hello"}, a).events[0]["session_id"]
    messages = client.get(f"/sessions/history/{session_id}", headers=a).json()["messages"]
    rows = list(Message.all_scopes.filter(session_id=session_id).order_by("seq"))
    assert [m["id"] for m in messages] == [str(row.public_id) for row in rows]
    assert all(is_random_uuid(m["id"]) for m in messages)
    assert not {str(row.pk) for row in rows} & {m["id"] for m in messages}


@pytest.mark.django_db
def test_the_openapi_schema_says_the_ids_are_uuids(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    (parameter,) = [p for p in schema["paths"]["/api/memory/{entry_id}"]["delete"]["parameters"] if p["in"] == "path"]
    assert parameter["name"] == "entry_id" and parameter["schema"] == {"type": "string", "format": "uuid"}
    components = schema["components"]["schemas"]
    assert components["MemoryEntry"]["properties"]["id"]["format"] == "uuid"
    assert components["MemoryEntryListed"]["properties"]["id"]["format"] == "uuid"
    listed = components["MemoryEntryList"]["properties"]["entries"]
    assert listed["items"]["$ref"].endswith("/MemoryEntryListed")


@pytest.mark.parametrize(
    "value, expected",
    [
        ("0b6f4c1e-2a1d-4e55-9c1b-6f0d2b9e8a77", uuid.UUID("0b6f4c1e-2a1d-4e55-9c1b-6f0d2b9e8a77")),
        ("0B6F4C1E-2A1D-4E55-9C1B-6F0D2B9E8A77", uuid.UUID("0b6f4c1e-2a1d-4e55-9c1b-6f0d2b9e8a77")),
        ("12", None),
        (12, None),
        (None, None),
        ("", None),
        ("0b6f4c1e-2a1d-4e55-9c1b", None),
        ("x" * 1000, None),
        (["0b6f4c1e-2a1d-4e55-9c1b-6f0d2b9e8a77"], None),
    ],
)
def test_parse_public_id(value, expected):
    assert parse_public_id(value) == expected
