"""Store tools through the chat (the `local` provider's `/tool NAME {json}`), on the bundled finance
example: each household writes its own preferences, both read the shared categories, neither can write
them, and no tool argument can reach another scope (SPEC §5)."""

from __future__ import annotations

import json

import pytest

from agents.runtime.providers.local import ScriptedTurn, scripted_turns
from scoping.context import GLOBAL_SCOPE, scope
from stores import services
from stores.definitions import stores_of
from stores.models import StoreDocument

pytestmark = pytest.mark.django_db(transaction=True)


def run_tool(chat, headers, name, arguments, session_id=None):
    """One message calling one tool; returns (tool_call_result event, session id)."""
    body = {"message": f"/tool {name} {json.dumps(arguments)}"}
    if session_id:
        body["session_id"] = session_id
    result = chat.stream(body, headers)
    assert result.status == 200, result.body
    (end,) = result.of_type("tool_call_result")
    return end, result.events[0]["session_id"]


def result_json(end):
    assert end["status"] == "success", end
    return json.loads(end["result"])


def seed_categories(finance_agent):
    with scope("household-1"):  # an operator writing from anywhere still writes the global partition
        services.put_documents(
            definition=stores_of(finance_agent)["categories"],
            shared_write=True,
            documents=[
                {"slug": "groceries", "label": "Groceries", "kind": "expense", "budget_hint": 600},
                {"slug": "salary", "label": "Salary", "kind": "income", "budget_hint": None},
            ],
        )


def test_each_household_writes_and_reads_only_its_own_preferences(chat, finance_agent, jwt_header):
    one, two = jwt_header("household-1"), jwt_header("household-2")
    end, _ = run_tool(chat, one, "store_preferences", {"key": "currency", "value": "EUR"})
    assert result_json(end) == {"store": "preferences", "key": "currency", "version": 1, "created": True}
    end, _ = run_tool(chat, two, "store_preferences", {"key": "currency", "value": "USD"})
    assert result_json(end)["version"] == 1
    end, _ = run_tool(
        chat,
        two,
        "store_preferences_batch",
        {"documents": [{"key": "period", "value": "monthly"}, {"key": "detail", "value": "short"}]},
    )
    assert result_json(end)["written"] == 2

    page = result_json(run_tool(chat, one, "query_store", {"store": "preferences"})[0])
    assert [(d["key"], d["data"]["value"]) for d in page["documents"]] == [("currency", "EUR")]
    page = result_json(run_tool(chat, two, "query_store", {"store": "preferences", "sort": "-key"})[0])
    assert [d["key"] for d in page["documents"]] == ["period", "detail", "currency"]
    found = result_json(run_tool(chat, one, "query_store", {"store": "preferences", "key": "period"})[0])
    assert found["document"] is None  # household-2's key is invisible to household-1
    found = result_json(run_tool(chat, two, "query_store", {"store": "preferences", "key": "currency"})[0])
    assert found["document"]["data"]["value"] == "USD"
    page = result_json(run_tool(chat, two, "query_store", {"store": "preferences", "filter": {"value": "EUR"}})[0])
    assert page["documents"] == []

    assert sorted(StoreDocument.all_scopes.values_list("scope", "key", "version")) == [
        ("household-1", "currency", 1),
        ("household-2", "currency", 1),
        ("household-2", "detail", 1),
        ("household-2", "period", 1),
    ]


def test_both_households_read_the_shared_categories_and_neither_can_write_them(chat, finance_agent, jwt_header):
    seed_categories(finance_agent)
    for household in ("household-1", "household-2"):
        headers = jwt_header(household)
        page = result_json(
            run_tool(chat, headers, "query_store", {"store": "categories", "filter": {"kind": "expense"}})[0]
        )
        assert page["shared"] is True
        assert [d["key"] for d in page["documents"]] == ["groceries"]

        end, _ = run_tool(
            chat,
            headers,
            "store_categories",
            {"slug": "hacked", "label": "Hacked", "kind": "expense", "budget_hint": None},
        )
        assert end["status"] == "error"
        assert "no tool named 'store_categories'" in end["error"]
        end, _ = run_tool(chat, headers, "store_categories_batch", {"documents": []})
        assert end["status"] == "error"
    assert not StoreDocument.all_scopes.filter(key="hacked").exists()
    assert StoreDocument.all_scopes.filter(store="categories").count() == 2
    assert set(StoreDocument.all_scopes.filter(store="categories").values_list("scope", flat=True)) == {GLOBAL_SCOPE}


def test_the_model_is_offered_the_right_tools_and_told_about_the_stores(chat, finance_agent, jwt_header):
    with scripted_turns(ScriptedTurn(text="ok")) as script:
        chat.stream({"message": "hello"}, jwt_header("household-1"))
    (request,) = script.requests
    names = {tool["name"] for tool in request.tools}
    assert {"store_preferences", "store_preferences_batch", "query_store", "memory"} <= names
    assert not any(name.startswith("store_categories") for name in names)
    (query_tool,) = (tool for tool in request.tools if tool["name"] == "query_store")
    assert query_tool["input_schema"]["properties"]["store"]["enum"] == ["categories", "preferences"]
    (store_tool,) = (tool for tool in request.tools if tool["name"] == "store_preferences")
    assert store_tool["input_schema"]["required"] == ["key", "value"]
    assert store_tool["input_schema"]["additionalProperties"] is False
    assert "# Stores" in request.system
    assert "`categories` (shared, read-only): Category, key '{slug}'" in request.system
    assert "kind (enum: income|expense|transfer)" in request.system
    assert "`preferences` (this conversation's own; write with `store_preferences`" in request.system


@pytest.mark.parametrize(
    ("name", "arguments", "fragment"),
    [
        ("query_store", {"store": "preferences", "scope_id": "household-1"}, "no argument scope_id"),
        ("query_store", {"store": "preferences", "scope": "household-1"}, "no argument scope"),
        (
            "store_preferences",
            {"key": "currency", "value": "GBP", "scope_id": "household-1"},
            "scope_id: is not a field",
        ),
        (
            "store_preferences_batch",
            {"documents": [{"key": "currency", "value": "GBP"}], "scope_id": "household-1"},
            "takes only `documents`",
        ),
        (
            "store_preferences_batch",
            {"documents": [{"key": "currency", "value": "GBP", "scope_id": "household-1"}]},
            "documents[0].scope_id: is not a field",
        ),
    ],
)
def test_no_tool_argument_can_choose_another_scope(chat, finance_agent, jwt_header, name, arguments, fragment):
    run_tool(chat, jwt_header("household-1"), "store_preferences", {"key": "currency", "value": "EUR"})
    end, _ = run_tool(chat, jwt_header("household-2"), name, arguments)
    assert end["status"] == "error"
    assert fragment in end["error"]
    assert list(StoreDocument.all_scopes.values_list("scope", "key", "version")) == [("household-1", "currency", 1)]
    assert StoreDocument.all_scopes.get().data["value"] == "EUR"


@pytest.mark.parametrize(
    ("arguments", "fragment"),
    [
        ({"store": "nope"}, "store must be one of: categories, preferences"),
        ({"store": "preferences", "limit": 101}, "limit: must be a whole number from 1 to 100"),
        ({"store": "preferences", "filter": {"colour": "red"}}, "filter.colour"),
        ({"store": "preferences", "sort": "colour"}, "sort:"),
        ({"store": "preferences", "filter": "not json"}, "filter:"),
    ],
)
def test_query_store_refuses_bad_arguments_with_a_readable_error(chat, finance_agent, jwt_header, arguments, fragment):
    end, _ = run_tool(chat, jwt_header("household-1"), "query_store", arguments)
    assert end["status"] == "error"
    assert fragment in end["error"]


def test_invalid_documents_from_the_model_are_refused_naming_the_field(chat, finance_agent, jwt_header):
    end, _ = run_tool(chat, jwt_header("household-1"), "store_preferences", {"key": "currency", "value": 3})
    assert end["status"] == "error"
    assert "value: must be a string" in end["error"]
    assert StoreDocument.all_scopes.count() == 0


def test_query_store_reads_the_shared_store_via_the_rule_based_model(chat, finance_agent, jwt_header):
    seed_categories(finance_agent)
    result = chat.stream({"message": "which categories are there?"}, jwt_header("household-2"))
    (end,) = result.of_type("tool_call_result")
    assert [d["key"] for d in result_json(end)["documents"]] == ["groceries", "salary"]
