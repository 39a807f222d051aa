"""A tenant's data as a whole (SPEC §10): `export_scope` / `erase_scope` and the same over HTTP for an API key
created with --manage-scopes; every export and erase in the scope audit log; usage kept for billing under an
anonymous id, with the usage rollup still equal to the raw aggregate; another scope untouched."""

from __future__ import annotations

import asyncio
import io
import json
import os
import stat
from urllib.parse import quote

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.models import Sum
from django.test import AsyncClient, override_settings
from django.test.utils import CaptureQueriesContext

from agents import usage_rollup
from agents.models import Message, Session, UsageRecord, UsageRollup, UsageScopeMonth
from connections.models import ScopedCredential
from scoping import scope_data
from scoping.models import Scope, ScopeAuditEntry
from scoping.services import ScopeNotErased, create_api_key, erase_scope, erased_scope_id, export_scope
from tests.scoping.scope_fill import SECRET, fill_scope, rows_of

pytestmark = pytest.mark.django_db

TENANT = "tenant_01HZX4Q8ACME"
OTHER = "tenant_01HZX4Q8BETA"
EXPORTED_KINDS = {
    "scope",
    "memory",
    "memory_change",
    "session",
    "message",
    "tool_call",
    "feedback",
    "usage",
    "credential",
    "credential_change",
    "pending_action",
    "document",
    "document_version",
    "note",
}


@pytest.fixture
def two_tenants():
    fill_scope(TENANT, sessions=2)
    fill_scope(OTHER, sessions=3, label="Beta Bank")
    return rows_of(OTHER)


def parse(text: str) -> list[dict]:
    assert text.endswith("\n")
    lines = text.split("\n")[:-1]
    parsed = [json.loads(line) for line in lines]
    assert all(isinstance(row, dict) and isinstance(row.get("kind"), str) for row in parsed)
    return parsed


def export_text(scope_id: str, *args: str) -> str:
    out = io.StringIO()
    call_command("export_scope", scope_id, *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def kinds(rows: list[dict]) -> dict[str, int]:
    counted: dict[str, int] = {}
    for row in rows:
        counted[row["kind"]] = counted.get(row["kind"], 0) + 1
    return counted


# --- export ------------------------------------------------------------------------------------------------------


def test_the_export_has_every_kind_one_json_object_a_line(two_tenants):
    rows = parse(export_text(TENANT))
    assert kinds(rows) == {
        "scope": 1,
        "memory": 1,
        "memory_change": 1,
        "session": 2,
        "message": 4,
        "tool_call": 2,
        "feedback": 2,
        "usage": 2,
        "credential": 1,
        "credential_change": 1,
        "pending_action": 1,
        "document": 1,
        "document_version": 1,
        "note": 1,
    }
    assert rows[0] == {
        "kind": "scope",
        "scope_id": TENANT,
        "label": "Acme Hotels",
        "metadata": {"plan": "pro"},
        "budget_cost_micros": None,
        "first_seen_at": rows[0]["first_seen_at"],
        "last_seen_at": rows[0]["last_seen_at"],
    }
    session = Session.all_scopes.get(scope=TENANT, title="Budget 1")
    answer = Message.all_scopes.get(session=session, seq=1)
    by_kind = {row["kind"]: row for row in rows if row.get("session_id", str(session.pk)) == str(session.pk)}
    assert by_kind["session"]["id"] == str(session.pk) and by_kind["session"]["title"] == "Budget 1"
    assert by_kind["session"]["input_tokens"] == 120 and by_kind["session"]["tags"] == ["billing"]
    assert by_kind["message"] == {
        "kind": "message",
        "id": str(answer.public_id),
        "session_id": str(session.pk),
        "seq": 1,
        "role": "assistant",
        "text": "You spent $42.",
        "interrupted": False,
        "error_code": "",
        "context_dropped": 0,
        "created_at": answer.created_at.isoformat(),
    }
    assert by_kind["tool_call"] == {
        "kind": "tool_call",
        "message_id": str(answer.public_id),
        "session_id": str(session.pk),
        "position": 0,
        "tool_id": "toolu_1",
        "tool_name": "request",
        "parameters": {"path": "/transactions"},
        "status": "success",
        "result": {"total": 42},
        "duration_ms": 12,
    }
    assert by_kind["usage"]["message_id"] == str(answer.public_id) and by_kind["usage"]["cost_micros"] == 1501
    assert by_kind["usage"]["created_at"] == "2026-03-02T12:00:00+00:00"
    assert by_kind["document_version"] == {
        "kind": "document_version",
        "store": "preferences",
        "key": "currency",
        "version": 1,
        "data": {"currency": "USD"},
        "created_at": "2026-03-02T12:00:00+00:00",
    }
    assert {row.get("scope_id", TENANT) for row in rows} == {TENANT}
    assert OTHER not in json.dumps(rows) and "Beta Bank" not in json.dumps(rows)


def test_credentials_are_exported_as_key_names_never_values(two_tenants):
    text = export_text(TENANT)
    (credential,) = [row for row in parse(text) if row["kind"] == "credential"]
    assert set(credential) == {"kind", "key", "created_at", "updated_at", "updated_by"}
    assert credential["key"] == "FINANCE_TOKEN"
    encrypted = ScopedCredential.all_scopes.get(scope=TENANT).encrypted_value
    assert SECRET not in text and encrypted not in text and "very-secret" not in text


def test_the_export_is_audited_with_who_and_the_counts(two_tenants):
    text = export_text(TENANT)
    entry = ScopeAuditEntry.objects.get()
    assert (entry.action, entry.scope_id, entry.status) == ("export", TENANT, "completed")
    assert entry.actor.startswith("command:") and entry.finished_at >= entry.started_at
    assert entry.counts == kinds(parse(text))


def test_export_to_a_file_is_the_same_and_readable_by_its_owner_only(two_tenants, tmp_path):
    target = tmp_path / "acme.jsonl"
    err = io.StringIO()
    call_command("export_scope", TENANT, "--out", str(target), stdout=io.StringIO(), stderr=err)
    assert target.read_text() == export_text(TENANT)
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    assert str(target) in err.getvalue()
    assert sorted(os.listdir(tmp_path)) == ["acme.jsonl"], "no temporary file left"


def test_export_to_a_missing_directory_is_a_clear_error(two_tenants, tmp_path):
    with pytest.raises(CommandError, match="--out: cannot write .*x.jsonl"):
        call_command("export_scope", TENANT, "--out", str(tmp_path / "nowhere" / "x.jsonl"))
    assert not ScopeAuditEntry.objects.exists()


def test_a_reader_that_stops_early_leaves_a_failed_export_in_the_log(two_tenants, monkeypatch):
    monkeypatch.setattr("scoping.services.EXPORT_LINES_PER_CHUNK", 3)
    chunks = export_scope(scope_id=TENANT, actor="ops")
    assert not ScopeAuditEntry.objects.exists(), "nothing read yet, nothing recorded"
    first = next(chunks)
    chunks.close()  # type: ignore[attr-defined]
    entry = ScopeAuditEntry.objects.get()
    assert (entry.status, entry.detail) == ("failed", "Stopped before the end.")
    assert sum(entry.counts.values()) == first.count("\n") == 3


@pytest.mark.parametrize("scope_id", ["tenant-never-seen", "tenant_01HZX4Q8ACM", TENANT + " "])
def test_export_of_an_unknown_scope_is_an_error_and_records_nothing(two_tenants, scope_id):
    with pytest.raises(CommandError, match="Nothing of the scope .* is stored"):
        export_text(scope_id)
    assert not ScopeAuditEntry.objects.exists()


@pytest.mark.parametrize(("scope_id", "words"), [("a\nb", "printable"), ("x" * 256, "at most 255")])
def test_export_and_erase_of_a_bad_scope_id_name_it(scope_id, words):
    for command in (["export_scope", scope_id], ["erase_scope", scope_id, "--yes"]):
        with pytest.raises(CommandError, match=f"SCOPE: .*{words}"):
            call_command(*command)
    assert not ScopeAuditEntry.objects.exists()


def test_the_global_scope_exports_like_any_other(two_tenants):
    fill_scope("", sessions=1, label="Global")
    rows = parse(export_text(""))
    assert kinds(rows)["session"] == 1 and rows[0]["label"] == "Global"


def test_export_reads_in_a_fixed_number_of_queries_whatever_the_rows(monkeypatch):
    """Each kind is one query, its rows fetched in chunks from one cursor: no query per row or per chunk."""
    monkeypatch.setattr(scope_data, "EXPORT_CHUNK_ROWS", 2)
    fill_scope("small", sessions=1)
    fill_scope("large", sessions=7)
    counted = {}
    for scope_id in ("small", "large"):
        with CaptureQueriesContext(connection) as queries:
            text = "".join(export_scope(scope_id=scope_id, actor="ops"))
        counted[scope_id] = (len(queries), text.count("\n"))
    assert counted["large"][1] > counted["small"][1] + 20
    assert counted["large"][0] == counted["small"][0]


# --- erase -------------------------------------------------------------------------------------------------------


def test_erase_without_yes_refuses_and_changes_nothing(two_tenants):
    before = rows_of(TENANT)
    with pytest.raises(CommandError, match="cannot be undone; nothing was changed.*--yes"):
        call_command("erase_scope", TENANT)
    assert rows_of(TENANT) == before and not ScopeAuditEntry.objects.exists()


def test_erase_deletes_everything_of_the_scope_and_leaves_the_other_untouched(two_tenants):
    other_before = two_tenants
    usage_total = UsageRecord.all_scopes.aggregate(cost=Sum("cost_micros"), tokens=Sum("input_tokens"))
    expected = rows_of(TENANT) | {"usage": 2}  # rows_of counts the rollup's rows too; the erase, usage rows
    out = io.StringIO()
    call_command("erase_scope", TENANT, "--yes", stdout=out)
    printed = out.getvalue().splitlines()
    assert printed[:-1] == [
        f"{name}: {count}"
        for name, count in [
            ("note", 1),
            ("document_version", 1),
            ("document", 1),
            ("pending_action", 1),
            ("credential_change", 1),
            ("credential", 1),
            ("usage", 2),
            ("feedback", 2),
            ("message", 4),
            ("session_tag", 2),
            ("session_transcript", 2),
            ("session", 2),
            ("memory_change", 1),
            ("memory", 1),
            ("scope", 1),
        ]
    ]
    assert printed[-1].startswith(f"Erased scope {TENANT!r}: 23 rows; nothing of it is left.")
    assert erased_scope_id(TENANT) in printed[-1]
    assert {name: count for name, count in rows_of(TENANT).items() if count} == {}
    assert not Scope.objects.filter(scope_id=TENANT).exists()
    assert rows_of(OTHER) == other_before, "the other scope keeps every row"
    assert Scope.objects.get(scope_id=OTHER).label == "Beta Bank"
    entry = ScopeAuditEntry.objects.get()
    assert (entry.action, entry.scope_id, entry.status, entry.erased_as) == (
        "erase",
        TENANT,
        "completed",
        erased_scope_id(TENANT),
    )
    assert entry.counts == {name: count for name, count in expected.items() if count}
    assert UsageRecord.all_scopes.aggregate(cost=Sum("cost_micros"), tokens=Sum("input_tokens")) == usage_total


def test_the_usage_of_an_erased_scope_stays_for_billing_under_an_anonymous_id(two_tenants):
    erase_scope(scope_id=TENANT, actor="ops")
    kept = UsageRecord.all_scopes.filter(scope=erased_scope_id(TENANT))
    assert list(kept.values_list("session_id", "message_id", "cost_micros").order_by("cost_micros")) == [
        (None, None, 1500),
        (None, None, 1501),
    ]
    assert usage_rollup.differences(connection) == []
    assert UsageRollup.all_scopes.get(scope=erased_scope_id(TENANT)).cost_micros == 3001
    assert UsageScopeMonth.all_scopes.get(scope=erased_scope_id(TENANT)).calls == 2
    assert not UsageRollup.all_scopes.filter(scope=TENANT).exists()


def test_the_anonymous_id_is_keyed_by_the_server_secret():
    anonymous = erased_scope_id(TENANT)
    assert anonymous.startswith("erased:") and len(anonymous) == len("erased:") + 32
    assert TENANT not in anonymous and anonymous == erased_scope_id(TENANT) != erased_scope_id(OTHER)
    with override_settings(SECRET_KEY="another-server-secret-0123456789abcdef"):
        assert erased_scope_id(TENANT) != anonymous


def test_a_scope_erased_again_after_new_use_adds_to_the_same_billing_id(two_tenants):
    erase_scope(scope_id=TENANT, actor="ops")
    fill_scope(TENANT, sessions=1)
    erase_scope(scope_id=TENANT, actor="ops")
    assert UsageRecord.all_scopes.filter(scope=erased_scope_id(TENANT)).count() == 3
    assert ScopeAuditEntry.objects.filter(action="erase", status="completed").count() == 2


@pytest.mark.parametrize("scope_id", ["tenant-never-seen", "tenant_01HZX4Q8ACM", TENANT + " "])
def test_erase_of_an_unknown_scope_is_an_error_and_records_nothing(two_tenants, scope_id):
    before = rows_of(TENANT)
    with pytest.raises(CommandError, match="Nothing of the scope .* is stored"):
        call_command("erase_scope", scope_id, "--yes")
    assert not ScopeAuditEntry.objects.exists()
    assert rows_of(TENANT) == before and rows_of(OTHER) == two_tenants


def test_the_anonymous_usage_of_an_erased_scope_is_not_erased_again(two_tenants):
    erase_scope(scope_id=TENANT, actor="ops")
    with pytest.raises(CommandError, match="erased scopes' usage rows are kept for billing"):
        call_command("erase_scope", erased_scope_id(TENANT), "--yes")
    assert UsageRecord.all_scopes.filter(scope=erased_scope_id(TENANT)).count() == 2
    assert ScopeAuditEntry.objects.count() == 1


def test_erase_of_the_global_scope_is_refused(two_tenants):
    fill_scope("", sessions=1)
    before = rows_of("")
    with pytest.raises(CommandError, match="global scope .* cannot be erased"):
        call_command("erase_scope", "", "--yes")
    assert rows_of("") == before and not ScopeAuditEntry.objects.exists()


def test_a_scope_with_rows_but_no_scope_row_is_known_and_erased(two_tenants):
    Scope.objects.filter(scope_id=TENANT).delete()
    counts = erase_scope(scope_id=TENANT, actor="ops")
    assert counts["scope"] == 0 and counts["session"] == 2
    assert not any(rows_of(TENANT).values())


def test_rows_left_after_the_erase_fail_it_loudly_and_the_log_says_so(two_tenants, monkeypatch):
    """The final check: a kind that leaves rows (here one whose erase does nothing, as if the rows were written
    while it ran) makes the erase fail, naming the kind, with a failed entry in the audit log."""
    kinds_before = scope_data.scope_data_kinds()
    stuck = [
        scope_data.ScopeDataKind(kind.name, kind.model, kind.rows, erase_batch=lambda *args: 0)
        if kind.name == "memory"
        else kind
        for kind in kinds_before
    ]
    monkeypatch.setattr("scoping.services.scope_data_kinds", lambda: stuck)
    with pytest.raises(CommandError, match=r"still has rows after its erase \(memory: 1\)"):
        call_command("erase_scope", TENANT, "--yes", stdout=io.StringIO())
    entry = ScopeAuditEntry.objects.get()
    assert entry.status == "failed" and "memory: 1" in entry.detail
    assert entry.counts["session"] == 2 and entry.counts["memory"] == 0
    with pytest.raises(ScopeNotErased) as raised:
        erase_scope(scope_id=TENANT, actor="ops")
    assert raised.value.remaining == {"memory": 1}


def erase_statements(sessions: int, batch_rows: int) -> tuple[int, int]:
    """(SQL statements of the erase of a scope of `sessions` sessions, its batches)."""
    scope_id = f"tenant-{sessions}"
    fill_scope(scope_id, sessions=sessions)
    with CaptureQueriesContext(connection) as queries:
        counts = erase_scope(scope_id=scope_id, actor="ops", batch_rows=batch_rows)
    return len(queries), sum(count // batch_rows + 1 for count in counts.values())


def test_each_erase_batch_is_one_statement_whatever_the_rows():
    """Rows are never read into Python to be deleted: more rows, more batches, the same work per batch."""
    small_queries, small_batches = erase_statements(1, batch_rows=2)
    large_queries, large_batches = erase_statements(9, batch_rows=2)
    assert large_batches - small_batches >= 20
    # Per batch: its one statement, inside its own transaction (a savepoint here, in the test's transaction).
    assert large_queries - small_queries == 3 * (large_batches - small_batches)


# --- over HTTP: GET /api/scopes/<S>/export, DELETE /api/scopes/<S> ------------------------------------------------


def url(scope_id: str, export: bool = False) -> str:
    return "/api/scopes/" + quote(scope_id, safe="") + ("/export" if export else "")


@pytest.fixture
def manager():
    """`manager(scope_id=None)`: the Authorization header of a key created with --manage-scopes."""

    def header(scope_id: str | None = None) -> dict[str, str]:
        key = create_api_key(name="crm sync", scope_id=scope_id, manage_scopes=True)
        return {"Authorization": "Bearer " + key.raw_key}

    return header


def error(response) -> tuple[int, str, str]:
    body = response.json()["error"]
    return response.status_code, body["code"], body["message"]


def test_the_export_over_http_is_streamed_json_lines(client, manager, two_tenants):
    response = client.get(url(TENANT, export=True), headers=manager())
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "application/x-ndjson"
    text = b"".join(response.streaming_content).decode()
    assert text == export_text(TENANT)  # the same lines as the command
    assert set(kinds(parse(text))) == EXPORTED_KINDS and SECRET not in text
    http_entry = ScopeAuditEntry.objects.order_by("id").first()
    assert (http_entry.actor, http_entry.action, http_entry.status) == ("api-key:crm sync", "export", "completed")


@pytest.mark.parametrize("accept", ["application/x-ndjson", "application/json", "*/*"])
def test_the_export_answers_any_accept_that_admits_json_lines_or_json(client, manager, two_tenants, accept):
    """A client asking for the export's own type gets it, and an error in the JSON shape of every error."""
    headers = {**manager(), "Accept": accept}
    response = client.get(url(TENANT, export=True), headers=headers)
    assert response.status_code == 200 and response["Content-Type"] == "application/x-ndjson"
    assert b"".join(response.streaming_content).decode() == export_text(TENANT)
    missing = client.get(url("tenant-nobody", export=True), headers=headers)
    assert missing.status_code == 404
    assert missing["Content-Type"] == "application/json"
    assert missing.json()["error"]["code"] == "scope_not_found"


def test_the_erase_over_http_answers_the_counts_and_leaves_the_other_scope(client, manager, two_tenants):
    response = client.delete(url(TENANT), headers=manager())
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["ok"] is True
    assert body["deleted"] == {
        "note": 1,
        "document_version": 1,
        "document": 1,
        "pending_action": 1,
        "credential_change": 1,
        "credential": 1,
        "usage": 2,
        "feedback": 2,
        "message": 4,
        "session_tag": 2,
        "session_transcript": 2,
        "session": 2,
        "memory_change": 1,
        "memory": 1,
        "scope": 1,
    }
    assert not any(rows_of(TENANT).values())
    assert rows_of(OTHER) == two_tenants
    entry = ScopeAuditEntry.objects.get()
    assert (entry.actor, entry.action, entry.counts) == ("api-key:crm sync", "erase", body["deleted"])
    assert error(client.delete(url(TENANT), headers=manager()))[:2] == (404, "scope_not_found")


def test_a_key_restricted_to_the_scope_exports_and_erases_it(client, manager, two_tenants):
    headers = manager(TENANT)
    assert client.get(url(TENANT, export=True), headers=headers).status_code == 200
    assert client.delete(url(TENANT), headers=headers).status_code == 200
    assert rows_of(OTHER) == two_tenants


@pytest.mark.parametrize("method", ["export", "erase"])
@pytest.mark.parametrize(
    "caller",
    [
        "jwt_same_scope",
        "api_key",
        "credentials_key",
        "shared_write_key",
        "key_restricted_elsewhere",
        "manager_restricted_elsewhere",
        "staff_with_every_permission",
        "superuser",
        "open",
    ],
)
def test_every_other_caller_is_forbidden(client, two_tenants, jwt_header, django_user_model, caller, method):
    before = rows_of(TENANT)
    headers: dict[str, str] = {}
    settings_override = {}
    keys = {
        "api_key": {},
        "credentials_key": {"manage_credentials": True},
        "shared_write_key": {"shared_write": True},
        "key_restricted_elsewhere": {"scope_id": OTHER},
        "manager_restricted_elsewhere": {"scope_id": OTHER, "manage_scopes": True},
    }
    if caller == "jwt_same_scope":
        headers = jwt_header(TENANT)
    elif caller in keys:
        headers = {"Authorization": "Bearer " + create_api_key(name="other", **keys[caller]).raw_key}
    elif caller == "open":
        settings_override = {"AMODAL_AUTH": "open"}
    else:
        from django.contrib.auth.models import Permission

        user = django_user_model.objects.create_user(
            "ops", password="pw-123456", is_staff=True, is_superuser=caller == "superuser"
        )
        user.user_permissions.set(Permission.objects.all())
        client.force_login(user)
    with override_settings(**settings_override):
        if method == "export":
            response = client.get(url(TENANT, export=True), headers=headers)
        else:
            response = client.delete(url(TENANT), headers=headers)
    assert error(response)[:2] == (403, "forbidden"), response.content
    assert not response.streaming and "Acme" not in response.content.decode()
    assert rows_of(TENANT) == before and not ScopeAuditEntry.objects.exists()


@pytest.mark.parametrize("method", ["export", "erase"])
@pytest.mark.parametrize("scope_id", ["tenant-never-seen", "tenant_01HZX4Q8ACM", "tenant_01HZX4Q8ACME/x"])
def test_an_unknown_scope_is_404_and_records_nothing(client, manager, two_tenants, scope_id, method):
    headers = manager()
    if method == "export":
        response = client.get(url(scope_id, export=True), headers=headers)
    else:
        response = client.delete(url(scope_id), headers=headers)
    assert error(response)[:2] == (404, "scope_not_found")
    assert not ScopeAuditEntry.objects.exists() and rows_of(OTHER) == two_tenants


@pytest.mark.parametrize(
    ("path", "code", "words"),
    [
        pytest.param("/api/scopes/" + "x" * 256, "invalid_scope", "at most 255", id="too-long"),
        pytest.param("/api/scopes/a%0Ab", "invalid_scope", "printable", id="line-break"),
        pytest.param("/api/scopes/a%1Bb", "invalid_scope", "printable", id="escape"),
        pytest.param("/api/scopes/a%E2%80%AEb", "invalid_scope", "printable", id="bidi-override"),
        # A NUL anywhere in a URL is refused before any view (amodal_site.middleware), naming the path.
        pytest.param("/api/scopes/a%00b", "validation_error", "path: must not contain NUL", id="nul"),
        pytest.param("/api/scopes/%00", "validation_error", "path: must not contain NUL", id="only-nul"),
    ],
)
@pytest.mark.parametrize("method", ["export", "erase"])
def test_a_bad_scope_id_in_the_path_is_400(client, manager, two_tenants, path, code, words, method):
    headers = manager()
    response = (
        client.get(path + "/export", headers=headers) if method == "export" else client.delete(path, headers=headers)
    )
    assert error(response)[:2] == (400, code), response.content
    assert words in error(response)[2]
    assert not ScopeAuditEntry.objects.exists()


def test_the_global_scope_exports_over_http_but_is_not_erased(client, manager, two_tenants):
    fill_scope("", sessions=1, label="Global")
    headers = manager()
    assert client.get("/api/scopes//export", headers=headers).status_code == 200
    assert error(client.delete("/api/scopes/", headers=headers))[:2] == (400, "global_scope")
    assert rows_of("")["session"] == 1


def test_a_path_ending_in_export_is_always_the_export(client, manager, two_tenants):
    """The server sees the path decoded: a scope id ending in "/export" is not addressable over HTTP (README)."""
    headers = manager()
    assert client.get(url(TENANT + "/export"), headers=headers).status_code == 200  # the export of TENANT
    response = client.put(url(TENANT + "/export"), data="{}", content_type="application/json", headers=headers)
    assert error(response)[:2] == (405, "method_not_allowed")
    assert error(client.delete(url(TENANT, export=True), headers=headers))[:2] == (405, "method_not_allowed")
    assert rows_of(TENANT)["session"] == 2


@pytest.mark.django_db(transaction=True)
def test_under_asgi_the_export_is_an_async_stream(manager, monkeypatch):
    """Django would read a sync iterator whole before sending it under ASGI: the export gives an async one, whose
    chunks are made in the request's worker thread (core.streaming)."""
    fill_scope(TENANT, sessions=4)
    monkeypatch.setattr("scoping.services.EXPORT_LINES_PER_CHUNK", 5)
    headers = manager()
    client = AsyncClient()

    async def fetch() -> tuple[bool, list[bytes]]:
        response = await client.get(url(TENANT, export=True), headers=headers)
        assert response.status_code == 200
        return response.is_async, [chunk async for chunk in response.streaming_content]

    is_async, chunks = asyncio.run(fetch())
    assert is_async and len(chunks) > 3
    rows = parse(b"".join(chunks).decode())
    assert kinds(rows)["message"] == 8
    assert ScopeAuditEntry.objects.get().status == "completed"


def test_the_openapi_schema_documents_export_and_erase(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    export = schema["paths"]["/api/scopes/{scope_id}/export"]["get"]
    assert "application/x-ndjson" in export["responses"]["200"]["content"]
    assert {"400", "401", "403", "404"} <= set(export["responses"])
    erase = schema["paths"]["/api/scopes/{scope_id}"]["delete"]
    assert {"200", "400", "401", "403", "404"} <= set(erase["responses"])
    assert schema["components"]["schemas"]["ScopeErased"]["properties"]["deleted"]["type"] == "object"
