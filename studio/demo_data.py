"""Realistic demo data for Studio: many scopes with skewed activity, sessions with tool calls, usage rows.

Used by `manage.py generate_demo_data` (and the Studio benchmark). Everything is drawn from one seeded
`random.Random`, so a given seed and size give the same data.

Shape of the data:
- `scopes` scope ids of several styles (short household ids, opaque org ids, long tenant paths, e-mail
  like ids) plus the global scope; activity is Zipf-like (a few scopes have most sessions, many have one).
- `sessions` sessions over the last `days` days (more recent days busier, weekdays busier than weekends,
  office hours busier than nights), on several deploys (Deployment rows, newer deploys for newer sessions)
  and models: claude-sonnet-4-5 (dated snapshot id), claude-haiku-4-5, claude-opus-4-5, claude-sonnet-4,
  and the offline `local` model, which has no price (its usage is "unpriced").
- `usage_rows` model calls in total (one assistant message and one UsageRecord each), spread unevenly over
  the sessions. A turn is a user message and 1-4 model calls; every call but the last of a turn makes tool
  calls (`request`, `query_store`, `store_preferences`, `memory`) with results, some with errors.
- Some sessions end interrupted (the last call cut off, its pending tool calls cancelled) or with an error
  (`overloaded_error`, `rate_limit_error`, `max_turns`, `budget_exceeded`).
- Token counts grow with the conversation; Anthropic sessions mostly use prompt caching (cache writes on
  the first call, cache reads after). Costs come from agents.pricing (admin overrides included).
- Memory entries and store documents (with previous versions) for the more active scopes, when those
  models exist.

Writing is fast at large sizes: rows are produced in batches of sessions and written with COPY on
PostgreSQL (psycopg's copy protocol) and with executemany INSERTs elsewhere. Primary keys are assigned
here (UUIDs for sessions, a reserved range of integers for messages and usage rows), so nothing needs to
be read back.
"""

from __future__ import annotations

import bisect
import itertools
import json
import math
import random
import string
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.color import no_style
from django.db import connection, models, transaction
from django.db.models import Max
from django.utils import timezone

from agents.models import Deployment, Message, Session, SessionTag, UsageRecord
from agents.pricing import cost_micros, price_for_model
from scoping.models import Scope
from studio.model_access import every_scope, optional_model

GLOBAL_SCOPE = ""
ZIPF_EXPONENT = 1.07
MAX_CALL_WEIGHT = 40.0
BATCH_SESSIONS = 4000
FAST_LOAD_ROWS = 50_000

# provider, model, weight, (ms to first token, ms per output token)
MODEL_MIX: list[tuple[str, str, float, tuple[int, float]]] = [
    ("anthropic", "claude-sonnet-4-5-20250929", 47, (700, 18.0)),
    ("anthropic", "claude-haiku-4-5", 27, (350, 7.0)),
    ("anthropic", "claude-opus-4-5", 10, (1200, 30.0)),
    ("anthropic", "claude-sonnet-4", 7, (750, 20.0)),
    ("local", "local", 9, (5, 0.05)),
]
DEPLOY_VERSIONS = [("1.0.0", 0.0), ("1.1.0", 0.35), ("1.2.0", 0.7), ("1.3.0", 0.9)]  # (version, share of range)
STATUS_MIX = [("idle", 90.5), ("interrupted", 5.0), ("error", 4.0), ("running", 0.5)]
ERROR_CODES = ["overloaded_error", "rate_limit_error", "max_turns", "budget_exceeded", "api_error"]
TAGS = ["budget", "transactions", "transfers", "onboarding", "support", "savings", "bills"]

# (topic, first message); a session's final answers are drawn from its topic's answers.
FIRST_PROMPTS = [
    ("spending", "How much did we spend on groceries last month?"),
    ("balance", "What's the balance of our joint checking account?"),
    ("transactions", "Show me all transactions over $200 in October"),
    ("budget", "Are we on track with the dining out budget this month?"),
    ("memory", "Remember that rent is due on the 1st of every month"),
    ("transfer", "Move $250 from savings to checking"),
    ("spending", "Summarise our spending by category for the last 30 days"),
    ("bills", "Why did the utilities bill jump in September?"),
    ("preferences", "Set my preferred currency to EUR"),
    ("bills", "Which subscriptions do we pay for every month?"),
    ("preferences", "Show my preferences"),
    ("income", "How much income did we have this quarter?"),
    ("spending", "Compare transport spending this month with last month"),
    ("income", "Did the salary payment arrive yet?"),
    ("transactions", "Find the transaction from the hardware store last week"),
    ("budget", "Can you set up a monthly budget of $600 for groceries?"),
    ("spending", "What did we spend at restaurants on weekends?"),
    ("balance", "List the accounts of the household"),
    ("transfer", "Transfer $1,200 to the landlord for rent"),
    ("budget", "How much is left in the entertainment budget?"),
    ("transactions", "Explain the pending transactions on the credit card"),
    ("budget", "We're saving for a holiday: how much can we put aside each month?"),
    ("spending", "What are our three biggest expenses this year?"),
    ("preferences", "Please answer in short bullet points from now on"),
]
FOLLOW_UPS = [
    "And the month before?",
    "Can you break that down by week?",
    "Yes, go ahead.",
    "No, cancel that.",
    "Only the card ending in 4421, please.",
    "What about the savings account?",
    "Thanks! Also remember that we get paid on the 25th.",
    "Which merchant was the largest?",
    "Show it as a list.",
    "Is that more than usual?",
    "Approve the transfer.",
    "Use EUR for the amounts.",
]
ANSWERS = {
    "spending": [
        "You spent **${a:,.2f}** between {d1} and {d2}, across {n} transactions.\n\n"
        "- Largest: *FreshMart* (${b:,.2f})\n- Smallest: corner shop (${c:,.2f})\n\nThat is {p}% of the budget.",
        "Spending by category (last 30 days):\n\n- Rent: ${a:,.2f}\n- Groceries: ${b:,.2f}\n- Transport: "
        "${c:,.2f}\n\nDetails: https://app.example.com/reports/spending",
        "This month: **${b:,.2f}**; last month: ${a:,.2f}. The difference is mostly `transport` ({p}% lower).",
    ],
    "balance": [
        "The joint checking account holds **${a:,.2f}** as of {d2}.",
        "The household has two accounts:\n\n1. Checking: ${a:,.2f}\n2. Savings: ${b:,.2f}",
    ],
    "transactions": [
        "Here are the transactions over $200:\n\n1. {d1}: Rent, ${a:,.2f}\n2. {d2}: Insurance, ${b:,.2f}\n"
        "3. {d2}: Electronics store, ${c:,.2f}",
        "I found it: **Hardware Hub**, ${c:,.2f} on {d2} (card ending 4421).",
        "There are {n} pending transactions on the credit card, ${b:,.2f} in total; they usually settle in 1-3 days.",
    ],
    "budget": [
        "You are at **{p}%** of the budget with {n} days left. At this pace you would end the month about "
        "${c:,.2f} over.",
        "Done: the monthly budget is set to **${b:,.2f}**. I'll warn you at 80%.",
        "${c:,.2f} is left for this month ({p}% used).",
    ],
    "memory": ["Done: I'll remember that. You can ask me to `list` what I remember at any time."],
    "transfer": [
        "I prepared the transfer of **${a:,.2f}**. It needs your approval before I send it: reply *approve* "
        "to confirm.",
        "The transfer of ${a:,.2f} was sent on {d2}; reference `TRF-{n}{p}`.",
    ],
    "bills": [
        "The September bill was ${a:,.2f}, up {p}% from August; the statement shows a one-off meter "
        "correction of ${c:,.2f}.",
        "You pay for {n} subscriptions, ${c:,.2f} a month in total:\n\n- Streamly\n- CloudDrive\n- Gym",
    ],
    "preferences": [
        "Your preferences: currency **EUR**, budget period *monthly*, answers `short`.",
        "Saved: I'll use that from now on.",
    ],
    "income": [
        "Income this quarter: **${a:,.2f}** (salary and one refund of ${c:,.2f}).",
        "Yes: the salary of ${a:,.2f} arrived on {d2}.",
    ],
    "unavailable": [
        "I could not reach the finance app just now, so I can't confirm that figure. Please try again in a "
        "minute.",
    ],
}
INTERRUPTED_TEXT = "Let me look that up. The transactions for {d1} show"
TOOL_PREAMBLES = ["", "", "Let me look that up.", "I'll check the transactions.", "One moment, checking."]
MEMORY_FACTS = [
    "Rent is due on the 1st of every month.",
    "Salary arrives on the 25th.",
    "Prefers answers in short bullet points.",
    "Saving for a holiday in Portugal next summer.",
    "The card ending in 4421 is the shared household card.",
    "Groceries budget is $600 a month.",
    "Does not want transfers above $1,000 without a phone call.",
    "Uses EUR for reports.",
    "Their child's allowance is $20 a week.",
    "Car insurance renews in March.",
    "Pays the landlord by bank transfer, reference FLAT-12.",
    "Wants a reminder when dining out passes 80% of its budget.",
]
PREFERENCE_VALUES = {
    "currency": ["USD", "EUR", "GBP", "CAD"],
    "budget_period": ["monthly", "weekly", "biweekly"],
    "answer_style": ["short", "detailed", "bullet points"],
    "language": ["en", "es", "de", "fr"],
    "notify_over_budget": ["yes", "no"],
}
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


@dataclass
class DemoOptions:
    scopes: int = 50
    sessions: int = 500
    usage_rows: int = 2000
    seed: int = 7
    days: int = 90
    batch_sessions: int = BATCH_SESSIONS
    memory: bool = True
    stores: bool = True
    now: datetime | None = None
    fast_load: bool | None = None  # None: on PostgreSQL from FAST_LOAD_ROWS usage rows (see bulk_load)


@dataclass
class DemoSummary:
    scopes: int = 0
    sessions: int = 0
    messages: int = 0
    usage_rows: int = 0
    tags: int = 0
    deployments: int = 0
    memory_entries: int = 0
    store_documents: int = 0
    store_versions: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


# --- Writing rows fast ------------------------------------------------------------------------------------


class RowWriter:
    """Insert tuples of values into a model's table: COPY on PostgreSQL, executemany elsewhere.

    `fields` are attribute names in tuple order; JSON values arrive as JSON text. Fields of the model that
    are not given get their default (so a column added later does not break the generator)."""

    def __init__(self, model: type[models.Model], fields: Sequence[str]) -> None:
        self.model = model
        opts = model._meta
        self.fields = [opts.get_field(name) for name in fields]
        given = {f.attname for f in self.fields}
        self.extra = [
            f for f in opts.concrete_fields
            if f.attname not in given and not (f.primary_key and isinstance(f, models.AutoField | models.BigAutoField))
        ]
        self.extra_values = tuple(self._default(f) for f in self.extra)
        self.columns = [f.column for f in self.fields + self.extra]
        self.postgres = connection.vendor == "postgresql"
        qn = connection.ops.quote_name
        self.table = qn(opts.db_table)
        self.column_sql = ", ".join(qn(c) for c in self.columns)
        if not self.postgres:
            self.converters: list[Callable[[Any], Any] | None] = [
                None if isinstance(f, models.JSONField) else self._converter(f) for f in self.fields
            ]

    def _default(self, f: models.Field) -> Any:
        value = f.get_default()
        if isinstance(f, models.JSONField):
            return json.dumps(value)
        if connection.vendor != "postgresql":
            return f.get_db_prep_save(value, connection)
        return value

    @staticmethod
    def _converter(f: models.Field) -> Callable[[Any], Any]:
        return lambda value: f.get_db_prep_save(value, connection)

    def write(self, rows: Iterable[tuple]) -> int:
        rows = list(rows)
        if not rows:
            return 0
        extra = self.extra_values
        if self.postgres:
            with connection.cursor() as cursor, cursor.cursor.copy(
                    f"COPY {self.table} ({self.column_sql}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row + extra if extra else row)
            return len(rows)
        converters = self.converters
        prepared = [
            tuple(value if convert is None else convert(value) for convert, value in zip(converters, row, strict=True))
            + extra
            for row in rows
        ]
        placeholders = ", ".join(["%s"] * len(self.columns))
        with connection.cursor() as cursor:
            # Table and column names come from the model's metadata, quoted by the backend.
            cursor.executemany(f"INSERT INTO {self.table} ({self.column_sql}) VALUES ({placeholders})",  # noqa: S608
                               prepared)
        return len(rows)


def reset_sequences(model_list: list[type[models.Model]]) -> None:
    """After inserting explicit integer ids, move the id sequences past them (PostgreSQL)."""
    statements = connection.ops.sequence_reset_sql(no_style(), model_list)
    if statements:
        with connection.cursor() as cursor:
            for sql in statements:
                cursor.execute(sql)


def next_id(model: type[models.Model]) -> int:
    return (every_scope(model).aggregate(top=Max("pk"))["top"] or 0) + 1


@contextmanager
def bulk_load(model_list: list[type[models.Model]], *, enabled: bool, log: Callable[[str], None]) -> Iterator[None]:
    """Load rows into empty tables the fast way on PostgreSQL: in one transaction, drop the tables'
    secondary indexes, unique constraints and foreign keys, load, then put them back (a sorted index
    build and one validating join per foreign key beat millions of random index insertions and trigger
    checks). Being one transaction, a failure rolls everything back, indexes included. The tables are
    locked while it runs. Elsewhere, or when disabled or the tables are not empty, it is a plain
    transaction."""
    tables = [m._meta.db_table for m in model_list]
    if not enabled or connection.vendor != "postgresql" or any(every_scope(m).exists() for m in model_list):
        with transaction.atomic():
            yield
        return
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit TO off")
        cursor.execute("SET LOCAL maintenance_work_mem TO '512MB'")
        cursor.execute(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = ANY(%s::regclass[]) AND contype IN ('f', 'u') ORDER BY contype DESC",
            [tables],
        )
        constraints = cursor.fetchall()  # unique constraints first (a foreign key may need one back)
        cursor.execute(
            "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i "
            "WHERE i.indrelid = ANY(%s::regclass[]) AND NOT i.indisprimary "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)",
            [tables],
        )
        indexes = cursor.fetchall()
        for table, name, _ in reversed(constraints):
            cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {connection.ops.quote_name(name)}")
        for name, _ in indexes:
            cursor.execute(f"DROP INDEX {name}")
        log(f"  fast load: {len(indexes)} indexes and {len(constraints)} constraints set aside until the end")
        yield
        started = time.monotonic()
        for _, definition in indexes:
            cursor.execute(definition)
        for table, name, definition in constraints:
            cursor.execute(f"ALTER TABLE {table} ADD CONSTRAINT {connection.ops.quote_name(name)} {definition}")
        log(f"  indexes and constraints rebuilt ({time.monotonic() - started:.1f} s)")


# --- Drawing values -----------------------------------------------------------------------------------------


def scope_ids(rng: random.Random, count: int) -> list[str]:
    """`count` distinct scope ids of mixed styles; the global scope is one of them (when count > 1)."""
    alphabet = string.ascii_letters + string.digits
    words = ["acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne", "wonka", "tyrell", "cyberdyne",
             "soylent", "vandelay", "pied-piper", "aperture", "black-mesa", "monarch"]
    ids: list[str] = [GLOBAL_SCOPE] if count > 1 else []
    seen = set(ids)
    number = itertools.count(1)
    while len(ids) < count:
        style = rng.random()
        n = next(number)
        if style < 0.40:
            value = f"household-{n:05d}"
        elif style < 0.65:
            value = "org_" + "".join(rng.choice(alphabet) for _ in range(22))
        elif style < 0.85:
            value = f"tenant:{rng.choice(words)}-{n}:workspace:{uuid.UUID(int=rng.getrandbits(128), version=4)}"
        elif style < 0.95:
            value = f"user:{rng.choice(['ana', 'li', 'sam', 'noor', 'kofi', 'mila', 'ivan'])}.{n}@example.com"
        else:
            value = f"hh-{n}"
        if value not in seen:
            seen.add(value)
            ids.append(value)
    return ids


def cumulative(weights: Sequence[float]) -> list[float]:
    return list(itertools.accumulate(weights))


def pick(rng: random.Random, cum: list[float]) -> int:
    return bisect.bisect_right(cum, rng.random() * cum[-1])


def allocate_calls(rng: random.Random, sessions: int, usage_rows: int) -> list[int]:
    """How many model calls each session makes: exactly `usage_rows` in total, at least one each when
    there are enough, heavily skewed (a few long sessions, many short ones)."""
    if sessions == 0:
        return []
    if usage_rows < sessions:
        calls = [1] * usage_rows + [0] * (sessions - usage_rows)
        rng.shuffle(calls)
        return calls
    weights = [min(rng.paretovariate(1.6), MAX_CALL_WEIGHT) for _ in range(sessions)]
    total_weight = sum(weights)
    extra = usage_rows - sessions
    calls = [1 + int(extra * w / total_weight) for w in weights]
    remainder = usage_rows - sum(calls)
    cum = cumulative(weights)
    for _ in range(remainder):
        calls[pick(rng, cum)] += 1
    return calls


def money(rng: random.Random, low: float, high: float) -> float:
    return round(rng.uniform(low, high), 2)


def answer_text(rng: random.Random, day: datetime, topic: str) -> str:
    template = rng.choice(ANSWERS["unavailable" if rng.random() < 0.04 else topic])
    return template.format(
        a=money(rng, 40, 3200), b=money(rng, 20, 900), c=money(rng, 3, 120), n=rng.randint(2, 31),
        p=rng.randint(5, 140), d1=(day - timedelta(days=30)).date().isoformat(), d2=day.date().isoformat(),
    )


def tool_call(rng: random.Random, day: datetime, *, failed: bool) -> tuple[dict[str, Any], int]:
    """One tool call as the runtime saves it, and its duration in ms."""
    name = rng.choices(["request", "query_store", "store_preferences", "memory"], [60, 18, 10, 12])[0]
    tool_id = "toolu_" + "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(24))
    month_start = day.replace(day=1).date().isoformat()
    if name == "request":
        endpoint = rng.choice(["/transactions", "/accounts", "/spending/summary", "/households/me", "/transfers"])
        method = "POST" if endpoint == "/transfers" else "GET"
        parameters: dict[str, Any] = {"connection": "app-api", "method": method, "endpoint": endpoint,
                                      "intent": "write" if method == "POST" else "read"}
        if endpoint == "/transactions":
            parameters["params"] = {"category": rng.choice(CATEGORIES), "from": month_start,
                                    "to": day.date().isoformat()}
            result: Any = {"status": 200, "body": {"transactions": [
                {"id": f"tx_{rng.randint(10000, 99999)}", "amount": -money(rng, 3, 400),
                 "merchant": rng.choice(["FreshMart", "City Transit", "Corner Cafe", "PowerCo", "Streamly"]),
                 "date": (day - timedelta(days=rng.randint(0, 27))).date().isoformat()}
                for _ in range(rng.randint(1, 4))], "total": money(rng, 20, 1500)}}
        elif endpoint == "/transfers":
            parameters["data"] = {"from_account": "acc_savings", "to_account": "acc_checking",
                                  "amount": money(rng, 50, 2000), "currency": "USD"}
            result = {"status": "needs_approval", "preview": parameters["data"]}
        elif endpoint == "/accounts":
            result = {"status": 200, "body": [{"id": "acc_checking", "balance": money(rng, 100, 9000)},
                                              {"id": "acc_savings", "balance": money(rng, 1000, 40000)}]}
        else:
            result = {"status": 200, "body": {"period": month_start, "by_category": {
                c: money(rng, 10, 900) for c in rng.sample(CATEGORIES, 4)}}}
        duration = int(rng.lognormvariate(5.3, 0.7))
    elif name == "query_store":
        parameters = {"store": rng.choice(["preferences", "categories"]), "limit": 20}
        result = {"documents": [{"key": "currency", "value": rng.choice(PREFERENCE_VALUES["currency"])}],
                  "count": 1}
        duration = rng.randint(3, 40)
    elif name == "store_preferences":
        key = rng.choice(list(PREFERENCE_VALUES))
        parameters = {"key": key, "value": rng.choice(PREFERENCE_VALUES[key])}
        result = {"stored": True, "key": key, "version": rng.randint(1, 6)}
        duration = rng.randint(4, 60)
    else:
        action = rng.choice(["add", "list", "search"])
        parameters = {"action": action}
        if action == "add":
            parameters["content"] = rng.choice(MEMORY_FACTS)
            result = f"Remembered (entry {rng.randint(1, 400)})."
        elif action == "search":
            parameters["query"] = rng.choice(["rent", "salary", "budget", "holiday"])
            result = {"entries": [{"id": rng.randint(1, 400), "content": rng.choice(MEMORY_FACTS)}]}
        else:
            result = {"entries": [{"id": i, "content": rng.choice(MEMORY_FACTS)} for i in range(1, 4)]}
        duration = rng.randint(2, 30)
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


@dataclass
class Model:
    provider: str
    name: str
    first_token_ms: int
    ms_per_token: float
    price: Any


class DemoGenerator:
    def __init__(self, options: DemoOptions, log: Callable[[str], None] = print) -> None:
        self.options = options
        self.log = log
        self.rng = random.Random(options.seed)
        self.now = options.now or timezone.now()
        self.start = self.now - timedelta(days=max(options.days, 1))
        self.summary = DemoSummary()

    # -- the whole run --------------------------------------------------------------------------------------

    def run(self) -> DemoSummary:
        started = time.monotonic()
        options = self.options
        rng = self.rng
        postgres = connection.vendor == "postgresql"
        self.models = [Model(p, m, ft, mpt, price_for_model(m)) for p, m, _, (ft, mpt) in MODEL_MIX]
        self.model_cum = cumulative([w for _, _, w, _ in MODEL_MIX])
        self.status_cum = cumulative([w for _, w in STATUS_MIX])
        deploys = self.make_deployments()
        self.deploys = deploys
        scopes = scope_ids(rng, max(options.scopes, 1))
        # Zipf-like activity over a shuffled ranking (the global scope is usually busy but not the top).
        ranking = scopes[:]
        rng.shuffle(ranking)
        if GLOBAL_SCOPE in ranking and len(ranking) > 5:
            ranking.remove(GLOBAL_SCOPE)
            ranking.insert(min(4, len(ranking)), GLOBAL_SCOPE)
        self.ranking = ranking
        scope_cum = cumulative([1 / (rank + 1) ** ZIPF_EXPONENT for rank in range(len(ranking))])
        calls = allocate_calls(rng, options.sessions, options.usage_rows)
        # Day weights: busier recently and on weekdays.
        days = max(options.days, 1)
        day_weights = []
        for offset in range(days):
            day = (self.start + timedelta(days=offset)).weekday()
            day_weights.append((0.35 + 0.65 * (offset + 1) / days) * (0.6 if day >= 5 else 1.0))
        self.day_cum = cumulative(day_weights)
        self.hour_cum = cumulative([0.15, 0.1, 0.08, 0.08, 0.1, 0.2, 0.45, 0.8, 1.1, 1.3, 1.3, 1.25, 1.2, 1.25,
                                    1.3, 1.25, 1.2, 1.1, 1.0, 1.0, 0.95, 0.8, 0.55, 0.3])
        message_id = next_id(Message)
        usage_id = next_id(UsageRecord)
        writers = {
            "session": RowWriter(Session, [
                "id", "scope", "deploy_id", "title", "tags", "status", "provider", "model", "user_sub",
                "created_at", "updated_at", "message_count", "input_tokens", "output_tokens",
                "cache_read_tokens", "cache_write_tokens", "cost_micros", "unpriced_calls"]),
            "message": RowWriter(Message, [
                "id", "scope", "session_id", "seq", "role", "text", "tool_calls", "interrupted", "error_code",
                "created_at"]),
            "usage": RowWriter(UsageRecord, [
                "id", "scope", "session_id", "message_id", "deploy_id", "provider", "model", "input_tokens",
                "output_tokens", "cache_read_tokens", "cache_write_tokens", "latency_ms", "cost_micros",
                "created_at"]),
            "tag": RowWriter(SessionTag, ["scope", "session_id", "tag"]),
        }
        activity: dict[str, list[datetime]] = {}
        batch: dict[str, list[tuple]] = {name: [] for name in writers}
        total = options.sessions
        report_every = max(options.batch_sessions, total // 20 or 1)
        last_report = 0
        fast = options.fast_load if options.fast_load is not None else options.usage_rows >= FAST_LOAD_ROWS
        with bulk_load([Session, Message, UsageRecord, SessionTag], enabled=fast, log=self.log):
            for index in range(total):
                # Every scope gets a session first (when there are enough), then Zipf-like.
                scope = (ranking[index] if index < len(ranking) and total >= len(ranking)
                         else ranking[pick(rng, scope_cum)])
                message_id, usage_id = self.session_rows(scope, calls[index], message_id, usage_id, batch, activity)
                if (index + 1) % options.batch_sessions == 0 or index + 1 == total:
                    self.flush(writers, batch)
                    if index + 1 - last_report >= report_every or index + 1 == total:
                        last_report = index + 1
                        self.log(f"  sessions {index + 1:,}/{total:,}  messages {self.summary.messages:,}  "
                                 f"usage rows {self.summary.usage_rows:,}  ({time.monotonic() - started:.1f} s)")
        self.write_scopes(scopes, activity)
        reset_sequences([Message, UsageRecord, SessionTag, Scope])
        if options.memory:
            self.write_memory(activity)
        if options.stores:
            self.write_store_documents(activity)
        if postgres:
            # Fresh statistics for the planner; outside a transaction also VACUUM, which sets the
            # visibility map and hint bits now instead of during the first page views.
            command = "ANALYZE" if connection.in_atomic_block else "VACUUM (ANALYZE)"
            with connection.cursor() as cursor:
                for model in (Session, Message, UsageRecord, Scope, SessionTag):
                    cursor.execute(f"{command} {connection.ops.quote_name(model._meta.db_table)}")
        self.summary.seconds = time.monotonic() - started
        return self.summary

    def flush(self, writers: dict[str, RowWriter], batch: dict[str, list[tuple]]) -> None:
        with transaction.atomic():
            for name in ("session", "message", "usage", "tag"):
                writers[name].write(batch[name])
        self.summary.sessions += len(batch["session"])
        self.summary.messages += len(batch["message"])
        self.summary.usage_rows += len(batch["usage"])
        self.summary.tags += len(batch["tag"])
        for rows in batch.values():
            rows.clear()

    # -- deploys and scopes ------------------------------------------------------------------------------------

    def make_deployments(self) -> list[tuple[float, str]]:
        rng = self.rng
        existing = set(Deployment.objects.values_list("deploy_id", flat=True))
        result = []
        rows = []
        span = self.now - self.start
        for version, share in DEPLOY_VERSIONS:
            deploy_id = "".join(rng.choice("0123456789abcdef") for _ in range(12))
            result.append((share, deploy_id))
            if deploy_id not in existing:
                rows.append((deploy_id, "finance-agent", version, self.start + span * share))
        RowWriter(Deployment, ["deploy_id", "agent_name", "agent_version", "first_seen_at"]).write(rows)
        self.summary.deployments = len(rows)
        return result

    def write_scopes(self, scopes: list[str], activity: dict[str, list[datetime]]) -> None:
        existing = set(Scope.objects.filter(scope_id__in=scopes).values_list("scope_id", flat=True)) if len(
            scopes) <= 20000 else set(Scope.objects.values_list("scope_id", flat=True))
        rows = []
        for scope_id in scopes:
            if scope_id in existing:
                continue
            first_last = activity.get(scope_id)
            if first_last:
                first, last = first_last
            else:  # a scope seen by the API (e.g. memory or stores) but with no session
                first = self.start + timedelta(seconds=self.rng.uniform(0, (self.now - self.start).total_seconds()))
                last = first
            rows.append((scope_id, first, last))
        writer = RowWriter(Scope, ["scope_id", "first_seen_at", "last_seen_at"])
        with transaction.atomic():
            for start in range(0, len(rows), 20000):
                writer.write(rows[start:start + 20000])
        for scope_id in existing & set(activity):
            first, last = activity[scope_id]
            Scope.objects.filter(scope_id=scope_id, last_seen_at__lt=last).update(last_seen_at=last)
            Scope.objects.filter(scope_id=scope_id, first_seen_at__gt=first).update(first_seen_at=first)
        self.summary.scopes = len(rows)

    # -- one session ---------------------------------------------------------------------------------------------

    def session_start(self) -> datetime:
        rng = self.rng
        day = pick(rng, self.day_cum)
        hour = pick(rng, self.hour_cum)
        return self.start + timedelta(days=day, hours=hour, seconds=rng.uniform(0, 3600))

    def session_rows(self, scope: str, calls: int, message_id: int, usage_id: int,
                     batch: dict[str, list[tuple]], activity: dict[str, list[datetime]]) -> tuple[int, int]:
        rng = self.rng
        model = self.models[pick(rng, self.model_cum)]
        status = STATUS_MIX[pick(rng, self.status_cum)][0]
        if calls == 0:
            status = "error"
        session_id = uuid.UUID(int=rng.getrandbits(128), version=4)
        caching = model.provider == "anthropic" and rng.random() < 0.8
        system_tokens = rng.randint(1800, 3400)
        history = 0
        # First the conversation as offsets (seconds from the start), then anchor it in time.
        # ("user", offset, text) | ("call", offset, text, tools, interrupted, error_code, usage)
        events: list[tuple] = []
        offset = 0.0
        remaining = calls
        turn = 0
        topic, first_prompt = rng.choice(FIRST_PROMPTS)
        start = self.session_start()
        while remaining > 0 or turn == 0:
            text = first_prompt if turn == 0 else rng.choice(FOLLOW_UPS)
            events.append(("user", offset, text))
            history += len(text) // 4 + 4
            in_turn = min(remaining, rng.choices([1, 2, 3, 4], [30, 45, 18, 7])[0]) if remaining else 0
            for call_index in range(in_turn):
                last_of_session = remaining == 1
                with_tools = call_index < in_turn - 1 or (last_of_session and status == "interrupted"
                                                          and rng.random() < 0.5)
                interrupted = last_of_session and status == "interrupted"
                error_code = rng.choice(ERROR_CODES) if last_of_session and status == "error" else ""
                output = int(rng.lognormvariate(4.2 if with_tools else 5.3, 0.5)) + 8
                if error_code:
                    output = 0 if error_code in ("overloaded_error", "rate_limit_error", "api_error") else output
                latency = int(model.first_token_ms * rng.uniform(0.6, 1.8) + output * model.ms_per_token)
                offset += latency / 1000
                tools: list[dict[str, Any]] = []
                tool_ms = 0
                if with_tools and not error_code:
                    for _ in range(rng.choices([1, 2, 3], [70, 24, 6])[0]):
                        call, duration = tool_call(rng, start, failed=rng.random() < 0.08)
                        if interrupted:
                            call.pop("result", None)
                            call.update(status="error", error="Cancelled before it finished.", duration_ms=0)
                            duration = 0
                        tools.append(call)
                        tool_ms += duration
                        history += len(call.get("result") or call.get("error") or "") // 4 + 30
                if error_code:
                    text = ""
                elif interrupted:
                    text = INTERRUPTED_TEXT.format(d1=start.date().isoformat())
                elif with_tools:
                    text = rng.choice(TOOL_PREAMBLES)
                else:
                    text = "{answer}"  # filled in once the date is known
                uncached = history + (0 if caching else system_tokens)
                cache_read = system_tokens + max(0, history - 400) if caching and (turn or call_index) else 0
                if caching and cache_read:
                    uncached = min(uncached, 400 + rng.randint(0, 300))
                cache_write = system_tokens if caching and not (turn or call_index) else (
                    rng.randint(100, 600) if caching and rng.random() < 0.3 else 0)
                usage = (uncached + rng.randint(0, 60), output, cache_read, cache_write, latency)
                events.append(("call", offset, text, tools, interrupted, error_code, usage))
                offset += tool_ms / 1000
                history += output
                remaining -= 1
            turn += 1
            if remaining > 0:
                offset += rng.choice([rng.uniform(8, 90), rng.uniform(30, 600), rng.uniform(600, 5400)])
        latest = self.now - timedelta(seconds=60 + offset)
        if start > latest:
            start = latest
        deploy_id = self.deploys[0][1]
        share = (start - self.start) / (self.now - self.start) if self.now > self.start else 1.0
        for deploy_share, candidate in self.deploys:
            if share >= deploy_share:
                deploy_id = candidate
        totals = [0, 0, 0, 0, 0, 0]  # input, output, cache read, cache write, cost, unpriced
        seq = 0
        messages = batch["message"]
        usage_rows = batch["usage"]
        for event in events:
            moment = start + timedelta(seconds=event[1])
            if event[0] == "user":
                messages.append((message_id, scope, session_id, seq, "user", event[2], "[]", False, "", moment))
            else:
                _, _, text, tools, interrupted, error_code, (inp, out, c_read, c_write, latency) = event
                if text == "{answer}":
                    text = answer_text(rng, moment, topic)
                messages.append((message_id, scope, session_id, seq, "assistant", text,
                                 json.dumps(tools) if tools else "[]", interrupted, error_code, moment))
                cost = cost_micros(model.price, input_tokens=inp, output_tokens=out, cache_read_tokens=c_read,
                                   cache_write_tokens=c_write)
                usage_rows.append((usage_id, scope, session_id, message_id, deploy_id, model.provider, model.name,
                                   inp, out, c_read, c_write, latency, cost, moment))
                usage_id += 1
                totals[0] += inp
                totals[1] += out
                totals[2] += c_read
                totals[3] += c_write
                if cost is None:
                    totals[5] += 1
                else:
                    totals[4] += cost
            message_id += 1
            seq += 1
        updated = start + timedelta(seconds=events[-1][1])
        tags = rng.sample(TAGS, rng.choice([0, 0, 0, 1, 1, 2]))
        title = " ".join(first_prompt.split())[:80]
        batch["session"].append((
            session_id, scope, deploy_id, title, json.dumps(tags), status, model.provider, model.name,
            f"user-{rng.randint(1, 40)}", start, updated, seq, *totals,
        ))
        for tag in tags:
            batch["tag"].append((scope, session_id, tag))
        seen = activity.get(scope)
        if seen is None:
            activity[scope] = [start, updated]
        else:
            if start < seen[0]:
                seen[0] = start
            if updated > seen[1]:
                seen[1] = updated
        return message_id, usage_id

    # -- memory and stores (when those models exist) -------------------------------------------------------------

    def active_scopes(self, activity: dict[str, list[datetime]], limit: int) -> list[str]:
        return [scope for scope in self.ranking if scope in activity][:limit]

    def write_memory(self, activity: dict[str, list[datetime]]) -> None:
        model = optional_model("agents", "MemoryEntry")
        if model is None:
            self.summary.notes.append("memory entries skipped: no MemoryEntry model")
            return
        rng = self.rng
        rows = []
        for rank, scope in enumerate(self.active_scopes(activity, max(1, len(self.ranking) // 3))):
            count = max(0, int(rng.uniform(2, 12) / math.sqrt(1 + rank / 50)))
            first, last = activity[scope]
            for fact in rng.sample(MEMORY_FACTS, min(count, len(MEMORY_FACTS))):
                moment = first + (last - first) * rng.random()
                rows.append((scope, fact, moment))
        with transaction.atomic():
            RowWriter(model, ["scope", "content", "created_at"]).write(rows)
        reset_sequences([model])
        self.summary.memory_entries = len(rows)

    def write_store_documents(self, activity: dict[str, list[datetime]]) -> None:
        document_model = optional_model("stores", "StoreDocument")
        version_model = optional_model("stores", "StoreDocumentVersion")
        if document_model is None or version_model is None:
            self.summary.notes.append("store documents skipped: no StoreDocument model")
            return
        rng = self.rng
        document_id = next_id(document_model)
        documents = []
        versions = []
        existing = set(
            every_scope(document_model).filter(store__in=["preferences", "categories"])
            .values_list("scope", "store", "key")
        )
        for rank, scope in enumerate(self.active_scopes(activity, max(1, len(self.ranking) // 4))):
            first, last = activity[scope]
            keys = rng.sample(list(PREFERENCE_VALUES), rng.randint(1, len(PREFERENCE_VALUES)) if rank < 200 else 1)
            for key in keys:
                if (scope, "preferences", key) in existing:
                    continue
                version_count = rng.choice([1, 1, 1, 2, 3, 6])
                created = first + (last - first) * rng.random() * 0.5
                values = [rng.choice(PREFERENCE_VALUES[key]) for _ in range(version_count)]
                moments = sorted(created + (last - created) * rng.random() for _ in range(version_count - 1))
                updated = moments[-1] if moments else created
                expires = updated + timedelta(days=rng.choice([7, 30])) if rng.random() < 0.1 else None
                documents.append((document_id, scope, "preferences", key, json.dumps({"key": key, "value": values[-1]}),
                                  version_count, created, updated, expires))
                kept = list(range(1, version_count))[-5:]  # history.versions: 5
                for version in kept:
                    written = created if version == 1 else moments[version - 2]
                    versions.append((scope, document_id, version,
                                     json.dumps({"key": key, "value": values[version - 1]}), written))
                document_id += 1
        # The shared `categories` store lives in the global partition (seeded by operators).
        seed = Path(settings.BASE_DIR) / "examples" / "seed" / "finance-categories.json"
        if seed.exists():
            for category in json.loads(seed.read_text()):
                if (GLOBAL_SCOPE, "categories", category["slug"]) in existing:
                    continue
                documents.append((document_id, GLOBAL_SCOPE, "categories", category["slug"], json.dumps(category), 1,
                                  self.start, self.start, None))
                document_id += 1
        with transaction.atomic():
            RowWriter(document_model, ["id", "scope", "store", "key", "data", "version", "created_at",
                                       "updated_at", "expires_at"]).write(documents)
            RowWriter(version_model, ["scope", "document_id", "version", "data", "created_at"]).write(versions)
        reset_sequences([document_model, version_model])
        self.summary.store_documents = len(documents)
        self.summary.store_versions = len(versions)


# --- Clearing -------------------------------------------------------------------------------------------------


def existing_sessions() -> int:
    return Session.all_scopes.count()


def clear_runtime_data(log: Callable[[str], None] = print) -> None:
    """Delete every session, message, usage row, session tag, scope, memory entry and store document
    (demo or not: this is for development databases). API keys, credentials, prices and users stay."""
    optional = [optional_model("stores", "StoreDocument"), optional_model("stores", "StoreDocumentVersion"),
                optional_model("agents", "MemoryEntry")]
    tables = [model for model in optional if model is not None] + [UsageRecord, Message, SessionTag, Session, Scope]
    with transaction.atomic():
        if connection.vendor == "postgresql":
            names = ", ".join(connection.ops.quote_name(m._meta.db_table) for m in tables)
            with connection.cursor() as cursor:
                # Deferred foreign-key checks of rows written earlier in this transaction must run
                # first: PostgreSQL refuses to truncate a table with pending trigger events.
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                cursor.execute(f"TRUNCATE {names}")
        else:
            for model in tables:
                _raw_delete(model)
    log(f"  cleared: {', '.join(str(m._meta.verbose_name_plural) for m in tables)}")


def _raw_delete(model: type[models.Model]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {connection.ops.quote_name(model._meta.db_table)}")  # noqa: S608
