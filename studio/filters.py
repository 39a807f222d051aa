"""Studio's GET parameters, parsed into small typed values (date ranges, keyset cursors, the scope).

Every filter is a GET parameter, so every view is a link and works without JavaScript.

Two ways to read them. `ParamReader` is strict: every invalid value is recorded as a `ParamError` naming
its parameter (the value falls back to its default meanwhile), so a page can show them all and answer 400
instead of quietly showing something else (the sessions page does). The older functions (`parse_int`,
`parse_date_range`, `parse_scope`) are the same parsers with the errors ignored: they fall back silently.

The scope parameter: `?scope=<id>` selects one scope and `?scope=` (present, empty) the global scope;
no `scope` parameter means every scope. Scope ids are opaque printable strings, so no sentinel value could
stand for "global" without colliding with a real id; presence does.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
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
PREVIOUS = "previous"


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
        if self.key == PREVIOUS and self.first_day == self.last_day and self.first_day is not None:
            return self.first_day.isoformat()
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

    def day_kwargs(self, field: str) -> dict[str, date]:
        """The same range on a field of days (the usage rollup's UTC days: Studio's days are UTC days,
        settings.TIME_ZONE). An open end stays open, as in filter_kwargs."""
        kwargs: dict[str, date] = {}
        if self.start is not None and self.first_day is not None:
            kwargs[f"{field}__gte"] = self.first_day
        if self.end is not None and self.last_day is not None:
            kwargs[f"{field}__lte"] = self.last_day
        return kwargs

    def previous(self) -> DateRange | None:
        """The period of the same length just before, for comparisons; None for a range without a first
        and a last day (all time, or only an end)."""
        if self.start is None or self.first_day is None or self.last_day is None:
            return None
        length = timedelta(days=(self.last_day - self.first_day).days + 1)
        return DateRange(
            PREVIOUS,
            _day_start(self.first_day - length),
            self.start,
            self.first_day - length,
            self.first_day - timedelta(days=1),
        )

    def days(self) -> list[date]:
        """Every day of the range (for a daily chart); needs both ends."""
        if self.first_day is None or self.last_day is None:
            return []
        count = (self.last_day - self.first_day).days + 1
        return [self.first_day + timedelta(days=offset) for offset in range(max(count, 0))]


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min), timezone.get_current_timezone())


@dataclass(frozen=True)
class ParamError:
    """An invalid GET parameter: its name, the value given and what is wrong with it."""

    name: str
    value: str
    message: str

    @property
    def shown_value(self) -> str:
        """The value as the page shows it: a NUL as \\0, a long value cut short."""
        shown = self.value.replace("\x00", "\\0")
        if len(shown) <= SHOWN_VALUE_CHARS:
            return shown
        return f"{shown[:SHOWN_VALUE_CHARS]}… ({len(self.value):,} characters)"


SHOWN_VALUE_CHARS = 60
NUL_MESSAGE = "contains a NUL character"


def _parse_day(raw: str | None, name: str, errors: list[ParamError]) -> date | None:
    if not raw or not raw.strip():
        return None
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        errors.append(ParamError(name, raw, "not a date (YYYY-MM-DD)"))
        return None


def _date_range(params: QueryDict, default: str, now: datetime | None) -> tuple[DateRange, list[ParamError]]:
    """The range and what was wrong with its parameters; an invalid part falls back (a bad day is left
    out, an unknown preset is `default`, reversed days are swapped)."""
    errors: list[ParamError] = []
    now = now or timezone.now()
    today = timezone.localdate(now)
    first, last = _parse_day(params.get("from"), "from", errors), _parse_day(params.get("to"), "to", errors)
    key = params.get("range") or ""
    if key and key not in RANGE_PRESETS and key not in (ALL_TIME, CUSTOM):
        errors.append(ParamError("range", key, f"not one of {', '.join([*RANGE_PRESETS, ALL_TIME, CUSTOM])}"))
    if (first or last) and key in ("", CUSTOM):
        if first and last and last < first:
            errors.append(ParamError("to", params.get("to", ""), f"is before from ({first.isoformat()})"))
            first, last = last, first
        return (
            DateRange(
                CUSTOM,
                _day_start(first) if first else None,
                _day_start(last + timedelta(days=1)) if last else None,
                first,
                last or (today if first else None),
            ),
            errors,
        )
    if key in RANGE_PRESETS or key == ALL_TIME:
        for name, day in (("from", first), ("to", last)):
            if day:
                errors.append(ParamError(name, params.get(name, ""), f"cannot be combined with range={key}"))
    if key not in RANGE_PRESETS and key != ALL_TIME:
        key = default
    if key == ALL_TIME:
        return DateRange(ALL_TIME, None, None, None, None), errors
    days = RANGE_PRESETS[key][1]
    first_day = today - timedelta(days=days - 1)
    return DateRange(key, _day_start(first_day), None, first_day, today), errors


def parse_date_range(params: QueryDict, *, default: str, now: datetime | None = None) -> DateRange:
    """`range=today|7d|30d|90d|all`, or `from`/`to` days (inclusive, either may be missing). Lenient: an
    invalid part falls back silently (ParamReader.date_range reports it)."""
    return _date_range(params, default, now)[0]


@dataclass(frozen=True)
class ScopeParam:
    """The selected scope: `selected` False means every scope."""

    selected: bool
    scope_id: str = ""


def _scope(params: QueryDict, name: str) -> tuple[ScopeParam, ParamError | None]:
    if name not in params:
        return ScopeParam(False), None
    raw = params.get(name, "")
    try:
        return ScopeParam(True, validate_scope_id(raw)), None
    except InvalidScope as error:
        return ScopeParam(False), ParamError(name, raw, f"not a scope id ({error})")


def parse_scope(params: QueryDict, name: str = "scope") -> ScopeParam:
    """Lenient: an invalid scope id means every scope (ParamReader.scope reports it)."""
    return _scope(params, name)[0]


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


def _int(raw: str | None, *, default: int, low: int, high: int) -> tuple[int, str | None]:
    """The integer and, when `raw` is not one within [low, high], what is wrong (the value then is the
    default, or the nearest bound)."""
    if raw is None or not raw.strip():
        return default, None
    try:
        value = int(raw)
    except ValueError:
        return default, "not a whole number"
    if not low <= value <= high:
        return max(low, min(high, value)), f"must be between {low:,} and {high:,}"
    return value, None


def parse_int(raw: str | None, *, default: int, low: int, high: int) -> int:
    """Lenient: not a number is the default, out of range is clamped (ParamReader.integer reports both)."""
    return _int(raw, default=default, low=low, high=high)[0]


class ParamReader:
    """Reads GET parameters strictly: every problem is kept in `errors` (one per parameter, by name) while
    the value falls back to its default, so a page lists them all at once. A value with a NUL character is
    an error whatever the parameter (databases refuse it in text)."""

    def __init__(self, params: QueryDict) -> None:
        self.params = params
        self.errors: list[ParamError] = []
        for name, values in params.lists():
            for value in values:
                if "\x00" in value or "\x00" in name:
                    self.error(name.replace("\x00", "\\0"), value, NUL_MESSAGE)

    def error(self, name: str, value: str, message: str) -> None:
        if not self.invalid(name):
            self.errors.append(ParamError(name, value, message))

    def invalid(self, name: str) -> bool:
        return any(error.name == name for error in self.errors)

    def raw(self, name: str) -> str | None:
        """The value (the last one, when repeated), or None when absent or already invalid."""
        value = self.params.get(name)
        return None if value is None or self.invalid(name) else value

    def text(self, name: str, *, max_length: int) -> str:
        value = (self.raw(name) or "").strip()
        if len(value) > max_length:
            self.error(name, value, f"longer than {max_length:,} characters")
            return ""
        return value

    def texts(self, name: str, *, max_length: int, max_count: int) -> tuple[str, ...]:
        """Every value of a repeated parameter, each also split at commas (`tag=a,b&tag=c`): unique, in order."""
        values = [] if self.invalid(name) else self.params.getlist(name)
        parts = [part.strip() for value in values for part in value.split(",")]
        unique = tuple(dict.fromkeys(part for part in parts if part))
        too_long = [part for part in unique if len(part) > max_length]
        if too_long:
            self.error(name, too_long[0], f"longer than {max_length:,} characters")
            return ()
        if len(unique) > max_count:
            self.error(name, ", ".join(unique), f"more than {max_count} values")
            return ()
        return unique

    def choice(self, name: str, choices: Iterable[str], *, default: str = "", unknown: str = "") -> str:
        """One of `choices`; anything else is an error saying `unknown` (default: the list of choices)."""
        value = (self.raw(name) or "").strip()
        if not value:
            return default
        allowed = list(choices)
        if value not in allowed:
            listed = ", ".join(allowed) if len(allowed) <= 12 else f"{', '.join(allowed[:12])}, …"
            self.error(name, value, unknown or f"not one of: {listed}")
            return default
        return value

    def integer(self, name: str, *, default: int, low: int, high: int) -> int:
        raw = self.raw(name)
        value, problem = _int(raw, default=default, low=low, high=high)
        if problem:
            self.error(name, raw or "", problem)
        return value

    def optional_integer(self, name: str, *, low: int, high: int) -> int | None:
        raw = self.raw(name)
        if raw is None or not raw.strip():
            return None
        value, problem = _int(raw, default=low, low=low, high=high)
        if problem:
            self.error(name, raw, problem)
            return None
        return value

    def dollars(self, name: str, *, high: int) -> int | None:
        """An amount in dollars ("1.5", "$0.02") as integer micro-dollars, or None when absent."""
        raw = self.raw(name)
        if raw is None or not raw.strip():
            return None
        text = raw.strip().removeprefix("$")
        try:
            amount = Decimal(text)
        except InvalidOperation:
            amount = None
        if amount is None or not amount.is_finite() or not DOLLARS_RE.fullmatch(text):
            self.error(name, raw, "not an amount in dollars (like 0.25)")
            return None
        if amount > high:
            self.error(name, raw, f"must be at most {high:,} dollars")
            return None
        micros = amount * MICROS_PER_DOLLAR
        if micros != micros.to_integral_value():
            self.error(name, raw, "more precise than a micro-dollar (at most 6 decimal places)")
            return None
        return int(micros)

    def ordered(self, low_name: str, low: int | None, high_name: str, high: int | None) -> None:
        """Record an error when both bounds of a range are given and the lower is above the upper."""
        if low is not None and high is not None and low > high:
            self.error(high_name, self.params.get(high_name, ""), f"is below {low_name}")

    def date_range(self, *, default: str, now: datetime | None = None) -> DateRange:
        date_range, errors = _date_range(self.params, default, now)
        for error in errors:
            self.error(error.name, error.value, error.message)
        return date_range

    def scope(self, name: str = "scope") -> ScopeParam:
        if self.invalid(name):
            return ScopeParam(False)
        scope, error = _scope(self.params, name)
        if error:
            self.error(error.name, error.value, error.message)
        return scope


MICROS_PER_DOLLAR = 1_000_000
DOLLARS_RE = re.compile(r"\d+(\.\d*)?|\.\d+")


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
