"""A scope's budget holds when many of its messages race at the cap (SPEC §3 "Budgets"; agents.budgets).

Two daphne processes on one database (PostgreSQL when the session runs on it, else SQLite) take MESSAGES messages of one
scope at once, from as many threads released together, each a slow answer (`/slow`, 4 s) in a new session,
so every admission happens while the admitted messages still run: only their reservations can stop the
others. Every message costs the same, `cost` (the `local` model priced at 1 micro-dollar a token; measured
first on a server without budgets), and the reservation is that cost.

The arithmetic: the scope has spent `cost` (one earlier message) and its cap is that plus
HEADROOM_MESSAGES × `cost`. Admissions run one at a time per scope; the k-th sees spend + (k - 1) running
reservations, so exactly ceil(HEADROOM_MESSAGES) = 6 are admitted and the rest refused, and the spend ends
at 7 × cost: above the cap by half a message, within the guarantee (cap + one message's cost). Without the
per-scope lock (each admission in its own statements), PostgreSQL admitted 8 and ended 2.5 messages over.
"""

from __future__ import annotations

import json
import math
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import write_agent_folder
from tests.e2e.helpers import check_stream, events_of, iter_frames, parse_timestamp
from tests.e2e.live import LiveDatabase, LiveServer

pytestmark = pytest.mark.live

MESSAGES = 16
HEADROOM_MESSAGES = 5.5
SLOW_MESSAGE = "/slow 200 " + " ".join(f"w{index}" for index in range(20))  # 4 s
RACER = "tenant-racer"


def stream(server: LiveServer, scope_id: str) -> list[dict[str, Any]]:
    with (
        server.client(timeout=60) as client,
        client.stream(
            "POST", "/chat/stream", json={"message": SLOW_MESSAGE}, headers=server.headers(scope_id)
        ) as response,
    ):
        assert response.status_code == 200, response.read()
        events = events_of(list(iter_frames(response)))
    check_stream(events)
    return events


def agent_folder(root: Path, budgets: dict[str, Any] | None) -> str:
    return str(write_agent_folder(root, amodal={"budgets": budgets} if budgets else {}))


def spent(database: LiveDatabase, scope_id: str) -> int:
    return int(
        database.query("SELECT COALESCE(SUM(cost_micros), 0) FROM agents_usagerecord WHERE scope = %s", (scope_id,))[0][
            0
        ]
    )


def test_messages_racing_at_the_cap_pass_it_by_at_most_one_message(live_server_factory, live_database, tmp_path):
    live_database.execute(
        "INSERT INTO agents_modelprice (model, input_micros_per_mtok, output_micros_per_mtok, updated_at)"
        " VALUES (%s, %s, %s, CURRENT_TIMESTAMP)",
        ("local", 1_000_000, 1_000_000),
    )
    probe = live_server_factory(extra_env={"AMODAL_AGENT_DIR": agent_folder(tmp_path / "probe", None)})
    cost = stream(probe, "tenant-probe")[-1]["usage"]["cost_micros"]
    probe.stop()
    assert cost > 0

    folder = agent_folder(tmp_path / "budgets", {"period": "day", "scopeCostMicros": 10**12, "reserveCostMicros": cost})
    servers = [live_server_factory(extra_env={"AMODAL_AGENT_DIR": folder}) for _ in range(2)]
    assert stream(servers[0], RACER)[-1]["usage"]["cost_micros"] == cost  # the scope's spend before the race
    cap = cost + int(HEADROOM_MESSAGES * cost)
    live_database.execute("UPDATE scoping_scope SET budget_cost_micros = %s WHERE scope_id = %s", (cap, RACER))

    results: list[list[dict[str, Any]]] = [[] for _ in range(MESSAGES)]
    start = threading.Barrier(MESSAGES)

    def send(index: int) -> None:
        start.wait(timeout=30)
        results[index] = stream(servers[index % 2], RACER)

    threads = [threading.Thread(target=send, args=(index,)) for index in range(MESSAGES)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    assert all(events for events in results), "every message ended with `done`"

    admitted = [events for events in results if events[-1]["reason"] == "model_stop"]
    refused = [events for events in results if events[-1]["reason"] == "budget_exceeded"]
    expected = math.ceil((cap - cost) / cost)  # the k-th admission sees cost + (k - 1) reservations below the cap
    total = spent(live_database, RACER)
    figures = {"database": live_database.vendor, "messages": MESSAGES, "cost": cost, "cap": cap}
    figures |= {"admitted": len(admitted), "refused": len(refused), "spent": total, "over_cap": total - cap}
    print(json.dumps(figures))
    assert (len(admitted), len(refused)) == (expected, MESSAGES - expected) == (6, 10)
    assert all(events[-1]["usage"]["cost_micros"] == cost for events in admitted)
    assert all([item["type"] for item in events] == ["init", "error", "done"] for events in refused)
    assert total == cost * (1 + expected)
    assert cap < total <= cap + cost
    # They raced: every admitted message had started before the first of them ended.
    first_end = min(parse_timestamp(events[-1]["timestamp"]) for events in admitted)
    assert all(parse_timestamp(events[0]["timestamp"]) < first_end for events in admitted)
    # Nothing stays reserved, and the scope is now refused.
    assert live_database.query("SELECT COUNT(*) FROM agents_session WHERE budget_reserve_micros <> 0") == [(0,)]
    assert stream(servers[1], RACER)[-1]["reason"] == "budget_exceeded"
