"""Session history for end users' widgets and the cancel endpoint (SPEC §3), scope by scope."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from datetime import datetime, timedelta

import pytest
from django.test import Client
from django.utils import timezone

from agents.models import Message, Session, SessionStatus, SessionTag, UsageRecord
from core.tools import Tool, ToolResult
from scoping.context import scope
from tests.conftest import write_agent_folder

SUMMARY_FIELDS = {
    "id": str,
    "title": str,
    "scope_id": str,
    "tags": list,
    "status": str,
    "message_count": int,
    "created_at": str,
    "updated_at": str,
    "model": str,
    "provider": str,
    "token_usage": dict,
}


@pytest.fixture
def tools(register_tools):
    async def echo(context, arguments):
        return ToolResult(json.dumps(arguments, sort_keys=True))

    async def boom(context, arguments):
        raise ValueError("nope")

    async def sleep(context, arguments):
        await asyncio.sleep(30)
        return ToolResult("never")

    register_tools(
        Tool("t_echo", "Echo.", {"type": "object"}, echo),
        Tool("t_boom", "Fails.", {"type": "object"}, boom),
        Tool("t_sleep", "Sleeps.", {"type": "object"}, sleep),
    )


def new_session(chat, headers, message="/say hello there") -> str:
    result = chat.stream({"message": message}, headers)
    assert result.status == 200
    return result.events[0]["session_id"]


def make_sessions(scope_id: str, count: int, **fields) -> list[Session]:
    """Sessions written straight to the database (newest last), for pagination tests."""
    base = timezone.now() - timedelta(days=1)
    with scope(scope_id):
        Session.objects.bulk_create(
            [
                Session(
                    deploy_id="d",
                    title=f"s{i}",
                    provider="local",
                    model="local",
                    updated_at=base + timedelta(seconds=i),
                    **fields,
                )
                for i in range(count)
            ]
        )
        return list(Session.objects.order_by("-updated_at", "-id"))


def get(path, headers, **params):
    return Client().get(path, params, headers=headers)


# --- Isolation -----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_another_scopes_session_is_404_byte_identical_to_a_missing_one(test_agent, chat, jwt_header):
    session_a = new_session(chat, jwt_header("tenant-a"))
    headers_b = jwt_header("tenant-b")

    other = get(f"/sessions/history/{session_a}", headers_b)
    missing = get(f"/sessions/history/{uuid.uuid4()}", headers_b)
    not_a_uuid = get("/sessions/history/not-a-uuid", headers_b)

    for response in (other, missing, not_a_uuid):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "session_not_found"
    assert other.content == missing.content == not_a_uuid.content
    assert other["Content-Type"] == missing["Content-Type"]
    assert get(f"/sessions/history/{session_a}", jwt_header("tenant-a")).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_chat_on_another_scopes_session_is_404_like_a_missing_one(test_agent, chat, jwt_header):
    session_a = new_session(chat, jwt_header("tenant-a"))
    other = chat.stream({"message": "/say hi", "session_id": session_a}, jwt_header("tenant-b"))
    missing = chat.stream({"message": "/say hi", "session_id": str(uuid.uuid4())}, jwt_header("tenant-b"))
    assert other.status == missing.status == 404
    assert other.body == missing.body
    assert other.json()["error"]["code"] == "session_not_found"
    assert Message.all_scopes.filter(session_id=session_a).count() == 2
    assert not Session.all_scopes.filter(scope="tenant-b").exists()


@pytest.mark.django_db(transaction=True)
def test_list_and_detail_show_only_the_callers_scope(test_agent, chat, jwt_header, api_key_header):
    a_ids = {new_session(chat, jwt_header("tenant-a")) for _ in range(2)}
    b_ids = {new_session(chat, jwt_header("tenant-b"))}
    global_ids = {new_session(chat, api_key_header())}

    def listed(headers, **params):
        response = get("/sessions/history", headers, **params)
        assert response.status_code == 200
        return {item["id"] for item in response.json()}

    assert listed(jwt_header("tenant-a")) == a_ids
    assert listed(jwt_header("tenant-b")) == b_ids
    assert listed(jwt_header("tenant-c")) == set()
    # A JWT's claims win over a query scope_id; an API key chooses the scope with it.
    assert listed(jwt_header("tenant-b"), scope_id="tenant-a") == b_ids
    assert listed(api_key_header(), scope_id="tenant-a") == a_ids
    assert listed(api_key_header()) == global_ids
    for session_id in a_ids:
        assert get(f"/sessions/history/{session_id}", jwt_header("tenant-b")).status_code == 404
        assert get(f"/sessions/history/{session_id}", api_key_header()).status_code == 404


@pytest.mark.django_db(transaction=True)
def test_patch_and_delete_of_another_scopes_session_change_nothing(test_agent, chat, jwt_header):
    session_a = new_session(chat, jwt_header("tenant-a"))
    client = Client()
    before = Session.all_scopes.get(pk=session_a)
    missing_id = uuid.uuid4()

    patched = client.patch(
        f"/sessions/history/{session_a}",
        {"title": "hacked", "tags": ["x"]},
        content_type="application/json",
        headers=jwt_header("tenant-b"),
    )
    patched_missing = client.patch(
        f"/sessions/history/{missing_id}",
        {"title": "hacked", "tags": ["x"]},
        content_type="application/json",
        headers=jwt_header("tenant-b"),
    )
    deleted = client.delete(f"/sessions/history/{session_a}", headers=jwt_header("tenant-b"))
    deleted_missing = client.delete(f"/sessions/history/{missing_id}", headers=jwt_header("tenant-b"))

    for response in (patched, patched_missing, deleted, deleted_missing):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "session_not_found"
    assert patched.content == patched_missing.content == deleted.content == deleted_missing.content
    after = Session.all_scopes.get(pk=session_a)
    assert (after.title, after.tags) == (before.title, before.tags)
    assert SessionTag.all_scopes.count() == 0
    assert Message.all_scopes.filter(session_id=session_a).count() == 2


# --- PATCH, tags, DELETE -------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_patch_title_and_tags_then_filter_by_any_tag(test_agent, chat, jwt_header):
    headers = jwt_header("tenant-a")
    first, second, third, untagged = (new_session(chat, headers) for _ in range(4))
    client = Client()
    for session_id, title, tags in (
        (first, "Trip", ["a", "travel"]),
        (second, "Budget", ["b"]),
        (third, "Other", ["c"]),
    ):
        response = client.patch(
            f"/sessions/history/{session_id}",
            {"title": title, "tags": tags},
            content_type="application/json",
            headers=headers,
        )
        assert response.status_code == 200
        assert response.json() == {"ok": True}

    def ids(**params):
        return [item["id"] for item in get("/sessions/history", headers, **params).json()]

    assert set(ids(tags="a,b")) == {first, second}
    assert set(ids(tags=" a , b ,")) == {first, second}
    assert ids(tags="travel") == [first]
    assert ids(tags="zzz") == []
    assert set(ids()) == {first, second, third, untagged}
    listed = {item["id"]: item for item in get("/sessions/history", headers).json()}
    assert listed[first]["title"] == "Trip"
    assert listed[first]["tags"] == ["a", "travel"]
    assert listed[untagged]["tags"] == []

    # Replacing the tags replaces the filter rows too.
    client.patch(f"/sessions/history/{first}", {"tags": ["b"]}, content_type="application/json", headers=headers)
    assert ids(tags="a") == []
    assert set(ids(tags="b")) == {first, second}
    assert get(f"/sessions/history/{first}", headers).json()["title"] == "Trip"


@pytest.mark.parametrize(
    "body",
    [
        {"title": 5},
        {"title": "x" * 201},
        {"tags": "a"},
        {"tags": [""]},
        {"tags": ["x" * 65]},
        {"tags": [None]},
        {"tags": [5]},
        {"tags": ["x"] * 51},
    ],
)
@pytest.mark.django_db(transaction=True)
def test_patch_validation_errors(test_agent, chat, jwt_header, body):
    headers = jwt_header("tenant-a")
    session_id = new_session(chat, headers)
    before = Session.all_scopes.get(pk=session_id)
    response = Client().patch(f"/sessions/history/{session_id}", body, content_type="application/json", headers=headers)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert response.json()["error"]["message"].startswith(next(iter(body)))
    after = Session.all_scopes.get(pk=session_id)
    assert (after.title, after.tags) == (before.title, before.tags)


@pytest.mark.django_db(transaction=True)
def test_delete_removes_the_session_and_its_messages(test_agent, chat, jwt_header):
    headers = jwt_header("tenant-a")
    session_id = new_session(chat, headers)
    kept = new_session(chat, headers)
    usage_rows = UsageRecord.all_scopes.count()
    response = Client().delete(f"/sessions/history/{session_id}", headers=headers)
    assert response.status_code == 200
    assert response.json() == {"ok": True}
    assert get(f"/sessions/history/{session_id}", headers).status_code == 404
    assert [item["id"] for item in get("/sessions/history", headers).json()] == [kept]
    assert not Session.all_scopes.filter(pk=session_id).exists()
    assert Message.all_scopes.filter(session_id=session_id).count() == 0
    assert UsageRecord.all_scopes.count() == usage_rows  # cost history outlives the conversation
    assert Client().delete(f"/sessions/history/{session_id}", headers=headers).status_code == 404


# --- The list ------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_list_item_shape(test_agent, chat, jwt_header):
    headers = jwt_header("tenant-a")
    session_id = new_session(chat, headers, "/say hello there")
    response = get("/sessions/history", headers)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    (item,) = response.json()
    for field, kind in SUMMARY_FIELDS.items():
        assert isinstance(item[field], kind), field
    assert "cost_micros" in item
    assert item["id"] == session_id
    assert item["scope_id"] == "tenant-a"
    assert item["tags"] == []
    assert item["status"] == "idle"
    assert item["message_count"] == 2
    assert (item["provider"], item["model"]) == ("local", "local")
    assert item["cost_micros"] is None  # the local model has no price: unpriced, not 0
    datetime.fromisoformat(item["created_at"])
    datetime.fromisoformat(item["updated_at"])
    usage = UsageRecord.all_scopes.get()
    assert item["token_usage"] == {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
    }


@pytest.mark.django_db(transaction=True)
def test_title_falls_back_to_the_start_of_the_first_user_message(test_agent, chat, jwt_header):
    headers = jwt_header("tenant-a")
    message = "/say Plan   my\ntrip to Rome " + "and more words " * 20
    session_id = new_session(chat, headers, message)
    title = get("/sessions/history", headers).json()[0]["title"]
    assert title.startswith("/say Plan my trip to Rome and more")
    assert 0 < len(title) <= 200
    assert " ".join(message.split()).startswith(title)

    Client().patch(
        f"/sessions/history/{session_id}", {"title": "Rome"}, content_type="application/json", headers=headers
    )
    assert get("/sessions/history", headers).json()[0]["title"] == "Rome"
    Client().patch(f"/sessions/history/{session_id}", {"title": ""}, content_type="application/json", headers=headers)
    assert get("/sessions/history", headers).json()[0]["title"] == title


@pytest.mark.django_db(transaction=True)
def test_list_is_newest_first_with_a_default_of_50(test_agent, jwt_header):
    sessions = make_sessions("tenant-a", 55)
    response = get("/sessions/history", jwt_header("tenant-a"))
    items = response.json()
    assert len(items) == 50
    assert [item["id"] for item in items] == [str(s.pk) for s in sessions[:50]]
    assert [item["title"] for item in items[:3]] == ["s54", "s53", "s52"]
    assert response.has_header("X-Next-Cursor")


@pytest.mark.django_db(transaction=True)
def test_limit_at_most_200(test_agent, jwt_header):
    make_sessions("tenant-a", 205)
    headers = jwt_header("tenant-a")
    assert len(get("/sessions/history", headers, limit=200).json()) == 200
    assert len(get("/sessions/history", headers, limit=1).json()) == 1
    for bad in ("201", "0", "-1", "abc", "1.5"):
        response = get("/sessions/history", headers, limit=bad)
        assert response.status_code == 400, bad
        assert response.json()["error"]["code"] == "validation_error"
        assert response.json()["error"]["message"].startswith("limit")


@pytest.mark.django_db(transaction=True)
def test_keyset_pagination_walks_every_session_once(test_agent, jwt_header):
    sessions = make_sessions("tenant-a", 8)
    # Ties on updated_at must not lose or repeat rows.
    tie = sessions[3].updated_at
    Session.all_scopes.filter(pk__in=[s.pk for s in sessions[2:6]]).update(updated_at=tie)
    make_sessions("tenant-b", 3)
    headers = jwt_header("tenant-a")
    expected = [item["id"] for item in get("/sessions/history", headers).json()]
    assert len(expected) == 8

    pages, cursor = [], None
    while True:
        params = {"limit": 3} if cursor is None else {"limit": 3, "before": cursor}
        response = get("/sessions/history", headers, **params)
        assert response.status_code == 200
        pages.append([item["id"] for item in response.json()])
        cursor = response.get("X-Next-Cursor")
        if cursor is None:
            break
        assert len(pages) < 5
    assert [len(page) for page in pages] == [3, 3, 2]
    walked = [session_id for page in pages for session_id in page]
    assert walked == expected
    assert len(set(walked)) == 8


@pytest.mark.django_db(transaction=True)
def test_exact_last_page_has_no_cursor(test_agent, jwt_header):
    make_sessions("tenant-a", 3)
    response = get("/sessions/history", jwt_header("tenant-a"), limit=3)
    assert len(response.json()) == 3
    assert not response.has_header("X-Next-Cursor")


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage!!",
        base64.urlsafe_b64encode(b"x|y").decode(),
        base64.urlsafe_b64encode(b"2025-01-01T00:00:00|not-a-uuid").decode(),
        "%%%",
    ],
)
@pytest.mark.django_db(transaction=True)
def test_bad_cursor_is_400(test_agent, jwt_header, cursor):
    response = get("/sessions/history", jwt_header("tenant-a"), before=cursor)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert response.json()["error"]["message"].startswith("before")


# --- The detail ----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_detail_lists_messages_in_order_with_tool_calls(test_agent, chat, jwt_header, tools):
    headers = jwt_header("tenant-a")
    session_id = new_session(chat, headers, '/tool t_echo {"city": "Rome", "password": "pw"}')
    second = chat.stream({"message": "/tool t_boom {}", "session_id": session_id}, headers)
    assert second.status == 200

    response = get(f"/sessions/history/{session_id}", headers)
    assert response.status_code == 200
    detail = response.json()
    for field, kind in SUMMARY_FIELDS.items():
        assert isinstance(detail[field], kind), field
    messages = detail["messages"]
    assert [(m["role"], m["type"]) for m in messages] == [
        ("user", "user"),
        ("assistant", "assistant_text"),
        ("assistant", "assistant_text"),
        ("user", "user"),
        ("assistant", "assistant_text"),
        ("assistant", "assistant_text"),
    ]
    assert detail["message_count"] == 6
    for message in messages:
        assert isinstance(message["id"], str) and message["id"]
        assert isinstance(message["text"], str)
        assert isinstance(message["toolCalls"], list)
        datetime.fromisoformat(message["timestamp"])
    stamps = [datetime.fromisoformat(m["timestamp"]) for m in messages]
    assert stamps == sorted(stamps)
    assert messages[0]["text"] == '/tool t_echo {"city": "Rome", "password": "pw"}'
    assert messages[1]["text"] == ""

    (call,) = messages[1]["toolCalls"]
    assert call["toolName"] == "t_echo"
    assert call["toolId"] == "toolu_local_0001"
    assert call["parameters"] == call["args"] == {"city": "Rome", "password": "[REDACTED]"}
    assert call["status"] == "success"
    assert call["result"] == '{"city": "Rome", "password": "pw"}'
    assert "error" not in call
    assert isinstance(call["duration_ms"], int)
    assert messages[2]["text"].startswith("t_echo returned:")
    assert messages[2]["toolCalls"] == []

    (failed,) = messages[4]["toolCalls"]
    assert failed["toolName"] == "t_boom"
    assert failed["status"] == "error"
    assert "ValueError" in failed["error"]
    assert "result" not in failed
    assert messages[5]["text"].startswith("t_boom failed:")


# --- Cancel --------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_cancel_of_another_scopes_session_is_404(test_agent, chat, jwt_header):
    session_a = new_session(chat, jwt_header("tenant-a"))
    other = chat.post(f"/sessions/{session_a}/cancel", {}, jwt_header("tenant-b"))
    missing = chat.post(f"/sessions/{uuid.uuid4()}/cancel", {}, jwt_header("tenant-b"))
    assert other.status == missing.status == 404
    assert other.body == missing.body
    assert other.json()["error"]["code"] == "session_not_found"
    idle = chat.post(f"/sessions/{session_a}/cancel", {}, jwt_header("tenant-a"))
    assert idle.status == 200
    assert idle.json() == {"ok": True, "running": False}


@pytest.mark.django_db(transaction=True)
def test_cancel_stops_a_running_message_and_saves_the_partial_answer(test_agent, chat, jwt_header):
    headers = jwt_header("tenant-a")
    words = "one two three four five six seven eight nine ten"
    cancel_answers = []

    async def scenario():
        async def on_event(item):
            if item["type"] == "text_delta" and not cancel_answers:
                answer = await chat.apost(f"/sessions/{session_ids[0]}/cancel", {}, headers)
                cancel_answers.append(answer)
            elif item["type"] == "init":
                session_ids.append(item["session_id"])

        session_ids: list[str] = []
        return await chat.astream({"message": f"/slow 200 {words}"}, headers, on_event=on_event)

    result = asyncio.run(scenario())

    assert cancel_answers[0].status == 200
    assert cancel_answers[0].json() == {"ok": True, "running": True}
    done = result.events[-1]
    assert done["type"] == "done"
    assert done["reason"] == "user_abort"
    streamed = "".join(e["content"] for e in result.of_type("text_delta"))
    assert streamed and words.startswith(streamed) and streamed != words

    session = Session.all_scopes.get(pk=result.events[0]["session_id"])
    assert session.status == SessionStatus.INTERRUPTED
    assert session.lock_token == ""
    assistant = Message.all_scopes.get(session=session, role="assistant")
    assert assistant.interrupted is True
    assert assistant.text == streamed
    assert UsageRecord.all_scopes.filter(session=session).count() == 1
    detail = get(f"/sessions/history/{session.pk}", headers).json()
    assert detail["status"] == "interrupted"
    assert detail["messages"][1]["text"] == streamed

    # The session takes the next message at once.
    again = chat.stream({"message": "/say back", "session_id": str(session.pk)}, headers)
    assert again.status == 200
    assert again.events[-1]["reason"] == "model_stop"


@pytest.mark.django_db(transaction=True)
def test_a_new_message_moves_its_session_to_the_top(test_agent, chat, jwt_header):
    headers = jwt_header("tenant-a")
    older = new_session(chat, headers)
    newer = new_session(chat, headers)
    assert [item["id"] for item in get("/sessions/history", headers).json()] == [newer, older]
    assert chat.stream({"message": "/say again", "session_id": older}, headers).status == 200
    assert [item["id"] for item in get("/sessions/history", headers).json()] == [older, newer]


@pytest.mark.django_db(transaction=True)
def test_a_tool_call_cut_off_by_cancel_is_saved_as_an_error(test_agent, chat, jwt_header, tools):
    headers = jwt_header("tenant-a")

    async def scenario():
        async def on_event(item):
            if item["type"] == "tool_call_start":
                await chat.apost(f"/sessions/{session_ids[0]}/cancel", {}, headers)
            elif item["type"] == "init":
                session_ids.append(item["session_id"])

        session_ids: list[str] = []
        return await chat.astream({"message": '/tool t_sleep {"n": 1}'}, headers, on_event=on_event)

    result = asyncio.run(scenario())
    assert result.events[-1]["reason"] == "user_abort"
    assert result.of_type("tool_call_result") == []
    detail = get(f"/sessions/history/{result.events[0]['session_id']}", headers).json()
    assert detail["status"] == "interrupted"
    (call,) = detail["messages"][1]["toolCalls"]
    assert call["toolName"] == "t_sleep"
    assert call["status"] == "error"
    assert call["error"]
    assert "result" not in call
    assert call["parameters"] == call["args"] == {"n": 1}
    assert all(c["status"] in ("success", "error") for m in detail["messages"] for c in m["toolCalls"])


@pytest.mark.django_db(transaction=True)
def test_cancel_needs_a_scope_when_the_agent_requires_one(tmp_path, use_agent, chat, jwt_header):
    use_agent(write_agent_folder(tmp_path / "agent", amodal={"scope": {"requireScope": True}}))
    result = chat.post(f"/sessions/{uuid.uuid4()}/cancel", {}, jwt_header(""))
    assert result.status == 400
    assert result.json()["error"]["code"] == "scope_required"
