"""The widget's colour schemes, the demo page on a phone, and what a visitor sees when the network or the
server is down, in a real browser (Debian's Chromium) against a live daphne.

Offline is the browser's own offline mode; "server down" is the chat request refused at the connection
(Playwright's route.abort), and "server failing" a 503 in the runtime's JSON error shape: the widget cannot
tell these from a real outage, and the page around it keeps working.
"""

from __future__ import annotations

import json

import pytest

from tests.browser import save_screenshot
from tests.widget.test_widget_browser import GARCIA, OKAFOR, demo_send, household, open_demo

pytestmark = [pytest.mark.browser, pytest.mark.live]

LIGHT_BG = "rgb(255, 255, 255)"
DARK_BG = "rgb(21, 26, 35)"  # --amc-bg of the dark scheme


def widget_state(page, scope_id: str) -> dict:
    return (
        household(page, scope_id)
        .locator(".amc-root")
        .evaluate(
            "root => ({theme: root.dataset.amcTheme, scheme: root.dataset.amcScheme,"
            " background: getComputedStyle(root).backgroundColor, text: getComputedStyle(root).color})"
        )
    )


def test_auto_follows_the_system_scheme_and_the_theme_option_overrides_it(page, widget_server):
    page.emulate_media(color_scheme="dark")
    open_demo(page, widget_server)
    for scope_id in (GARCIA, OKAFOR):
        state = widget_state(page, scope_id)
        assert (state["theme"], state["scheme"], state["background"]) == ("auto", "dark", DARK_BG)
        assert state["text"] == "rgb(231, 234, 240)"
    assert page.evaluate("document.documentElement.dataset.scheme") == "dark"
    demo_send(page, GARCIA, "/say **Dark** and `readable`")
    save_screenshot(page, "widget-demo-dark.png", full_page=True)

    # The system switches to light while the page is open: "auto" follows it.
    page.emulate_media(color_scheme="light")
    page.wait_for_function("() => document.querySelector('.amc-root').dataset.amcScheme === 'light'")
    assert widget_state(page, GARCIA)["background"] == LIGHT_BG

    # The page's Theme menu calls setThemeMode: "dark" wins over a light system, "light" over a dark one.
    page.select_option("#demo-theme", "dark")
    assert widget_state(page, OKAFOR)["scheme"] == "dark"
    assert widget_state(page, OKAFOR)["background"] == DARK_BG
    page.emulate_media(color_scheme="dark")
    page.select_option("#demo-theme", "light")
    assert widget_state(page, GARCIA)["background"] == LIGHT_BG
    assert widget_state(page, GARCIA)["theme"] == "light"


def test_theme_mode_at_mount_and_a_bad_mode_is_refused(page, widget_server):
    open_demo(page, widget_server, "?theme=dark")
    assert widget_state(page, GARCIA)["scheme"] == "dark"
    result = page.evaluate(
        """async () => {
            const { mountChatWidget } = await import("/widget/amodal/chat-widget.js");
            const element = document.createElement("div");
            document.body.append(element);
            const dark = mountChatWidget(element, { theme: { mode: "dark" }, stylesheet: false });
            const scheme = dark.element.dataset.amcScheme;
            let refused = null;
            try { mountChatWidget(element, { theme: { mode: "purple" } }); }
            catch (error) { refused = `${error.name}: ${error.message}`; }
            let badSet = null;
            try { dark.setThemeMode("night"); } catch (error) { badSet = error.message; }
            const after = dark.element.dataset.amcScheme;
            dark.destroy();
            return { scheme, refused, badSet, after, left: element.children.length };
        }"""
    )
    assert result["scheme"] == "dark"
    assert result["refused"] == 'TypeError: mountChatWidget: theme.mode must be one of auto, light, dark, not "purple".'
    assert 'not "night"' in result["badSet"]
    assert result["after"] == "dark", "a refused mode leaves the scheme as it was"
    assert result["left"] == 0, "the refused mount added nothing to the page"


def test_the_demo_page_fits_a_phone(browser, widget_server):
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True)
    try:
        page = context.new_page()
        open_demo(page, widget_server)
        widths = page.evaluate(
            "({scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth})"
        )
        assert widths == {"scroll": 390, "client": 390}, "the page must not scroll sideways at 390 px"
        for scope_id in (GARCIA, OKAFOR):
            box = household(page, scope_id).locator(".amc-root").bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= 390
        events = demo_send(page, OKAFOR, "/say Fits on a phone")
        assert any(event["type"] == "done" for event in events)
        assert page.evaluate("document.documentElement.scrollWidth") == 390, "still no sideways scroll with messages"
        page.evaluate("window.scrollTo(0, 0)")
        save_screenshot(page, "widget-demo-phone.png")
    finally:
        context.close()


def test_offline_shows_a_clear_banner_and_retry_sends_once_back_online(page, widget_server):
    open_demo(page, widget_server)
    page.context.set_offline(True)
    box = household(page, GARCIA).get_by_role("textbox", name="Message")
    box.fill("/say sent after reconnecting")
    box.press("Enter")
    banner = household(page, GARCIA).get_by_role("alert")
    banner.wait_for()
    assert "You're offline" in banner.inner_text()
    assert household(page, GARCIA).locator(".amc-msg-user.amc-msg-failed").count() == 1
    assert page.evaluate(f"() => window.amodalDemo.events['{GARCIA}'].length") == 0

    page.context.set_offline(False)
    with page.expect_response(lambda response: response.url.endswith("/chat/stream")) as answer:
        banner.get_by_role("button", name="Retry").click()
    assert answer.value.status == 200
    page.wait_for_function(f"() => window.amodalDemo.events['{GARCIA}'].some(e => e.type === 'done')")
    log = household(page, GARCIA).get_by_role("log")
    assert log.get_by_text("/say sent after reconnecting", exact=True).count() == 1
    assert log.locator(".amc-text").get_by_text("sent after reconnecting", exact=True).is_visible()
    assert household(page, GARCIA).locator(".amc-banner").is_hidden()
    assert household(page, GARCIA).locator(".amc-msg-user.amc-msg-failed").count() == 0


def test_server_down_and_server_failing_states(page, widget_server):
    open_demo(page, widget_server)
    widget = household(page, OKAFOR)

    # Down: the connection is refused. The banner names the server and offers Retry; the other chat works.
    page.route("**/chat/stream", lambda route: route.abort("connectionrefused"))
    box = widget.get_by_role("textbox", name="Message")
    box.fill("/say are you there?")
    box.press("Enter")
    banner = widget.get_by_role("alert")
    banner.wait_for()
    assert "Can't reach the assistant" in banner.inner_text()
    assert widget_server.base_url.split("://")[1] in banner.inner_text() or "the server" in banner.inner_text()
    assert banner.get_by_role("button", name="Retry").is_visible()
    assert household(page, GARCIA).locator(".amc-banner").is_hidden()

    # Failing: a 503 in the runtime's error shape. Retry asks again, and gets the same clear answer.
    page.unroute("**/chat/stream")
    calls: list[int] = []

    def unavailable(route):
        calls.append(1)
        route.fulfill(
            status=503,
            headers={"Content-Type": "application/json", "Retry-After": "5"},
            body=json.dumps({"error": {"code": "service_unavailable", "message": "The database is unavailable."}}),
        )

    page.route("**/chat/stream", unavailable)
    banner.get_by_role("button", name="Retry").click()
    page.wait_for_function(
        "() => document.querySelector('[data-scope=\"household-okafor\"] .amc-banner-title')?.textContent"
        " === 'The assistant is unavailable right now'"
    )
    assert "The database is unavailable." in banner.inner_text()
    assert calls == [1]
    assert widget.locator(".amc-msg-user.amc-msg-failed").count() == 1

    # Back: Retry delivers the same message once, and the failed mark goes.
    page.unroute("**/chat/stream")
    banner.get_by_role("button", name="Retry").click()
    page.wait_for_function(f"() => window.amodalDemo.events['{OKAFOR}'].some(e => e.type === 'done')")
    log = widget.get_by_role("log")
    assert log.get_by_text("/say are you there?", exact=True).count() == 1, "one question, not a copy per try"
    assert log.locator(".amc-text").get_by_text("are you there?", exact=True).is_visible()
    assert widget.locator(".amc-msg-user.amc-msg-failed").count() == 0
