"""The sessions list: filters, keyset pages of sessions and the scope chips above them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Q, QuerySet

from agents.models import Session
from scoping.models import Scope
from studio.filters import DateRange, ScopeParam, decode_cursor, encode_cursor, parse_moment

SESSION_PAGE_SIZE = 50
SCOPE_CHIPS = 12


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
    "id",
    "scope",
    "title",
    "status",
    "lock_expires_at",  # for shown_status
    "model",
    "provider",
    "deploy_id",
    "created_at",
    "updated_at",
    "message_count",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cost_micros",
    "unpriced_calls",
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


def session_page(
    filters: SessionFilters, *, after: str | None = None, before: str | None = None, size: int = SESSION_PAGE_SIZE
) -> SessionPage:
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
            queryset.filter(Q(updated_at__gt=moment) | Q(updated_at=moment, id__gt=key)).order_by("updated_at", "id")[
                : size + 1
            ]
        )
        more_newer = len(rows) > size
        rows = rows[:size][::-1]
        return SessionPage(
            rows,
            total,
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
        rows,
        total,
        older=encode_cursor(rows[-1].updated_at, rows[-1].pk) if rows and more_older else None,
        newer=encode_cursor(rows[0].updated_at, rows[0].pk) if rows and older_position else None,
        at_start=older_position is None,
    )


@dataclass(frozen=True)
class ScopeChip:
    scope_id: str
    count: int
    selected: bool


def scope_chips(
    filters: SessionFilters, *, search: str = "", selected_count: int | None = None, limit: int = SCOPE_CHIPS
) -> list[ScopeChip]:
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
    chips = [
        ScopeChip(scope_id, count, filters.scope.selected and scope_id == filters.scope.scope_id)
        for scope_id, count in rows
    ]
    if filters.scope.selected and not any(chip.selected for chip in chips):
        count = selected_count if selected_count is not None else base.filter(scope=filters.scope.scope_id).count()
        chips.insert(0, ScopeChip(filters.scope.scope_id, count, True))
    return chips


def session_models() -> list[str]:
    """Every model a session has used (a short list: one DISTINCT query)."""
    return sorted(filter(None, Session.all_scopes.order_by().values_list("model", flat=True).distinct()))
