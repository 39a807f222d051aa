"""End users' feedback (SPEC §3 "Feedback"): `POST /sessions/history/<id>/feedback`, the `feedback` of the
session detail, and the `message_id` of `done` that names what a rating rates."""

from __future__ import annotations

import json
import threading
import uuid

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from agents import services
from agents.models import Feedback, Message, MessageRole, Session
from core.tools import Tool, ToolResult
from scoping.context import scope
from tests.conftest import write_agent_folder

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def echo_tool(register_tools):
    async def echo(context, arguments):
        return ToolResult(json.dumps(arguments))

    register_tools(Tool("t_echo", "Echo.", {"type": "object"}, echo))


def converse(chat, headers, message="/say hello there", session_id=None) -> tuple[str, str]:
    """One message; its session id and the `done` event's message_id."""
    body = {"message": message, **({"session_id": session_id} if session_id else {})}
    result = chat.stream(body, headers)
    assert result.status == 200
    return result.events[0]["session_id"], result.events[-1]["message_id"]


def rate(session_id, headers, **body):
    return Client().post(
        f"/sessions/history/{session_id}/feedback", body, content_type="application/json", headers=headers
    )


def detail(session_id, headers):
    response = Client().get(f"/sessions/history/{session_id}", headers=headers)
    assert response.status_code == 200
    return response.json()


def rows():
    return sorted(
        Feedback.all_scopes.values_list("scope", "session_id", "message__public_id", "user_sub", "rating", "comment"),
        key=str,
    )


def shown(feedback: list[dict]) -> list[tuple]:
    return [(item["message_id"], item["rating"], item["comment"], item["user"]) for item in feedback]


# --- done names the message, the rating lands ---------------------------------------------------------


def test_done_names_the_last_assistant_message_of_the_answer(test_agent, chat, jwt_header, echo_tool):
    headers = jwt_header("tenant-a")
    session_id, message_id = converse(chat, headers, '/tool t_echo {"a": 1}')
    assistant = [m for m in detail(session_id, headers)["messages"] if m["role"] == "assistant"]
    assert len(assistant) == 2  # the tool call, then the answer
    assert message_id == assistant[-1]["id"]
    sync = chat.sync({"message": "/say again", "session_id": session_id}, headers).json()
    assert sync["message_id"] == detail(session_id, headers)["messages"][-1]["id"]


def test_rate_a_message_then_rate_it_again_replaces_it(test_agent, chat, jwt_header):
    headers = jwt_header("tenant-a", sub="user-1")
    session_id, message_id = converse(chat, headers)

    response = rate(session_id, headers, message_id=message_id, rating=1, comment="Spot on")
    assert response.status_code == 200
    assert response.json() == {"ok": True}
    assert shown(detail(session_id, headers)["feedback"]) == [(message_id, 1, "Spot on", "user-1")]

    assert rate(session_id, headers, message_id=message_id, rating=-1).status_code == 200
    assert shown(detail(session_id, headers)["feedback"]) == [(message_id, -1, "", "user-1")]
    assert rows() == [("tenant-a", uuid.UUID(session_id), uuid.UUID(message_id), "user-1", -1, "")]


def test_session_ratings_and_message_ratings_are_kept_per_user(test_agent, chat, jwt_header, api_key_header):
    alice, bob = jwt_header("tenant-a", sub="alice"), jwt_header("tenant-a", sub="bob")
    session_id, message_id = converse(chat, alice)
    for headers, body in [
        (alice, {"rating": 1, "comment": "first"}),
        (alice, {"rating": -1, "comment": "whole session, changed", "message_id": None}),  # replaces: NULL message
        (alice, {"rating": 1, "message_id": message_id}),
        (bob, {"rating": -1, "comment": "not for me"}),
        (api_key_header(), {"rating": 1, "scope_id": "tenant-a"}),
    ]:
        assert rate(session_id, headers, **body).status_code == 200
    assert shown(detail(session_id, alice)["feedback"]) == [
        (None, -1, "whole session, changed", "alice"),
        (message_id, 1, "", "alice"),
        (None, -1, "not for me", "bob"),
        (None, 1, "", "api-key:test key"),  # an API key's identity, as its sessions record it
    ]
    assert Feedback.all_scopes.count() == 4


def test_a_comment_of_2000_characters_and_unknown_fields(test_agent, chat, jwt_header):
    headers = jwt_header("tenant-a")
    session_id, _ = converse(chat, headers)
    response = rate(session_id, headers, rating=1, comment="é" * 2000, stars=5, scope_id="tenant-b")
    assert response.status_code == 200
    assert Feedback.all_scopes.get().comment == "é" * 2000
    assert Feedback.all_scopes.get().scope == "tenant-a"  # a JWT's claims decide, never the body


def test_concurrent_ratings_leave_one_row(test_agent, chat, jwt_header):
    """Every request finds no row and creates one at the same moment: the losers update the winner's."""
    headers = jwt_header("tenant-a")
    session_id, _ = converse(chat, headers)
    session = Session.all_scopes.get(pk=session_id)
    barrier = threading.Barrier(4)
    failures: list[BaseException] = []

    def one(rating: int) -> None:
        try:
            barrier.wait(timeout=10)
            with scope("tenant-a"):
                services.rate(session=session, message_id=None, user_sub="u", rating=rating, comment=str(rating))
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=one, args=(rating,)) for rating in (1, -1, 1, -1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    (row,) = Feedback.all_scopes.all()
    assert (row.rating, row.comment) in ((1, "1"), (-1, "-1"))


# --- bad input ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "rating"),
        ({"rating": None}, "rating"),
        ({"rating": 0}, "rating"),
        ({"rating": 2}, "rating"),
        ({"rating": -2}, "rating"),
        ({"rating": True}, "rating"),
        ({"rating": False}, "rating"),
        ({"rating": "1"}, "rating"),
        ({"rating": 1.0}, "rating"),
        ({"rating": [1]}, "rating"),
        ({"rating": 1, "comment": 5}, "comment"),
        ({"rating": 1, "comment": None}, "comment"),
        ({"rating": 1, "comment": ["x"]}, "comment"),
        ({"rating": 1, "comment": "x" * 2001}, "comment"),
        ({"rating": 1, "comment": "a\x00b"}, "comment"),
        ({"rating": 1, "comment": "a\ud800b"}, "comment"),
        ({"rating": 1, "message_id": "not-a-uuid"}, "message_id"),
        ({"rating": 1, "message_id": ""}, "message_id"),
        ({"rating": 1, "message_id": 5}, "message_id"),
        ({"rating": 1, "message_id": {"id": 1}}, "message_id"),
    ],
)
def test_bad_input_is_400_naming_the_field(test_agent, chat, jwt_header, body, field):
    headers = jwt_header("tenant-a")
    session_id, _ = converse(chat, headers)
    response = Client().post(
        f"/sessions/history/{session_id}/feedback",
        json.dumps(body),  # by hand: the test client's encoder would refuse a lone surrogate
        content_type="application/json",
        headers=headers,
    )
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "validation_error"
    assert response.json()["error"]["message"].startswith(f"{field}: ")
    assert rows() == []


def test_a_body_that_is_not_an_object_is_400(test_agent, chat, jwt_header):
    headers = jwt_header("tenant-a")
    session_id, _ = converse(chat, headers)
    for raw in ("[1]", "1", '"x"'):
        response = Client().post(
            f"/sessions/history/{session_id}/feedback", raw, content_type="application/json", headers=headers
        )
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "validation_error"
    assert rows() == []


def test_a_user_message_is_400_and_another_sessions_message_404(test_agent, chat, jwt_header):
    headers = jwt_header("tenant-a")
    session_id, _ = converse(chat, headers)
    other_session, other_message = converse(chat, headers)
    user_message = Message.all_scopes.get(session_id=session_id, role=MessageRole.USER).public_id

    refused = rate(session_id, headers, rating=1, message_id=str(user_message))
    assert refused.status_code == 400
    assert refused.json()["error"] == {
        "code": "validation_error",
        "message": "message_id: only an assistant message can be rated, not a user message.",
    }
    for missing in (other_message, str(uuid.uuid4())):
        response = rate(session_id, headers, rating=1, message_id=missing)
        assert response.status_code == 404
        assert response.json()["error"] == {
            "code": "message_not_found",
            "message": "message_id: no message with this id in this session.",
        }
    assert rows() == []
    assert rate(other_session, headers, rating=1, message_id=other_message).status_code == 200


def test_another_scopes_session_or_message_is_404_like_a_missing_one(test_agent, chat, jwt_header):
    session_a, message_a = converse(chat, jwt_header("tenant-a"))
    session_b, _ = converse(chat, jwt_header("tenant-b"))
    b = jwt_header("tenant-b")

    other = rate(session_a, b, rating=1, scope_id="tenant-a")
    missing = rate(str(uuid.uuid4()), b, rating=1)
    not_a_uuid = rate("not-a-uuid", b, rating=1)
    for response in (other, missing, not_a_uuid):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "session_not_found"
    assert other.content == missing.content == not_a_uuid.content
    # tenant-a's message named on tenant-b's own session: as missing as any id.
    foreign = rate(session_b, b, rating=1, message_id=message_a)
    assert foreign.status_code == 404
    assert foreign.json()["error"]["code"] == "message_not_found"
    assert rows() == []


def test_require_scope_refuses_an_unscoped_caller(tmp_path, use_agent, chat, jwt_header):
    use_agent(write_agent_folder(tmp_path / "agent", amodal={"scope": {"requireScope": True}}))
    response = rate(uuid.uuid4(), jwt_header(""), rating=1)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "scope_required"


def test_an_operator_session_may_not_rate(test_agent, chat, jwt_header, admin_client):
    session_id, _ = converse(chat, jwt_header("tenant-a"))
    response = admin_client.post(
        f"/sessions/history/{session_id}/feedback",
        {"rating": 1, "scope_id": "tenant-a"},
        content_type="application/json",
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    assert rows() == []


# --- the session detail's feedback costs one query ------------------------------------------------------------


def detail_queries(session_id, headers) -> int:
    with CaptureQueriesContext(connection) as queries:
        detail(session_id, headers)
    return len(queries)


def test_the_detail_reads_its_feedback_in_one_query_whatever_its_length(test_agent, chat, jwt_header):
    """The session, its messages and its feedback: three queries (a JWT needs none), for a session of one
    exchange without feedback as for one of three exchanges rated by three users."""
    headers = jwt_header("tenant-a")
    short, _ = converse(chat, headers)
    long, message_id = converse(chat, headers)
    for _ in range(2):
        _, message_id = converse(chat, headers, session_id=long)
    for user in ("a", "b", "c"):
        rate(long, jwt_header("tenant-a", sub=user), rating=1, message_id=message_id, comment=user)
        rate(long, jwt_header("tenant-a", sub=user), rating=-1)
    assert len(detail(long, headers)["feedback"]) == 6
    assert detail_queries(short, headers) == detail_queries(long, headers) == 3


# --- the deploy a rating judges ------------------------------------------------------------------------


def test_a_rating_keeps_the_deploy_that_had_answered_when_it_was_given(test_agent, chat, jwt_header):
    headers = jwt_header("tenant-a", sub="user-1")
    session_id, message_id = converse(chat, headers)
    answered_by = Session.all_scopes.get(pk=session_id).deploy_id
    assert answered_by
    assert rate(session_id, headers, message_id=message_id, rating=-1).status_code == 200
    # A later configuration takes the session over; the rating still judges the one that answered.
    Session.all_scopes.filter(pk=session_id).update(deploy_id="a-later-deploy")
    assert list(Feedback.all_scopes.values_list("deploy_id", flat=True)) == [answered_by]
    assert rate(session_id, headers, rating=1).status_code == 200  # the session as a whole, now
    assert dict(Feedback.all_scopes.values_list("message__public_id", "deploy_id")) == {
        uuid.UUID(message_id): answered_by,
        None: "a-later-deploy",
    }
