"""Session replay in Chromium: Markdown tables and nested lists, raw HTML shown as text and never run, each
turn's waterfall against the database, and a 390 px screen without sideways scroll.

The demo data (seed 42, conftest.py) has answers with a Markdown table and nested lists (studio/demo/content.py).
The raw-HTML session is added by this module, in a scope of its own and without usage rows, so no other
module's figures change.
"""

from __future__ import annotations

import json

import pytest

from tests.browser import save_screenshot
from tests.e2e.live import base_env, run_manage

pytestmark = [pytest.mark.browser, pytest.mark.live]

XSS_SCOPE = "browser-test:replay-raw-html"
XSS_USER_TEXT = (
    "<img src=x onerror=\"window.__xss='img'\"> <script>window.__xss='script'</script> "
    "<svg onload=\"window.__xss='svg'\"></svg> [click](javascript:window.__xss='link')"
)
XSS_ANSWER = (
    "| field | value |\n|---|---|\n| <img src=y onerror=\"window.__xss='cell'\"> | <b onmouseover=x>b</b> |\n\n"
    "&lt;script&gt;window.__xss='entity'&lt;/script&gt; <javascript:window.__xss='autolink'>"
)
CREATE_XSS_SESSION = f"""
from agents.models import Message, Session
session, _ = Session.all_scopes.get_or_create(
    scope={XSS_SCOPE!r}, title="Raw HTML in messages", defaults=dict(model="local", provider="local", message_count=2)
)
for seq, role, text in ((0, "user", {XSS_USER_TEXT!r}), (1, "assistant", {XSS_ANSWER!r})):
    Message.all_scopes.get_or_create(scope=session.scope, session=session, seq=seq, role=role, defaults=dict(text=text))
print(session.pk)
"""


def dashed(session_id) -> str:
    """A session id as the URL has it (SQLite returns 32 hex digits)."""
    value = str(session_id).replace("-", "")
    return f"{value[:8]}-{value[8:12]}-{value[12:16]}-{value[16:20]}-{value[20:]}"


def replay_url(server, session_id) -> str:
    return f"{server.base_url}/studio/sessions/{dashed(session_id)}/"


def as_list(value):
    return json.loads(value) if isinstance(value, str) else value or []


def expected_turns(database, session_id) -> list[list[dict]]:
    """Each turn's model calls and tool calls, from the rows: what the waterfall must draw, in order."""
    rows = database.query(
        "SELECT m.role, m.tool_calls, m.error_code, u.model, u.latency_ms, u.input_tokens, u.output_tokens "
        "FROM agents_message m LEFT JOIN agents_usagerecord u ON u.message_id = m.id "
        "WHERE m.session_id = %s ORDER BY m.seq",
        (database.uuid_param(dashed(session_id)),),
    )
    turns: list[list[dict]] = []
    for role, tool_calls, error_code, model, latency, input_tokens, output_tokens in rows:
        if role == "user" or not turns:
            turns.append([])
            if role == "user":
                continue
        turns[-1].append(
            {
                "kind": "model",
                "name": model,
                "durationMs": str(latency),
                "inputTokens": str(input_tokens),
                "outputTokens": str(output_tokens),
                "failed": "1" if error_code else "0",
            }
        )
        for call in as_list(tool_calls):
            turns[-1].append(
                {
                    "kind": "tool",
                    "name": call["tool_name"],
                    "durationMs": str(call["duration_ms"]),
                    "inputTokens": "",
                    "outputTokens": "",
                    "failed": "1" if call["status"] == "error" else "0",
                }
            )
    return turns


def drawn_turns(tab) -> list[list[dict]]:
    keys = ["kind", "name", "durationMs", "inputTokens", "outputTokens", "failed"]
    return tab.eval_on_selector_all(
        "section.turn",
        """(turns, keys) => turns.map(turn => [...turn.querySelectorAll('figure.waterfall rect.wf-bar')].map(
            rect => Object.fromEntries(keys.map(key => [key, rect.dataset[key]]))))""",
        keys,
    )


def markdown_session(database):
    """A finished demo session with an answer holding the Markdown table and nested lists, written after
    a model call that used tools (so its turn's waterfall has several rows)."""
    return database.query(
        "SELECT s.id FROM agents_session s JOIN agents_message m ON m.session_id = s.id "
        "JOIN agents_message before ON before.session_id = s.id AND before.seq = m.seq - 1 "
        "WHERE s.status = 'idle' AND s.model <> 'local' AND m.text LIKE %s AND before.role = 'assistant' "
        "AND CAST(before.tool_calls AS TEXT) LIKE %s ORDER BY s.message_count DESC, s.id LIMIT 1",
        ("%| Category | Amount |%", "%tool_name%"),
    )[0][0]


def markdown_turn(tab):
    return tab.locator("section.turn", has=tab.locator(".md-table")).first


def test_markdown_tables_and_nested_lists_render(page, studio_server):
    page.goto(replay_url(studio_server, markdown_session(studio_server.database)))
    answer = page.locator(".msg-assistant .md", has=page.locator("table")).first
    headers = answer.locator("table thead th").all_inner_texts()
    assert headers == ["Category", "Amount", "Transactions"]
    assert answer.locator("table tbody tr").count() == 3
    assert answer.locator("td.align-right").count() == 6, "the right-aligned columns, as classes (CSP)"
    nested = answer.locator("ul > li > ul > li > ul > li")
    assert nested.inner_text() == "City Transit pass", "a list three levels deep"
    assert answer.locator("ul > li > ul > li").count() == 5
    assert answer.evaluate("node => getComputedStyle(node.querySelector('ul ul li')).listStyleType") == "circle"
    link = answer.locator("a[href='https://app.example.com/reports/spending']")
    assert link.get_attribute("rel") == "nofollow noopener noreferrer" and link.get_attribute("target") == "_blank"
    assert "|" not in answer.locator("table").inner_text(), "no raw pipes"
    turn = markdown_turn(page)
    assert turn.locator("rect.wf-model").count() >= 2 and turn.locator("rect.wf-tool").count() >= 1
    # The whole page's geometry, clipped to the turn: the sticky turn index stays at the top of the page.
    save_screenshot(page, "studio-replay-waterfall.png", full_page=True, clip=turn.bounding_box())


def test_raw_html_in_messages_is_text_and_never_runs(page, studio_server):
    completed = run_manage(["shell", "-c", CREATE_XSS_SESSION], base_env(studio_server.database.url))
    session_id = completed.stdout.strip().splitlines()[-1]
    page.goto(replay_url(studio_server, session_id))
    page.wait_for_load_state("load")
    assert page.evaluate("window.__xss") is None, "no payload ran"
    conversation = page.locator("#conversation")
    assert (
        conversation.locator(".md img, .md script, .md svg, .md [onerror], .md [onload], .md [onmouseover]").count()
        == 0
    )
    assert conversation.locator("a[href^='javascript' i]").count() == 0
    user_text = conversation.locator(".msg-user .md").inner_text()
    assert "<img src=x onerror=\"window.__xss='img'\">" in user_text, "shown as the text it is"
    assert "<script>window.__xss='script'</script>" in user_text
    answer = conversation.locator(".msg-assistant .md")
    assert answer.locator("td").first.inner_text() == "<img src=y onerror=\"window.__xss='cell'\">"
    assert "<script>window.__xss='entity'</script>" in answer.inner_text()
    bar = conversation.locator("figure.waterfall rect.wf-bar")
    assert bar.count() == 1 and bar.get_attribute("data-timing") == "unknown", "a model call without usage"
    # The page fixture also fails this test on any Content-Security-Policy report (an inline handler would be one).


def test_waterfall_has_a_bar_per_call_with_the_database_figures(page, studio_server):
    database = studio_server.database
    session_id = database.query(
        "SELECT s.id FROM agents_session s WHERE s.status = 'idle' AND s.message_count BETWEEN 6 AND 40 AND EXISTS "
        "(SELECT 1 FROM agents_message m WHERE m.session_id = s.id AND m.role = 'assistant' "
        "AND CAST(m.tool_calls AS TEXT) LIKE %s) ORDER BY s.message_count DESC, s.id LIMIT 1",
        ('%"status": "error"%',),
    )[0][0]
    page.goto(replay_url(studio_server, session_id))
    expected = expected_turns(database, session_id)
    assert drawn_turns(page) == expected
    assert any(bar["kind"] == "tool" and bar["failed"] == "1" for turn in expected for bar in turn)
    # A failed tool call is in the failure colour, the same as its chip.
    failed = page.locator("rect.wf-bar.wf-tool.wf-failed").first
    fill = failed.evaluate("node => getComputedStyle(node).fill")
    chip = page.locator("details.tool-call.tool-error .badge-error").first
    assert fill == chip.evaluate("node => getComputedStyle(node).backgroundColor")
    assert page.locator("details.tool-call.tool-error").count() == page.locator("rect.wf-tool.wf-failed").count()
    # Hover text, and the text alternative: the SVG is an image described by every bar's figures.
    assert failed.locator("title").text_content().startswith("Tool call ")
    svg = page.locator("section.turn").first.locator("svg.waterfall-svg")
    assert svg.get_attribute("role") == "img"
    description = page.locator("#" + svg.get_attribute("aria-describedby")).text_content()
    titles = svg.locator("rect.wf-bar title").all_text_contents()
    assert len(titles) == len(expected[0]) and description == "; ".join(titles) + "."


def test_replay_at_390_px_without_sideways_scroll(browser, studio_server, page):
    session_id = markdown_session(studio_server.database)
    context = browser.new_context(viewport={"width": 390, "height": 844}, storage_state=page.context.storage_state())
    tab = context.new_page()
    try:
        tab.goto(replay_url(studio_server, session_id))
        assert tab.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 1
        svg = tab.locator("svg.waterfall-svg").first
        width = svg.evaluate("node => node.getBoundingClientRect().width")
        assert 250 < width <= 390, "the waterfall takes the page's width"
        # Every label fits inside its SVG (they keep their size; only the bars scale).
        overflow = tab.eval_on_selector_all(
            "svg.waterfall-svg",
            """svgs => svgs.flatMap(svg => [...svg.querySelectorAll('text.wf-label')].map(
                text => text.getBBox().x + text.getBBox().width - svg.getBoundingClientRect().width))""",
        )
        assert overflow and max(overflow) <= 0, overflow
        label_size = tab.locator("text.wf-label").first.evaluate("node => node.getBoundingClientRect().height")
        assert label_size >= 11, "readable: the labels are not scaled down"
        table = tab.locator(".md-table").first
        assert table.evaluate(
            "node => node.scrollWidth <= node.clientWidth + 1 || getComputedStyle(node).overflowX === 'auto'"
        )
        markdown_turn(tab).evaluate("node => node.scrollIntoView({block: 'start'})")
        tab.evaluate("window.scrollBy(0, -24)")  # the sticky turn index takes two lines here
        save_screenshot(tab, "studio-replay-390.png")
    finally:
        context.close()
