"""Session replay: metadata, the conversation in order with real timestamps, tool calls, per-call usage,
interrupted and errored turns, safe rendering (Markdown tables and lists), stepping through turns, each
turn's waterfall, and a query count that does not grow with the calls of a turn."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from agents.models import Message, MessageRole, Session, SessionStatus
from studio.selectors import replay as replay_selectors
from tests.studio.factories import Call, Turn, tool

START = datetime(2025, 3, 4, 10, 0, 0, tzinfo=UTC)
SCOPE = "household:öl/42 & co"


@pytest.fixture
def conversation(make_session):
    return make_session(
        scope=SCOPE,
        title="Groceries",
        model="claude-sonnet-4-5",
        deploy_id="d3adb33f",
        at=START,
        step_seconds=7,
        tags=["budget"],
        turns=[
            Turn(
                "How much on **groceries**? <script>alert('x')</script>",
                [
                    Call(
                        text="Let me check.",
                        tools=[
                            tool(
                                "request",
                                parameters={"endpoint": "/transactions", "params": {"category": "groceries"}},
                                result='{"total": 412.37}',
                                duration_ms=231,
                            ),
                            tool("query_store", status="error", error="Unknown store 'budgets'", duration_ms=9),
                        ],
                        input_tokens=2100,
                        output_tokens=57,
                        cache_read_tokens=1800,
                        cache_write_tokens=0,
                        latency_ms=1830,
                        cost_micros=4321,
                    ),
                    Call(
                        text="You spent **$412.37**.\n\n- FreshMart\n- [report](https://example.com/r?a=1&b=2)\n"
                        "[bad](javascript:alert(1))",
                        input_tokens=2300,
                        output_tokens=88,
                        latency_ms=2410,
                        cost_micros=5678,
                    ),
                ],
            ),
            Turn(
                "And last month?",
                [
                    Call(
                        text="Checking the",
                        interrupted=True,
                        cost_micros=None,
                        model="local",
                        input_tokens=10,
                        output_tokens=3,
                    )
                ],
            ),
            Turn(
                "Try again",
                [Call(text="", error_code="overloaded_error", input_tokens=50, output_tokens=0, cost_micros=0)],
            ),
        ],
    )


def page(client, session) -> str:
    response = client.get(reverse("studio:replay", args=[session.pk]))
    assert response.status_code == 200
    return response.content.decode()


def test_metadata_card(staff_client, conversation):
    content = page(staff_client, conversation)
    assert str(conversation.pk) in content
    assert 'id="raw-scope">household:öl/42 &amp; co</code>' in content, "the raw scope id, escaped"
    assert "d3adb33f" in content and "test-agent 1.0" in content
    assert "claude-sonnet-4-5" in content
    assert "2025-03-04 10:00:00" in content, "created"
    assert "2025-03-04 10:00:42" in content, "updated = the last message"
    assert f"{conversation.input_tokens:,} in" in content
    assert "$0.01 + 1 unpriced" in content, "4321 + 5678 + 0 micro-dollars, one unpriced call"
    assert '<span class="tag">budget</span>' in content


def test_messages_in_order_with_real_timestamps(staff_client, conversation):
    content = page(staff_client, conversation)
    seqs = [int(value) for value in re.findall(r'<article class="msg[^"]*" data-seq="(\d+)"', content)]
    assert seqs == list(range(7))
    times = re.findall(r'<div class="msg-head">.*?<time datetime="([^"]+)"', content, re.S)
    assert times[:3] == ["2025-03-04T10:00:00+00:00", "2025-03-04T10:00:07+00:00", "2025-03-04T10:00:14+00:00"]


def test_tool_calls_with_parameters_results_errors_and_durations(staff_client, conversation):
    content = page(staff_client, conversation)
    calls = re.findall(r'<details class="tool-call tool-(\w+)"(?: open)?>.*?</details>', content, re.S)
    assert calls == ["success", "error"]
    first = re.search(r'<details class="tool-call tool-success">.*?</details>', content, re.S).group(0)
    assert "request" in first and "231 ms" in first
    assert "&quot;category&quot;: &quot;groceries&quot;" in first, "parameters as JSON"
    assert "&quot;total&quot;: 412.37" in first, "the result (JSON text, pretty-printed)"
    second = re.search(r'<details class="tool-call tool-error" open>.*?</details>', content, re.S).group(0)
    assert "query_store" in second and "9 ms" in second and "Unknown store &#x27;budgets&#x27;" in second


def test_usage_of_each_model_call(staff_client, conversation):
    content = page(staff_client, conversation)
    lines = re.findall(r'<ul class="usage-line"[^>]*>(.*?)</ul>', content, re.S)
    assert len(lines) == 4
    assert "2,100 in" in lines[0] and "57 out" in lines[0] and "1,800 cache read" in lines[0]
    assert "1.8 s" in lines[0] and "$0.0043" in lines[0]
    assert "2.4 s" in lines[1] and "$0.0057" in lines[1]
    assert "unpriced" in lines[2] and "$0" not in lines[2]
    assert "$0.00" in lines[3], "a priced call that cost nothing"


def test_interrupted_and_errored_turns_are_marked(staff_client, conversation):
    content = page(staff_client, conversation)
    turns = re.findall(r'<section class="turn([^"]*)" id="(turn-\d+)"', content)
    assert turns == [("", "turn-0"), (" turn-interrupted", "turn-3"), (" turn-error", "turn-5")]
    assert '<span class="badge badge-interrupted">interrupted</span>' in content
    assert "error: overloaded_error" in content
    assert "1 tool error" in content


def test_a_message_refused_by_the_budget_is_a_turn_without_a_model_call(staff_client, conversation):
    Message.all_scopes.create(
        scope=conversation.scope, session=conversation, seq=99, role=MessageRole.USER, text="one more?",
        error_code="budget_exceeded",
    )  # fmt: skip
    content = page(staff_client, conversation)
    refused = content[content.index('id="turn-99"') :]
    assert "error: budget_exceeded" in refused and "no model call" in refused and "one more?" in refused
    assert re.search(r'<section class="turn turn-error" id="turn-99"', content)


def test_text_is_escaped_and_markdown_is_rendered_safely(staff_client, conversation):
    content = page(staff_client, conversation)
    assert "<script>alert('x')</script>" not in content
    assert "&lt;script&gt;alert('x')&lt;/script&gt;" in content, "shown as text (nh3 leaves quotes in text as they are)"
    assert "<strong>groceries</strong>" in content and "<strong>$412.37</strong>" in content
    assert "<li>FreshMart</li>" in content
    assert 'href="https://example.com/r?a=1&amp;b=2"' in content
    assert 'href="javascript' not in content


def test_step_through_turns(staff_client, conversation):
    content = page(staff_client, conversation)
    index = re.findall(r'<a href="#(turn-\d+)" class="turn-link', content)
    assert index == ["turn-0", "turn-3", "turn-5"]
    assert (
        re.findall(r'class="turn-next" rel="next"', content)
        and len(re.findall(r'<a href="#turn-\d+" class="turn-next"', content)) == 2
    )
    assert '<a href="#turn-0" class="turn-prev" rel="prev">' in content
    assert '<a href="#turn-3" class="turn-next" rel="next">' in content
    assert 'src="/static/studio/studio.js"' in content, "keyboard stepping (progressive enhancement)"


def test_long_sessions_come_in_windows(staff_client, make_session, monkeypatch):
    monkeypatch.setattr(replay_selectors, "REPLAY_PAGE_MESSAGES", 5)
    session = make_session(scope="long", turns=[Turn(f"question {n}", [Call(text=f"answer {n}")]) for n in range(6)])
    first = page(staff_client, session)
    assert re.findall(r'data-seq="(\d+)"', first) == ["0", "1", "2", "3"], "the window ends on a turn boundary"
    assert '<a href="?from=4">Later messages' in first
    second = staff_client.get(reverse("studio:replay", args=[session.pk]) + "?from=4").content.decode()
    assert re.findall(r'data-seq="(\d+)"', second) == ["4", "5", "6", "7"]
    assert "Earlier messages" in second


def test_a_session_without_messages(staff_client, make_session):
    session = make_session(scope="empty", turns=[])
    assert "This session has no messages." in page(staff_client, session)


@pytest.mark.parametrize(("lease_left_seconds", "badge"), [(10, "running"), (-1, "interrupted")])
def test_the_answer_being_written_is_running_until_its_lease_expires(
    staff_client, make_session, lease_left_seconds, badge
):
    session = make_session(
        scope=SCOPE,
        title="Still answering",
        at=START,
        turns=[Turn("Tell me a long story", [Call(text="Once upon a", interrupted=True)])],  # a checkpoint
    )
    Session.all_scopes.filter(pk=session.pk).update(
        status=SessionStatus.RUNNING,
        lock_token="live",
        lock_expires_at=timezone.now() + timedelta(seconds=lease_left_seconds),
    )
    content = page(staff_client, session)
    assert f'<span class="badge badge-{badge}">{badge}</span>' in content
    other = "interrupted" if badge == "running" else "running"
    assert f'<span class="badge badge-{other}">{other}</span>' not in content


def waterfall_bars(content: str) -> list[dict[str, str]]:
    """The bars of the page's waterfalls, in order, as the attributes of their <rect>s."""
    return [dict(re.findall(r'([\w-]+)="([^"]*)"', rect)) for rect in re.findall(r"<rect ([^>]*)>", content)]


def test_each_turn_has_a_waterfall_of_its_model_and_tool_calls(staff_client, conversation):
    content = page(staff_client, conversation)
    figures = re.findall(r'<figure class="waterfall" data-turn="(\d+)">(.*?)</figure>', content, re.S)
    assert [number for number, _ in figures] == ["1", "2", "3"]
    first = waterfall_bars(figures[0][1])
    assert [(bar["data-kind"], bar["data-name"], bar["data-duration-ms"], bar["data-failed"]) for bar in first] == [
        ("model", "claude-sonnet-4-5", "1830", "0"),
        ("tool", "request", "231", "0"),
        ("tool", "query_store", "9", "1"),
        ("model", "claude-sonnet-4-5", "2410", "0"),
    ]
    assert [(bar["data-input-tokens"], bar["data-output-tokens"]) for bar in first] == [
        ("2100", "57"),
        ("", ""),
        ("", ""),
        ("2300", "88"),
    ]
    # The factory writes each call's usage row 7 s after the step before: the first call ends at +7 s.
    assert [int(bar["data-start-ms"]) for bar in first] == [7000 - 1830, 7000, 7231, 14000 - 2410]
    assert "wf-failed" in first[2]["class"] and "wf-failed" not in first[1]["class"]
    assert (
        "<title>Model call 1 (claude-sonnet-4-5): starts at +5.2 s, 1.8 s, 2,100 in / 57 out tokens</title>" in content
    )
    assert "2 model calls and 2 tool calls over 14.0 s" in content, "from the user message"
    third = waterfall_bars(figures[2][1])
    assert [(bar["data-kind"], bar["data-failed"]) for bar in third] == [("model", "1")], "the errored call"
    descriptions = re.findall(r'<desc id="timeline-\d+-desc">(.*?)</desc>', content)
    titles = re.findall(r"<title>(.*?)</title></rect>", figures[0][1])
    assert len(titles) == 4 and descriptions[0] == "; ".join(titles) + ".", "the text alternative: every figure"


def test_the_page_has_no_inline_style_for_the_csp(staff_client, conversation):
    content = page(staff_client, conversation)
    assert not re.search(r"<[^>]+\sstyle=", content)
    assert 'href="/static/studio/replay.css"' in content


def test_a_turn_without_model_calls_has_no_waterfall(staff_client, make_session):
    session = make_session(scope="quiet", turns=[Turn("Anyone there?", [])])
    content = page(staff_client, session)
    assert 'class="waterfall"' not in content and "no model call" in content


def test_http_failures_agree_in_the_chip_and_the_waterfall(staff_client, make_session):
    not_found = '{"status": 404, "data": "<html><body>Not Found</body></html>"}'
    session = make_session(
        scope="http",
        turns=[
            Turn(
                "Fetch it",
                [
                    Call(
                        tools=[
                            tool("request", status="error", error=not_found, duration_ms=80),
                            tool("request", result='{"status": 502, "data": "Bad Gateway"}', duration_ms=30),
                            tool("request", result='{"status": 200, "data": {"ok": true}}', duration_ms=20),
                        ]
                    ),
                    Call(text="It failed."),
                ],
            )
        ],
    )
    content = page(staff_client, session)
    chips = re.findall(r'<details class="tool-call tool-(\w+)"', content)
    assert chips == ["error", "error", "success"], "the one saved before issue 13 too"
    bars = [bar["data-failed"] for bar in waterfall_bars(content) if bar["data-kind"] == "tool"]
    assert bars == ["1", "1", "0"]
    assert "2 tool errors" in content
    assert "&lt;html&gt;&lt;body&gt;Not Found" in content, "the HTML page is shown as text"


def test_markdown_tables_and_nested_lists_in_the_conversation(staff_client, make_session):
    answer = "| Merchant | Amount |\n|---|--:|\n| FreshMart | $412.37 |\n\n- Food\n  - Groceries\n    - FreshMart"
    session = make_session(scope="md", turns=[Turn("<img src=x onerror=alert(1)>", [Call(text=answer)])])
    content = page(staff_client, session)
    assert '<div class="md-table"><table>' in content
    assert '<td class="align-right">$412.37</td>' in content
    assert re.search(r"<ul>\s*<li>Food\s*<ul>\s*<li>Groceries\s*<ul>\s*<li>FreshMart</li>", content)
    assert "&lt;img src=x onerror=alert(1)&gt;" in content and "<img src=x" not in content


def count_replay_queries(client, session) -> int:
    url = reverse("studio:replay", args=[session.pk])
    client.get(url)
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_query_count_does_not_grow_with_model_calls_and_tool_calls(staff_client, make_session):
    small = make_session(scope="small", turns=[Turn("q", [Call()])])
    busy_calls = [Call(tools=[tool(f"t{n}") for n in range(3)]) for _ in range(3)] + [Call(text="done")]
    busy = make_session(scope="busy", turns=[Turn(f"q{n}", busy_calls) for n in range(5)])
    assert count_replay_queries(staff_client, small) == count_replay_queries(staff_client, busy)
    content = page(staff_client, busy)
    assert len(waterfall_bars(content)) == 5 * (4 + 9), "every model call and tool call is drawn"
