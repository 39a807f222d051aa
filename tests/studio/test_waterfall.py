"""A turn's timeline (studio.selectors.replay.Turn.timeline) and its SVG geometry (studio.waterfall): where each
step starts and how long it runs, the order, overlaps, instants, missing figures and an empty turn."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from agents.models import Message, UsageRecord
from studio.selectors.replay import ModelCall, Span, Turn, normalise_tool_call
from studio.waterfall import MIN_BAR_UNITS, ROW_HEIGHT, TRACK_UNITS, turn_waterfall
from tests.studio.factories import tool

T0 = datetime(2025, 3, 4, 10, 0, 0, tzinfo=UTC)


def at(ms: int) -> datetime:
    return T0 + timedelta(milliseconds=ms)


def model_call(*, ends: int | None, latency: int = 0, tools=(), created: int | None = None, error_code: str = ""):
    """A model call whose usage row was written `ends` ms after T0 (none: no usage row)."""
    message = Message(
        role="assistant", created_at=at(created if created is not None else ends or 0), error_code=error_code
    )
    usage = None
    if ends is not None:
        usage = UsageRecord(
            model="claude-x", latency_ms=latency, input_tokens=1200, output_tokens=34, created_at=at(ends)
        )
    return ModelCall(message, usage, [normalise_tool_call(call) for call in tools])


def turn(*calls: ModelCall, user_at: int | None = 0) -> Turn:
    user = Message(role="user", created_at=at(user_at)) if user_at is not None else None
    return Turn(number=1, anchor="turn-0", user=user, calls=list(calls))


def figures(spans: list[Span]) -> list[tuple]:
    return [
        (span.kind, span.name, span.call_number, span.start_ms, span.duration_ms, span.failed, span.timing)
        for span in spans
    ]


def test_model_calls_start_latency_before_their_usage_row_and_tools_follow_them():
    spans = turn(
        model_call(
            ends=1_900,
            latency=1_800,
            tools=[tool("request", duration_ms=231), tool("query_store", status="error", duration_ms=9)],
        ),
        model_call(ends=4_600, latency=2_400),
    ).timeline
    assert figures(spans) == [
        ("model", "claude-x", 1, 100, 1_800, False, "recorded"),
        ("tool", "request", 1, 1_900, 231, False, "derived"),
        ("tool", "query_store", 1, 2_131, 9, True, "derived"),
        ("model", "claude-x", 2, 2_200, 2_400, False, "recorded"),
    ]
    assert (spans[0].input_tokens, spans[0].output_tokens) == (1200, 34)
    assert spans[1].input_tokens is None, "a tool call has no tokens"


def test_steps_keep_the_order_they_ran_in_even_when_times_overlap():
    # The second call's usage row says it started before the first call's tool ended (clocks, rounding).
    spans = turn(
        model_call(ends=1_000, latency=1_000, tools=[tool("slow", duration_ms=5_000)]),
        model_call(ends=4_000, latency=1_000),
    ).timeline
    assert [(span.kind, span.start_ms, span.end_ms) for span in spans] == [
        ("model", 0, 1_000),
        ("tool", 1_000, 6_000),
        ("model", 3_000, 4_000),
    ]
    bars = turn_waterfall(spans).bars
    assert [bar.top for bar in bars] == [0, ROW_HEIGHT, 2 * ROW_HEIGHT], "one row each: overlapping bars stay apart"
    assert bars[1].x + bars[1].width == TRACK_UNITS, "the longest end is the end of the axis"
    assert bars[2].x < bars[1].x + bars[1].width


def test_the_axis_starts_at_the_earliest_moment():
    # A user message stamped after the call's derived start (clock skew): nothing starts before 0.
    spans = turn(model_call(ends=1_000, latency=3_000), user_at=500).timeline
    assert spans[0].start_ms == 0 and spans[0].duration_ms == 3_000
    assert turn(model_call(ends=9_000, latency=1_000), user_at=None).timeline[0].start_ms == 0, "no user message"


def test_a_model_call_without_usage_runs_from_the_step_before_to_its_message():
    spans = turn(
        model_call(ends=1_000, latency=1_000, tools=[tool(duration_ms=500)]),
        model_call(ends=None, created=4_000),
    ).timeline
    assert figures(spans)[2] == ("model", "", 2, 1_500, 2_500, False, "unknown")
    bar = turn_waterfall(spans).bars[2]
    assert bar.label == "Model call 2 · no usage recorded" and "length unknown" in bar.title


def test_a_tool_call_without_a_duration_is_an_instant_marked_unknown():
    odd = [
        {"tool_name": "memory", "status": "success", "result": "ok"},
        {"tool_name": "memory", "status": "success", "duration_ms": "12"},
        {"tool_name": "memory", "status": "success", "duration_ms": True},
        {"tool_name": "memory", "status": "success", "duration_ms": -5},
        "not a dict",
    ]
    spans = turn(model_call(ends=100, latency=100, tools=odd)).timeline
    assert [(span.start_ms, span.duration_ms, span.timing) for span in spans[1:]] == [(100, 0, "unknown")] * 5
    assert spans[-1].failed and spans[-1].name == "?"
    bars = turn_waterfall(spans).bars
    assert all(bar.width == MIN_BAR_UNITS for bar in bars[1:]), "instants still show"
    assert "duration not recorded" in bars[1].label


def test_zero_durations_get_a_minimum_visible_width_inside_the_axis():
    spans = turn(model_call(ends=0, latency=0, tools=[tool(duration_ms=0)]), model_call(ends=0, latency=0)).timeline
    waterfall = turn_waterfall(spans)
    assert [bar.width for bar in waterfall.bars] == [MIN_BAR_UNITS] * 3
    assert all(bar.x >= 0 and bar.x + bar.width <= TRACK_UNITS for bar in waterfall.bars)
    assert waterfall.total_ms == 1, "an axis of at least 1 ms: no division by zero"
    end = turn_waterfall(
        [Span("model", "m", 1, 0, 1000, False, "recorded", 1, 1), Span("tool", "t", 1, 1000, 0, False, "derived")]
    )
    assert end.bars[1].x + end.bars[1].width == TRACK_UNITS, "an instant at the very end is drawn inside"


def test_a_turn_with_no_calls_has_an_empty_waterfall():
    assert turn().timeline == [] and turn(user_at=None).timeline == []
    waterfall = turn_waterfall([])
    assert waterfall.empty and waterfall.bars == [] and waterfall.ticks == [] and waterfall.height == 0
    assert waterfall.summary == "0 model calls and 0 tool calls over 0 ms"


def test_geometry_labels_and_titles():
    spans = turn(
        model_call(ends=2_000, latency=1_500, tools=[tool("request", status="error", duration_ms=400)], error_code=""),
        model_call(ends=4_000, latency=1_000, error_code="overloaded_error"),
    ).timeline
    waterfall = turn_waterfall(spans)
    assert waterfall.total_ms == 4_000 and waterfall.summary == "2 model calls and 1 tool call over 4.0 s"
    first, tool_bar, second = waterfall.bars
    assert (first.x, first.width) == (125.0, 375.0)
    assert (tool_bar.x, tool_bar.width) == (500.0, 100.0)
    assert (second.x, second.width) == (750.0, 250.0)
    assert first.label == "Model call 1 · 1.5 s · 1.2k in / 34 out"
    assert first.title == "Model call 1 (claude-x): starts at +500 ms, 1.5 s, 1,200 in / 34 out tokens"
    assert tool_bar.label == "request · 400 ms · failed" and tool_bar.failed and tool_bar.label_x > 0
    assert "derived" in tool_bar.title and "of model call 1" in tool_bar.title
    assert second.failed and second.label.endswith("· failed"), "a model call that errored"
    assert waterfall.height == 3 * ROW_HEIGHT + (waterfall.height - waterfall.rows_height)
    assert [bar.label_y < bar.bar_y for bar in waterfall.bars] == [True] * 3, "each label above its bar"
    assert waterfall.description == "; ".join(bar.title for bar in waterfall.bars) + "."


def test_markup_escapes_names_and_carries_the_figures():
    spans = [
        Span("model", "m<1>", 1, 0, 1000, False, "recorded", 10, 2),
        Span("tool", '<script>"x"</script>', 1, 1000, 0, True, "unknown"),
    ]
    waterfall = turn_waterfall(spans)
    track, text = waterfall.track_markup(), waterfall.text_markup()
    assert "<script>" not in track + text and "&lt;script&gt;&quot;x&quot;&lt;/script&gt;" in track
    assert track.count("<rect ") == 2 and track.count('<line class="wf-grid"') == len(waterfall.ticks)
    assert 'class="wf-bar wf-tool wf-failed wf-unknown"' in track
    assert 'data-input-tokens="10" data-output-tokens="2"' in track
    assert 'data-input-tokens="" data-output-tokens="" data-failed="1" data-timing="unknown"' in track
    assert text.count('<text class="wf-label') == 2 and 'class="wf-label wf-label-tool wf-label-failed"' in text
    assert 'x="100.0%"' in text and "1.0 s" in text, "the axis's last label at the end"


def test_long_names_are_shortened_in_labels_but_whole_in_titles():
    name = "a_tool_with_a_remarkably_long_descriptive_name"
    [_, bar] = turn_waterfall(turn(model_call(ends=10, latency=10, tools=[tool(name)])).timeline).bars
    assert len(bar.label.split(" · ")[0]) == 32 and bar.label.split(" · ")[0].endswith("…")
    assert name in bar.title


@pytest.mark.parametrize(
    "total_ms, labels",
    [
        (4_000, ["0 ms", "1.0 s", "2.0 s", "3.0 s", "4.0 s"]),
        (4_600, ["0 ms", "1.0 s", "2.0 s", "3.0 s", "4.0 s"]),
        (950, ["0 ms", "200 ms", "400 ms", "600 ms", "800 ms"]),
        (3, ["0 ms", "1 ms", "2 ms", "3 ms"]),
        (95_000, ["0 ms", "20.0 s", "40.0 s", "1 min 0 s", "1 min 20 s"]),
    ],
)
def test_axis_ticks_are_round_and_stay_inside(total_ms, labels):
    waterfall = turn_waterfall([Span("model", "m", 1, 0, total_ms, False, "recorded", 1, 1)])
    assert [tick.label for tick in waterfall.ticks] == labels
    assert all(0 <= tick.x <= TRACK_UNITS and 0 <= tick.percent <= 100 for tick in waterfall.ticks)
    assert waterfall.ticks[0].anchor == "start"
    assert all(tick.anchor == ("end" if tick.percent > 92 else "middle") for tick in waterfall.ticks[1:])


def test_a_connection_call_answered_4xx_or_5xx_is_a_failure():
    saved_since_issue_13 = tool("request", status="error", error='{"status": 404, "data": "<html>Not Found</html>"}')
    saved_before = tool("request", result='{"status": 503, "data": {"error": "down"}}')
    fine = tool("request", result='{"status": 200, "data": {"ok": true}}')
    other_tool = tool("query_store", result='{"status": 404, "data": []}')
    calls = [normalise_tool_call(call) for call in (saved_since_issue_13, saved_before, fine, other_tool)]
    assert [call["status"] for call in calls] == ["error", "error", "success", "success"]
    assert calls[1]["error"] == '{"status": 503, "data": {"error": "down"}}', "the answer is shown as the error"
    spans = turn(model_call(ends=10, latency=10, tools=[saved_since_issue_13, saved_before, fine, other_tool])).timeline
    assert [span.failed for span in spans[1:]] == [True, True, False, False], "the waterfall agrees"
    assert turn(model_call(ends=10, latency=10, tools=[saved_before])).tool_errors == 1
