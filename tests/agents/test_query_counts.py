"""A message costs the same whether it is the 2nd or the 200th of its session: the same SQL statements
and the same hand-offs to worker threads, and none of Django's sync middleware on the chat path."""

from __future__ import annotations

import asyncio
import json
import re
import threading

import pytest
from asgiref.sync import SyncToAsync
from django.db import connection
from django.db.backends import utils as db_utils
from django.db.models import Sum

from agents import usage_rollup
from agents.models import Message, MessageRole, Session, SessionTranscript, UsageRecord, UsageRollup
from agents.services import legacy_parts
from scoping.context import scope
from tests.conftest import write_agent_folder

# The statements of a plain message on a continued session, in order (SQLite; PostgreSQL runs the same):
# session + lease (2), scope activity (1), then in the stream: the last seq, the transcript, the memory
# section, the user message with its transcript part (transaction of 3), the model call's price and
# record (transaction of 4), the lease's release (1). The usage rollup (Cost & Usage) adds none: database
# triggers on the usage table update it inside the record's INSERT (agents.usage_rollup).
STATEMENT_BUDGET = 18
# With `budgets` in amodal.json (agents.budgets): the admission's one SELECT (the scope's cap override, its
# spend from the rollup and its running messages' reservations), and the BEGIN of the transaction that holds
# the scope's row lock from its activity UPDATE to the lease (SQLite's; psycopg begins without a statement).
# The reservation rides on the statements above: the lease's UPDATE (or the new session's INSERT) writes it,
# the model call's totals UPDATE takes its cost off, the release clears it.
BUDGET_STATEMENTS = 2
# db_call hand-offs: open the session, start the message, record the call (which releases the lease).
DB_HANDOFFS = 3


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


def shape(sql: str) -> str:
    """A statement without its values, so two messages' statements compare by what they do."""
    return re.sub(r"'[^']*'|\b\d+\b", "?", sql)


def send(chat, headers, message: str, session_id: str | None = None) -> str:
    body = {"message": message, **({"session_id": session_id} if session_id else {})}
    result = chat.sync(body, headers)
    assert result.status == 200, result.body
    return result.json()["session_id"]


def statements_of_one_message(chat, headers, counter, session_id) -> list[str]:
    start = len(counter.statements)
    send(chat, headers, "/say counted", session_id)
    return [shape(sql) for sql in counter.statements[start:]]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("budgets", [False, True], ids=["no-budgets", "budgets"])
def test_message_200_runs_the_same_statements_as_message_2(
    tmp_path, use_agent, chat, jwt_header, count_queries, budgets
):
    amodal = {"budgets": {"period": "month", "scopeCostMicros": 10**12}} if budgets else {}
    use_agent(write_agent_folder(tmp_path / "agent", amodal=amodal))
    headers = jwt_header("tenant-a")
    session_id = send(chat, headers, "/say first")
    second = statements_of_one_message(chat, headers, count_queries, session_id)
    for index in range(197):
        # Tool calls too, so the history holds tool_use and tool_result blocks.
        send(
            chat, headers, '/tool memory {"action": "list"}' if index % 10 == 0 else f"/say number {index}", session_id
        )
    two_hundredth = statements_of_one_message(chat, headers, count_queries, session_id)

    assert second == two_hundredth, "\n".join(two_hundredth)
    assert 0 < len(second) <= STATEMENT_BUDGET + (BUDGET_STATEMENTS if budgets else 0), "\n".join(second)
    admissions = sum('SUM(U0."budget_reserve_micros")' in sql for sql in second)
    assert admissions == (1 if budgets else 0), "\n".join(second)
    assert not any('FROM "agents_message"' in sql and "LIMIT" not in sql for sql in second), "no row scan"
    assert (
        Session.all_scopes.get(pk=session_id).message_count == 2 * 200 + 20
    )  # 200 messages; the 20 with a tool call made two calls
    # ... and every model call is in the usage rollup, kept without a statement of the hot path's own.
    assert not any("usagerollup" in sql for sql in count_queries.statements)
    assert UsageRollup.all_scopes.aggregate(calls=Sum("calls"))["calls"] == UsageRecord.all_scopes.count() == 220
    assert usage_rollup.differences(connection) == []


@pytest.mark.django_db(transaction=True)
def test_the_transcript_is_what_the_rows_say(test_agent, chat, jwt_header):
    headers = jwt_header("tenant-a")
    session_id = send(chat, headers, "/say one")
    send(chat, headers, '/tool memory {"action": "list"}', session_id)
    send(chat, headers, "/say three", session_id)
    transcript = SessionTranscript.all_scopes.get(session_id=session_id)
    messages = json.loads("[" + transcript.body[1:] + "]")

    assert [m["role"] for m in messages] == [
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
        "assistant",
    ]
    assert messages[0] == {"role": "user", "content": "/say one"}
    assert messages[1] == {"role": "assistant", "content": [{"type": "text", "text": "one"}]}
    tool_use = messages[3]["content"][0]
    assert tool_use["type"] == "tool_use" and tool_use["name"] == "memory"
    assert messages[4]["content"][0]["tool_use_id"] == tool_use["id"]
    assert transcript.index.count(":1;") == 3  # three exchanges


@pytest.mark.django_db(transaction=True)
def test_a_session_from_before_transcripts_gets_one_built_once(test_agent, chat, jwt_header, count_queries):
    with scope("tenant-a"):
        session = Session.objects.create(deploy_id="d", provider="local", model="local", title="old")
        rows = [
            Message(
                session=session,
                seq=seq,
                role=MessageRole.USER if seq % 2 == 0 else MessageRole.ASSISTANT,
                text=f"m{seq}",
            )
            for seq in range(6)
        ]
        Message.objects.bulk_create(rows)
    headers = jwt_header("tenant-a")

    send(chat, headers, "/say again", str(session.pk))

    transcript = SessionTranscript.all_scopes.get(session=session)
    expected = "".join("," + part.json for part in legacy_parts(rows))
    assert transcript.body.startswith(expected)
    assert transcript.index.count(":1;") == 4  # three old exchanges and the new one
    assert Message.all_scopes.filter(session=session).count() == 8
    steady = statements_of_one_message(chat, headers, count_queries, str(session.pk))
    again = statements_of_one_message(chat, headers, count_queries, str(session.pk))
    assert steady == again


# --- Hand-offs to worker threads, through the real ASGI application --------------------------------


async def asgi_post(path: str, body: dict, headers: dict[str, str]) -> tuple[int, bytes]:
    """One request through amodal_site.asgi.application, as daphne would make it."""
    from amodal_site.asgi import application

    raw = json.dumps(body).encode()
    scope_ = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(raw)).encode()),
            *((name.lower().encode(), value.encode()) for name, value in headers.items()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    sent: list[dict] = []
    finished = asyncio.Event()
    delivered = False

    async def receive() -> dict:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": raw, "more_body": False}
        await finished.wait()
        return {"type": "http.disconnect"}

    async def send_(message: dict) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            finished.set()

    await application(scope_, receive, send_)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


@pytest.fixture
def handoffs(monkeypatch) -> list[str]:
    """The name of every function handed to a worker thread (asgiref's sync_to_async)."""
    names: list[str] = []
    original = SyncToAsync.__call__

    async def counted(self, *args, **kwargs):
        func = getattr(self.func, "__wrapped__", self.func)
        names.append(f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', repr(func))}")
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(SyncToAsync, "__call__", counted)
    return names


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", ["/chat/stream", "/chat/sync"])
def test_a_chat_message_hands_off_only_its_database_steps(test_agent, chat, jwt_header, handoffs, path):
    headers = jwt_header("tenant-a")
    session_id = send(chat, headers, "/say first")

    def one_message() -> list[str]:
        start = len(handoffs)
        status, body = asyncio.run(asgi_post(path, {"message": "/say counted", "session_id": session_id}, headers))
        assert status == 200, body
        assert b"counted" in body
        return handoffs[start:]

    second, third = one_message(), one_message()
    assert second == third
    middleware = [name for name in second if "middleware" in name.lower()]
    assert middleware == [], "sync middleware ran on the chat path"
    database_steps = [name for name in second if name.startswith(("agents.services", "core.db"))]
    assert len(database_steps) == DB_HANDOFFS, second
