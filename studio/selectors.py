"""Studio's reads across every scope.

This is operator code: it is the one place in Studio that uses the explicit `Model.all_scopes` escape
(grep for it). Every list is bounded (keyset pagination or a LIMIT) and every number on the Cost & Usage
page is aggregated by the database (`GROUP BY` with `Sum`/`Count`/`TruncDate` over UsageRecord rows), so a
page costs a fixed number of queries whatever the number of rows.

Memory entries and store documents are looked up through the app registry, so their pages degrade to a
notice (instead of an import error) on a checkout where those models do not exist.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from django.db.models import Count, F, Max, Model, Q, QuerySet, Sum, Window
from django.db.models.functions import Coalesce, TruncDate

from agents.models import Deployment, Message, MessageRole, Session, UsageRecord
from connections.models import ScopedCredential
from scoping.models import Scope
from studio.filters import DateRange, ScopeParam, decode_cursor, encode_cursor, parse_moment
from studio.model_access import every_scope, optional_model

SESSION_PAGE_SIZE = 50
SCOPE_CHIPS = 12
REPLAY_PAGE_MESSAGES = 400
RANKING_DEFAULT = 15
RANKING_MAX = 100
TOP_SESSIONS = 10
SCOPE_PAGE_SIZE = 50
MEMORY_PAGE_SIZE = 100
DOCUMENT_PAGE_SIZE = 50
DOCUMENT_VERSIONS_SHOWN = 50
RECENT_SESSIONS = 10


# --- Sessions ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionFilters:
    scope: ScopeParam
    range: DateRange
    model: str = ""
    status: str = ""


def sessions_matching(filters: SessionFilters, *, with_scope: bool = True) -> QuerySet[Session]:
    """Sessions whose last activity falls in the range, of the model/status/scope chosen."""
    queryset = Session.all_scopes.filter(**filters.range.filter_kwargs("updated_at"))
    if filters.model:
        queryset = queryset.filter(model=filters.model)
    if filters.status:
        queryset = queryset.filter(status=filters.status)
    if with_scope and filters.scope.selected:
        queryset = queryset.filter(scope=filters.scope.scope_id)
    return queryset


@dataclass
class SessionPage:
    sessions: list[Session]
    total: int
    older: str | None  # cursor of the next page (older sessions)
    newer: str | None  # cursor of the previous page (newer sessions)
    at_start: bool


SESSION_LIST_FIELDS = (
    "id", "scope", "title", "status", "model", "provider", "deploy_id", "created_at", "updated_at",
    "message_count", "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
    "cost_micros", "unpriced_calls",
)


def _session_position(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    values = decode_cursor(cursor, 2)
    if values is None:
        return None
    moment = parse_moment(values[0])
    try:
        return (moment, uuid.UUID(values[1])) if moment else None
    except ValueError:
        return None


def session_page(filters: SessionFilters, *, after: str | None = None, before: str | None = None,
                 size: int = SESSION_PAGE_SIZE) -> SessionPage:
    """One page of sessions, newest activity first, keyset-paginated on (updated_at, id).

    `after` continues to older sessions; `before` goes back to newer ones. Two queries: the page and the
    total count.
    """
    queryset = sessions_matching(filters).only(*SESSION_LIST_FIELDS)
    total = queryset.count()
    newer_position = _session_position(before)
    older_position = None if newer_position else _session_position(after)
    if newer_position:
        moment, key = newer_position
        rows = list(
            queryset.filter(Q(updated_at__gt=moment) | Q(updated_at=moment, id__gt=key))
            .order_by("updated_at", "id")[: size + 1]
        )
        more_newer = len(rows) > size
        rows = rows[:size][::-1]
        return SessionPage(
            rows, total,
            older=encode_cursor(rows[-1].updated_at, rows[-1].pk) if rows else None,
            newer=encode_cursor(rows[0].updated_at, rows[0].pk) if rows and more_newer else None,
            at_start=not more_newer,
        )
    if older_position:
        moment, key = older_position
        queryset = queryset.filter(Q(updated_at__lt=moment) | Q(updated_at=moment, id__lt=key))
    rows = list(queryset.order_by("-updated_at", "-id")[: size + 1])
    more_older = len(rows) > size
    rows = rows[:size]
    return SessionPage(
        rows, total,
        older=encode_cursor(rows[-1].updated_at, rows[-1].pk) if rows and more_older else None,
        newer=encode_cursor(rows[0].updated_at, rows[0].pk) if rows and older_position else None,
        at_start=older_position is None,
    )


@dataclass(frozen=True)
class ScopeChip:
    scope_id: str
    count: int
    selected: bool


def scope_chips(filters: SessionFilters, *, search: str = "", selected_count: int | None = None,
                limit: int = SCOPE_CHIPS) -> list[ScopeChip]:
    """The most active scopes under the other filters (or the scopes whose id contains `search`), each
    with its number of sessions. A chip's count is the number of sessions the list shows once selected.
    One or two queries."""
    base = sessions_matching(filters, with_scope=False).order_by()
    if search:
        matching = Scope.objects.filter(scope_id__icontains=search).order_by("-last_seen_at")
        candidates = list(matching.values_list("scope_id", flat=True)[:limit])
        if "global".startswith(search.lower()) and "" not in candidates:
            candidates.append("")
        counts = dict(
            base.filter(scope__in=candidates).values("scope").annotate(n=Count("pk")).values_list("scope", "n")
        )
        rows = sorted(((scope_id, counts.get(scope_id, 0)) for scope_id in candidates), key=lambda r: (-r[1], r[0]))
    else:
        ranked = base.values("scope").annotate(n=Count("pk")).order_by("-n", "scope")
        rows = list(ranked.values_list("scope", "n")[:limit])
    chips = [ScopeChip(scope_id, count, filters.scope.selected and scope_id == filters.scope.scope_id)
             for scope_id, count in rows]
    if filters.scope.selected and not any(chip.selected for chip in chips):
        count = selected_count if selected_count is not None else base.filter(scope=filters.scope.scope_id).count()
        chips.insert(0, ScopeChip(filters.scope.scope_id, count, True))
    return chips


def session_models() -> list[str]:
    """Every model a session has used (a short list: one DISTINCT query)."""
    return sorted(filter(None, Session.all_scopes.order_by().values_list("model", flat=True).distinct()))


# --- Session replay --------------------------------------------------------------------------------------


@dataclass
class ModelCall:
    message: Message
    usage: UsageRecord | None
    tool_calls: list[dict[str, Any]]


@dataclass
class Turn:
    number: int
    anchor: str
    user: Message | None
    calls: list[ModelCall] = field(default_factory=list)
    previous: str = ""  # anchor of the previous turn on this page
    next: str = ""

    @property
    def started_at(self) -> datetime | None:
        first = self.user or (self.calls[0].message if self.calls else None)
        return first.created_at if first else None

    @property
    def interrupted(self) -> bool:
        return any(call.message.interrupted for call in self.calls)

    @property
    def error_codes(self) -> list[str]:
        return [call.message.error_code for call in self.calls if call.message.error_code]

    @property
    def tool_errors(self) -> int:
        return sum(1 for call in self.calls for tool in call.tool_calls if tool.get("status") == "error")

    def _usage_sum(self, name: str) -> int:
        return sum(getattr(call.usage, name) or 0 for call in self.calls if call.usage)

    @property
    def input_tokens(self) -> int:
        return self._usage_sum("input_tokens")

    @property
    def output_tokens(self) -> int:
        return self._usage_sum("output_tokens")

    @property
    def cost_micros(self) -> int:
        return self._usage_sum("cost_micros")

    @property
    def unpriced_calls(self) -> int:
        return sum(1 for call in self.calls if call.usage and call.usage.cost_micros is None)


@dataclass
class Replay:
    session: Session
    deployment: Deployment | None
    turns: list[Turn]
    earlier_from: int | None  # `from` of the previous window of messages, when this one is not the first
    later_from: int | None


def normalise_tool_call(call: Any) -> dict[str, Any]:
    """A saved tool call as the template shows it, tolerant of missing keys."""
    if not isinstance(call, dict):
        return {"tool_name": "?", "status": "error", "error": repr(call), "parameters": {}, "duration_ms": None}
    status = call.get("status") or ("error" if "error" in call else "success")
    return {
        "tool_id": call.get("tool_id", ""),
        "tool_name": call.get("tool_name", "?"),
        "parameters": call.get("parameters", {}),
        "status": status,
        "has_result": "result" in call,
        "result": call.get("result"),
        "error": call.get("error"),
        "duration_ms": call.get("duration_ms"),
    }


def get_session(session_id: uuid.UUID) -> Session | None:
    return Session.all_scopes.filter(pk=session_id).first()


def session_replay(session: Session, *, from_seq: int | None = None, limit: int | None = None) -> Replay:
    """The conversation in order, grouped into turns (a user message and the model calls answering it),
    each model call with its usage row. Messages come in windows of `limit` (one query with the usage
    joined), plus one query for the deploy."""
    limit = limit or REPLAY_PAGE_MESSAGES
    deployment = Deployment.objects.filter(deploy_id=session.deploy_id).first()
    queryset = (
        Message.all_scopes.filter(session=session, scope=session.scope)
        .select_related("usage")
        .order_by("seq")
    )
    if from_seq:
        queryset = queryset.filter(seq__gte=from_seq)
    rows = list(queryset[: limit + 1])
    later_from = None
    if len(rows) > limit:
        rows = rows[:limit]
        # End the window on a turn boundary when one is in sight, so a turn is not split.
        last_user = max((i for i, row in enumerate(rows) if row.role == MessageRole.USER and i > 0), default=None)
        if last_user is not None:
            rows = rows[:last_user]
        later_from = rows[-1].seq + 1
    turns: list[Turn] = []
    for row in rows:
        if row.role == MessageRole.USER or not turns:
            turns.append(Turn(number=len(turns) + 1, anchor=f"turn-{row.seq}",
                              user=row if row.role == MessageRole.USER else None))
            if row.role == MessageRole.USER:
                continue
        usage = getattr(row, "usage", None)
        calls = row.tool_calls if isinstance(row.tool_calls, list) else []
        turns[-1].calls.append(ModelCall(row, usage, [normalise_tool_call(call) for call in calls]))
    for before, after in zip(turns, turns[1:], strict=False):
        before.next, after.previous = after.anchor, before.anchor
    first_seq = rows[0].seq if rows else None
    earlier_from = max(0, first_seq - limit) if first_seq else None
    return Replay(session, deployment, turns, earlier_from, later_from)


# --- Cost & Usage ------------------------------------------------------------------------------------------


def usage_rows(date_range: DateRange, scope: ScopeParam | None = None) -> QuerySet[UsageRecord]:
    queryset = UsageRecord.all_scopes.filter(**date_range.filter_kwargs("created_at"))
    if scope is not None and scope.selected:
        queryset = queryset.filter(scope=scope.scope_id)
    return queryset.order_by()


def usage_sums() -> dict[str, Any]:
    """The aggregate of a group of usage rows. `cost` stays NULL when every row is unpriced."""
    return {
        "cost": Sum("cost_micros"),
        "input_tokens": Coalesce(Sum("input_tokens"), 0),
        "output_tokens": Coalesce(Sum("output_tokens"), 0),
        "cache_read_tokens": Coalesce(Sum("cache_read_tokens"), 0),
        "cache_write_tokens": Coalesce(Sum("cache_write_tokens"), 0),
        "calls": Count("pk"),
        "unpriced": Count("pk", filter=Q(cost_micros__isnull=True)),
    }


def with_total_tokens(row: dict[str, Any]) -> dict[str, Any]:
    row["tokens"] = (row.get("input_tokens") or 0) + (row.get("output_tokens") or 0)
    return row


def usage_totals(date_range: DateRange, scope: ScopeParam | None = None) -> dict[str, Any]:
    """Cost, tokens, model calls, unpriced calls and sessions of the range (one query)."""
    return with_total_tokens(
        usage_rows(date_range, scope).aggregate(**usage_sums(), sessions=Count("session", distinct=True))
    )


def scope_ranking(date_range: DateRange, *, limit: int = RANKING_DEFAULT) -> tuple[list[dict[str, Any]], int]:
    """Scopes ranked by cost (then tokens), with tokens, calls and sessions; and how many scopes had
    usage in the range. Two queries: the ranking (the number of scopes comes along as a window
    `COUNT(*) OVER ()` over the groups), then the distinct sessions of the shown scopes only (an index
    range per scope, instead of a DISTINCT over every row of the range)."""
    rows = list(
        usage_rows(date_range).values("scope")
        .annotate(**usage_sums(), scope_count=Window(Count("*")))
        .order_by(F("cost").desc(nulls_last=True), "-input_tokens", "scope")[:limit]
    )
    scope_count = rows[0]["scope_count"] if rows else 0
    sessions = dict(
        usage_rows(date_range).filter(scope__in=[row["scope"] for row in rows]).values("scope")
        .annotate(sessions=Count("session", distinct=True)).values_list("scope", "sessions")
    ) if rows else {}
    top_cost = max((row["cost"] or 0 for row in rows), default=0)
    for row in rows:
        with_total_tokens(row)
        row["sessions"] = sessions.get(row["scope"], 0)
        row["share"] = 100.0 * (row["cost"] or 0) / top_cost if top_cost else 0.0
    return rows, scope_count


def usage_by(date_range: DateRange, scope: ScopeParam | None, dimension: str) -> list[dict[str, Any]]:
    """Usage grouped by `model` or `deploy_id`, most expensive first (one query)."""
    if dimension not in {"model", "deploy_id"}:
        raise ValueError(dimension)
    rows = list(
        usage_rows(date_range, scope).values(dimension)
        .annotate(**usage_sums())
        .order_by(F("cost").desc(nulls_last=True), "-input_tokens", dimension)
    )
    top_cost = max((row["cost"] or 0 for row in rows), default=0)
    for row in rows:
        with_total_tokens(row)
        row["share"] = 100.0 * (row["cost"] or 0) / top_cost if top_cost else 0.0
    return rows


def deployments_by_id(deploy_ids: list[str]) -> dict[str, Deployment]:
    return {d.deploy_id: d for d in Deployment.objects.filter(deploy_id__in=deploy_ids)}


@dataclass(frozen=True)
class DayPoint:
    day: date
    cost: int | None
    tokens: int
    calls: int
    unpriced: int


def daily_usage(date_range: DateRange, scope: ScopeParam | None = None) -> list[DayPoint]:
    """Cost, tokens and calls per day (one GROUP BY TruncDate query); days without usage are zeros."""
    rows = (
        usage_rows(date_range, scope)
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(**usage_sums())
        .order_by("day")
    )
    by_day = {}
    for row in rows:
        day = row["day"] if isinstance(row["day"], date) else date.fromisoformat(str(row["day"]))
        by_day[day] = DayPoint(day, row["cost"], row["input_tokens"] + row["output_tokens"], row["calls"],
                               row["unpriced"])
    days = date_range.days()
    if not days and by_day:
        first = date_range.first_day or min(by_day)
        last = date_range.last_day or max(by_day)
        days = DateRange("custom", None, None, first, last).days()
    return [by_day.get(day, DayPoint(day, 0, 0, 0, 0)) for day in days] if days else list(by_day.values())


def top_sessions(date_range: DateRange, scope: ScopeParam | None = None, *,
                 limit: int = TOP_SESSIONS) -> list[dict[str, Any]]:
    """The sessions that cost the most in the range (their usage rows in the range), two queries."""
    rows = list(
        usage_rows(date_range, scope).filter(session__isnull=False).values("session")
        .annotate(**usage_sums())
        .order_by(F("cost").desc(nulls_last=True), "-input_tokens", "session")[:limit]
    )
    sessions = Session.all_scopes.only("id", "scope", "title", "model", "status", "updated_at").in_bulk(
        [row["session"] for row in rows]
    )
    for row in rows:
        with_total_tokens(row)
        row["object"] = sessions.get(row["session"])
    return rows


# --- Scopes ------------------------------------------------------------------------------------------------


@dataclass
class ScopePage:
    scopes: list[Scope]
    total: int
    older: str | None
    at_start: bool


def scope_page(*, search: str = "", after: str | None = None, size: int = SCOPE_PAGE_SIZE) -> ScopePage:
    """Scopes by latest activity, keyset-paginated on (last_seen_at, id); each with its number of
    sessions, tokens and cost (one grouped query over the page's scopes). Three queries."""
    queryset = Scope.objects.all()
    if search:
        matches = Q(scope_id__icontains=search)
        if "global".startswith(search.lower()):
            matches |= Q(scope_id="")
        queryset = queryset.filter(matches)
    total = queryset.count()
    values = decode_cursor(after, 2)
    moment = parse_moment(values[0]) if values else None
    if moment is not None and values[1].isdigit():
        queryset = queryset.filter(Q(last_seen_at__lt=moment) | Q(last_seen_at=moment, id__lt=int(values[1])))
    rows = list(queryset.order_by("-last_seen_at", "-id")[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    stats = {
        row["scope"]: row
        for row in Session.all_scopes.filter(scope__in=[s.scope_id for s in rows]).order_by().values("scope")
        .annotate(sessions=Count("pk"), cost=Sum("cost_micros"), unpriced=Sum("unpriced_calls"),
                  input_tokens=Sum("input_tokens"), output_tokens=Sum("output_tokens"))
    }
    for scope in rows:
        stat = stats.get(scope.scope_id, {})
        scope.sessions = stat.get("sessions", 0)
        scope.cost = stat.get("cost") or 0
        scope.unpriced = stat.get("unpriced") or 0
        scope.tokens = (stat.get("input_tokens") or 0) + (stat.get("output_tokens") or 0)
    return ScopePage(
        rows, total,
        older=encode_cursor(rows[-1].last_seen_at, rows[-1].pk) if rows and more else None,
        at_start=moment is None,
    )


@dataclass
class ScopeOverview:
    scope_id: str
    scope: Scope | None
    sessions: dict[str, Any]
    recent_sessions: list[Session]
    memory_entries: int | None  # None: memory is not available in this build
    store_documents: list[dict[str, Any]] | None
    credential_keys: list[str]


def scope_overview(scope_id: str) -> ScopeOverview:
    """What one scope holds: sessions (totals and the latest), memory, store documents, credential keys
    (names only: values are never read). About six queries."""
    sessions = Session.all_scopes.filter(scope=scope_id)
    totals = sessions.order_by().aggregate(
        count=Count("pk"), cost=Sum("cost_micros"), unpriced=Sum("unpriced_calls"),
        input_tokens=Sum("input_tokens"), output_tokens=Sum("output_tokens"), last_active=Max("updated_at"),
        messages=Sum("message_count"),
    )
    recent = list(sessions.only(*SESSION_LIST_FIELDS).order_by("-updated_at", "-id")[:RECENT_SESSIONS])
    memory = optional_model("agents", "MemoryEntry")
    return ScopeOverview(
        scope_id=scope_id,
        scope=Scope.objects.filter(scope_id=scope_id).first(),
        sessions=totals,
        recent_sessions=recent,
        memory_entries=every_scope(memory).filter(scope=scope_id).count() if memory else None,
        store_documents=document_stores(scope_id),
        credential_keys=list(
            ScopedCredential.all_scopes.filter(scope=scope_id).order_by("key").values_list("key", flat=True)
        ),
    )


@dataclass
class RowPage:
    rows: list[Any]
    total: int
    older: str | None
    at_start: bool
    available: bool = True


def _pk_value(model: type[Model], raw: str) -> Any:
    try:
        return model._meta.pk.to_python(raw)
    except Exception:  # noqa: BLE001  (not a key of this model: treat as no cursor)
        return None


def memory_page(scope_id: str, *, after: str | None = None, size: int = MEMORY_PAGE_SIZE) -> RowPage:
    """A scope's memory entries, newest first, keyset-paginated on (created_at, pk). Two queries."""
    model = optional_model("agents", "MemoryEntry")
    if model is None:
        return RowPage([], 0, None, True, available=False)
    queryset = every_scope(model).filter(scope=scope_id)
    total = queryset.count()
    values = decode_cursor(after, 2)
    moment = parse_moment(values[0]) if values else None
    key = _pk_value(model, values[1]) if values else None
    if moment is not None and key is not None:
        queryset = queryset.filter(Q(created_at__lt=moment) | Q(created_at=moment, pk__lt=key))
    rows = list(queryset.order_by("-created_at", "-pk")[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    return RowPage(rows, total, encode_cursor(rows[-1].created_at, rows[-1].pk) if rows and more else None,
                   at_start=moment is None)


def document_stores(scope_id: str) -> list[dict[str, Any]] | None:
    model = optional_model("stores", "StoreDocument")
    if model is None:
        return None
    return list(
        every_scope(model).filter(scope=scope_id).order_by("store").values("store")
        .annotate(documents=Count("pk"), last_update=Max("updated_at"))
    )


def document_page(scope_id: str, *, store: str = "", after: str | None = None,
                  size: int = DOCUMENT_PAGE_SIZE) -> RowPage:
    """A scope's store documents (one store or all), by store then key, keyset-paginated on
    (store, key), which is unique within a scope. Two queries."""
    model = optional_model("stores", "StoreDocument")
    if model is None:
        return RowPage([], 0, None, True, available=False)
    queryset = every_scope(model).filter(scope=scope_id)
    if store:
        queryset = queryset.filter(store=store)
    total = queryset.count()
    values = decode_cursor(after, 2)
    if values:
        queryset = queryset.filter(Q(store__gt=values[0]) | Q(store=values[0], key__gt=values[1]))
    rows = list(queryset.order_by("store", "key")[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    return RowPage(rows, total, encode_cursor(rows[-1].store, rows[-1].key) if rows and more else None,
                   at_start=values is None)


@dataclass
class DocumentDetail:
    document: Any
    versions: list[Any]
    version_count: int


def document_detail(pk: Any) -> DocumentDetail | None:
    """One store document and its kept previous versions, newest first (three queries)."""
    model = optional_model("stores", "StoreDocument")
    if model is None:
        return None
    key = _pk_value(model, str(pk))
    if key is None:
        return None
    document = every_scope(model).filter(pk=key).first()
    if document is None:
        return None
    version_model = optional_model("stores", "StoreDocumentVersion")
    versions: list[Any] = []
    count = 0
    if version_model is not None:
        queryset = every_scope(version_model).filter(document=document, scope=document.scope)
        count = queryset.count()
        versions = list(queryset.order_by("-version")[:DOCUMENT_VERSIONS_SHOWN])
    return DocumentDetail(document, versions, count)
