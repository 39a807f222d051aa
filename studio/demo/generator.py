"""The demo data run: deploys, scopes ranked by activity, sessions written in batches, then the scopes'
rows, memory entries and store documents."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connection, models, transaction
from django.utils import timezone

from agents.models import USAGE_ROLLUP_MODELS, Deployment, Feedback, Message, Session, SessionTag, UsageRecord
from scoping.context import GLOBAL_SCOPE
from scoping.models import Scope
from studio.demo.content import scope_ids, scope_label
from studio.demo.loading import RowWriter, bulk_load, next_id, reset_sequences
from studio.demo.memory_and_stores import add_memory_entries, add_store_documents
from studio.demo.sampling import allocate_calls, cumulative, pick
from studio.demo.sessions import ROW_FIELDS, Activity, Rows, SessionMaker

ZIPF_EXPONENT = 1.07
BATCH_SESSIONS = 4000
FAST_LOAD_ROWS = 50_000
SCOPE_BATCH = 20_000  # scope rows per write, and the most scope ids looked up in one IN (...)
DEPLOY_VERSIONS = [("1.0.0", 0.0), ("1.1.0", 0.35), ("1.2.0", 0.7), ("1.3.0", 0.9)]  # (version, share of range)


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


class DemoGenerator:
    def __init__(self, options: DemoOptions, log: Callable[[str], None] = print) -> None:
        self.options = options
        self.log = log
        self.rng = random.Random(options.seed)
        self.now = options.now or timezone.now()
        self.start = self.now - timedelta(days=max(options.days, 1))
        self.summary = DemoSummary()
        self.ranking: list[str] = []  # scope ids, the busiest first

    def run(self) -> DemoSummary:
        started = time.monotonic()
        options = self.options
        rng = self.rng
        deploys = self.make_deployments()
        scopes = scope_ids(rng, max(options.scopes, 1))
        self.ranking = self.rank(scopes)
        scope_cum = cumulative([1 / (rank + 1) ** ZIPF_EXPONENT for rank in range(len(self.ranking))])
        calls = allocate_calls(rng, options.sessions, options.usage_rows)
        maker = SessionMaker(
            rng,
            start=self.start,
            now=self.now,
            days=max(options.days, 1),
            deploys=deploys,
            message_id=next_id(Message),
            usage_id=next_id(UsageRecord),
        )
        writers = {model: RowWriter(model, fields) for model, fields in ROW_FIELDS.items()}
        batch: Rows = {model: [] for model in ROW_FIELDS}
        activity: Activity = {}
        total = options.sessions
        report_every = max(options.batch_sessions, total // 20 or 1)
        last_report = 0
        fast = options.fast_load if options.fast_load is not None else options.usage_rows >= FAST_LOAD_ROWS
        with bulk_load(list(ROW_FIELDS), enabled=fast, log=self.log):
            for index in range(total):
                # Every scope gets a session first (when there are enough), then Zipf-like.
                scope = (
                    self.ranking[index]
                    if index < len(self.ranking) and total >= len(self.ranking)
                    else self.ranking[pick(rng, scope_cum)]
                )
                maker.add(scope, calls[index], batch, activity)
                if (index + 1) % options.batch_sessions == 0 or index + 1 == total:
                    self.flush(writers, batch)
                    if index + 1 - last_report >= report_every or index + 1 == total:
                        last_report = index + 1
                        self.log(
                            f"  sessions {index + 1:,}/{total:,}  messages {self.summary.messages:,}  "
                            f"usage rows {self.summary.usage_rows:,}  ({time.monotonic() - started:.1f} s)"
                        )
        self.write_scopes(scopes, activity)
        reset_sequences([Message, UsageRecord, SessionTag, Scope])
        if options.memory:
            self.add_memory(activity)
        if options.stores:
            self.add_store_documents(activity)
        if connection.vendor == "postgresql":
            self.analyze()
        self.summary.seconds = time.monotonic() - started
        return self.summary

    def rank(self, scopes: list[str]) -> list[str]:
        """A shuffled ranking for Zipf-like activity; the global scope is usually busy but not the top."""
        ranking = scopes[:]
        self.rng.shuffle(ranking)
        if GLOBAL_SCOPE in ranking and len(ranking) > 5:
            ranking.remove(GLOBAL_SCOPE)
            ranking.insert(min(4, len(ranking)), GLOBAL_SCOPE)
        return ranking

    def flush(self, writers: dict[type[models.Model], RowWriter], batch: Rows) -> None:
        with transaction.atomic():
            for model, rows in batch.items():
                writers[model].write(rows)
        self.summary.sessions += len(batch[Session])
        self.summary.messages += len(batch[Message])
        self.summary.usage_rows += len(batch[UsageRecord])
        self.summary.tags += len(batch[SessionTag])
        for rows in batch.values():
            rows.clear()

    def make_deployments(self) -> list[tuple[float, str]]:
        """The deploys of the range, oldest first, as (share of the range from which it is live, deploy id)."""
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

    def write_scopes(self, scopes: list[str], activity: Activity) -> None:
        existing = (
            set(Scope.objects.filter(scope_id__in=scopes).values_list("scope_id", flat=True))
            if len(scopes) <= SCOPE_BATCH
            else set(Scope.objects.values_list("scope_id", flat=True))
        )
        rows = []
        labels = random.Random(f"{self.options.seed}-labels")  # its own draws: the rest of the data stays as it was
        for scope_id in scopes:
            if scope_id in existing:
                continue
            first_last = activity.get(scope_id)
            if first_last:
                first, last = first_last
            else:  # a scope seen by the API (e.g. memory or stores) but with no session
                first = self.start + timedelta(seconds=self.rng.uniform(0, (self.now - self.start).total_seconds()))
                last = first
            label, metadata = scope_label(labels, scope_id)
            rows.append((scope_id, first, last, label, json.dumps(metadata)))
        writer = RowWriter(Scope, ["scope_id", "first_seen_at", "last_seen_at", "label", "metadata"])
        with transaction.atomic():
            for start in range(0, len(rows), SCOPE_BATCH):
                writer.write(rows[start : start + SCOPE_BATCH])
        for scope_id in existing & set(activity):
            first, last = activity[scope_id]
            Scope.objects.filter(scope_id=scope_id, last_seen_at__lt=last).update(last_seen_at=last)
            Scope.objects.filter(scope_id=scope_id, first_seen_at__gt=first).update(first_seen_at=first)
        self.summary.scopes = len(rows)

    def busiest(self, activity: Activity, limit: int) -> list[str]:
        """Up to `limit` scopes that have sessions, the busiest first."""
        return [scope for scope in self.ranking if scope in activity][:limit]

    def add_memory(self, activity: Activity) -> None:
        added = add_memory_entries(self.rng, self.busiest(activity, max(1, len(self.ranking) // 3)), activity)
        if added is None:
            self.summary.notes.append("memory entries skipped: no MemoryEntry model")
        else:
            self.summary.memory_entries = added

    def add_store_documents(self, activity: Activity) -> None:
        added = add_store_documents(
            self.rng, self.busiest(activity, max(1, len(self.ranking) // 4)), activity, seeded_at=self.start
        )
        if added is None:
            self.summary.notes.append("store documents skipped: no StoreDocument model")
        else:
            self.summary.store_documents, self.summary.store_versions = added

    def analyze(self) -> None:
        """Fresh statistics for PostgreSQL's planner; outside a transaction also VACUUM, which sets the
        visibility map and hint bits now instead of during the first page views."""
        command = "ANALYZE" if connection.in_atomic_block else "VACUUM (ANALYZE)"
        with connection.cursor() as cursor:
            for model in (Session, Message, UsageRecord, *USAGE_ROLLUP_MODELS, Scope, SessionTag, Feedback):
                cursor.execute(f"{command} {connection.ops.quote_name(model._meta.db_table)}")
