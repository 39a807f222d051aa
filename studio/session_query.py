"""The sessions page's GET parameters, read strictly (studio.filters.ParamReader): every invalid one is
reported by name, none is silently dropped.

    scope, range, from, to        the scope chip and the last-activity range (studio.filters)
    q                             full-text search over message text and titles
    model, deploy, status, user   exact values (status as the list shows it: see Session.shown_status;
                                  deploy and status must be known ones)
    tag                           any of these tags (repeat the parameter or separate with commas)
    feedback                      positive, negative, any or none: the sessions' end-user ratings
    cost_min, cost_max            dollars, e.g. 0.05
    latency_min, latency_max      mean latency per model call, ms
    sort                          a column of SORT_COLUMNS, `-` first for largest/newest first
    page, per                     page number (from 1) and page size
    find                          the chips' scope search
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.http import QueryDict

from agents.models import SessionStatus
from studio.filters import DateRange, ParamError, ParamReader
from studio.selectors.sessions import (
    DEFAULT_SORT,
    FEEDBACK_FILTERS,
    PAGE_SIZE_MAX,
    PAGE_SIZE_MIN,
    SESSION_PAGE_SIZE,
    SessionFilters,
    SessionSort,
    probe_search,
    sort_choices,
)

MAX_SEARCH = 200
MAX_SCOPE_SEARCH = 255
MAX_TEXT = 255
MAX_MODEL = 100
MAX_TAG = 64
MAX_TAGS = 20
MAX_DOLLARS = 1_000_000_000
MAX_LATENCY_MS = 86_400_000
MAX_PAGE = 10_000_000
# Parameters of the filter form (the ones "Clear filters" removes); scope, range and sort stay.
FORM_PARAMS = (
    "q",
    "model",
    "deploy",
    "status",
    "user",
    "tag",
    "feedback",
    "cost_min",
    "cost_max",
    "latency_min",
    "latency_max",
)


@dataclass(frozen=True)
class SessionQuery:
    filters: SessionFilters
    sort: SessionSort
    page: int
    size: int
    scope_search: str
    errors: list[ParamError]
    broad_search: bool = False  # a full-text search too broad to count (studio.selectors.sessions)

    @property
    def narrowed(self) -> bool:
        """Whether any filter of the form is set."""
        f = self.filters
        ranges = (f.cost_min, f.cost_max, f.latency_min, f.latency_max)
        return any((f.search, f.model, f.deploy, f.status, f.user, f.tags, f.feedback)) or any(
            v is not None for v in ranges
        )


def parse_session_query(params: QueryDict, *, deploys: Iterable[str]) -> SessionQuery:
    """The filters, sort and page of `params`. `deploys` are the deploy ids the filter may take. The model
    and the user are exact values: one no session has lists nothing (and the form shows it, selected). A
    search without any searchable word is an error (see probe_search)."""
    read = ParamReader(params)
    filters = SessionFilters(
        scope=read.scope(),
        range=read.date_range(default="all"),
        model=read.text("model", max_length=MAX_MODEL),
        status=read.choice("status", SessionStatus.values),
        search=read.text("q", max_length=MAX_SEARCH),
        user=read.text("user", max_length=MAX_TEXT),
        tags=read.texts("tag", max_length=MAX_TAG, max_count=MAX_TAGS),
        deploy=read.choice("deploy", deploys, unknown="no such deploy"),
        cost_min=read.dollars("cost_min", high=MAX_DOLLARS),
        cost_max=read.dollars("cost_max", high=MAX_DOLLARS),
        latency_min=read.optional_integer("latency_min", low=0, high=MAX_LATENCY_MS),
        latency_max=read.optional_integer("latency_max", low=0, high=MAX_LATENCY_MS),
        feedback=read.choice("feedback", FEEDBACK_FILTERS),
    )
    read.ordered("cost_min", filters.cost_min, "cost_max", filters.cost_max)
    read.ordered("latency_min", filters.latency_min, "latency_max", filters.latency_max)
    probe = probe_search(filters.search) if filters.search else None
    if probe is not None and not probe.has_words:
        read.error("q", filters.search, "has no word to search for (common words such as “the” are not indexed)")
    sort = SessionSort.parse(read.choice("sort", sort_choices(), default=DEFAULT_SORT)) or SessionSort()
    return SessionQuery(
        filters=filters,
        sort=sort,
        page=read.integer("page", default=1, low=1, high=MAX_PAGE),
        size=read.integer("per", default=SESSION_PAGE_SIZE, low=PAGE_SIZE_MIN, high=PAGE_SIZE_MAX),
        scope_search=read.text("find", max_length=MAX_SCOPE_SEARCH),
        errors=read.errors,
        broad_search=probe is not None and probe.broad,
    )


def export_filename(query: SessionQuery) -> str:
    """The CSV's file name, naming its filters: sessions_scope-acme_status-error_q-refund.csv."""
    f = query.filters
    parts = ["sessions"]
    if f.scope.selected:
        parts.append(f"scope-{f.scope.scope_id or 'global'}")
    if f.range.key != "all":
        parts.append(f"last-active-{f.range.label.lower()}" if f.range.key != "custom" else _days(f.range))
    named = (
        ("q", f.search),
        ("model", f.model),
        ("deploy", f.deploy),
        ("status", f.status),
        ("user", f.user),
        ("feedback", f.feedback),
    )
    parts += [f"{name}-{value}" for name, value in named if value]
    if f.tags:
        parts.append("tag-" + "+".join(f.tags))
    parts += _bounds("cost", f.cost_min, f.cost_max, lambda micros: f"{micros / 1_000_000:g}usd")
    parts += _bounds("latency", f.latency_min, f.latency_max, lambda ms: f"{ms}ms")
    return "_".join(part.replace(" ", "-") for part in parts) + ".csv"


def _days(date_range: DateRange) -> str:
    first = date_range.first_day.isoformat() if date_range.first_day else "start"
    last = date_range.last_day.isoformat() if date_range.last_day else "now"
    return f"last-active-{first}-to-{last}"


def _bounds(name: str, low: int | None, high: int | None, show: Callable[[int], str]) -> list[str]:
    if low is None and high is None:
        return []
    if high is None:
        return [f"{name}-from-{show(low)}"] if low is not None else []
    return [f"{name}-{show(low)}-to-{show(high)}" if low is not None else f"{name}-to-{show(high)}"]


@dataclass(frozen=True)
class SortHeader:
    """A sortable column heading: its link's `sort` value and, when the list is sorted by it, how."""

    column: str
    label: str
    numeric: bool
    link: str
    aria_sort: str  # "descending", "ascending" or "none"


# The sortable columns of the table, in its order: (column, heading, numeric).
SORTABLE_HEADINGS = [
    ("messages", "Messages", True),
    ("tokens", "Tokens", True),
    ("cost", "Cost", True),
    ("created", "Created (UTC)", False),
    ("last_active", "Last active (UTC)", False),
]


def sort_headers(sort: SessionSort) -> list[SortHeader]:
    headers = []
    for column, label, numeric in SORTABLE_HEADINGS:
        state = "none" if column != sort.column else "descending" if sort.descending else "ascending"
        headers.append(SortHeader(column, label, numeric, sort.link(column), state))
    return headers


def form_values(params: QueryDict) -> dict[str, str]:
    """The form's fields as they were sent (an invalid value stays in its field, to be fixed; a NUL shows
    as \\0, as in the error)."""
    values = {name: params.get(name, "") for name in (*FORM_PARAMS, "per")}
    values["tag"] = ", ".join(params.getlist("tag"))
    return {name: value.replace("\x00", "\\0") for name, value in values.items()}
