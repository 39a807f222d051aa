"""Spend budgets (SPEC §3 "Budgets"): the period, the cap and its override, the admission with its
reservations, and what each endpoint answers for a message over the budget."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from channels.testing import WebsocketCommunicator
from django.utils import timezone as django_timezone

from agents import services
from agents.agent_folder import Budgets
from agents.budgets import admit, period_at, reservation
from agents.models import Message, MessageRole, ModelPrice, Session, SessionStatus, SessionTranscript, UsageRecord
from agents.runtime.providers.base import TokenUsage
from amodal_site.asgi import application
from scoping.context import scope
from scoping.models import Scope
from scoping.tokens import mint_token
from tests.conftest import write_agent_folder

CAP = 10_000
ZERO_USAGE = {
    "input_tokens": 0,
    "output_tokens": 0,
    "cache_read_tokens": 0,
    "cache_write_tokens": 0,
    "total_tokens": 0,
    "cost_micros": 0,
}


def budgets(period: str = "day", cap: int = CAP, reserve: int | None = None) -> Budgets:
    return Budgets(period=period, scope_cost_micros=cap, reserve_cost_micros=reserve)


@pytest.fixture
def budget_agent(tmp_path, use_agent):
    """The local provider, priced at 1 micro-dollar a token, and a daily cap of CAP per scope."""
    ModelPrice.objects.create(model="local", input_micros_per_mtok=1_000_000, output_micros_per_mtok=1_000_000)
    folder = write_agent_folder(tmp_path / "agent", amodal={"budgets": {"period": "day", "scopeCostMicros": CAP}})
    return use_agent(folder)


def spend(scope_id: str, cost: int, at: datetime | None = None) -> None:
    """A model call of `cost` in the scope (the rollup's triggers count it), at `at` (default now)."""
    with scope(scope_id):
        record = UsageRecord.objects.create(deploy_id="d", provider="local", model="local", cost_micros=cost)
    if at is not None:
        UsageRecord.all_scopes.filter(pk=record.pk).update(created_at=at)


def running_session(scope_id: str, reserve: int, *, expires_in: float = 15) -> Session:
    """A session whose message is running (its lease live for `expires_in` seconds) with a reservation."""
    with scope(scope_id):
        return Session.objects.create(
            deploy_id="d",
            lock_token="running",
            lock_expires_at=django_timezone.now() + timedelta(seconds=expires_in),
            budget_reserve_micros=reserve,
        )


def admit_in(scope_id: str, plan: Budgets, now: datetime | None = None):
    services.note_scope_activity(scope_id=scope_id)
    with scope(scope_id):
        return admit(scope_id=scope_id, budgets=plan, now=now)


# --- the period -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "now", "first", "last", "resets"),
    [
        ("day", datetime(2026, 12, 6, 23, 59, 59, 999999, UTC), date(2026, 12, 6), date(2026, 12, 6), "2026-12-07"),
        ("day", datetime(2026, 12, 7, 0, 0, tzinfo=UTC), date(2026, 12, 7), date(2026, 12, 7), "2026-12-08"),
        # A moment given in another time zone is placed in its UTC day.
        ("day", datetime(2026, 12, 7, 1, 30, tzinfo=timezone(timedelta(hours=5))), date(2026, 12, 6), None, None),
        ("month", datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC), date(2026, 12, 1), date(2026, 12, 31), "2027-01-01"),
        ("month", datetime(2027, 1, 1, 0, 0, tzinfo=UTC), date(2027, 1, 1), date(2027, 1, 31), "2027-02-01"),
        ("month", datetime(2028, 2, 10, tzinfo=UTC), date(2028, 2, 1), date(2028, 2, 29), "2028-03-01"),
    ],
)
def test_a_period_is_a_utc_calendar_day_or_month(kind, now, first, last, resets):
    period = period_at(kind, now)
    assert period.first_day == first
    if last is not None:
        assert period.last_day == last
        assert period.resets_at == datetime.fromisoformat(f"{resets}T00:00:00+00:00")


@pytest.mark.parametrize(("period", "spent_at", "now", "counted"), [
    ("day", datetime(2026, 12, 6, 23, 59, 59, tzinfo=UTC), datetime(2026, 12, 6, 23, 59, 59, 500000, tzinfo=UTC), True),
    ("day", datetime(2026, 12, 6, 23, 59, 59, tzinfo=UTC), datetime(2026, 12, 7, 0, 0, tzinfo=UTC), False),
    ("day", datetime(2026, 12, 7, 0, 0, tzinfo=UTC), datetime(2026, 12, 7, 0, 0, 1, tzinfo=UTC), True),
    ("month", datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC), datetime(2026, 12, 1, 0, 0, tzinfo=UTC), False),
    ("month", datetime(2026, 12, 1, 0, 0, tzinfo=UTC), datetime(2026, 12, 31, 23, 59, tzinfo=UTC), True),
])  # fmt: skip
@pytest.mark.django_db
def test_spend_just_before_midnight_counts_in_its_own_period_only(period, spent_at, now, counted):
    spend("tenant-a", 4_000, at=spent_at)
    spend("tenant-b", 9_999, at=spent_at)  # another scope's spend never counts

    admission = admit_in("tenant-a", budgets(period), now)

    assert admission.spent == (4_000 if counted else 0)
    assert admission.admitted


# --- the cap, its override, the reservations ---------------------------------------------------------------


@pytest.mark.django_db
def test_a_scope_at_its_cap_is_refused_and_below_it_admitted():
    spend("tenant-a", CAP - 1)
    below = admit_in("tenant-a", budgets())
    assert (below.admitted, below.spent, below.cap, below.reserve) == (True, CAP - 1, CAP, CAP // 100)
    spend("tenant-a", 1)
    at_cap = admit_in("tenant-a", budgets())
    assert (at_cap.admitted, at_cap.spent, at_cap.reserve) == (False, CAP, 0)


@pytest.mark.django_db
def test_unpriced_calls_cost_nothing_against_the_budget():
    spend("tenant-a", None)
    assert admit_in("tenant-a", budgets()).spent == 0


@pytest.mark.parametrize(
    ("override", "admitted", "cap"),
    [(None, False, CAP), (50_000, True, 50_000), (CAP + 1, True, CAP + 1), (0, False, 0)],
)
@pytest.mark.django_db
def test_the_scopes_override_replaces_the_default_cap(override, admitted, cap):
    spend("tenant-a", CAP)
    spend("tenant-b", CAP)
    services.note_scope_activity(scope_id="tenant-a")
    Scope.objects.filter(scope_id="tenant-a").update(budget_cost_micros=override)

    admission = admit_in("tenant-a", budgets())

    assert (admission.admitted, admission.cap) == (admitted, cap)
    assert not admit_in("tenant-b", budgets()).admitted, "the override is the one scope's"


@pytest.mark.django_db
def test_a_cap_of_zero_refuses_a_scope_that_spent_nothing():
    services.note_scope_activity(scope_id="tenant-a")
    Scope.objects.filter(scope_id="tenant-a").update(budget_cost_micros=0)
    assert not admit_in("tenant-a", budgets()).admitted


@pytest.mark.django_db
def test_running_messages_reservations_count_while_their_lease_lives():
    spend("tenant-a", 6_000)
    running_session("tenant-a", 3_000)
    running_session("tenant-a", 500, expires_in=-1)  # its process died: the lease expired
    running_session("tenant-b", 9_000)  # another scope's

    admission = admit_in("tenant-a", budgets(reserve=700))

    assert (admission.spent, admission.reserved, admission.reserve) == (6_000, 3_000, 700)
    running_session("tenant-a", 1_000)
    assert not admit_in("tenant-a", budgets()).admitted  # 6000 + 4000 reserved = the cap


def test_the_default_reservation_is_a_hundredth_of_the_cap_at_least_one():
    assert reservation(budgets(cap=10_000), 10_000) == 100
    assert reservation(budgets(cap=10_000), 150) == 2  # of the scope's own (overridden) cap, rounded up
    assert reservation(budgets(cap=10_000), 1) == 1
    assert reservation(budgets(cap=10_000, reserve=42), 10_000) == 42


@pytest.mark.django_db
def test_a_model_calls_cost_is_taken_off_its_reservation_in_the_same_update():
    session = running_session("tenant-a", 1_000)
    with scope("tenant-a"):
        services.add_to_session(session, usage=TokenUsage(10, 10), cost_micros=300, call_latency_ms=5)
        assert Session.objects.get(pk=session.pk).budget_reserve_micros == 700
        services.add_to_session(session, usage=TokenUsage(10, 10), cost_micros=5_000, call_latency_ms=5)
        assert Session.objects.get(pk=session.pk).budget_reserve_micros == 0


@pytest.mark.django_db
def test_releasing_a_lease_or_sweeping_an_expired_one_clears_the_reservation():
    live = running_session("tenant-a", 1_000)
    dead = running_session("tenant-a", 1_000, expires_in=-1)
    with scope("tenant-a"):
        services.release_lock(session_id=live.pk, lock_token="running", status=SessionStatus.IDLE)
    assert services.release_expired_leases() == 1
    assert list(Session.all_scopes.values_list("budget_reserve_micros", flat=True)) == [0, 0]
    assert Session.all_scopes.get(pk=dead.pk).status == SessionStatus.INTERRUPTED


# --- the endpoints ---------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_message_over_the_budget_streams_init_error_done_and_calls_no_model(budget_agent, chat, jwt_header, client):
    headers = jwt_header("tenant-a")
    first = chat.stream({"message": "/say within the budget"}, headers)
    assert first.of_type("done")[0]["reason"] == "model_stop"
    session_id = first.of_type("init")[0]["session_id"]
    assert Session.all_scopes.get(pk=session_id).budget_reserve_micros == 0, "the reservation ends with the message"
    spend("tenant-a", CAP)
    calls_before = UsageRecord.all_scopes.count()

    refused = chat.stream({"message": "/say over it", "session_id": session_id}, headers)

    assert refused.status == 200
    assert [item["type"] for item in refused.events] == ["init", "error", "done"]
    error, done = refused.events[1], refused.events[2]
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date()
    assert error["code"] == "budget_exceeded"
    assert error["message"] == (
        f"This account has used today's budget ({datetime.now(UTC).date()}, UTC); it resets at {tomorrow} 00:00 UTC."
    )
    assert (done["reason"], done["usage"]) == ("budget_exceeded", ZERO_USAGE)
    assert UsageRecord.all_scopes.count() == calls_before, "nothing was sent to the model"
    # The refused message is in the session (so replay shows why nothing answered), not in the transcript.
    session = Session.all_scopes.get(pk=session_id)
    last = Message.all_scopes.filter(session=session).order_by("-seq").first()
    assert (last.role, last.text, last.error_code) == (MessageRole.USER, "/say over it", "budget_exceeded")
    assert "over it" not in SessionTranscript.all_scopes.get(session=session).body
    assert (session.status, session.lock_token, session.message_count) == (SessionStatus.IDLE, "", 3)
    # The history API says so too, so a client resuming the session can show why nothing answered.
    history = client.get(f"/sessions/history/{session_id}", headers=headers).json()
    assert [(m["role"], m["text"], m["error"]) for m in history["messages"]] == [
        ("user", "/say within the budget", None),
        ("assistant", "within the budget", None),
        ("user", "/say over it", "budget_exceeded"),
    ]


@pytest.mark.django_db(transaction=True)
def test_a_refused_first_message_leaves_its_session_and_the_next_period_answers(budget_agent, chat, jwt_header):
    headers = jwt_header("tenant-a")
    spend("tenant-a", CAP)
    refused = chat.stream({"message": "/say refused"}, headers)
    session_id = refused.of_type("init")[0]["session_id"]
    assert refused.of_type("done")[0]["reason"] == "budget_exceeded"

    UsageRecord.all_scopes.update(created_at=django_timezone.now() - timedelta(days=1))  # the period has turned
    answered = chat.stream({"message": "/say answered", "session_id": session_id}, headers)

    assert answered.of_type("done")[0]["reason"] == "model_stop"
    body = SessionTranscript.all_scopes.get(session_id=session_id).body
    assert "answered" in body and "refused" not in body, "the model never sees the refused message"


@pytest.mark.django_db(transaction=True)
def test_sync_over_the_budget_is_429_and_writes_nothing(budget_agent, chat, jwt_header):
    headers = jwt_header("tenant-a")
    session_id = chat.sync({"message": "/say first"}, headers).json()["session_id"]
    spend("tenant-a", CAP)
    messages_before = Message.all_scopes.count()

    for body in ({"message": "/say again", "session_id": session_id}, {"message": "/say in a new session"}):
        result = chat.sync(body, headers)
        assert result.status == 429
        assert result.json()["error"]["code"] == "budget_exceeded"
        assert "it resets at " in result.json()["error"]["message"]

    assert Message.all_scopes.count() == messages_before
    assert Session.all_scopes.count() == 1
    assert Session.all_scopes.get().lock_token == ""


@pytest.mark.django_db(transaction=True)
def test_another_scopes_session_is_404_before_the_budget_is_read(budget_agent, chat, jwt_header):
    other = chat.sync({"message": "/say mine"}, jwt_header("tenant-b")).json()["session_id"]
    spend("tenant-a", CAP)
    result = chat.sync({"message": "/say hi", "session_id": other}, jwt_header("tenant-a"))
    assert (result.status, result.json()["error"]["code"]) == (404, "session_not_found")


@pytest.mark.django_db(transaction=True)
def test_the_websocket_refuses_like_the_stream(budget_agent):
    spend("tenant-a", CAP)

    async def talk() -> list[dict]:
        communicator = WebsocketCommunicator(application, f"/ws/chat?token={mint_token(scope_id='tenant-a')}")
        await communicator.connect(timeout=10)
        await communicator.receive_json_from(timeout=10)  # auth_ok
        await communicator.send_json_to({"type": "message", "message": "/say hi"})
        events = []
        while not events or events[-1]["type"] != "done":
            events.append(await communicator.receive_json_from(timeout=10))
        await communicator.disconnect()
        return events

    events = asyncio.run(talk())
    assert [item["type"] for item in events] == ["init", "error", "done"]
    assert events[1]["code"] == "budget_exceeded"
    assert events[2]["reason"] == "budget_exceeded"


@pytest.mark.django_db(transaction=True)
def test_a_message_that_waited_for_its_session_is_admitted_then(budget_agent, chat, jwt_header, monkeypatch):
    """The busy path: the lease is taken after open_session, so the admission runs once it is held."""
    headers = jwt_header("tenant-a")
    session_id = chat.sync({"message": "/say first"}, headers).json()["session_id"]
    with scope("tenant-a"):
        assert services.try_lock_session(session_id=session_id, lock_token="someone-else")
    original = services.try_lock_session
    attempts: list[int] = []

    def release_on_second_attempt(**kwargs):
        attempts.append(1)
        if len(attempts) == 2:
            with scope("tenant-a"):
                services.release_lock(session_id=session_id, lock_token="someone-else", status=SessionStatus.IDLE)
            spend("tenant-a", CAP)  # meanwhile the scope reached its cap
        return original(**kwargs)

    monkeypatch.setattr(services, "try_lock_session", release_on_second_attempt)
    result = chat.stream({"message": "/say waited", "session_id": session_id}, headers)

    assert [item["type"] for item in result.events] == ["init", "error", "done"]
    assert result.events[-1]["reason"] == "budget_exceeded"
    assert Session.all_scopes.get(pk=session_id).lock_token == ""


@pytest.mark.django_db(transaction=True)
def test_without_budgets_nothing_is_capped_or_reserved(test_agent, chat, jwt_header):
    """(Nor read: tests/agents/test_query_counts.py counts the statements with and without budgets.)"""
    spend("tenant-a", 10**12)
    services.note_scope_activity(scope_id="tenant-a")
    Scope.objects.filter(scope_id="tenant-a").update(budget_cost_micros=0)  # an override alone caps nothing
    result = chat.sync({"message": "/say unlimited"}, jwt_header("tenant-a"))
    assert (result.status, result.json()["response"]) == (200, "unlimited")
