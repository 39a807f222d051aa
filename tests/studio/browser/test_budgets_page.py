"""Budget use on Cost & Usage in Chromium: the scopes over their monthly budget are listed with an "over"
badge, the figures are the database's, and a cap set for one scope (the Scope admin's field) is shown."""

from __future__ import annotations

import pytest

from tests.studio.browser.conftest import data_rows, month_spends

pytestmark = pytest.mark.browser


def test_an_over_budget_scope_is_listed_and_a_scopes_own_cap_counts(page, studio_server, budget_cap):
    spends = month_spends(studio_server.database)
    expected = [(scope, spent) for scope, spent in spends if spent * 100 >= budget_cap * 80]
    page.goto(studio_server.base_url + "/studio/usage/")

    shown = data_rows(page, "#budgets tbody tr[data-scope]")
    assert sorted((row["scope"], int(row["spent"])) for row in shown) == sorted(expected)
    assert {int(row["cap"]) for row in shown} == {budget_cap}
    over = page.locator("#budgets tbody tr", has=page.locator(".badge-error"))
    assert over.count() == sum(spent >= budget_cap for _, spent in expected) >= 1
    assert over.first.locator(".badge-error").inner_text() == "over"
    assert over.first.is_visible()
    # The ranking's Budget column says the same of the scopes it shows.
    top_scope, top_spent = spends[0]
    cell = page.locator(f'#scope-ranking tr[data-scope="{top_scope}"] .budget-use')
    assert (cell.get_attribute("data-spent"), cell.get_attribute("data-cap")) == (str(top_spent), str(budget_cap))

    # An operator gives the least-spending scope a cap below its spend: it is over its own cap.
    low_scope, low_spent = spends[-1]
    database = studio_server.database
    database.execute(
        "UPDATE scoping_scope SET budget_cost_micros = %s WHERE scope_id = %s", (low_spent // 2, low_scope)
    )
    try:
        page.reload()
        row = page.locator(f'#budgets tbody tr[data-scope="{low_scope}"]')
        assert row.get_attribute("data-cap") == str(low_spent // 2)
        assert "(own)" in row.inner_text() and row.locator(".badge-error").is_visible()
    finally:
        database.execute("UPDATE scoping_scope SET budget_cost_micros = NULL WHERE scope_id = %s", (low_scope,))
