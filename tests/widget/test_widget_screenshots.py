"""Screenshots of the widget demo page, on a fresh server and database of their own (so earlier tests'
conversations and memory do not show). Saved to docs/screenshots/ with AMODAL_UPDATE_SCREENSHOTS=1."""

from __future__ import annotations

import pytest

from tests.browser import save_screenshot
from tests.widget.test_widget_browser import GARCIA, OKAFOR, demo_send, household, open_demo

pytestmark = [pytest.mark.browser, pytest.mark.live]


def test_demo_page_screenshot(page, widget_server, tmp_path):
    """Both widgets after a short conversation (docs/screenshots/widget-demo.png with
    AMODAL_UPDATE_SCREENSHOTS=1)."""
    open_demo(page, widget_server)
    demo_send(
        page,
        GARCIA,
        "/say Hi Garcias! I can look up **accounts**, *transactions* and budgets, and remember "
        "what matters to you:\n\n- `show my recent transactions`\n- `remember that ...`",
    )
    demo_send(page, GARCIA, "Remember that we save for a bike")
    demo_send(page, GARCIA, "What do you remember?")
    demo_send(page, OKAFOR, "Show my recent transactions")
    demo_send(page, OKAFOR, "What do you remember?")
    assert household(page, GARCIA).locator(".amc-tool").count() >= 2
    assert "bike" not in household(page, OKAFOR).get_by_role("log").inner_text()
    save_screenshot(page, "widget-demo.png", full_page=True)
