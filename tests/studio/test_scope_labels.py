"""Scope labels in Studio (SPEC §10): every page that shows a scope shows its label first and its raw id
beside it, reads the labels of all the scopes it shows in one query, and the scope searches match labels."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.template import Context, Template
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from agents.models import Session
from scoping.models import Scope
from studio.model_access import optional_model
from studio.selectors import ScopeLabels, scope_labels
from tests.studio.conftest import attrs, q
from tests.studio.factories import Call, Turn
from tests.studio.test_usage import csv_of

ACME = "tenant_01HZX4Q8ACMEWQ7T3K9V2B5N6M"  # long: shown head…tail, in full in the title
ACME_LABEL = "Acme Hotels"
BIRCH = "org_7fQ2LbX9"
BIRCH_LABEL = "Birchwood Dental"
PLAIN = "tenant-plain"  # no label

MemoryEntry = optional_model("memory", "MemoryEntry")
StoreDocument = optional_model("stores", "StoreDocument")


def label(scope_id: str, text: str, metadata: dict | None = None) -> None:
    Scope.objects.filter(scope_id=scope_id).update(label=text, metadata=metadata or {})


@pytest.fixture
def labelled(make_session):
    """Three scopes with sessions: two labelled, one not; plus the global scope labelled."""
    now = timezone.now()
    for index in range(3):
        make_session(scope=ACME, title=f"Acme {index}", at=now - timedelta(hours=index + 1))
    make_session(scope=BIRCH, title="Birch", at=now - timedelta(hours=5), turns=[Turn("x", [Call(cost_micros=900)])])
    make_session(scope=PLAIN, title="Plain", at=now - timedelta(hours=6))
    make_session(scope="", title="Global", at=now - timedelta(hours=7))
    label(ACME, ACME_LABEL, {"plan": "pro", "crm": {"id": 4411}})
    label(BIRCH, BIRCH_LABEL)
    label("", "Shared internal")


def named(content: str, scope_id: str) -> list[str]:
    """The labels shown by the scope_name tag for `scope_id` (its full id is in the title)."""
    return re.findall(
        r'class="scope-id[^"]*scope-named"[^>]*title="([^"]*) · ' + re.escape(scope_id) + r'[^"]*"', content
    )


# --- the tag -----------------------------------------------------------------------------------------------------


def render(text: str, **context) -> str:
    return Template("{% load studio %}" + text).render(Context(context))


def test_scope_name_puts_the_label_first_and_keeps_the_raw_id():
    labels = ScopeLabels({ACME: ACME_LABEL, "": "Shared"})
    html = render("{% scope_name s '/x?scope=1' %}", s=ACME, scope_labels=labels)
    assert html.startswith('<a class="scope-id scope-named" href="/x?scope=1" title="Acme Hotels · ' + ACME + '">')
    assert '<span class="scope-label">Acme Hotels</span>' in html
    assert '<span class="scope-raw">tenant_01HZX4Q…B5N6M</span>'.replace("B5N6M", ACME[-8:]) in html
    assert render("{% scope_name s %}", s=PLAIN, scope_labels=labels) == (
        f'<span class="scope-id" title="{PLAIN}">{PLAIN}</span>'
    )
    assert "Shared" in render("{% scope_name s %}", s="", scope_labels=labels)
    assert render("{% scope_name s as_text=True %}", s=ACME, scope_labels=labels).startswith("Acme Hotels · tenant_01H")
    assert render("{% scope_name s as_text=True %}", s="") == "global"  # no labels on the page: the id alone


def test_a_label_is_escaped_everywhere():
    labels = ScopeLabels({ACME: '<img src=x onerror="alert(1)">'})
    html = render("{% scope_name s '/x' %}{% scope_label s as t %}{{ t }}", s=ACME, scope_labels=labels)
    assert "<img" not in html and "&lt;img" in html


# --- the pages ---------------------------------------------------------------------------------------------------


def test_sessions_page_chips_table_and_header_show_labels(staff_client, labelled):
    content = staff_client.get(reverse("studio:sessions")).content.decode()
    chip_labels = dict(zip(attrs(content, "a", "data-scope"), attrs(content, "a", "data-label"), strict=True))
    assert chip_labels == {ACME: ACME_LABEL, BIRCH: BIRCH_LABEL, PLAIN: "", "": "Shared internal"}
    assert '<span class="chip-label">Acme Hotels</span> <span class="chip-name">tenant_01HZX4Q…' in content
    assert named(content, ACME) == [ACME_LABEL] * 3  # one per session row
    assert named(content, BIRCH) == [BIRCH_LABEL]
    focused = staff_client.get(reverse("studio:sessions") + "?scope=" + q(ACME)).content.decode()
    header = re.search(r'id="session-total".*?</p>', focused, re.S).group(0)
    assert ACME_LABEL in header and ACME[:14] in header


def test_replay_metadata_shows_the_label_beside_the_raw_id(staff_client, labelled):
    session = Session.all_scopes.get(title="Acme 0")
    content = staff_client.get(reverse("studio:replay", args=[session.pk])).content.decode()
    assert f'id="scope-label">{ACME_LABEL}</strong>' in content
    assert f'id="raw-scope">{ACME}</code>' in content and f'data-copy="{ACME}"' in content
    plain = Session.all_scopes.get(title="Plain")
    assert 'id="scope-label"' not in staff_client.get(reverse("studio:replay", args=[plain.pk])).content.decode()


def test_cost_and_usage_ranking_focus_and_top_sessions_show_labels(staff_client, labelled):
    content = staff_client.get(reverse("studio:usage") + "?range=7d").content.decode()
    ranking = re.search(r'id="scope-ranking".*?</section>', content, re.S).group(0)
    assert named(ranking, ACME) == [ACME_LABEL] and named(ranking, BIRCH) == [BIRCH_LABEL]
    assert f'title="{PLAIN}: focus the panels on this scope"' in ranking
    top = re.search(r'id="top-sessions".*?</section>', content, re.S).group(0)
    assert named(top, ACME) == [ACME_LABEL] * 3
    focused = staff_client.get(reverse("studio:usage") + "?range=7d&scope=" + q(BIRCH)).content.decode()
    banner = re.search(r'class="focus-banner.*?</div>', focused, re.S).group(0)
    assert named(banner, BIRCH) == [BIRCH_LABEL]


def test_cost_and_usage_csvs_carry_the_label_beside_the_scope_id(staff_client, labelled):
    _, scopes, _ = csv_of(staff_client, "scopes", "range=7d")
    assert {r["scope"]: r["scope_label"] for r in scopes} == {
        ACME: ACME_LABEL,
        BIRCH: BIRCH_LABEL,
        PLAIN: "",
        "": "Shared internal",
    }
    _, top, _ = csv_of(staff_client, "top-sessions", "range=7d")
    assert {(r["scope"], r["scope_label"]) for r in top} == {
        (ACME, ACME_LABEL),
        (BIRCH, BIRCH_LABEL),
        (PLAIN, ""),
        ("", "Shared internal"),
    }
    _, totals, _ = csv_of(staff_client, "totals", "range=7d&scope=" + q(BIRCH))
    blocks = {(r["scopes"], r["scope"], r["scope_label"]) for r in totals}
    assert blocks == {("all", "", ""), ("one", BIRCH, BIRCH_LABEL)}


def test_scopes_list_and_scope_pages_show_labels_and_metadata(staff_client, labelled):
    content = staff_client.get(reverse("studio:scopes")).content.decode()
    rows = dict(zip(attrs(content, "tr", "data-scope"), attrs(content, "tr", "data-label"), strict=True))
    assert rows == {ACME: ACME_LABEL, BIRCH: BIRCH_LABEL, PLAIN: "", "": "Shared internal"}
    assert named(content, ACME) == [ACME_LABEL]
    overview = staff_client.get(reverse("studio:scope") + "?scope=" + q(ACME)).content.decode()
    assert f'<span class="scope-title-label" id="scope-label">{ACME_LABEL}</span></h1>' in overview
    assert f'id="raw-scope">{ACME}</code>' in overview
    details = re.search(r'id="scope-details".*?</section>', overview, re.S).group(0)
    assert '"plan"><dt>plan</dt><dd>pro</dd>' in details and "<code>{&quot;id&quot;: 4411}</code>" in details
    assert reverse("admin:scoping_scope_change", args=[Scope.objects.get(scope_id=ACME).pk]) in details
    pages = [reverse("studio:scope_stores")]
    if MemoryEntry is not None:
        pages.append(reverse("studio:scope_memory"))
    for url in pages:
        page = staff_client.get(url + "?scope=" + q(ACME)).content.decode()
        assert f'id="scope-label">{ACME_LABEL}</span>' in page, url
        assert f"Acme Hotels · {ACME[:14]}" in re.search(r'class="breadcrumbs".*?</div>', page, re.S).group(0)
    plain = staff_client.get(reverse("studio:scope") + "?scope=" + q(PLAIN)).content.decode()
    assert 'id="scope-label"' not in plain and "No label or metadata" in plain


@pytest.mark.skipif(MemoryEntry is None, reason="memory.MemoryEntry is not in this build")
def test_the_memory_entry_forms_show_the_scope_label(labelled, django_user_model, client):
    operator = django_user_model.objects.create_superuser("root", "root@example.com", "root-pw-8d1f")
    client.force_login(operator)
    entry = MemoryEntry.all_scopes.create(scope=ACME, content="prefers invoices in EUR")
    for name in ("studio:memory_entry_edit", "studio:memory_entry_delete"):
        content = client.get(reverse(name, args=[entry.public_id]) + "?scope=" + q(ACME)).content.decode()
        assert f'id="scope-label">{ACME_LABEL}</span>' in content, name
        assert f"Acme Hotels · {ACME[:14]}" in re.search(r'class="breadcrumbs".*?</div>', content, re.S).group(0)


@pytest.mark.skipif(StoreDocument is None, reason="stores.StoreDocument is not in this build")
def test_a_store_document_page_shows_the_scope_label(staff_client, labelled):
    now = timezone.now()
    document = StoreDocument.all_scopes.create(
        scope=ACME, store="preferences", key="currency", data={"v": "EUR"}, created_at=now, updated_at=now
    )
    content = staff_client.get(reverse("studio:document", args=[document.pk])).content.decode()
    assert f'id="scope-label">{ACME_LABEL}</span>' in content


# --- search ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["acme hot", "ACME", "Hotels", "8ACMEWQ"])
def test_the_sessions_scope_search_matches_labels_and_ids_ignoring_case(staff_client, labelled, text):
    content = staff_client.get(reverse("studio:sessions"), {"find": text}).content.decode()
    assert attrs(content, "a", "data-scope") == [ACME]


@pytest.mark.parametrize(("text", "found"), [("dental", [BIRCH]), ("BIRCHWOOD", [BIRCH]), ("shared", [""])])
def test_the_scopes_page_search_matches_labels(staff_client, labelled, text, found):
    content = staff_client.get(reverse("studio:scopes"), {"q": text}).content.decode()
    assert attrs(content, "tr", "data-scope") == found


# --- one query for the labels of a page ---------------------------------------------------------------------------


def page_urls() -> dict[str, str]:
    acme = Session.all_scopes.filter(scope=ACME).first()
    return {
        "sessions": reverse("studio:sessions"),
        "sessions searched": reverse("studio:sessions") + "?find=acme",
        "replay": reverse("studio:replay", args=[acme.pk]),
        "usage": reverse("studio:usage"),
        "usage focused": reverse("studio:usage") + "?scope=" + q(ACME),
        "scopes": reverse("studio:scopes"),
        "scope": reverse("studio:scope") + "?scope=" + q(ACME),
        "memory": reverse("studio:scope_memory") + "?scope=" + q(ACME),
        "stores": reverse("studio:scope_stores") + "?scope=" + q(ACME),
    }


def scope_table_queries(client) -> dict[str, tuple[int, int]]:
    """Per page: (all queries, queries on the scopes table)."""
    counts = {}
    for name, url in page_urls().items():
        client.get(url)
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url).status_code == 200
        on_scopes = [query["sql"] for query in queries if '"scoping_scope"' in query["sql"]]
        counts[name] = (len(queries), len(on_scopes))
    return counts


# The scopes table is read once per page: for the labels of every scope shown (a search reads it once more,
# to find scopes; the scopes list and the scope overview read the labels with the rows they show).
SCOPE_TABLE_READS = {
    "sessions": 1,
    "sessions searched": 2,
    "replay": 1,
    "usage": 1,
    "usage focused": 1,
    "scopes": 2,  # the count and the page, labels included
    "scope": 1,  # the scope's row, label included
    "memory": 1,
    "stores": 1,
}


def test_labels_cost_one_query_per_page_whatever_the_number_of_scopes_shown(staff_client, labelled, make_session):
    few = scope_table_queries(staff_client)
    assert {name: reads for name, (_, reads) in few.items()} == SCOPE_TABLE_READS
    now = timezone.now()
    for index in range(30):  # 30 more labelled scopes on every list
        scope_id = f"tenant-extra-{index:02d}"
        make_session(scope=scope_id, title=f"Extra {index}", at=now - timedelta(minutes=index + 1))
        label(scope_id, f"Extra Customer {index}")
        make_session(scope=ACME, title=f"Acme more {index}", at=now - timedelta(minutes=index + 1))
    many = scope_table_queries(staff_client)
    assert {name: reads for name, (_, reads) in many.items()} == SCOPE_TABLE_READS
    # Every other query is the same too, except on Cost & Usage: its highest-cost sessions may take their
    # exact fallback (two more queries, studio.selectors.usage.top_sessions) when the candidates tie.
    usage_pages = {"usage", "usage focused"}
    assert {name: n for name, n in many.items() if name not in usage_pages} == {
        name: n for name, n in few.items() if name not in usage_pages
    }


def test_a_page_without_labels_costs_the_same_queries(staff_client, labelled):
    with_labels = scope_table_queries(staff_client)
    Scope.objects.update(label="")
    assert scope_table_queries(staff_client) == with_labels


def test_scope_labels_reads_once_and_not_at_all_for_no_ids(labelled, django_assert_num_queries):
    with django_assert_num_queries(1):
        labels = scope_labels([ACME, BIRCH, PLAIN, ACME, "never-seen"])
    assert (labels.of(ACME), labels.of(BIRCH), labels.of(PLAIN), labels.of("never-seen")) == (
        ACME_LABEL,
        BIRCH_LABEL,
        "",
        "",
    )
    with django_assert_num_queries(0):
        assert scope_labels([]).of(ACME) == ""
