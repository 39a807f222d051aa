"""benchmarks/load.py's database check: it passes on the rows a conversation's streams reported, and names
a missing or extra usage row, a row in another scope and a tool call the stream did not report."""

from __future__ import annotations

import pytest
from django.db import connection

from agents.models import Message, Session, UsageRecord
from benchmarks import load
from scoping.context import scope

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="the load benchmark checks a PostgreSQL database; run with DATABASE_URL=postgres://...",
    ),
    pytest.mark.django_db(transaction=True),
]


def database_url() -> str:
    settings = connection.settings_dict
    return f"postgres://{settings['USER']}@{settings['HOST']}:{settings['PORT'] or 5432}/{settings['NAME']}"


def saved_conversation(scope_id: str) -> str:
    """A session with a user message and an assistant message that made tool call t1, and its usage row."""
    with scope(scope_id):
        session = Session.objects.create(deploy_id="d")
        Message.objects.create(session=session, seq=0, role="user", text="show my recent transactions")
        answer = Message.objects.create(session=session, seq=1, role="assistant", tool_calls=[{"tool_id": "t1"}])
        UsageRecord.objects.create(session=session, message=answer, deploy_id="d", provider="local", model="local")
    return str(session.id)


def reported(session_id: str, scope_id: str, *, usage_events: int = 1, tool_ids: tuple[str, ...] = ("t1",)):
    message = load.Message(first_event=0.01, done=0.02, usage_events=usage_events, tool_ids=list(tool_ids))
    return load.Conversation(scope=scope_id, session_id=session_id, messages=[message])


def test_rows_matching_the_streams_pass():
    session_id = saved_conversation("load-a")
    assert load.check_rows(database_url(), [reported(session_id, "load-a")]) == []


@pytest.mark.parametrize(
    ("conversation", "problem"),
    [
        ({"scope_id": "load-b"}, "not exactly once in scope load-b"),
        ({"scope_id": "load-a", "usage_events": 2}, "2 messages, streams reported 3"),
        ({"scope_id": "load-a", "tool_ids": ("t1", "t2")}, "tool calls"),
    ],
    ids=["other-scope", "a-missing-model-call", "a-missing-tool-call"],
)
def test_rows_that_differ_from_the_streams_are_named(conversation, problem):
    session_id = saved_conversation("load-a")
    scope_id = conversation.pop("scope_id")
    problems = load.check_rows(database_url(), [reported(session_id, scope_id, **conversation)])
    assert problems and problem.split(",")[0] in " ".join(problems), problems
