"""The Scope admin edits the label and metadata, checked by the same rules as the API (scoping.labels); the
scope id and activity times stay read-only."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.urls import reverse
from django.utils import timezone

from scoping.labels import InvalidScopeDetail, clean_label, clean_metadata
from scoping.models import Scope
from scoping.services import touch_scope

pytestmark = pytest.mark.django_db

TENANT = "tenant_01HZX4Q8ACME"


@pytest.fixture
def admin_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("root", "root@example.com", "root-pw-8d1f")
    client.force_login(user)
    return client


@pytest.fixture
def scope() -> Scope:
    touch_scope(scope_id=TENANT)
    return Scope.objects.get(scope_id=TENANT)


def change_url(scope: Scope) -> str:
    return reverse("admin:scoping_scope_change", args=[scope.pk])


def test_the_change_form_saves_label_and_metadata_only(admin_client, scope):
    form = admin_client.get(change_url(scope))
    assert form.status_code == 200
    html = form.content.decode()
    assert 'name="label"' in html and 'name="metadata"' in html and 'name="scope_id"' not in html
    later = timezone.now() + timedelta(minutes=5)
    Scope.objects.filter(pk=scope.pk).update(last_seen_at=later)  # activity while the form was open
    response = admin_client.post(
        change_url(scope),
        {"label": "  Acme Hotels  ", "metadata": '{"plan": "pro", "region": "eu"}', "scope_id": "hijacked"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    saved = Scope.objects.get(pk=scope.pk)
    assert (saved.scope_id, saved.label, saved.metadata) == (TENANT, "Acme Hotels", {"plan": "pro", "region": "eu"})
    assert saved.last_seen_at == later and saved.first_seen_at == scope.first_seen_at
    assert LogEntry.objects.filter(object_id=str(scope.pk), action_flag=CHANGE).exists()


def test_an_empty_metadata_box_means_no_metadata(admin_client, scope):
    Scope.objects.filter(pk=scope.pk).update(label="Acme", metadata={"plan": "pro"})
    response = admin_client.post(change_url(scope), {"label": "", "metadata": ""})
    assert response.status_code == 302
    saved = Scope.objects.get(pk=scope.pk)
    assert (saved.label, saved.metadata) == ("", {})


def expected_message(clean, value) -> str:
    with pytest.raises(InvalidScopeDetail) as caught:
        clean(value)
    return str(caught.value)


@pytest.mark.parametrize(
    ("field", "posted", "clean", "value"),
    [
        ("label", "Acme\u202eHotels", clean_label, "Acme\u202eHotels"),
        ("metadata", "[1, 2]", clean_metadata, [1, 2]),
        ("metadata", '{"a": {"b": {"c": {}}}}', clean_metadata, {"a": {"b": {"c": {}}}}),
        ("metadata", json.dumps({"notes": "x" * 5000}), clean_metadata, {"notes": "x" * 5000}),
        ("metadata", '{"ratio": NaN}', clean_metadata, {"ratio": float("nan")}),
        ("metadata", '{"": 1}', clean_metadata, {"": 1}),
    ],
    ids=["label-bidi", "metadata-array", "metadata-deep", "metadata-big", "metadata-nan", "metadata-empty-key"],
)
def test_bad_values_are_refused_with_the_api_s_message(admin_client, scope, field, posted, clean, value):
    body = {"label": "Acme", "metadata": "{}", field: posted}
    response = admin_client.post(change_url(scope), body)
    assert response.status_code == 200  # the form again, with the error
    errors = response.context["adminform"].form.errors
    assert errors[field] == [expected_message(clean, value)]
    saved = Scope.objects.get(pk=scope.pk)
    assert (saved.label, saved.metadata) == ("", {})


def test_the_list_shows_and_searches_labels(admin_client, scope):
    Scope.objects.filter(pk=scope.pk).update(label="Acme Hotels")
    touch_scope(scope_id="tenant-other")
    listing = admin_client.get(reverse("admin:scoping_scope_changelist"), {"q": "acme hot"})
    html = listing.content.decode()
    assert "Acme Hotels" in html and TENANT in html and "tenant-other" not in html


def test_scopes_are_still_not_added_by_hand(admin_client):
    assert admin_client.get(reverse("admin:scoping_scope_add")).status_code == 403


@pytest.mark.parametrize(("posted", "saved"), [("25000000", 25_000_000), ("0", 0), ("", None)])
def test_the_change_form_sets_or_clears_the_scopes_own_budget_cap(admin_client, scope, posted, saved):
    Scope.objects.filter(pk=scope.pk).update(budget_cost_micros=7)
    assert 'name="budget_cost_micros"' in admin_client.get(change_url(scope)).content.decode()
    response = admin_client.post(change_url(scope), {"label": "", "metadata": "", "budget_cost_micros": posted})
    assert response.status_code == 302
    assert Scope.objects.get(pk=scope.pk).budget_cost_micros == saved


@pytest.mark.parametrize(("posted", "message"), [("-1", "greater than or equal to 0"), ("1.5", "whole number")])
def test_a_bad_budget_cap_is_refused_at_its_field(admin_client, scope, posted, message):
    response = admin_client.post(change_url(scope), {"label": "", "metadata": "", "budget_cost_micros": posted})
    assert response.status_code == 200
    assert message in str(response.context["adminform"].form.errors["budget_cost_micros"])
    assert Scope.objects.get(pk=scope.pk).budget_cost_micros is None
