"""Memory (SPEC §6): per-scope entries with budgets, the `memory` tool, the system-prompt section at the
start of each message, ranked search on the database at hand, and the HTTP API — each scope's own."""

from __future__ import annotations

import json

import pytest
from django.db import connection

from agents.runtime.providers.local import ScriptedTurn, scripted_turns
from memory import selectors, services
from memory.config import MemoryConfig
from memory.errors import MemoryBudgetExceeded, MemoryEntryNotFound
from memory.models import MemoryEntry
from scoping.context import NoActiveScope, scope
from tests.conftest import write_agent_folder

CONFIG = MemoryConfig(enabled=True, max_entries=3, max_total_chars=60)


@pytest.fixture
def memory_agent(tmp_path, use_agent):
    return use_agent(
        write_agent_folder(
            tmp_path / "agent",
            amodal={
                "memory": {"enabled": True, "maxEntries": 3, "maxTotalChars": 60},
            },
        )
    )


@pytest.fixture
def no_memory_agent(tmp_path, use_agent):
    return use_agent(write_agent_folder(tmp_path / "agent", amodal={"memory": {"enabled": False}}))


def post(client, path, body, headers):
    return client.post(path, data=json.dumps(body), content_type="application/json", headers=headers)


# --- Services ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_memory_needs_an_active_scope():
    with pytest.raises(NoActiveScope):
        selectors.list_entries()
    with pytest.raises(NoActiveScope):
        services.add_entry(content="x", config=CONFIG)


@pytest.mark.django_db
def test_add_list_remove_in_one_scope():
    with scope("tenant-a"):
        first = services.add_entry(content="  likes   tea ", config=CONFIG)
        assert first.created and first.entry.content == "likes tea"
        again = services.add_entry(content="Likes tea", config=CONFIG)
        assert not again.created and again.entry.pk == first.entry.pk
        services.add_entry(content="has a cat", config=CONFIG)
        assert [e.content for e in selectors.list_entries()] == ["likes tea", "has a cat"]
    with scope("tenant-b"):
        assert selectors.list_entries() == []
        with pytest.raises(MemoryEntryNotFound):
            services.remove_entry(entry_id=str(first.entry.public_id))
    with scope("tenant-a"):
        for internal in (first.entry.pk, str(first.entry.pk)):  # the primary key is not an entry's id
            with pytest.raises(MemoryEntryNotFound):
                services.remove_entry(entry_id=internal)
        services.remove_entry(entry_id=str(first.entry.public_id))
        assert [e.content for e in selectors.list_entries()] == ["has a cat"]


@pytest.mark.django_db
def test_budgets_refuse_clearly_and_write_nothing():
    with scope("tenant-a"):
        for fact in ("one", "two", "three"):
            services.add_entry(content=fact, config=CONFIG)
        with pytest.raises(MemoryBudgetExceeded, match="all 3 entries are used"):
            services.add_entry(content="four", config=CONFIG)
        assert MemoryEntry.objects.count() == 3
    with scope("tenant-b"):  # budgets are per scope
        services.add_entry(content="x" * 50, config=CONFIG)
        with pytest.raises(MemoryBudgetExceeded, match="50 of 60 characters are used"):
            services.add_entry(content="y" * 11, config=CONFIG)
        with pytest.raises(MemoryBudgetExceeded, match="at most 60 characters"):
            services.add_entry(content="z" * 61, config=CONFIG)
        services.add_entry(content="y" * 10, config=CONFIG)  # exactly at the budget is fine
        assert selectors.memory_usage(config=CONFIG).chars == 60


@pytest.mark.django_db
@pytest.mark.parametrize("content", [None, "", "   ", 5, ["a"]])
def test_empty_or_non_text_content_is_a_validation_error(content):
    with scope("tenant-a"), pytest.raises(Exception, match="content: must be a non-empty string"):
        services.add_entry(content=content, config=CONFIG)


@pytest.mark.django_db
def test_search_ranks_better_matches_first_on_this_database():
    roomy = MemoryConfig(enabled=True, max_entries=50, max_total_chars=8000)
    with scope("tenant-a"):
        for fact in (
            "The household drinks tea in the morning",
            "They buy coffee beans and grind the coffee beans daily",
            "Coffee is bought weekly",
            "The cat is called Pixel",
        ):
            services.add_entry(content=fact, config=roomy)
        ranked = [entry.content for entry, _ in selectors.search_entries(query="coffee beans")]
        assert ranked[:2] == ["They buy coffee beans and grind the coffee beans daily", "Coffee is bought weekly"]
        assert "The cat is called Pixel" not in ranked
        assert [e.content for e, _ in selectors.search_entries(query="cat")] == ["The cat is called Pixel"]
        assert selectors.search_entries(query="zebra") == []
        ranks = [rank for _, rank in selectors.search_entries(query="coffee beans")]
        assert ranks == sorted(ranks, reverse=True) and ranks[0] > ranks[1]
    with scope("tenant-b"):
        assert selectors.search_entries(query="coffee") == []
    if connection.vendor == "postgresql":  # full-text search: stems and stop words
        with scope("tenant-a"):
            assert [e.content for e, _ in selectors.search_entries(query="drinking")] == [
                "The household drinks tea in the morning"
            ]


# --- The tool and the prompt ------------------------------------------------------------------------


def tool_message(chat, headers, arguments):
    result = chat.stream({"message": f"/tool memory {json.dumps(arguments)}"}, headers)
    (end,) = result.of_type("tool_call_result")
    return end


@pytest.mark.django_db(transaction=True)
def test_memory_tool_actions_and_budgets_through_the_chat(chat, memory_agent, jwt_header):
    a = jwt_header("tenant-a")
    end = tool_message(chat, a, {"action": "add", "content": "prefers EUR"})
    assert end["status"] == "success"
    assert "Remembered as entry" in end["result"] and "1 of 3 entries" in end["result"]
    for fact in ("likes tea", "has a cat"):
        tool_message(chat, a, {"action": "add", "content": fact})
    end = tool_message(chat, a, {"action": "add", "content": "walks daily"})
    assert end["status"] == "error"
    assert "Memory is full: all 3 entries are used" in end["error"]

    listing = json.loads(tool_message(chat, a, {"action": "list"})["result"])
    assert [e["content"] for e in listing["entries"]] == ["prefers EUR", "likes tea", "has a cat"]
    assert listing["count"] == 3 and listing["max_entries"] == 3
    found = json.loads(tool_message(chat, a, {"action": "search", "query": "tea"})["result"])
    assert [e["content"] for e in found["entries"]] == ["likes tea"]

    tea_id = found["entries"][0]["id"]
    b = jwt_header("tenant-b")
    end = tool_message(chat, b, {"action": "remove", "entry_id": tea_id})
    assert end["status"] == "error" and f"No memory entry {tea_id}" in end["error"]
    end = tool_message(chat, b, {"action": "list", "scope_id": "tenant-a"})
    assert end["status"] == "error" and "no argument scope_id" in end["error"]
    assert json.loads(tool_message(chat, b, {"action": "list"})["result"])["entries"] == []

    end = tool_message(chat, a, {"action": "remove", "entry_id": tea_id})
    assert end["status"] == "success" and "likes tea" in end["result"]
    end = tool_message(chat, a, {"action": "fly"})
    assert end["status"] == "error" and "action must be one of" in end["error"]


@pytest.mark.django_db(transaction=True)
def test_entries_are_in_the_system_prompt_of_the_next_message(chat, memory_agent, jwt_header):
    a = jwt_header("tenant-a")
    first = chat.stream({"message": "remember that the budget period is monthly"}, a)
    (end,) = first.of_type("tool_call_result")
    assert end["status"] == "success"
    entry = MemoryEntry.all_scopes.get()
    assert (entry.scope, entry.content) == ("tenant-a", "the budget period is monthly")

    with scripted_turns(ScriptedTurn(text="ok")) as script:
        chat.stream({"message": "hi", "session_id": first.events[0]["session_id"]}, a)
    (request,) = script.requests
    assert "# Memory" in request.system
    assert f"- [{entry.public_id}] the budget period is monthly" in request.system
    assert "memory" in {tool["name"] for tool in request.tools}

    with scripted_turns(ScriptedTurn(text="ok")) as script:
        chat.stream({"message": "hi"}, jwt_header("tenant-b"))
    (request,) = script.requests
    assert "budget period" not in request.system
    assert "Nothing is remembered for this user yet" in request.system


@pytest.mark.django_db(transaction=True)
def test_no_memory_tool_or_section_when_disabled(chat, no_memory_agent, jwt_header):
    with scripted_turns(ScriptedTurn(text="ok")) as script:
        chat.stream({"message": "hi"}, jwt_header("tenant-a"))
    (request,) = script.requests
    assert "memory" not in {tool["name"] for tool in request.tools}
    assert "# Memory" not in request.system


# --- HTTP API ------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_memory_api_is_the_callers_scope_only(client, memory_agent, jwt_header, api_key_header):
    a, b = jwt_header("tenant-a"), jwt_header("tenant-b")
    response = post(client, "/api/memory", {"content": "prefers EUR"}, a)
    assert response.status_code == 201
    entry_id = response.json()["id"]
    assert post(client, "/api/memory", {"content": "prefers EUR"}, a).status_code == 200  # already there
    post(client, "/api/memory", {"content": "likes tea"}, b)

    body = client.get("/api/memory", headers=a).json()
    assert [e["content"] for e in body["entries"]] == ["prefers EUR"]
    assert (body["count"], body["max_entries"], body["max_total_chars"]) == (1, 3, 60)
    assert [e["content"] for e in client.get("/api/memory", headers=b).json()["entries"]] == ["likes tea"]
    found = client.get("/api/memory", {"query": "tea"}, headers=b).json()["entries"]
    assert [e["content"] for e in found] == ["likes tea"]
    assert client.get("/api/memory", {"query": "tea"}, headers=a).json()["entries"] == []

    for headers in (b, jwt_header("tenant-c")):
        response = client.delete(f"/api/memory/{entry_id}", headers=headers)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "memory_entry_not_found"
    assert client.delete("/api/memory/not-a-number", headers=a).status_code == 404
    # an API key names the scope in the query string
    assert client.delete(f"/api/memory/{entry_id}?scope_id=tenant-b", headers=api_key_header()).status_code == 404
    assert client.delete(f"/api/memory/{entry_id}?scope_id=tenant-a", headers=api_key_header()).json() == {"ok": True}
    assert client.get("/api/memory", headers=a).json()["entries"] == []
    assert MemoryEntry.all_scopes.get().scope == "tenant-b"


@pytest.mark.django_db
def test_memory_api_budgets_validation_and_auth(client, memory_agent, jwt_header):
    a = jwt_header("tenant-a")
    for fact in ("one", "two", "three"):
        post(client, "/api/memory", {"content": fact}, a)
    response = post(client, "/api/memory", {"content": "four"}, a)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "memory_budget_exceeded"
    response = post(client, "/api/memory", {}, a)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert "content" in response.json()["error"]["message"]
    assert client.get("/api/memory").status_code == 401


@pytest.mark.django_db
def test_memory_api_refuses_additions_when_disabled_and_requires_a_scope_when_asked(
    client, no_memory_agent, jwt_header, tmp_path, use_agent, api_key_header
):
    response = post(client, "/api/memory", {"content": "x"}, jwt_header("tenant-a"))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "memory_disabled"
    use_agent(
        write_agent_folder(tmp_path / "strict", amodal={"scope": {"requireScope": True}, "memory": {"enabled": True}})
    )
    response = post(client, "/api/memory", {"content": "x"}, api_key_header())
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "scope_required"
    assert MemoryEntry.all_scopes.count() == 0


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent connections need PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_concurrent_adds_never_exceed_the_entry_budget():
    import threading

    from django.db import connections

    barrier = threading.Barrier(10)
    outcomes: list[str] = []

    def add(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            with scope("tenant-a"):
                services.add_entry(content=f"fact number {index}", config=CONFIG)
            outcomes.append("added")
        except MemoryBudgetExceeded:
            outcomes.append("refused")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=add, args=(i,)) for i in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == ["added"] * 3 + ["refused"] * 7
    assert MemoryEntry.all_scopes.filter(scope="tenant-a").count() == 3
