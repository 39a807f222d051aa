"""Studio's GET parameters, parsed into small typed values (date ranges, keyset cursors, the scope).

Every filter is a GET parameter, so every view is a link and works without JavaScript.

The scope parameter: `?scope=<id>` selects one scope and `?scope=` (present, empty) the global scope;
no `scope` parameter means every scope. Scope ids are opaque printable strings, so no sentinel value could
stand for "global" without colliding with a real id; presence does.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.http import QueryDict
from django.utils import timezone

from scoping.context import InvalidScope, validate_scope_id

RANGE_PRESETS = {
    "today": ("Today", 1),
    "7d": ("7 days", 7),
    "30d": ("30 days", 30),
    "90d": ("90 days", 90),
}
ALL_TIME = "all"
CUSTOM = "custom"


@dataclass(frozen=True)
class DateRange:
    """A half-open interval [start, end) of datetimes; `None` ends are open. `key` names the preset."""

    key: str
    start: datetime | None
    end: datetime | None
    first_day: date | None
    last_day: date | None  # inclusive, for display and the date inputs

    @property
    def label(self) -> str:
        if self.key in RANGE_PRESETS:
            return RANGE_PRESETS[self.key][0]
        if self.key == ALL_TIME:
            return "All time"
        first = self.first_day.isoformat() if self.first_day else "…"
        last = self.last_day.isoformat() if self.last_day else "…"
        return f"{first} – {last}"

    def filter_kwargs(self, field: str) -> dict[str, datetime]:
        kwargs: dict[str, datetime] = {}
        if self.start is not None:
            kwargs[f"{field}__gte"] = self.start
        if self.end is not None:
            kwargs[f"{field}__lt"] = self.end
        return kwargs

    def days(self) -> list[date]:
        """Every day of the range (for a daily chart); needs both ends."""
        if self.first_day is None or self.last_day is None:
            return []
        count = (self.last_day - self.first_day).days + 1
        return [self.first_day + timedelta(days=offset) for offset in range(max(count, 0))]


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min), timezone.get_current_timezone())


def _parse_day(raw: str | None) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        return None


def parse_date_range(params: QueryDict, *, default: str, now: datetime | None = None) -> DateRange:
    """`range=today|7d|30d|90d|all`, or `from`/`to` days (inclusive, either may be missing)."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    first, last = _parse_day(params.get("from")), _parse_day(params.get("to"))
    key = params.get("range") or ""
    if (first or last) and key in ("", CUSTOM):
        if first and last and last < first:
            first, last = last, first
        return DateRange(
            CUSTOM,
            _day_start(first) if first else None,
            _day_start(last + timedelta(days=1)) if last else None,
            first,
            last or (today if first else None),
        )
    if key not in RANGE_PRESETS and key != ALL_TIME:
        key = default
    if key == ALL_TIME:
        return DateRange(ALL_TIME, None, None, None, None)
    days = RANGE_PRESETS[key][1]
    first_day = today - timedelta(days=days - 1)
    return DateRange(key, _day_start(first_day), None, first_day, today)


@dataclass(frozen=True)
class ScopeParam:
    """The selected scope: `selected` False means every scope."""

    selected: bool
    scope_id: str = ""


def parse_scope(params: QueryDict, name: str = "scope") -> ScopeParam:
    if name not in params:
        return ScopeParam(False)
    try:
        return ScopeParam(True, validate_scope_id(params.get(name, "")))
    except InvalidScope:
        return ScopeParam(False)


def encode_cursor(*values: Any) -> str:
    """A keyset position as an opaque URL-safe token (JSON in base64; datetimes in ISO 8601)."""
    raw = json.dumps([value.isoformat() if isinstance(value, datetime) else str(value) for value in values])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, size: int) -> list[str] | None:
    """The `size` strings of a cursor made by encode_cursor, or None when absent or not one of ours."""
    if not cursor:
        return None
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode())
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    if not isinstance(values, list) or len(values) != size or not all(isinstance(v, str) for v in values):
        return None
    return values


def parse_moment(raw: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment)


def parse_int(raw: str | None, *, default: int, low: int, high: int) -> int:
    try:
        value = int(raw) if raw not in (None, "") else default
    except ValueError:
        value = default
    return max(low, min(high, value))


def query_string(params: QueryDict, **changes: Any) -> str:
    """The current query with some parameters changed (`None` removes one); starts with `?` or is empty."""
    query = params.copy()
    for name, value in changes.items():
        name = name.rstrip("_")  # from_ → from
        if value is None:
            query.pop(name, None)
        else:
            query[name] = value
    encoded = query.urlencode()
    return f"?{encoded}" if encoded else "?"
