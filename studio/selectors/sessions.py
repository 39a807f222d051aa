"""The sessions list: filters, sorting by any column, numbered pages with a total, the scope chips above
them, and every row of the filtered list for the CSV export.

Full-text search matches a session when any of its messages matches, or its title does. On PostgreSQL it is
`to_tsvector('english', ...) @@ websearch_to_tsquery('english', ...)`, the very expressions of the GIN
indexes of studio/migrations/0003_message_search_index.py (so users may type "quoted phrases", `or` and
-words). The 'english' configuration stems words (refund finds refunds and refunded) and leaves common words
out of the index, so no search has to visit half of all messages to count a word like "the". Elsewhere
(SQLite) it is a case-insensitive substring match of the whole query.

A broad search (on PostgreSQL, one that at least settings.AMODAL_STUDIO_BROAD_SEARCH messages or titles
match) is not counted: counting a word found in a tenth of a million-message history means fetching every
matching message row for its session id (a second or more), where the list's first pages need only the
first matching sessions. So a broad search shows "more than that many match", chips without counts and
previous/next pages, and finds its rows by walking the filtered list in its order and testing each session
for a matching message (a scalar subquery per session, over a bounded window: see broad_search_page). If
the window holds too few matches (a word common long ago, rare now) the page takes the exact plan: a page is
never wrong, only slower.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import BooleanField, Count, F, Func, OrderBy, Q, QuerySet, Value
from django.db.models.expressions import CombinedExpression
from django.db.models.sql.compiler import SQLCompiler
from django.utils import timezone

from agents.models import (
    Deployment,
    Feedback,
    FeedbackRating,
    Message,
    Session,
    SessionTag,
    UsageRecord,
    shown_status,
    shown_status_filter,
)
from scoping.models import Scope
from studio.filters import DateRange, ScopeParam
from studio.formatting import format_dollars
from studio.selectors.labels import label_of, scope_search

SESSION_PAGE_SIZE = 50
PAGE_SIZE_MIN = 5
PAGE_SIZE_MAX = 200
SCOPE_CHIPS = 12
SEARCH_CONFIG = "english"
BROAD_WALK_FACTOR = 4  # a broad page walks this many sessions per row it needs (a third or more match)
BROAD_WALK_MAX = 4_000  # and at most this many; a page further than that takes the exact plan
CSV_CHUNK_ROWS = 2000


@dataclass(frozen=True)
class SessionFilters:
    """What the list shows. Costs are micro-dollars; latencies are the mean per model call, in ms."""

    scope: ScopeParam
    range: DateRange
    model: str = ""
    status: str = ""
    search: str = ""
    user: str = ""
    tags: tuple[str, ...] = ()
    deploy: str = ""
    cost_min: int | None = None
    cost_max: int | None = None
    latency_min: int | None = None
    latency_max: int | None = None
    feedback: str = ""  # one of FEEDBACK_FILTERS, or "" for any session


# The feedback filter's values and what the form says of them: the sessions with a positive rating, with a
# negative one, with any, with none (of any user, of the session or of one of its messages). A session rated
# both ways is in "positive" and in "negative".
FEEDBACK_FILTERS = {
    "positive": "with a positive rating",
    "negative": "with a negative rating",
    "any": "rated",
    "none": "not rated",
}


def feedback_filter(feedback: str) -> Q:
    rated = Feedback.all_scopes.all()
    if feedback == "positive":
        rated = rated.filter(rating=FeedbackRating.POSITIVE)
    elif feedback == "negative":
        rated = rated.filter(rating=FeedbackRating.NEGATIVE)
    matching = Q(pk__in=rated.order_by().values("session_id"))
    return ~matching if feedback == "none" else matching


class TextSearch(Func):
    """`to_tsvector(config, column) @@ websearch_to_tsquery(config, query)`, written exactly as the GIN
    indexes are, so PostgreSQL uses them. The configuration is a constant of the SQL, never a parameter: a
    parameter would hide the index's expression from the planner."""

    output_field = BooleanField()
    conditional = True

    def __init__(self, column: str, query: str) -> None:
        super().__init__(F(column), Value(query))

    def as_sql(
        self,
        compiler: SQLCompiler,
        connection: BaseDatabaseWrapper,
        function: str | None = None,
        template: str | None = None,
        arg_joiner: str | None = None,
        **extra_context: Any,
    ) -> tuple[str, tuple[Any, ...]]:
        column_sql, column_params = compiler.compile(self.source_expressions[0])
        query_sql, query_params = compiler.compile(self.source_expressions[1])
        sql = (
            f"to_tsvector('{SEARCH_CONFIG}'::regconfig, {column_sql})"
            f" @@ websearch_to_tsquery('{SEARCH_CONFIG}'::regconfig, {query_sql})"
        )
        return sql, (*column_params, *query_params)


def search_filter(search: str) -> Q:
    """Sessions with a message matching `search`, or whose title does."""
    if connection.vendor == "postgresql":
        messages = Message.all_scopes.filter(TextSearch("text", search))
        titles = Session.all_scopes.filter(TextSearch("title", search))
    else:
        messages = Message.all_scopes.filter(text__icontains=search)
        titles = Session.all_scopes.filter(title__icontains=search)
    # One IN over a UNION of the two index scans, not `IN (messages) OR title matches`: PostgreSQL can join
    # a short list of matches to sessions by id (a rare word costs a millisecond), where an OR is a test
    # of every session row.
    matching = messages.order_by().values("session_id").union(titles.order_by().values("pk"))
    return Q(pk__in=matching)


@dataclass(frozen=True)
class SearchProbe:
    has_words: bool  # PostgreSQL leaves out common words such as "the": a query of only those matches nothing
    broad: bool  # at least AMODAL_STUDIO_BROAD_SEARCH messages or titles match (PostgreSQL only)


def probe_search(search: str) -> SearchProbe:
    """Whether the search has a word the index holds and whether it is broad: one query, which reads at
    most AMODAL_STUDIO_BROAD_SEARCH matches of each index. Elsewhere any text is searched as it is, never
    broad."""
    if connection.vendor != "postgresql":
        return SearchProbe(has_words=bool(search), broad=False)
    broad = settings.AMODAL_STUDIO_BROAD_SEARCH
    parts = [
        model.all_scopes.filter(TextSearch(column, search)).order_by().values("pk")[:broad].query
        for model, column in ((Message, "text"), (Session, "title"))
    ]
    compiled = [part.sql_with_params() for part in parts]
    counts = " + ".join(f"(SELECT COUNT(*) FROM ({part_sql}) AS part)" for part_sql, _ in compiled)  # noqa: S608
    sql = f"SELECT numnode(websearch_to_tsquery('{SEARCH_CONFIG}'::regconfig, %s)) > 0, {counts} >= %s"  # noqa: S608
    params = [search, *(param for _, part_params in compiled for param in part_params), broad]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        has_words, broad = cursor.fetchone()
    return SearchProbe(has_words=bool(has_words), broad=bool(has_words and broad))


def _range_filter(filters: SessionFilters) -> Q:
    """Cost and latency ranges. The mean latency (total / calls) is compared as total against bound × calls,
    so no division; a session without model calls has no mean and is left out by any latency bound."""
    q = Q()
    if filters.cost_min is not None:
        q &= Q(cost_micros__gte=filters.cost_min)
    if filters.cost_max is not None:
        q &= Q(cost_micros__lte=filters.cost_max)
    if filters.latency_min is not None or filters.latency_max is not None:
        q &= Q(model_calls__gt=0)
    if filters.latency_min is not None:
        q &= Q(model_latency_ms__gte=F("model_calls") * filters.latency_min)
    if filters.latency_max is not None:
        q &= Q(model_latency_ms__lte=F("model_calls") * filters.latency_max)
    return q


def _field_filter(filters: SessionFilters, now: datetime) -> Q:
    q = Q(**filters.range.filter_kwargs("updated_at"))
    for name, value in (("model", filters.model), ("deploy_id", filters.deploy), ("user_sub", filters.user)):
        if value:
            q &= Q(**{name: value})
    if filters.status:
        q &= shown_status_filter(filters.status, now)
    if filters.tags:
        q &= Q(pk__in=SessionTag.all_scopes.filter(tag__in=filters.tags).values("session_id"))
    if filters.feedback:
        q &= feedback_filter(filters.feedback)
    return q


def sessions_matching(
    filters: SessionFilters, *, with_scope: bool = True, now: datetime | None = None
) -> QuerySet[Session]:
    """Sessions whose last activity falls in the range and that pass every other filter (and the scope,
    unless `with_scope` is False: the chips count every scope). The status is the shown one at `now`."""
    queryset = Session.all_scopes.filter(_field_filter(filters, now or timezone.now()), _range_filter(filters))
    if filters.search:
        queryset = queryset.filter(search_filter(filters.search))
    if with_scope and filters.scope.selected:
        queryset = queryset.filter(scope=filters.scope.scope_id)
    return queryset


# --- sorting -------------------------------------------------------------------------------------------------

SORT_COLUMNS: dict[str, F | CombinedExpression] = {
    "last_active": F("updated_at"),
    "created": F("created_at"),
    "cost": F("cost_micros"),
    "tokens": F("input_tokens") + F("output_tokens"),
    "messages": F("message_count"),
}
DEFAULT_SORT = "-last_active"


@dataclass(frozen=True)
class SessionSort:
    """A column of SORT_COLUMNS and a direction; the session id breaks ties, in the same direction, so
    the order is total and pages neither repeat nor skip a row. In the URL: `sort=cost` or `sort=-cost`."""

    column: str = "last_active"
    descending: bool = True

    @classmethod
    def parse(cls, value: str) -> SessionSort | None:
        column = value.removeprefix("-")
        return cls(column, value.startswith("-")) if column in SORT_COLUMNS else None

    @property
    def param(self) -> str:
        return f"-{self.column}" if self.descending else self.column

    def order_by(self) -> list[OrderBy]:
        return [
            OrderBy(SORT_COLUMNS[self.column], descending=self.descending),
            OrderBy(F("id"), descending=self.descending),
        ]

    def link(self, column: str) -> str:
        """The `sort` of a column header's link: this column reversed, or another column largest first."""
        if column == self.column:
            return column if self.descending else f"-{column}"
        return f"-{column}"


def sort_choices() -> list[str]:
    return [value for column in SORT_COLUMNS for value in (f"-{column}", column)]


# --- counts and scope chips -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScopeChip:
    scope_id: str
    count: int | None  # None under a broad search (not counted)
    selected: bool


@dataclass(frozen=True)
class SessionCounts:
    total: int | None  # the sessions the list shows (of the selected scope, when one is); None: a broad search
    chips: list[ScopeChip]


COUNTS_SQL = (
    'SELECT "scope", "n", SUM("n") OVER () AS "every", SUM(CASE WHEN "scope" = %s THEN "n" ELSE 0 END) OVER ()'
    ' AS "selected", {preferred} AS "preferred" FROM ({per_scope}) AS "per_scope"'
    ' ORDER BY "preferred" DESC, "n" DESC, "scope" LIMIT %s'
)


def session_counts(
    filters: SessionFilters,
    *,
    search: str = "",
    limit: int = SCOPE_CHIPS,
    now: datetime | None = None,
    broad: bool = False,
) -> SessionCounts:
    """The total and the scope chips, from one grouped count: sessions per scope under every filter but the
    scope, with the sum over all scopes and the selected scope's count alongside (window functions), so
    the total costs no second pass over the matching sessions. The chips are the most active scopes, or
    with `search` the scopes whose id or label contains it (one more query, on the Scope table). A chip's count is
    the number of sessions the list shows once it is selected. Under a `broad` full-text search nothing is
    counted: the chips are the selected scope and those `search` finds, without counts."""
    candidates = _scope_candidates(search, limit) if search else None
    if broad:
        scope = filters.scope
        chosen = [scope.scope_id] if scope.selected else []
        shown = chosen + [scope_id for scope_id in candidates or [] if scope_id not in chosen]
        return SessionCounts(None, [ScopeChip(scope_id, None, scope_id in chosen) for scope_id in shown])
    rows = _counts_by_scope(filters, candidates, limit, now)
    every, selected = (int(rows[0][2]), int(rows[0][3])) if rows else (0, 0)
    if candidates is None:
        ranked = [(scope_id, n) for scope_id, n, *_ in rows]
    else:
        counts = {scope_id: n for scope_id, n, *_ in rows}
        ranked = sorted(((scope_id, counts.get(scope_id, 0)) for scope_id in candidates), key=lambda r: (-r[1], r[0]))
    scope = filters.scope
    chips = [ScopeChip(scope_id, n, scope.selected and scope_id == scope.scope_id) for scope_id, n in ranked]
    if scope.selected and not any(chip.selected for chip in chips):
        chips.insert(0, ScopeChip(scope.scope_id, selected, True))
    return SessionCounts(selected if scope.selected else every, chips)


def _counts_by_scope(
    filters: SessionFilters, candidates: list[str] | None, limit: int, now: datetime | None
) -> list[tuple[Any, ...]]:
    """Rows (scope, sessions, sessions of every scope, sessions of the selected scope, preferred): the
    candidates first when given, then the busiest scopes; at least one row whenever any session matches."""
    per_scope = sessions_matching(filters, with_scope=False, now=now).order_by().values("scope").annotate(n=Count("pk"))
    per_scope_sql, per_scope_params = per_scope.query.sql_with_params()
    preferred = "0"
    if candidates:
        preferred = f'CASE WHEN "scope" IN ({", ".join(["%s"] * len(candidates))}) THEN 1 ELSE 0 END'
    sql = COUNTS_SQL.format(preferred=preferred, per_scope=per_scope_sql)
    rows_wanted = limit if candidates is None else len(candidates)
    params = [filters.scope.scope_id, *(candidates or []), *per_scope_params, max(rows_wanted, 1)]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _scope_candidates(search: str, limit: int) -> list[str]:
    """Up to `limit` scopes whose id or label contains `search` (studio.selectors.labels.scope_search), most
    recently active first; "global" finds the global scope (the empty id), even without a Scope row."""
    matching = Scope.objects.filter(scope_search(search)).order_by("-last_seen_at")
    candidates = list(matching.values_list("scope_id", flat=True)[:limit])
    if "global".startswith(search.lower()) and "" not in candidates:
        candidates.append("")
    return candidates


# --- pages --------------------------------------------------------------------------------------------------


SESSION_LIST_FIELDS = (
    "id",
    "scope",
    "title",
    "tags",
    "status",
    "lock_expires_at",  # for shown_status
    "model",
    "provider",
    "deploy_id",
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
)


@dataclass(frozen=True)
class SessionPage:
    """Page `number` (from 1) of `size` sessions out of `total`; a broad search's page has no total, only
    whether a next page exists (`more`)."""

    sessions: list[Session]
    total: int | None
    number: int
    size: int
    window: int = field(default=2, repr=False)  # page links shown on each side of the current one
    more: bool = False

    @property
    def page_count(self) -> int | None:
        return None if self.total is None else page_count(self.total, self.size)

    @property
    def first_shown(self) -> int:
        return (self.number - 1) * self.size + 1 if self.sessions else 0

    @property
    def last_shown(self) -> int:
        return (self.number - 1) * self.size + len(self.sessions)

    @property
    def previous(self) -> int | None:
        return self.number - 1 if self.number > 1 else None

    @property
    def next(self) -> int | None:
        last = self.page_count
        return self.number + 1 if (self.more if last is None else self.number < last) else None

    def links(self) -> list[int | None]:
        """Page numbers to link: the first, the last and a window around the current one; None marks a gap.
        None without a total (a broad search pages by previous and next only)."""
        last = self.page_count
        if last is None:
            return []
        shown = {1, last, *range(self.number - self.window, self.number + self.window + 1)}
        numbers = sorted(n for n in shown if 1 <= n <= last)
        links: list[int | None] = []
        for n in numbers:
            if links and n - (links[-1] or 0) > 1:
                links.append(None)
            links.append(n)
        return links


def page_count(total: int, size: int) -> int:
    """The number of pages of `total` rows, `size` a page; an empty list has one (empty) page."""
    return max(1, -(-total // size))


def session_page(
    filters: SessionFilters,
    sort: SessionSort,
    *,
    number: int = 1,
    size: int = SESSION_PAGE_SIZE,
    total: int | None,
    now: datetime | None = None,
) -> SessionPage:
    """Page `number` of the sessions in `sort` order (one query, LIMIT/OFFSET: the sort's index makes a page
    near the start cheap; `total` comes from session_counts). Without a total (a broad search) see
    broad_search_page."""
    offset = (number - 1) * size
    queryset = sessions_matching(filters, now=now).only(*SESSION_LIST_FIELDS).order_by(*sort.order_by())
    if total is not None:
        return SessionPage(list(queryset[offset : offset + size]), total, number, size)
    walked = broad_search_page(filters, sort, offset=offset, size=size, now=now)
    rows = walked if walked is not None else list(queryset[offset : offset + size + 1])
    return SessionPage(rows[:size], None, number, size, more=len(rows) > size)


def broad_search_page(
    filters: SessionFilters, sort: SessionSort, *, offset: int, size: int, now: datetime | None
) -> list[Session] | None:
    """Up to `size` + 1 sessions from `offset` of a broad search, found among the first sessions of the
    list without the search (in its order, BROAD_WALK_FACTOR per row wanted), each tested for a match one
    by one (a scalar subquery per session, stopping at the rows wanted; the LIMIT of the window keeps the
    test from being pushed down to every session). None when the window is too small to be sure (it is
    full and holds too few matches) or the page lies beyond BROAD_WALK_MAX: then take the exact plan."""
    window = (offset + size + 1) * BROAD_WALK_FACTOR
    if window > BROAD_WALK_MAX:
        return None
    unsearched = sessions_matching(replace(filters, search=""), now=now)
    direction = "DESC" if sort.descending else "ASC"
    first = (
        unsearched.only(*SESSION_LIST_FIELDS)
        .annotate(sort_key=SORT_COLUMNS[sort.column])
        .order_by(OrderBy(F("sort_key"), descending=sort.descending), OrderBy(F("id"), descending=sort.descending))
    )
    first_sql, first_params = first[:window].query.sql_with_params()
    messages = connection.ops.quote_name(Message._meta.db_table)
    query = f"websearch_to_tsquery('{SEARCH_CONFIG}'::regconfig, %s)"
    sql = (
        f"SELECT w.* FROM ({first_sql}) AS w"  # noqa: S608
        f" WHERE to_tsvector('{SEARCH_CONFIG}'::regconfig, w.title) @@ {query}"
        f" OR (SELECT m.id FROM {messages} AS m WHERE m.session_id = w.id"
        f" AND to_tsvector('{SEARCH_CONFIG}'::regconfig, m.text) @@ {query} LIMIT 1) IS NOT NULL"
        f" ORDER BY w.sort_key {direction}, w.id {direction} OFFSET %s LIMIT %s"
    )
    params = [*first_params, filters.search, filters.search, offset, size + 1]
    rows = list(Session.all_scopes.raw(sql, params))
    if len(rows) > size or unsearched.order_by()[:window].count() < window:
        return rows
    return None


# --- every row, for the CSV export ------------------------------------------------------------------------------

SESSION_CSV_HEADER = (
    "session id",
    "scope",
    "scope label",
    "title",
    "user",
    "model",
    "deploy",
    "status",
    "messages",
    "tokens",
    "cost (USD)",
    "unpriced calls",
    "created (UTC)",
    "last active (UTC)",
)
CSV_FIELDS = (
    "id",
    "scope",
    "scope_label",
    "title",
    "user_sub",
    "model",
    "deploy_id",
    "status",
    "lock_expires_at",
    "message_count",
    "input_tokens",
    "output_tokens",
    "cost_micros",
    "unpriced_calls",
    "created_at",
    "updated_at",
)


def session_csv_rows(filters: SessionFilters, sort: SessionSort, *, now: datetime | None = None) -> Iterator[list[Any]]:
    """Every session of the filtered list in the page's order, as rows under SESSION_CSV_HEADER. Read
    through a database iterator CSV_CHUNK_ROWS rows at a time (a server-side cursor on PostgreSQL), never
    as one list. The scope's label comes with each row (in the same query); the cost is the priced part in
    dollars, empty when every call was unpriced; the status is the one the list shows."""
    now = now or timezone.now()
    queryset = (
        sessions_matching(filters, now=now)
        .annotate(scope_label=label_of("scope"))
        .order_by(*sort.order_by())
        .values_list(*CSV_FIELDS)
    )
    for row in queryset.iterator(chunk_size=CSV_CHUNK_ROWS):
        (
            pk,
            scope,
            scope_label,
            title,
            user,
            model,
            deploy,
            status,
            lease,
            messages,
            tokens_in,
            tokens_out,
            cost,
            unpriced,
            created,
            updated,
        ) = row
        yield [
            str(pk),
            scope,
            scope_label,
            title,
            user,
            model,
            deploy,
            shown_status(status, lease, now),
            messages,
            tokens_in + tokens_out,
            "" if cost == 0 and unpriced else format_dollars(cost),
            unpriced,
            created.astimezone(UTC).isoformat(),
            updated.astimezone(UTC).isoformat(),
        ]


# A skip scan: one probe of the usage (model, created_at) index per model, where SELECT DISTINCT over the
# sessions would read all of them (tens of milliseconds at 200,000 sessions, on every page view).
MODELS_SQL = (
    'WITH RECURSIVE "models" ("model") AS (SELECT MIN("model") FROM {table} UNION ALL'
    ' SELECT (SELECT MIN("model") FROM {table} WHERE "model" > "models"."model") FROM "models"'
    ' WHERE "models"."model" IS NOT NULL) SELECT "model" FROM "models" WHERE "model" IS NOT NULL'
)


def session_models() -> list[str]:
    """The models of the filter's list: every model a model call used (the usage rows). A session that
    ended before its first call has a model no usage row names: the filter still takes it, typed in a URL."""
    table = connection.ops.quote_name(UsageRecord._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(MODELS_SQL.format(table=table))
        return [model for (model,) in cursor.fetchall() if model]


def session_deploys() -> list[Deployment]:
    """Every deploy, newest first (a short table: one row per agent folder version)."""
    return list(Deployment.objects.order_by("-first_seen_at", "deploy_id"))
