"""One message costs the same number of database queries whatever the length of its session."""

from __future__ import annotations

import threading

import pytest
from django.db.backends import utils as db_utils

from agents.models import Message, MessageRole, Session
from scoping.context import scope

QUERY_BUDGET = 20  # 13 today on SQLite: scope, session, lease, history, user message, price, turn


class QueryCounter:
    """Counts every SQL statement on every thread (the ORM of the async views runs in worker threads)."""

    def __init__(self) -> None:
        self.statements: list[str] = []
        self.lock = threading.Lock()

    def record(self, sql: str) -> None:
        with self.lock:
            self.statements.append(sql)


@pytest.fixture
def count_queries(monkeypatch):
    counter = QueryCounter()
    execute, executemany = db_utils.CursorWrapper._execute, db_utils.CursorWrapper._executemany

    def counted_execute(self, sql, params, *ignored_wrappers):
        counter.record(sql)
        return execute(self, sql, params, *ignored_wrappers)

    def counted_executemany(self, sql, param_list, *ignored_wrappers):
        counter.record(sql)
        return executemany(self, sql, param_list, *ignored_wrappers)

    monkeypatch.setattr(db_utils.CursorWrapper, "_execute", counted_execute)
    monkeypatch.setattr(db_utils.CursorWrapper, "_executemany", counted_executemany)
    return counter


def session_with_history(scope_id: str, prior_messages: int) -> str:
    with scope(scope_id):
        session = Session.objects.create(deploy_id="d", provider="local", model="local", title="long")
        Message.objects.bulk_create(
            [
                Message(
                    session=session,
                    seq=seq,
                    role=MessageRole.USER if seq % 2 == 0 else MessageRole.ASSISTANT,
                    text=f"message number {seq}",
                    tool_calls=[]
                    if seq % 4 != 3
                    else [
                        {
                            "tool_id": f"toolu_{seq}",
                            "tool_name": "t",
                            "parameters": {"n": seq},
                            "status": "success",
                            "result": "ok",
                            "duration_ms": 1,
                        }
                    ],
                )
                for seq in range(prior_messages)
            ]
        )
        Session.objects.filter(pk=session.pk).update(message_count=prior_messages)
        return str(session.pk)


def queries_for_one_message(chat, headers, counter, session_id) -> list[str]:
    start = len(counter.statements)
    result = chat.sync({"message": "/say counted", "session_id": session_id}, headers)
    assert result.status == 200
    assert result.json()["response"] == "counted"
    return counter.statements[start:]


@pytest.mark.django_db(transaction=True)
def test_queries_per_message_do_not_grow_with_the_session(test_agent, chat, jwt_header, count_queries):
    headers = jwt_header("tenant-a")
    short_session = session_with_history("tenant-a", 1)
    long_session = session_with_history("tenant-a", 50)
    # Warm up the per-process caches (deploy row) so both measured calls are steady-state.
    assert chat.sync({"message": "/say warm"}, headers).status == 200

    short = queries_for_one_message(chat, headers, count_queries, short_session)
    long = queries_for_one_message(chat, headers, count_queries, long_session)

    assert len(short) == len(long), "\n".join(long)
    assert 0 < len(long) <= QUERY_BUDGET
    assert Message.all_scopes.filter(session_id=long_session).count() == 52
    assert Message.all_scopes.filter(session_id=short_session).count() == 3


@pytest.mark.django_db(transaction=True)
def test_queries_per_message_do_not_grow_with_tool_calls_in_history(test_agent, chat, jwt_header, count_queries):
    headers = jwt_header("tenant-a")
    first = session_with_history("tenant-a", 4)
    second = session_with_history("tenant-a", 200)
    assert chat.sync({"message": "/say warm"}, headers).status == 200
    counts = [len(queries_for_one_message(chat, headers, count_queries, s)) for s in (first, second, first)]
    assert counts[0] == counts[1] == counts[2]
