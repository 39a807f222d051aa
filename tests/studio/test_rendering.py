"""The small pieces: money/token/scope formatting, date ranges, cursors, the chart (Markdown: test_markdown.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from django.http import QueryDict

from studio.charts import daily_chart
from studio.filters import decode_cursor, encode_cursor, parse_date_range, parse_scope
from studio.formatting import format_cost, format_tokens, format_usd, short_scope
from studio.selectors import DayPoint


@pytest.mark.parametrize(
    "micros, unpriced, expected",
    [
        (None, 0, "unpriced"),
        (0, 2, "unpriced"),
        (0, 0, "$0.00"),
        (1_200_000, 3, "$1.20 + 3 unpriced"),
        (42, 0, "<$0.0001"),
        (4_200, 0, "$0.0042"),
        (9_950, 0, "$0.01"),
        (1_234_567_890, 0, "$1,234.57"),
    ],
)
def test_cost(micros, unpriced, expected):
    assert format_cost(micros, unpriced) == expected


def test_usd_and_tokens():
    assert format_usd(3_000_000) == "$3.00"
    assert [format_tokens(n) for n in (0, 999, 1000, 1500, 12_345, 999_999, 1_234_567, 3_000_000_000)] == [
        "0",
        "999",
        "1k",
        "1.5k",
        "12.3k",
        "1M",
        "1.23M",
        "3B",
    ]


def test_scope_display():
    assert short_scope("") == "global"
    assert short_scope("tenant-a") == "tenant-a"
    long = "tenant:acme:workspace:8f14e45f-ceea-467f-a0e6-1234567890ab"
    assert short_scope(long) == "tenant:acme:wo…567890ab"


NOW = datetime(2025, 6, 15, 12, 30, tzinfo=UTC)


def test_date_ranges():
    seven = parse_date_range(QueryDict("range=7d"), default="30d", now=NOW)
    assert seven.start == datetime(2025, 6, 9, tzinfo=UTC) and seven.end is None and len(seven.days()) == 7
    today = parse_date_range(QueryDict("range=today"), default="30d", now=NOW)
    assert today.start == datetime(2025, 6, 15, tzinfo=UTC)
    custom = parse_date_range(QueryDict("from=2025-06-10&to=2025-06-01"), default="30d", now=NOW)
    assert (custom.start, custom.end) == (datetime(2025, 6, 1, tzinfo=UTC), datetime(2025, 6, 11, tzinfo=UTC))
    assert parse_date_range(QueryDict("range=nonsense"), default="30d", now=NOW).key == "30d"
    assert parse_date_range(QueryDict("range=all"), default="30d", now=NOW).start is None
    assert parse_date_range(QueryDict("from=garbage"), default="90d", now=NOW).key == "90d"


def test_scope_parameter_presence_means_a_scope():
    assert not parse_scope(QueryDict("")).selected
    assert parse_scope(QueryDict("scope=")).selected and parse_scope(QueryDict("scope=")).scope_id == ""
    assert parse_scope(QueryDict("scope=a%20b")).scope_id == "a b"
    assert not parse_scope(QueryDict("scope=%00")).selected


def test_cursors_round_trip_and_reject_garbage():
    token = encode_cursor(NOW, "abc|def")
    assert decode_cursor(token, 2) == [NOW.isoformat(), "abc|def"]
    assert decode_cursor(token, 3) is None
    assert decode_cursor("!!!", 2) is None and decode_cursor(None, 2) is None


def test_chart_geometry():
    points = [
        DayPoint(date(2025, 6, d), cost, tokens, calls, 0)
        for d, cost, tokens, calls in ((1, 0, 0, 0), (2, 2_000_000, 5000, 3), (3, None, 100, 1))
    ]
    chart = daily_chart(points)
    assert len(chart.bars) == 3 and not chart.empty
    assert chart.bars[0].height == 0
    assert chart.bars[1].height == chart.plot_bottom - chart.plot_top, "the top day fills the plot"
    assert chart.bars[2].unpriced_only and "unpriced" in chart.bars[2].title
    assert [label.text for label in chart.grid][-1] == "$2.00"
    assert daily_chart([DayPoint(date(2025, 6, 1), 0, 0, 0, 0)]).empty
