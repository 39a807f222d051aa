"""One demo session as rows: its messages, one usage row per model call, its tags and the session itself.

A session starts on a weighted day (recent days and weekdays busier) and hour, runs on a model of MODEL_MIX
(the offline `local` model has no price, so its usage is "unpriced") and ends in a status of STATUS_MIX. Its
conversation (see `conversation`) is anchored in time, priced with agents.pricing and written as row tuples
in the column order of ROW_FIELDS; the deploy is the newest one live when the session started. About one
session in four is rated by its user (FEEDBACK_SHARE), of the whole session or of its last answer.
"""

from __future__ import annotations

import json
import random
import uuid
from datetime import datetime, timedelta

from django.db import models

from agents.models import Feedback, Message, Session, SessionTag, UsageRecord
from agents.pricing import cost_micros, price_for_model
from studio.demo.content import FIRST_PROMPTS, NEGATIVE_COMMENTS, POSITIVE_COMMENTS, answer_text
from studio.demo.conversation import DemoModel, UserMessage, plan_conversation
from studio.demo.sampling import cumulative, pick

# provider, model, weight, (ms to first token, ms per output token)
MODEL_MIX: list[tuple[str, str, float, tuple[int, float]]] = [
    ("anthropic", "claude-sonnet-4-5-20250929", 47, (700, 18.0)),
    ("anthropic", "claude-haiku-4-5", 27, (350, 7.0)),
    ("anthropic", "claude-opus-4-5", 10, (1200, 30.0)),
    ("anthropic", "claude-sonnet-4", 7, (750, 20.0)),
    ("local", "local", 9, (5, 0.05)),
]
STATUS_MIX = [("idle", 90.5), ("interrupted", 5.0), ("error", 4.0), ("running", 0.5)]
FEEDBACK_SHARE = 0.25  # of the sessions, rated by their user
TAGS = ["budget", "transactions", "transfers", "onboarding", "support", "savings", "bills"]
HOUR_WEIGHTS = [
    0.15,
    0.1,
    0.08,
    0.08,
    0.1,
    0.2,
    0.45,
    0.8,
    1.1,
    1.3,
    1.3,
    1.25,
    1.2,
    1.25,
    1.3,
    1.25,
    1.2,
    1.1,
    1.0,
    1.0,
    0.95,
    0.8,
    0.55,
    0.3,
]  # office hours busier than nights

# The columns of each table's row tuples, in the order the tables are written.
ROW_FIELDS: dict[type[models.Model], list[str]] = {
    Session: [
        "id",
        "scope",
        "deploy_id",
        "title",
        "tags",
        "status",
        "provider",
        "model",
        "user_sub",
        "created_at",
        "updated_at",
        "message_count",
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
        "cost_micros",
        "unpriced_calls",
        "model_calls",
        "model_latency_ms",
    ],
    Message: [
        "id",
        "scope",
        "session_id",
        "seq",
        "role",
        "text",
        "tool_calls",
        "interrupted",
        "error_code",
        "created_at",
    ],
    UsageRecord: [
        "id",
        "scope",
        "session_id",
        "message_id",
        "deploy_id",
        "provider",
        "model",
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
        "latency_ms",
        "cost_micros",
        "created_at",
    ],
    SessionTag: ["scope", "session_id", "tag"],
    Feedback: [
        "scope",
        "session_id",
        "message_id",
        "user_sub",
        "deploy_id",
        "rating",
        "comment",
        "created_at",
        "updated_at",
    ],
}

Rows = dict[type[models.Model], list[tuple]]  # row tuples waiting to be written, by table
Activity = dict[str, list[datetime]]  # scope id -> [first, last] moment it was active


class SessionMaker:
    """Adds sessions to a batch of rows, numbering messages and usage rows from the ids it is given."""

    def __init__(
        self,
        rng: random.Random,
        *,
        start: datetime,
        now: datetime,
        days: int,
        deploys: list[tuple[float, str]],
        message_id: int,
        usage_id: int,
    ) -> None:
        self.rng = rng
        self.start = start
        self.now = now
        self.deploys = deploys  # (share of the time range from which it is live, deploy id), oldest first
        self.message_id = message_id
        self.usage_id = usage_id
        self.models = [DemoModel(p, m, ft, mpt, price_for_model(m)) for p, m, _, (ft, mpt) in MODEL_MIX]
        self.model_cum = cumulative([w for _, _, w, _ in MODEL_MIX])
        self.status_cum = cumulative([w for _, w in STATUS_MIX])
        # Busier recently and on weekdays.
        day_weights = []
        for offset in range(days):
            day = (start + timedelta(days=offset)).weekday()
            day_weights.append((0.35 + 0.65 * (offset + 1) / days) * (0.6 if day >= 5 else 1.0))
        self.day_cum = cumulative(day_weights)
        self.hour_cum = cumulative(HOUR_WEIGHTS)

    def add(self, scope: str, calls: int, rows: Rows, activity: Activity) -> None:
        """One session of `scope` making `calls` model calls (none: it failed before the first)."""
        rng = self.rng
        model = self.models[pick(rng, self.model_cum)]
        status = STATUS_MIX[pick(rng, self.status_cum)][0]
        if calls == 0:
            status = "error"
        session_id = uuid.UUID(int=rng.getrandbits(128), version=4)
        caching = model.provider == "anthropic" and rng.random() < 0.8
        system_tokens = rng.randint(1800, 3400)
        topic, first_prompt = rng.choice(FIRST_PROMPTS)
        start = self.session_start()
        events, duration = plan_conversation(
            rng,
            model,
            status=status,
            calls=calls,
            first_prompt=first_prompt,
            start=start,
            caching=caching,
            system_tokens=system_tokens,
        )
        start = min(start, self.now - timedelta(seconds=60 + duration))
        deploy_id = self.deploy_at(start)
        totals = [0, 0, 0, 0, 0, 0, 0, 0]  # input, output, cache read, cache write, cost, unpriced, calls, latency
        last_answer = None
        for seq, event in enumerate(events):
            moment = start + timedelta(seconds=event.offset)
            message_id = self.message_id
            self.message_id += 1
            if isinstance(event, UserMessage):
                rows[Message].append((message_id, scope, session_id, seq, "user", event.text, "[]", False, "", moment))
                continue
            last_answer = message_id
            text = answer_text(rng, moment, topic) if event.text is None else event.text
            rows[Message].append(
                (
                    message_id,
                    scope,
                    session_id,
                    seq,
                    "assistant",
                    text,
                    json.dumps(event.tools) if event.tools else "[]",
                    event.interrupted,
                    event.error_code,
                    moment,
                )
            )
            cost = cost_micros(
                model.price,
                input_tokens=event.input_tokens,
                output_tokens=event.output_tokens,
                cache_read_tokens=event.cache_read_tokens,
                cache_write_tokens=event.cache_write_tokens,
            )
            rows[UsageRecord].append(
                (
                    self.usage_id,
                    scope,
                    session_id,
                    message_id,
                    deploy_id,
                    model.provider,
                    model.name,
                    event.input_tokens,
                    event.output_tokens,
                    event.cache_read_tokens,
                    event.cache_write_tokens,
                    event.latency_ms,
                    cost,
                    moment,
                )
            )
            self.usage_id += 1
            totals[0] += event.input_tokens
            totals[1] += event.output_tokens
            totals[2] += event.cache_read_tokens
            totals[3] += event.cache_write_tokens
            if cost is None:
                totals[5] += 1
            else:
                totals[4] += cost
            totals[6] += 1
            totals[7] += event.latency_ms
        updated = start + timedelta(seconds=events[-1].offset)
        tags = rng.sample(TAGS, rng.choice([0, 0, 0, 1, 1, 2]))
        title = " ".join(first_prompt.split())[:80]
        user_sub = f"user-{rng.randint(1, 40)}"
        rows[Session].append(
            (
                session_id,
                scope,
                deploy_id,
                title,
                json.dumps(tags),
                status,
                model.provider,
                model.name,
                user_sub,
                start,
                updated,
                len(events),
                *totals,
            )
        )
        for tag in tags:
            rows[SessionTag].append((scope, session_id, tag))
        self.feedback(rows, scope, session_id, user_sub, deploy_id, status, last_answer, updated)
        seen = activity.get(scope)
        if seen is None:
            activity[scope] = [start, updated]
        else:
            seen[0] = min(seen[0], start)
            seen[1] = max(seen[1], updated)

    def feedback(
        self,
        rows: Rows,
        scope: str,
        session_id: uuid.UUID,
        user_sub: str,
        deploy_id: str,
        status: str,
        last_answer: int | None,
        ended: datetime,
    ) -> None:
        """The user's rating of some sessions: of the last answer or of the whole session, mostly positive
        (less so when the session failed), sometimes with a comment. Drawn from the session's own random
        numbers, so the rest of the demo data is the same with or without it."""
        rng = random.Random(session_id.int)
        if rng.random() >= FEEDBACK_SHARE:
            return
        positive = rng.random() < (0.8 if status == "idle" else 0.3)
        message_id = last_answer if last_answer is not None and rng.random() < 0.6 else None
        comment = rng.choice(POSITIVE_COMMENTS if positive else NEGATIVE_COMMENTS) if rng.random() < 0.4 else ""
        moment = min(ended + timedelta(seconds=rng.uniform(5, 600)), self.now)
        rating = 1 if positive else -1
        rows[Feedback].append((scope, session_id, message_id, user_sub, deploy_id, rating, comment, moment, moment))

    def session_start(self) -> datetime:
        rng = self.rng
        day = pick(rng, self.day_cum)
        hour = pick(rng, self.hour_cum)
        return self.start + timedelta(days=day, hours=hour, seconds=rng.uniform(0, 3600))

    def deploy_at(self, moment: datetime) -> str:
        """The newest deploy live at `moment`."""
        share = (moment - self.start) / (self.now - self.start) if self.now > self.start else 1.0
        deploy_id = self.deploys[0][1]
        for deploy_share, candidate in self.deploys:
            if share >= deploy_share:
                deploy_id = candidate
        return deploy_id
