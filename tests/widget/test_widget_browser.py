"""The embeddable chat widget in a real browser (Debian's Chromium through Playwright) against a live daphne
serving the bundled finance agent (requireScope, the offline `local` provider).

Covered: the SSE parser and the markdown renderer in the page; the demo page's two households (each
streams its own answer; memory and conversation lists stay in their scope); resuming after a reload;
expired tokens refreshed through getToken (proactively by the demo page, and after a 401 by the
widget's single retry); scope_required shown clearly; Stop ending the stream with done user_abort; the
confirmation round trip; keyboard use and focus; and a page on another origin that may (or may not,
per AMODAL_ALLOWED_ORIGINS) embed the widget.
"""

from __future__ import annotations

import json
import re
import secrets
from urllib.parse import quote

import pytest

from tests.browser import save_screenshot
from tests.e2e.live import REPO_ROOT

pytestmark = [pytest.mark.browser, pytest.mark.live]

GARCIA = "household-garcia"
OKAFOR = "household-okafor"
DEMO_PATH = "/widget/demo/"


def memory_tool_available() -> bool:
    """Whether the agent offers the `memory` tool (built by another part of the project)."""
    from core.agent_folder import load_agent_folder
    from core.tools import tools_for_agent

    return "memory" in tools_for_agent(load_agent_folder(REPO_ROOT / "examples" / "finance-agent"))


# --- the demo page ----------------------------------------------------------------------------------------


def open_demo(page, server, query: str = "") -> None:
    page.goto(f"{server.base_url}{DEMO_PATH}{query}")
    page.wait_for_selector("html[data-demo-ready]")
    page.wait_for_function("() => [...document.querySelectorAll('.amc-root')].every(r => !r.style.visibility)")


def household(page, scope_id: str):
    return page.locator(f'[data-scope="{scope_id}"]')


def demo_events(page, scope_id: str) -> list[dict]:
    return page.evaluate("(scope) => window.amodalDemo.events[scope]", scope_id)


def demo_send(page, scope_id: str, text: str, *, wait: bool = True) -> list[dict]:
    """Type into one household's widget, press Enter; wait for that message's `done`. Its events."""
    before = len(demo_events(page, scope_id))
    box = household(page, scope_id).get_by_role("textbox", name="Message")
    box.fill(text)
    box.press("Enter")
    if not wait:
        return []
    page.wait_for_function(
        "([scope, n]) => window.amodalDemo.events[scope].slice(n).some(e => e.type === 'done')"
        " && !window.amodalDemo.widgets[scope].busy",
        arg=[scope_id, before],
    )
    return demo_events(page, scope_id)[before:]


def text_of(events: list[dict]) -> str:
    return "".join(event["content"] for event in events if event["type"] == "text_delta")


def done_of(events: list[dict]) -> dict:
    return next(event for event in events if event["type"] == "done")


def test_sse_parser_and_markdown_in_the_page(page, widget_server):
    """The module's named exports, run in Chromium: frames split anywhere (also inside a UTF-8 character
    and between \\r and \\n), several frames in one chunk, comment frames, and markdown that stays safe."""
    open_demo(page, widget_server)
    outcome = page.evaluate(
        """async () => {
          const m = await import("/widget/amodal/chat-widget.js");
          const stream = 'data: {"type":"init","session_id":"s1"}\\n\\n'
            + ': keep-alive\\n\\n'
            + 'data: {"type":"text_delta","content":"héllo – 🚲"}\\r\\n\\r\\n'
            + 'data: {"type":"text_delta",\\ndata: "content":"two lines"}\\n\\n'
            + 'event: custom\\rid: 7\\rdata: {"type":"done","reason":"model_stop"}\\r\\r';
          const collect = (pieces) => {
            const frames = [];
            const parser = m.createSseParser((f) => frames.push(f));
            for (const piece of pieces) parser.push(piece);
            return { frames, unfinished: parser.end() };
          };
          const whole = collect([stream]);
          // Every split point, and one character per push.
          const splits = [];
          for (let i = 1; i < stream.length; i += 1) {
            splits.push(JSON.stringify(collect([stream.slice(0, i), stream.slice(i)]).frames));
          }
          const single = collect([...stream]);
          // Bytes: a ReadableStream cutting the UTF-8 bytes 3 at a time (splitting multi-byte characters).
          const bytes = new TextEncoder().encode(stream);
          const body = new ReadableStream({ start(c) {
            for (let i = 0; i < bytes.length; i += 3) c.enqueue(bytes.slice(i, i + 3));
            c.close();
          } });
          const streamed = [];
          const read = await m.readEventStream(body, (f) => streamed.push(f));
          const cut = collect(['data: {"type":"text_delta"']);
          return {
            whole, single: single.frames,
            allSplitsEqual: splits.every((s) => s === JSON.stringify(whole.frames)),
            streamed, complete: read.complete, cutUnfinished: cut.unfinished, cutFrames: cut.frames.length,
            md: {
              xss: m.renderMarkdown('<img src=x onerror="alert(1)"> **b** *i* `<b>` [x](javascript:alert(1))'),
              link: m.renderMarkdown('[docs](https://example.com/a?b=1&c=2) and http://x.test/p'),
              list: m.renderMarkdown('- one\\n- two\\n\\n1. first\\n2. second'),
              code: m.renderMarkdown('```js\\nlet a = "<tag>";\\n```'),
              attr: m.renderMarkdown('[t](https://e.com/"onmouseover="x) **https://e.com/**a**'),
            },
          };
        }"""
    )
    frames = outcome["whole"]["frames"]
    assert [frame["type"] for frame in frames] == ["event", "comment", "event", "event", "event"]
    assert frames[1]["text"] == "keep-alive"
    events = [json.loads(frame["data"]) for frame in frames if frame["type"] == "event"]
    assert events[0] == {"type": "init", "session_id": "s1"}
    assert events[1]["content"] == "héllo – 🚲"
    assert events[2]["content"] == "two lines"  # two data lines joined by \n, still valid JSON
    assert frames[4]["event"] == "custom" and frames[4]["id"] == "7"
    assert outcome["whole"]["unfinished"] is False
    assert outcome["allSplitsEqual"], "a frame split across two chunks parsed differently"
    assert outcome["single"] == frames
    assert outcome["streamed"] == frames and outcome["complete"] is True
    assert outcome["cutUnfinished"] is True and outcome["cutFrames"] == 0

    md = outcome["md"]
    assert "<img" not in md["xss"] and "&lt;img" in md["xss"]
    assert "<strong>b</strong>" in md["xss"] and "<em>i</em>" in md["xss"] and "<code>&lt;b&gt;</code>" in md["xss"]
    assert "href" not in md["xss"]  # javascript: never becomes a link
    assert '<a href="https://example.com/a?b=1&amp;c=2"' in md["link"] and 'href="http://x.test/p"' in md["link"]
    assert 'rel="noopener noreferrer nofollow"' in md["link"]
    assert md["list"] == "<ul><li>one</li><li>two</li></ul><ol><li>first</li><li>second</li></ol>"
    assert md["code"] == '<pre><code class="language-js">let a = &quot;&lt;tag&gt;&quot;;</code></pre>'
    # A quote in a URL cannot end the attribute; emphasis never lands inside an href.
    assert 'onmouseover="' not in md["attr"] and "<strong>" not in re.sub(r"<a [^>]*>", "", md["attr"]).split("</a>")[0]


def test_each_household_streams_its_own_answer(page, widget_server):
    open_demo(page, widget_server)
    # Both at once: the two widgets are independent.
    demo_send(page, GARCIA, "/say Hello **Garcias**, here is `your` answer.", wait=False)
    okafor = demo_send(page, OKAFOR, "/say Hello Okafors!")
    page.wait_for_function("() => window.amodalDemo.events['household-garcia'].some(e => e.type === 'done')")
    garcia = demo_events(page, GARCIA)

    assert garcia[0]["type"] == "init" and garcia[0]["scope_id"] == GARCIA
    assert okafor[0]["type"] == "init" and okafor[0]["scope_id"] == OKAFOR
    assert garcia[0]["session_id"] != okafor[0]["session_id"]
    assert done_of(garcia)["reason"] == done_of(okafor)["reason"] == "model_stop"
    assert text_of(garcia) == "Hello **Garcias**, here is `your` answer."

    garcia_answer = household(page, GARCIA).locator(".amc-msg-assistant .amc-text").last
    assert garcia_answer.inner_html() == "<p>Hello <strong>Garcias</strong>, here is <code>your</code> answer.</p>"
    assert household(page, OKAFOR).locator(".amc-msg-assistant .amc-text").last.inner_text() == "Hello Okafors!"
    assert household(page, GARCIA).locator(".amc-msg-user").last.inner_text().endswith("answer.")
    # The log is a polite live region; nothing went wrong.
    log = household(page, GARCIA).get_by_role("log")
    assert log.get_attribute("aria-live") == "polite"
    assert household(page, GARCIA).locator(".amc-banner").is_hidden()


def test_memory_and_conversations_stay_in_their_household(page, widget_server):
    fact = f"we save for a bike {secrets.token_hex(3)}"
    open_demo(page, widget_server)
    if memory_tool_available():
        saved = demo_send(page, GARCIA, f"remember that {fact}")
        tool = next(event for event in saved if event["type"] == "tool_call_result")
        assert tool["status"] == "success", tool
        row = household(page, GARCIA).locator(".amc-tool").last
        assert row.get_attribute("data-status") == "success"
        assert "memory" in row.locator(".amc-tool-name").inner_text()

        okafor = demo_send(page, OKAFOR, "what do you remember?")
        garcia = demo_send(page, GARCIA, "what do you remember?")
        assert fact in json.dumps(garcia)
        assert "bike" not in json.dumps(okafor)
        assert "bike" not in household(page, OKAFOR).get_by_role("log").inner_text()
    else:  # pragma: no cover - until the memory tool exists, the conversation lists carry the check
        demo_send(page, GARCIA, f"/say noted: {fact}")
        demo_send(page, OKAFOR, "/say hello")

    # Conversations: the Okafors' history drawer lists only their own sessions.
    garcia_session = page.evaluate("() => window.amodalDemo.widgets['household-garcia'].sessionId")
    okafor_session = page.evaluate("() => window.amodalDemo.widgets['household-okafor'].sessionId")
    drawer_button = household(page, OKAFOR).get_by_role("button", name="Earlier conversations")
    drawer_button.click()
    drawer = household(page, OKAFOR).get_by_role("dialog", name="Earlier conversations")
    drawer.locator(".amc-history-item").first.wait_for()
    titles = drawer.locator(".amc-history-title").all_inner_texts()
    assert titles and not any("bike" in title for title in titles), titles
    assert drawer.locator(".amc-history-item.amc-current").count() == 1
    assert drawer_button.get_attribute("aria-expanded") == "true"
    page.keyboard.press("Escape")
    assert drawer.is_hidden() and drawer_button.get_attribute("aria-expanded") == "false"

    # And the server agrees: each household sees its own session, never the other's.
    with widget_server.client() as client:
        listed = client.get("/sessions/history", headers=widget_server.headers(OKAFOR, {"household_id": OKAFOR}))
        assert listed.status_code == 200
        ids = {session["id"] for session in listed.json()}
        assert okafor_session in ids and garcia_session not in ids
        other = client.get(
            f"/sessions/history/{garcia_session}", headers=widget_server.headers(OKAFOR, {"household_id": OKAFOR})
        )
        assert other.status_code == 404


def test_reload_resumes_the_stored_session(page, widget_server):
    marker = f"resume-{secrets.token_hex(4)}"
    open_demo(page, widget_server)
    first = demo_send(page, GARCIA, f"/say first answer {marker}")
    session_id = first[0]["session_id"]
    assert page.evaluate("() => localStorage.getItem('amodal-demo:session:household-garcia')") == session_id

    page.reload()
    page.wait_for_selector("html[data-demo-ready]")
    log = household(page, GARCIA).get_by_role("log")
    log.get_by_text(f"first answer {marker}", exact=True).wait_for()
    assert log.get_by_text(f"/say first answer {marker}", exact=True).count() == 1  # the user's message too
    assert page.evaluate("() => window.amodalDemo.widgets['household-garcia'].sessionId") == session_id
    # The other household did not get this conversation.
    assert marker not in household(page, OKAFOR).get_by_role("log").inner_text()

    second = demo_send(page, GARCIA, "/say second answer")
    assert second[0]["type"] == "init" and second[0]["session_id"] == session_id
    with widget_server.client() as client:
        detail = client.get(
            f"/sessions/history/{session_id}", headers=widget_server.headers(GARCIA, {"household_id": GARCIA})
        ).json()
    assert [message["text"] for message in detail["messages"]][-2:] == ["/say second answer", "second answer"]

    # New conversation: a fresh session, the stored id is dropped, focus goes to the input.
    household(page, GARCIA).get_by_role("button", name="New conversation").click()
    assert page.evaluate("() => localStorage.getItem('amodal-demo:session:household-garcia')") is None
    assert page.evaluate("() => document.activeElement.getAttribute('aria-label')") == "Message"
    third = demo_send(page, GARCIA, "/say a new one")
    assert third[0]["session_id"] != session_id


def test_expired_demo_token_is_refreshed_before_the_request(page, widget_server):
    """The demo page's getToken notices the expired token and fetches a fresh one: no 401, no banner."""
    statuses: list[int] = []
    page.on("response", lambda r: statuses.append(r.status) if r.url.endswith("/chat/stream") else None)
    open_demo(page, widget_server, "?token_ttl=-120")
    events = demo_send(page, OKAFOR, "/say still signed in")
    assert text_of(events) == "still signed in"
    assert page.evaluate("() => window.amodalDemo.tokenFetches['household-okafor']") >= 1
    assert statuses == [200]
    assert household(page, OKAFOR).locator(".amc-banner").is_hidden()


# --- pages on other origins ---------------------------------------------------------------------------------

HOST_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Acme Budget — Help</title>
<link rel="icon" href="data:,">
<style>
  body {{ margin: 0; font-family: ui-sans-serif, system-ui, sans-serif; background: #eef2f6; color: #1c2230; }}
  header {{ background: #0f172a; color: #fff; padding: 14px 24px; font-weight: 700; }}
  header small {{ font-weight: 400; color: #94a3b8; margin-left: 8px; }}
  main {{ display: grid; grid-template-columns: 1fr 460px; gap: 24px; padding: 24px; max-width: 1100px; }}
  .card {{ background: #fff; border-radius: 14px; padding: 18px 20px; border: 1px solid #e2e8f0; }}
  #chat {{ height: 600px; }}
</style>
{head}
</head><body>
<header>Acme Budget <small id="origin"></small></header>
<main>
  <div class="card"><h2 style="margin-top:0">Your budget</h2>
    <p>This page is served by another origin and embeds the assistant from the runtime server.</p></div>
  <div id="chat"></div>
</main>
<script>
  document.getElementById("origin").textContent = location.origin;
  window.config = JSON.parse(decodeURIComponent(location.hash.slice(1)));
  window.tokenCalls = []; window.hostEvents = []; window.hostErrors = [];
  window.widgetOptions = {{
    serverUrl: config.serverUrl, scopeId: config.scopeId, scopeContext: config.scopeContext,
    getToken: ({{ forceRefresh }}) => {{
      window.tokenCalls.push(Boolean(forceRefresh));
      return forceRefresh ? config.refreshToken : config.token;
    }},
    onEvent: (event) => window.hostEvents.push(event),
    onError: (error) => window.hostErrors.push({{ kind: error.kind, status: error.status, code: error.code }}),
    theme: {{ headerText: "Acme assistant", subtitle: "Ask about your budget" }},
  }};
</script>
{body}
</body></html>
"""

# A classic <script> page: the loader imports the module from the runtime server.
LOADER_PAGE = dict(
    head='<script src="{server}/widget/amodal/chat-widget-loader.js"></script>',
    body="""<script>
  AmodalChat.mount("#chat", widgetOptions).then((widget) => {
    window.widget = widget; document.documentElement.dataset.ready = "1";
  });
</script>""",
)
# A module page importing the widget straight from the runtime server.
MODULE_PAGE = dict(
    head="",
    body="""<script type="module">
  import { mountChatWidget } from "{server}/widget/amodal/chat-widget.js";
  window.widget = mountChatWidget(document.getElementById("chat"), widgetOptions);
  document.documentElement.dataset.ready = "1";
</script>""",
)


def write_host_pages(host_pages, server) -> None:
    for name, parts in (("loader.html", LOADER_PAGE), ("module.html", MODULE_PAGE)):
        if name not in host_pages.written:
            host_pages.write(
                name,
                HOST_PAGE.format(
                    head=parts["head"].replace("{server}", server.base_url),
                    body=parts["body"].replace("{server}", server.base_url),
                ),
            )


def open_host(page, host, name: str, server, **config) -> None:
    config = {"serverUrl": server.base_url, **config}
    page.goto(f"{host.url(name)}#{quote(json.dumps(config))}")
    page.wait_for_selector("html[data-ready]")
    page.wait_for_function(
        "() => { const root = document.querySelector('.amc-root'); return root && !root.style.visibility; }"
    )


def host_send(page, text: str) -> None:
    box = page.get_by_role("textbox", name="Message")
    box.fill(text)
    box.press("Enter")


def household_config(server, scope_id: str, **token_options) -> dict:
    context = {"household_id": scope_id}
    return {
        "scopeId": scope_id,
        "scopeContext": context,
        "token": server.token(scope_id, context, **token_options),
        "refreshToken": server.token(scope_id, context),
    }


def test_allowed_origin_embeds_the_widget_with_the_classic_loader(page, widget_server, host_pages):
    write_host_pages(host_pages, widget_server)
    requests: list = []
    page.on("request", lambda r: requests.append(r) if r.url.startswith(widget_server.base_url) else None)
    open_host(page, host_pages.allowed, "loader.html", widget_server, **household_config(widget_server, GARCIA))
    host_send(page, "/say Hello from the Acme app")
    page.wait_for_function("() => window.hostEvents.some(e => e.type === 'done')")
    assert page.get_by_role("log").get_by_text("Hello from the Acme app", exact=True).is_visible()
    assert page.evaluate("() => window.hostEvents[0].scope_id") == GARCIA

    chat = next(r for r in requests if r.url.endswith("/chat/stream") and r.method == "POST")
    assert chat.headers["authorization"].startswith("Bearer ey")
    assert json.loads(chat.post_data) == {
        "message": "/say Hello from the Acme app",
        "scope_id": GARCIA,
        "context": {"household_id": GARCIA},
    }
    tokens = {page.evaluate("() => window.config.token"), page.evaluate("() => window.config.refreshToken")}
    assert not [r.url for r in requests if any(token in r.url for token in tokens)]  # never in a URL


def test_refused_origin_gets_a_clear_network_error(page, widget_server, host_pages):
    write_host_pages(host_pages, widget_server)
    open_host(page, host_pages.refused, "module.html", widget_server, **household_config(widget_server, GARCIA))
    host_send(page, "/say this must not arrive")
    banner = page.get_by_role("alert")
    banner.wait_for()
    assert "Can't reach the assistant" in banner.inner_text()
    assert "CORS" in banner.inner_text()
    assert banner.get_by_role("button", name="Retry").is_visible()
    assert page.evaluate("() => window.hostErrors") == [{"kind": "network", "status": 0, "code": ""}]
    assert page.locator(".amc-msg-assistant").count() == 0
    assert page.locator(".amc-msg-user.amc-msg-failed").count() == 1
    assert page.evaluate("() => window.hostEvents.length") == 0


def test_expired_token_is_refreshed_after_a_401_and_retried_once(page, widget_server, host_pages):
    write_host_pages(host_pages, widget_server)
    statuses: list[int] = []
    page.on("response", lambda r: statuses.append(r.status) if r.url.endswith("/chat/stream") else None)
    config = household_config(widget_server, OKAFOR, ttl_seconds=-60)  # already expired
    open_host(page, host_pages.allowed, "module.html", widget_server, **config)
    host_send(page, "/say refreshed without a click")
    page.wait_for_function("() => window.hostEvents.some(e => e.type === 'done')")
    assert statuses == [401, 200]
    assert page.evaluate("() => window.tokenCalls") == [False, True]
    assert page.get_by_role("log").get_by_text("refreshed without a click", exact=True).is_visible()
    assert page.locator(".amc-banner").is_hidden()

    # When the fresh token is refused too, the widget stops after one retry and says so.
    statuses.clear()
    page.evaluate("() => { window.config.refreshToken = 'not-a-jwt'; window.config.token = 'not-a-jwt'; }")
    host_send(page, "/say refused")
    page.get_by_role("alert").wait_for()
    assert statuses == [401, 401]
    assert "sign-in has expired" in page.get_by_role("alert").inner_text()


def test_widget_without_a_scope_shows_scope_required(page, widget_server, host_pages, tmp_path):
    write_host_pages(host_pages, widget_server)
    config = {"token": widget_server.token(None), "refreshToken": widget_server.token(None)}  # no scope claims
    open_host(page, host_pages.allowed, "module.html", widget_server, **config)
    host_send(page, "Hello?")
    banner = page.get_by_role("alert")
    banner.wait_for()
    assert "No workspace selected" in banner.inner_text()
    assert "requires a scope" in banner.inner_text()
    assert banner.get_attribute("data-code") == "scope_required"
    assert banner.locator(".amc-banner-action").is_hidden()  # nothing to retry: the page must pass a scope
    assert page.evaluate("() => window.hostErrors") == [{"kind": "http", "status": 400, "code": "scope_required"}]
    assert page.locator(".amc-msg-user.amc-msg-failed").count() == 1
    save_screenshot(page, "widget-error.png", clip={"x": 0, "y": 0, "width": 1160, "height": 700})


def test_stop_cancels_a_long_answer(page, widget_server):
    open_demo(page, widget_server)
    requests: list = []
    page.on("request", lambda r: requests.append(r) if "/cancel" in r.url else None)
    words = " ".join(f"word{i}" for i in range(60))
    demo_send(page, OKAFOR, f"/slow 300 {words}", wait=False)
    page.wait_for_function("() => window.amodalDemo.events['household-okafor'].some(e => e.type === 'text_delta')")
    stop = household(page, OKAFOR).get_by_role("button", name="Stop generating")
    assert stop.is_visible()
    stop.click()
    page.wait_for_function("() => window.amodalDemo.events['household-okafor'].some(e => e.type === 'done')")
    events = demo_events(page, OKAFOR)
    assert done_of(events)["reason"] == "user_abort"
    assert len(text_of(events).split()) < 30
    assert household(page, OKAFOR).get_by_role("log").get_by_text("Stopped.").is_visible()
    assert household(page, OKAFOR).get_by_role("button", name="Send message").is_visible()

    session_id = events[0]["session_id"]
    assert [r.url for r in requests] == [f"{widget_server.base_url}/sessions/{session_id}/cancel"]
    assert requests[0].method == "POST" and requests[0].headers["authorization"].startswith("Bearer ")
    # The stopped answer was saved, marked interrupted; the session takes the next message at once.
    again = demo_send(page, OKAFOR, "/say after the stop")
    assert again[0]["session_id"] == session_id and text_of(again) == "after the stop"


def test_confirmation_card_round_trip(page, widget_server):
    open_demo(page, widget_server)
    transfer = {
        "connection": "app-api",
        "method": "POST",
        "endpoint": "/transfers",
        "intent": "write",
        "data": {"from_account_id": "acc-o-checking", "to_account_id": "acc-o-savings", "amount": "25.00"},
    }
    events = demo_send(page, OKAFOR, f"/tool request {json.dumps(transfer)}")
    confirmation = next(event for event in events if event["type"] == "confirmation_required")
    card = household(page, OKAFOR).get_by_role("group", name="Approval needed")
    assert "POST /transfers" in card.inner_text() and "acc-o-savings" in card.inner_text()

    before = len(demo_events(page, OKAFOR))
    card.get_by_role("button", name="Approve").click()
    page.wait_for_function(
        "([n]) => window.amodalDemo.events['household-okafor'].slice(n).some(e => e.type === 'done')", arg=[before]
    )
    after = demo_events(page, OKAFOR)[before:]
    call = next(event for event in after if event["type"] == "tool_call_start")
    assert call["parameters"]["intent"] == "confirmed_write"
    assert card.get_by_role("button", name="Approve").is_disabled()
    assert household(page, OKAFOR).get_by_text("You approved the action").is_visible()
    with widget_server.client() as client:
        detail = client.get(
            f"/sessions/history/{events[0]['session_id']}",
            headers=widget_server.headers(OKAFOR, {"household_id": OKAFOR}),
        ).json()
    assert f"I approve the action (correlation: {confirmation['correlation_id']})" in [
        message["text"] for message in detail["messages"]
    ]


def test_keyboard_only_use(page, widget_server):
    open_demo(page, widget_server)
    widget = household(page, GARCIA)
    box = widget.get_by_role("textbox", name="Message")
    box.focus()
    page.keyboard.type("/say typed with the keyboard")
    page.keyboard.press("Shift+Enter")  # a newline, not a send
    assert box.input_value() == "/say typed with the keyboard\n"
    page.keyboard.press("Backspace")
    page.keyboard.press("Enter")
    page.wait_for_function("() => window.amodalDemo.events['household-garcia'].some(e => e.type === 'done')")
    assert box.input_value() == ""
    assert page.evaluate("() => document.activeElement.getAttribute('aria-label')") == "Message"
    # Escape stops a running answer from the input.
    before = len(demo_events(page, GARCIA))
    box.fill("/slow 300 " + " ".join(["slow"] * 40))
    page.keyboard.press("Enter")
    page.wait_for_function(
        "([n]) => window.amodalDemo.events['household-garcia'].slice(n).some(e => e.type === 'text_delta')",
        arg=[before],
    )
    page.keyboard.press("Escape")
    page.wait_for_function(
        "() => window.amodalDemo.events['household-garcia'].filter(e => e.type === 'done').length == 2"
    )
    assert [e for e in demo_events(page, GARCIA) if e["type"] == "done"][-1]["reason"] == "user_abort"
    # Every control has an accessible name.
    for name in ("New conversation", "Earlier conversations", "Send message"):
        assert widget.get_by_role("button", name=name).count() == 1
    # The controller: destroy() removes the widget and leaves the host element to the page.
    page.evaluate("() => window.amodalDemo.widgets['household-garcia'].destroy()")
    assert widget.locator(".amc-root").count() == 0
    assert page.locator("#chat-household-garcia").count() == 1


def test_missing_session_and_busy_session_banners(page, widget_server):
    # A stored session id that does not exist (or is another scope's): 404 session_not_found on resume.
    open_demo(page, widget_server)
    page.evaluate(
        "() => localStorage.setItem('amodal-demo:session:household-garcia', '0b0e7a52-5e8f-4ad4-9d3c-2d3f7a1c9e11')"
    )
    page.reload()
    page.wait_for_selector("html[data-demo-ready]")
    banner = household(page, GARCIA).get_by_role("alert")
    banner.wait_for()
    assert banner.get_attribute("data-code") == "session_not_found"
    assert "no longer available" in banner.inner_text()
    banner.get_by_role("button", name="Start a new conversation").click()
    assert banner.is_hidden()
    assert page.evaluate("() => localStorage.getItem('amodal-demo:session:household-garcia')") is None
    first = demo_send(page, GARCIA, "/say a fresh start")
    assert text_of(first) == "a fresh start"

    # A second widget on the same session while the first is still answering: the server waits 5 s for
    # the session, then answers 409 session_busy; the widget offers Retry.
    demo_send(page, GARCIA, "/slow 400 " + " ".join(["busy"] * 40), wait=False)
    # The first text of the second answer: by then its user message is saved (init leaves before that).
    page.wait_for_function(
        """() => {
          const events = window.amodalDemo.events['household-garcia'];
          const second = events.map(e => e.type).lastIndexOf('init');
          const inits = events.filter(e => e.type === 'init').length;
          return inits === 2 && events.slice(second).some(e => e.type === 'text_delta');
        }"""
    )
    page.evaluate(
        """async () => {
          const { mountChatWidget } = await import("/widget/amodal/chat-widget.js");
          const host = document.createElement("div");
          host.id = "second-widget";
          host.style.height = "400px";
          document.body.append(host);
          const getToken = async () =>
            (await (await fetch("/widget/demo/token?household=household-garcia")).json()).token;
          window.secondWidget = mountChatWidget(host, {
            getToken, scopeId: "household-garcia", sessionId: window.amodalDemo.widgets["household-garcia"].sessionId,
          });
        }"""
    )
    second = page.locator("#second-widget")
    second.get_by_role("log").get_by_text("busy", exact=False).first.wait_for()  # its history loaded
    second.get_by_role("textbox", name="Message").fill("/say me too")
    second.get_by_role("textbox", name="Message").press("Enter")
    busy = second.get_by_role("alert")
    busy.wait_for(timeout=15_000)
    assert busy.get_attribute("data-code") == "session_busy"
    assert "Still answering the previous message" in busy.inner_text()
    assert busy.get_by_role("button", name="Retry").is_visible()
    household(page, GARCIA).get_by_role("button", name="Stop generating").click()
    page.wait_for_function("() => !window.amodalDemo.widgets['household-garcia'].busy")
    busy.get_by_role("button", name="Retry").click()  # the session is free again: the retry goes through
    second.get_by_role("log").get_by_text("me too", exact=True).wait_for()
    assert busy.is_hidden()


def test_an_http_error_from_a_connection_is_shown_as_failed(page, widget_server):
    """A 404 from the SaaS's API is a result the model reads, and a failed call the user sees as such."""
    open_demo(page, widget_server)
    missing = {"connection": "app-api", "method": "GET", "endpoint": "/accounts/no-such-account"}
    events = demo_send(page, GARCIA, f"/tool request {json.dumps(missing)}")
    result = next(event for event in events if event["type"] == "tool_call_result")
    assert result["status"] == "error"
    assert json.loads(result["error"])["status"] == 404
    row = household(page, GARCIA).locator(".amc-tool").last
    assert row.get_attribute("data-status") == "error"
    assert row.locator(".amc-tool-status").inner_text() == "failed"
    assert done_of(events)["reason"] == "model_stop"


# --- feedback ---------------------------------------------------------------------------------------------


def feedback_rows(server, message_id: str) -> list[tuple]:
    """The saved ratings of one assistant message: (rating, user, scope)."""
    return server.database.query(
        "SELECT f.rating, f.user_sub, f.scope FROM agents_feedback f JOIN agents_message m ON f.message_id = m.id"
        " WHERE m.public_id = %s",
        (server.database.uuid_param(message_id),),
    )


def pressed(group) -> dict[str, str]:
    return {name: group.get_by_role("button", name=name).get_attribute("aria-pressed") for name in THUMBS}


THUMBS = ("Good answer", "Bad answer")
THANKS = "Thanks for your feedback"


def test_thumbs_rate_the_answer_by_click_and_by_keyboard(page, widget_server):
    open_demo(page, widget_server)
    widget = household(page, GARCIA)
    message_id = done_of(demo_send(page, GARCIA, "/say rate this answer"))["message_id"]
    group = widget.get_by_role("group", name="Rate this answer")
    assert group.count() == 1
    assert group.get_attribute("data-message-id") == message_id
    assert pressed(group) == {"Good answer": "false", "Bad answer": "false"}

    group.get_by_role("button", name="Good answer").click()
    widget.get_by_role("status").get_by_text(THANKS).wait_for()
    assert pressed(group) == {"Good answer": "true", "Bad answer": "false"}
    assert feedback_rows(widget_server, message_id) == [(1, f"{GARCIA}-demo-user", GARCIA)]

    # Keyboard only: Tab from the pressed thumb to the other, Enter: the rating is replaced, not added.
    assert page.evaluate("() => document.activeElement.getAttribute('aria-label')") == "Good answer"
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.getAttribute('aria-label')") == "Bad answer"
    page.evaluate("() => { document.querySelector('.amc-root [role=status]').textContent = ''; }")
    page.keyboard.press("Enter")
    widget.get_by_role("status").get_by_text(THANKS).wait_for()
    assert pressed(group) == {"Good answer": "false", "Bad answer": "true"}
    assert feedback_rows(widget_server, message_id) == [(-1, f"{GARCIA}-demo-user", GARCIA)]

    # A resumed conversation shows this user's rating again.
    page.reload()
    page.wait_for_selector("html[data-demo-ready]")
    resumed = household(page, GARCIA).get_by_role("group", name="Rate this answer")
    resumed.wait_for()
    assert resumed.get_attribute("data-message-id") == message_id
    assert pressed(resumed) == {"Good answer": "false", "Bad answer": "true"}


def test_a_rating_that_fails_is_shown_beside_the_thumbs(page, widget_server):
    open_demo(page, widget_server)
    widget = household(page, GARCIA)
    events = demo_send(page, GARCIA, "/say a conversation deleted meanwhile")
    session_id, message_id = events[0]["session_id"], done_of(events)["message_id"]
    with widget_server.client() as client:
        deleted = client.delete(
            f"/sessions/history/{session_id}", headers=widget_server.headers(GARCIA, {"household_id": GARCIA})
        )
    assert deleted.status_code == 200
    group = widget.get_by_role("group", name="Rate this answer")
    group.get_by_role("button", name="Good answer").click()
    error = group.get_by_role("alert")
    error.wait_for()
    assert error.inner_text() == "Your feedback was not sent: No session with this id exists."
    assert pressed(group) == {"Good answer": "false", "Bad answer": "false"}  # back to what is saved
    assert feedback_rows(widget_server, message_id) == []
