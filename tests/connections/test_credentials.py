"""ScopedCredential storage and admin (SPEC §4): encrypted at rest, revealed only for calls, an unusable
key reported clearly, masked in admin with a write-only "replace" field, and every change audited."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test import override_settings

from connections.crypto import UndecryptableCredential, encrypt
from connections.models import CredentialChange, ScopedCredential
from scoping.context import scope
from tests.connections.test_secret_hygiene import database_text, raw_table_text

ADD_URL = "/admin/connections/scopedcredential/add/"
LIST_URL = "/admin/connections/scopedcredential/"
KEY_A = Fernet.generate_key().decode()
KEY_B = Fernet.generate_key().decode()


def change_url(pk: int) -> str:
    return f"/admin/connections/scopedcredential/{pk}/change/"


def delete_url(pk: int) -> str:
    return f"/admin/connections/scopedcredential/{pk}/delete/"


def create(scope_id: str, key: str, value: str) -> ScopedCredential:
    with scope(scope_id):
        credential = ScopedCredential(key=key)
        credential.set_value(value)
        credential.save()
    return credential


def raw_row(pk: int) -> tuple:
    table = connection.ops.quote_name(ScopedCredential._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table} WHERE id = %s", [pk])
        return cursor.fetchone()


# --- storage -------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["plain-secret-value-123", "ünïcødé-sécret-✓", "x" * 2000, "a"])
def test_values_are_encrypted_at_rest_and_reveal_round_trips(value):
    credential = create("tenant-a", "API_TOKEN", value)
    if len(value) > 1:  # a one-letter value occurs by chance in any text
        assert value not in repr(raw_row(credential.pk))
        assert value not in raw_table_text()
    stored = ScopedCredential.all_scopes.get(pk=credential.pk)
    assert stored.encrypted_value != value
    assert stored.reveal() == value
    assert stored.value_length == len(value)


@pytest.mark.django_db
def test_the_same_value_encrypts_differently_each_time():
    first = create("tenant-a", "ONE", "same-value-1234")
    second = create("tenant-a", "TWO", "same-value-1234")
    assert first.encrypted_value != second.encrypted_value


@pytest.mark.django_db
def test_a_configured_key_is_used_and_another_key_cannot_decrypt():
    with override_settings(AMODAL_CREDENTIALS_KEY=KEY_A):
        credential = create("tenant-a", "API_TOKEN", "encrypted-with-key-a")
        assert Fernet(KEY_A.encode()).decrypt(credential.encrypted_value.encode()) == b"encrypted-with-key-a"
    with (
        override_settings(AMODAL_CREDENTIALS_KEY=KEY_B),
        pytest.raises(UndecryptableCredential, match="cannot be decrypted with the configured key"),
    ):
        ScopedCredential.all_scopes.get(pk=credential.pk).reveal()


@pytest.mark.django_db(transaction=True)
def test_a_wrong_key_makes_the_reference_unresolvable_with_a_clear_message(make_agent, api, request_tool):
    with override_settings(AMODAL_CREDENTIALS_KEY=KEY_A):
        create("tenant-a", "API_TOKEN", "encrypted-with-key-a")
    agent = make_agent({"app-api": {"baseUrl": api.base_url, "auth": {"type": "bearer", "token": "scope:API_TOKEN"}}})
    with override_settings(AMODAL_CREDENTIALS_KEY=KEY_B):
        result = request_tool(agent, {"connection": "app-api", "method": "GET", "endpoint": "/x"})
    assert result.is_error
    assert result.content == (
        "The credential reference scope:API_TOKEN could not be resolved (the stored value cannot be decrypted)."
    )
    assert api.received == []
    with override_settings(AMODAL_CREDENTIALS_KEY=KEY_A):
        assert not request_tool(agent, {"connection": "app-api", "method": "GET", "endpoint": "/x"}).is_error
    assert api.only().header("Authorization") == "Bearer encrypted-with-key-a"


def test_a_malformed_key_is_refused_with_instructions():
    with (
        override_settings(AMODAL_CREDENTIALS_KEY="not-a-fernet-key"),
        pytest.raises(ImproperlyConfigured, match="AMODAL_CREDENTIALS_KEY is not a Fernet key"),
    ):
        encrypt("anything")


# --- admin ---------------------------------------------------------------------------------------------


@pytest.fixture
def staff(client, django_user_model):
    user = django_user_model.objects.create_superuser("ops-admin", "ops@example.com", "ops-password-1")
    client.force_login(user)
    return user


def changes() -> list[tuple[str, str, str, str | None]]:
    return [(c.action, c.scope, c.key, c.actor_name) for c in CredentialChange.objects.order_by("at", "pk")]


def assert_page_hides(response, *values: str) -> str:
    html = response.content.decode()
    for value in values:
        assert value not in html
    return html


@pytest.mark.django_db
def test_admin_add_replace_rename_delete_are_audited_without_values(client, staff):
    first, second = "first-admin-secret-8c1d", "second-admin-secret-4f2e"
    add_page = client.get(ADD_URL)
    assert add_page.status_code == 200
    assert 'type="password"' in add_page.content.decode()

    response = client.post(ADD_URL, {"scope": "tenant-a", "key": "API_TOKEN", "new_value": first})
    assert response.status_code == 302, response.content.decode()[:2000]
    credential = ScopedCredential.all_scopes.get(scope="tenant-a", key="API_TOKEN")
    assert credential.reveal() == first
    assert credential.updated_by == "ops-admin"
    assert value_free(first)

    change_page = client.get(change_url(credential.pk))
    assert change_page.status_code == 200
    html = assert_page_hides(change_page, first)
    assert "Replace value" in html
    assert f"({len(first)} characters)" in html

    # Replace: the scope field is disabled (a posted scope is ignored); the value changes.
    response = client.post(change_url(credential.pk), {"scope": "tenant-b", "key": "API_TOKEN", "new_value": second})
    assert response.status_code == 302
    credential.refresh_from_db()
    assert (credential.scope, credential.reveal()) == ("tenant-a", second)

    # Rename without a value: the stored value is kept.
    response = client.post(change_url(credential.pk), {"key": "CRM_TOKEN", "new_value": ""})
    assert response.status_code == 302
    credential.refresh_from_db()
    assert (credential.key, credential.reveal()) == ("CRM_TOKEN", second)

    # Saving with no change writes no audit row.
    assert client.post(change_url(credential.pk), {"key": "CRM_TOKEN", "new_value": ""}).status_code == 302

    list_page = client.get(LIST_URL)
    html = assert_page_hides(list_page, first, second)
    assert "••••••••" in html and f"({len(second)} characters)" in html

    history = client.get(f"/admin/connections/scopedcredential/{credential.pk}/history/")
    assert_page_hides(history, first, second)

    response = client.post(delete_url(credential.pk), {"post": "yes"})
    assert response.status_code == 302
    assert not ScopedCredential.all_scopes.exists()

    assert changes() == [
        ("created", "tenant-a", "API_TOKEN", "ops-admin"),
        ("replaced", "tenant-a", "API_TOKEN", "ops-admin"),
        ("renamed", "tenant-a", "CRM_TOKEN", "ops-admin"),
        ("deleted", "tenant-a", "CRM_TOKEN", "ops-admin"),
    ]
    assert all(change.actor_id == staff.pk for change in CredentialChange.objects.all())
    assert value_free(first) and value_free(second)
    audit_page = client.get("/admin/connections/credentialchange/")
    assert audit_page.status_code == 200
    assert_page_hides(audit_page, first, second)


def value_free(value: str) -> bool:
    """Neither the database (any row, any column, raw) nor the admin log holds the value."""
    return value not in database_text() and value not in raw_table_text()


@pytest.mark.django_db
def test_rename_and_replace_at_once_writes_both_entries(client, staff):
    credential = create("", "OLD", "old-value-1234")
    response = client.post(change_url(credential.pk), {"key": "NEW", "new_value": "new-value-5678"})
    assert response.status_code == 302
    assert sorted(action for action, *_ in changes()) == ["renamed", "replaced"]
    assert {(scope_id, key) for _, scope_id, key, _ in changes()} == {("", "NEW")}


@pytest.mark.django_db
def test_bulk_delete_is_audited_per_credential(client, staff):
    one = create("tenant-a", "ONE", "value-one-1234")
    two = create("tenant-b", "TWO", "value-two-1234")
    response = client.post(LIST_URL, {"action": "delete_selected", "_selected_action": [one.pk, two.pk], "post": "yes"})
    assert response.status_code == 302
    assert not ScopedCredential.all_scopes.exists()
    assert sorted(changes()) == [
        ("deleted", "tenant-a", "ONE", "ops-admin"),
        ("deleted", "tenant-b", "TWO", "ops-admin"),
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("data", "field_error"),
    [
        ({"scope": "tenant-a", "key": "API_TOKEN", "new_value": ""}, "A new credential needs a value."),
        (
            {"scope": "tenant-a", "key": "TAKEN", "new_value": "rejected-value-9a8b"},
            "This scope already has a credential with this key.",
        ),
        ({"scope": "bad\x01scope", "key": "K", "new_value": "rejected-value-9a8b"}, "printable"),
        ({"scope": "tenant-a", "key": "bad key", "new_value": "rejected-value-9a8b"}, "A credential key is"),
        ({"scope": "tenant-a", "key": "scope:K", "new_value": "rejected-value-9a8b"}, "A credential key is"),
        ({"scope": "tenant-a", "key": "K", "new_value": "rejected-value-9a8b" + "x" * 10_000}, "at most 10000"),
    ],
)
def test_invalid_forms_are_refused_and_never_echo_the_value(client, staff, data, field_error):
    create("tenant-a", "TAKEN", "existing-value-1234")
    response = client.post(ADD_URL, data)
    assert response.status_code == 200
    html = assert_page_hides(response, "rejected-value-9a8b", "existing-value-1234")
    assert field_error in html
    assert ScopedCredential.all_scopes.count() == 1
    assert changes() == []


@pytest.mark.django_db
def test_the_same_key_in_two_scopes_is_allowed(client, staff):
    create("tenant-a", "API_TOKEN", "value-a-1234")
    response = client.post(ADD_URL, {"scope": "tenant-b", "key": "API_TOKEN", "new_value": "value-b-1234"})
    assert response.status_code == 302
    assert ScopedCredential.all_scopes.filter(key="API_TOKEN").count() == 2


@pytest.mark.django_db
def test_the_audit_log_is_read_only(client, staff):
    credential = create("tenant-a", "K", "value-1234")
    client.post(delete_url(credential.pk), {"post": "yes"})
    entry = CredentialChange.objects.get()
    assert client.get("/admin/connections/credentialchange/add/").status_code == 403
    assert client.post(f"/admin/connections/credentialchange/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    assert CredentialChange.objects.filter(pk=entry.pk).exists()


@pytest.mark.django_db
def test_non_staff_users_cannot_reach_the_credentials_admin(client, django_user_model):
    user = django_user_model.objects.create_user("plain-user", password="pw-123456")
    client.force_login(user)
    response = client.get(LIST_URL)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
