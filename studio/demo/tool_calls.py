"""Demo tool calls as the runtime saves them on an assistant message: `request` calls to the finance API,
store queries and writes, memory actions; some fail the ways real ones do."""

from __future__ import annotations

import json
import random
import string
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from studio.demo.content import MEMORY_FACTS, PREFERENCE_VALUES, money

CATEGORIES = ["groceries", "rent", "utilities", "transport", "dining", "entertainment", "salary", "health"]
TOOL_ERRORS = {
    "request": [
        "HTTP 503 from app-api: Service Unavailable",
        "The tool request did not finish within 30 seconds.",
        "HTTP 404 from app-api: account not found",
        "This write needs the user's approval first: ask them, then call again with intent confirmed_write.",
    ],
    "query_store": ["Unknown store 'budgets'. Stores: categories, preferences."],
    "store_preferences": ["Validation failed: value: must be a string"],
    "memory": ["Memory is full: 50 entries is the limit. Remove an entry first."],
}


Generated = tuple[dict[str, Any], Any, int]  # parameters, result, duration in ms


def tool_call(rng: random.Random, day: datetime, *, failed: bool) -> tuple[dict[str, Any], int]:
    """One tool call as the runtime saves it, and its duration in ms."""
    name = rng.choices(list(GENERATORS), [60, 18, 10, 12])[0]
    tool_id = "toolu_" + "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(24))
    parameters, result, duration = GENERATORS[name](rng, day)
    call: dict[str, Any] = {"tool_id": tool_id, "tool_name": name, "parameters": parameters}
    if failed:
        call["status"] = "error"
        call["error"] = rng.choice(TOOL_ERRORS[name])
        if "30 seconds" in call["error"]:
            duration = 30000
    else:
        call["status"] = "success"
        call["result"] = result if isinstance(result, str) else json.dumps(result)
    call["duration_ms"] = duration
    return call, duration


def request_call(rng: random.Random, day: datetime) -> Generated:
    month_start = day.replace(day=1).date().isoformat()
    endpoint = rng.choice(["/transactions", "/accounts", "/spending/summary", "/households/me", "/transfers"])
    method = "POST" if endpoint == "/transfers" else "GET"
    parameters: dict[str, Any] = {
        "connection": "app-api",
        "method": method,
        "endpoint": endpoint,
        "intent": "write" if method == "POST" else "read",
    }
    if endpoint == "/transactions":
        parameters["params"] = {"category": rng.choice(CATEGORIES), "from": month_start, "to": day.date().isoformat()}
        result: Any = {
            "status": 200,
            "body": {
                "transactions": [
                    {
                        "id": f"tx_{rng.randint(10000, 99999)}",
                        "amount": -money(rng, 3, 400),
                        "merchant": rng.choice(["FreshMart", "City Transit", "Corner Cafe", "PowerCo", "Streamly"]),
                        "date": (day - timedelta(days=rng.randint(0, 27))).date().isoformat(),
                    }
                    for _ in range(rng.randint(1, 4))
                ],
                "total": money(rng, 20, 1500),
            },
        }
    elif endpoint == "/transfers":
        parameters["data"] = {
            "from_account": "acc_savings",
            "to_account": "acc_checking",
            "amount": money(rng, 50, 2000),
            "currency": "USD",
        }
        result = {"status": "needs_approval", "preview": parameters["data"]}
    elif endpoint == "/accounts":
        result = {
            "status": 200,
            "body": [
                {"id": "acc_checking", "balance": money(rng, 100, 9000)},
                {"id": "acc_savings", "balance": money(rng, 1000, 40000)},
            ],
        }
    else:
        result = {
            "status": 200,
            "body": {"period": month_start, "by_category": {c: money(rng, 10, 900) for c in rng.sample(CATEGORIES, 4)}},
        }
    return parameters, result, int(rng.lognormvariate(5.3, 0.7))


def query_store_call(rng: random.Random, day: datetime) -> Generated:
    parameters = {"store": rng.choice(["preferences", "categories"]), "limit": 20}
    result = {"documents": [{"key": "currency", "value": rng.choice(PREFERENCE_VALUES["currency"])}], "count": 1}
    return parameters, result, rng.randint(3, 40)


def store_preferences_call(rng: random.Random, day: datetime) -> Generated:
    key = rng.choice(list(PREFERENCE_VALUES))
    parameters = {"key": key, "value": rng.choice(PREFERENCE_VALUES[key])}
    return parameters, {"stored": True, "key": key, "version": rng.randint(1, 6)}, rng.randint(4, 60)


def memory_call(rng: random.Random, day: datetime) -> Generated:
    action = rng.choice(["add", "list", "search"])
    parameters = {"action": action}
    result: Any
    if action == "add":
        parameters["content"] = rng.choice(MEMORY_FACTS)
        result = f"Remembered (entry {rng.randint(1, 400)})."
    elif action == "search":
        parameters["query"] = rng.choice(["rent", "salary", "budget", "holiday"])
        result = {"entries": [{"id": rng.randint(1, 400), "content": rng.choice(MEMORY_FACTS)}]}
    else:
        result = {"entries": [{"id": i, "content": rng.choice(MEMORY_FACTS)} for i in range(1, 4)]}
    return parameters, result, rng.randint(2, 30)


# In the order of their weights in tool_call (and of the random draws a seed has always made).
GENERATORS: dict[str, Callable[[random.Random, datetime], Generated]] = {
    "request": request_call,
    "query_store": query_store_call,
    "store_preferences": store_preferences_call,
    "memory": memory_call,
}
