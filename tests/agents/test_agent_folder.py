"""The agent folder loader: every bad folder names the file and the field; good folders load."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from agents.agent_folder import knowledge_of, manifest_of
from connections.specs import connections_of, dev_scopes_of
from core.agent_folder import (
    AgentFolder,
    current_agent,
    folder_parts,
    load_agent_folder,
    load_current_agent_or_exit,
    set_current_agent,
)
from core.folder_problems import AgentFolderError, ConfigProblem
from stores.definitions import stores_of

EXAMPLE_FOLDER = Path(__file__).resolve().parents[2] / "examples" / "finance-agent"
UNSET = "AMODAL_TEST_VARIABLE_THAT_IS_NOT_SET"
TEXT = "AMODAL_TEST_VARIABLE_WITH_TEXT"  # set to "not a number" for the bad folders
DELETE = object()  # a change that removes a key or a whole file

GOOD_FILES: dict[str, Any] = {
    "amodal.json": {"name": "test-agent", "version": "0.1.0", "models": {"main": {"provider": "local"}}},
    "connections/api/spec.json": {
        "baseUrl": "https://api.example.com/v1",
        "auth": {"type": "bearer", "token": "scope:API_TOKEN"},
        "contextInjection": {"tenant_id": {"in": "header", "field": "X-Tenant-Id", "required": True}},
    },
    "connections/api/access.json": {"endpoints": {"POST /transfers": {"confirm": True, "reason": "Money."}}},
    "stores/notes.json": {
        "name": "notes",
        "entity": {
            "name": "Note",
            "key": "{id}",
            "schema": {
                "id": {"type": "string"},
                "amount": {"type": "number"},
                "kind": {"type": "enum", "values": ["a", "b"]},
            },
        },
    },
    "knowledge/guide.md": "# Guide\n\nBe brief.\n",
    ".amodal/scopes.json": {"tenant-a": {"credentials": {"API_TOKEN": "token-a"}}},
}


def write_folder(root: Path, files: dict[str, Any]) -> Path:
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content if isinstance(content, str) else json.dumps(content, indent=2))
    return root


def build_folder(root: Path, changes: list[tuple[str, tuple[str, ...], Any]] = ()) -> Path:
    """The good folder with `changes` applied: (file, key path inside its JSON or (), new value or DELETE)."""
    files = copy.deepcopy(GOOD_FILES)
    for relative, keys, value in changes:
        if not keys:
            files[relative] = value
            if value is DELETE:
                del files[relative]
            continue
        target = files[relative]
        for key in keys[:-1]:
            target = target.setdefault(key, {})
        if value is DELETE:
            del target[keys[-1]]
        else:
            target[keys[-1]] = value
    return write_folder(root, files)


def problems_of(folder: Path) -> list[ConfigProblem]:
    with pytest.raises(AgentFolderError) as raised:
        load_agent_folder(folder)
    return raised.value.problems


def assert_has_problem(problems: list[ConfigProblem], file: str, field: str, message_part: str) -> None:
    matching = [p for p in problems if p.file == file and p.field == field and message_part in p.message]
    assert matching, f"no problem {file}: {field}: ...{message_part}... in:\n" + "\n".join(map(str, problems))


BAD_FOLDERS = [
    pytest.param(
        [("amodal.json", (), '{"name": "x",\n  "version": }')],
        ("amodal.json", "", "invalid JSON at line 2, column 14: Expecting value"),
        id="bad-json",
    ),
    pytest.param(
        [("amodal.json", (), DELETE)],
        ("amodal.json", "", "is missing"),
        id="missing-amodal-json",
    ),
    pytest.param(
        [("amodal.json", ("name",), DELETE)],
        ("amodal.json", "name", "is required"),
        id="missing-name",
    ),
    pytest.param(
        [("amodal.json", ("models", "main", "provider"), "openai")],
        (
            "amodal.json",
            "models.main.provider",
            "unknown model provider 'openai'; expected one of anthropic, local",
        ),
        id="unknown-provider",
    ),
    pytest.param(
        [("amodal.json", ("agent", "maxTurns"), -3)],
        ("amodal.json", "agent.maxTurns", "expected a positive integer, got -3"),
        id="negative-max-turns",
    ),
    pytest.param(
        [("amodal.json", ("budgets",), {"period": "week", "scopeCostMicros": 5})],
        ("amodal.json", "budgets.period", "unknown budget period 'week'; expected one of day, month"),
        id="budget-period-not-day-or-month",
    ),
    pytest.param(
        [("amodal.json", ("budgets",), {"period": "day", "scopeCostMicros": 0})],
        ("amodal.json", "budgets.scopeCostMicros", "expected a positive integer, got 0"),
        id="budget-cap-zero",
    ),
    pytest.param(
        [("amodal.json", ("budgets",), {"period": "day", "scopeCostMicros": -5})],
        ("amodal.json", "budgets.scopeCostMicros", "expected a positive integer, got -5"),
        id="budget-cap-negative",
    ),
    pytest.param(
        [("amodal.json", ("budgets",), {"period": "day", "scopeCostMicros": 2.5})],
        ("amodal.json", "budgets.scopeCostMicros", "expected a positive integer, got 2.5"),
        id="budget-cap-not-an-integer",
    ),
    pytest.param(
        [("amodal.json", ("budgets",), {"period": "day", "scopeCostMicros": "100"})],
        ("amodal.json", "budgets.scopeCostMicros", "expected a positive integer, got '100'"),
        id="budget-cap-a-string",
    ),
    pytest.param(
        [("amodal.json", ("budgets",), {"period": "day", "scopeCostMicros": True})],
        ("amodal.json", "budgets.scopeCostMicros", "expected a positive integer, got true"),
        id="budget-cap-a-boolean",
    ),
    pytest.param(
        [("amodal.json", ("budgets",), {"period": "day"})],
        ("amodal.json", "budgets.scopeCostMicros", "is required (a positive integer)"),
        id="budget-cap-missing",
    ),
    pytest.param(
        [("amodal.json", ("budgets",), {"scopeCostMicros": 5})],
        ("amodal.json", "budgets.period", "is required"),
        id="budget-period-missing",
    ),
    pytest.param(
        [("amodal.json", ("budgets",), {"period": "day", "scopeCostMicros": 5, "reserveCostMicros": 0})],
        ("amodal.json", "budgets.reserveCostMicros", "expected a positive integer, got 0"),
        id="budget-reserve-zero",
    ),
    pytest.param(
        [("amodal.json", ("budgets",), {"period": "day", "scopeCostMicro": 5})],
        (
            "amodal.json",
            "budgets.scopeCostMicro",
            "unknown key; budgets has period, scopeCostMicros, reserveCostMicros",
        ),
        id="budget-unknown-key",
    ),
    pytest.param(
        [("amodal.json", ("budgets",), 5)],
        ("amodal.json", "budgets", "expected an object, got 5"),
        id="budgets-not-an-object",
    ),
    pytest.param(
        [("amodal.json", ("memory", "enabled"), "yes")],
        ("amodal.json", "memory.enabled", "expected true or false, got 'yes'"),
        id="memory-enabled-not-bool",
    ),
    pytest.param(
        [("amodal.json", ("version",), f"env:{UNSET}")],
        ("amodal.json", "version", f"environment variable {UNSET} is not set"),
        id="env-unset-in-amodal-json",
    ),
    pytest.param(
        [("stores/notes.json", ("name",), "note")],
        ("stores/notes.json", "name", "store name 'note' must equal its file name without .json ('notes')"),
        id="store-name-not-file-name",
    ),
    pytest.param(
        [("stores/notes.json", ("entity", "schema", "amount", "type"), "money")],
        (
            "stores/notes.json",
            "entity.schema.amount.type",
            "unknown field type 'money'; expected one of string, number, boolean, datetime, enum, array, object",
        ),
        id="unknown-field-type",
    ),
    pytest.param(
        [("stores/notes.json", ("entity", "schema", "tags"), {"type": "array", "item": {"type": "list"}})],
        ("stores/notes.json", "entity.schema.tags.item.type", "unknown field type 'list'"),
        id="unknown-nested-field-type",
    ),
    pytest.param(
        [("stores/notes.json", ("entity", "schema", "kind", "values"), DELETE)],
        (
            "stores/notes.json",
            "entity.schema.kind.values",
            "an enum needs a non-empty list of allowed values",
        ),
        id="enum-without-values",
    ),
    pytest.param(
        [("stores/notes.json", ("entity", "key"), "{tenant}:{id}")],
        (
            "stores/notes.json",
            "entity.key",
            "key template names field 'tenant' which is not in entity.schema",
        ),
        id="key-template-missing-field",
    ),
    pytest.param(
        [("stores/notes.json", ("entity", "key"), "all-notes")],
        ("stores/notes.json", "entity.key", "must name at least one field"),
        id="key-template-without-field",
    ),
    pytest.param(
        [
            ("stores/notes.json", ("entity", "schema", "amount", "min"), 5),
            ("stores/notes.json", ("entity", "schema", "amount", "max"), 1),
        ],
        ("stores/notes.json", "entity.schema.amount.max", "max (1) is less than min (5)"),
        id="min-above-max",
    ),
    pytest.param(
        [("stores/prefs.json", (), {**GOOD_FILES["stores/notes.json"], "name": "Notes"})],
        ("stores/prefs.json", "name", "store name 'Notes' is already declared by stores/notes.json"),
        id="duplicate-store-names",
    ),
    pytest.param(
        [("stores/notes.json", ("ttl",), 0), ("stores/notes.json", ("history", "versions"), -1)],
        ("stores/notes.json", "history.versions", "expected a non-negative integer, got -1"),
        id="negative-history-versions",
    ),
    pytest.param(
        [("stores/notes-batch.json", (), {**GOOD_FILES["stores/notes.json"], "name": "notes-batch"})],
        (
            "stores/notes.json",
            "name",
            "its tool name 'store_notes_batch' is also a tool of stores/notes-batch.json",
        ),
        id="store-tool-names-clash",
    ),
    pytest.param(
        [("connections/api/spec.json", ("auth", "type"), "oauth")],
        ("connections/api/spec.json", "auth.type", "unknown auth type 'oauth'"),
        id="unknown-auth-type",
    ),
    pytest.param(
        [("connections/api/spec.json", ("auth", "token"), DELETE)],
        ("connections/api/spec.json", "auth.token", "is required for auth type 'bearer'"),
        id="bearer-without-token",
    ),
    pytest.param(
        [("connections/api/spec.json", ("auth", "token"), f"env:{UNSET}")],
        ("connections/api/spec.json", "auth.token", f"environment variable {UNSET} is not set"),
        id="env-unset-in-connection-auth",
    ),
    pytest.param(
        [("connections/api/spec.json", ("contextInjection", "tenant_id", "in"), "cookie")],
        (
            "connections/api/spec.json",
            "contextInjection.tenant_id.in",
            "unknown location 'cookie'; expected one of header, query, path, body",
        ),
        id="context-injection-bad-location",
    ),
    pytest.param(
        [("connections/api/spec.json", ("baseUrl",), "api.example.com")],
        ("connections/api/spec.json", "baseUrl", "expected an absolute http(s) URL, got 'api.example.com'"),
        id="base-url-not-a-url",
    ),
    pytest.param(
        [("connections/api/spec.json", ("baseUrl",), "https://user:secret@api.example.com")],
        ("connections/api/spec.json", "baseUrl", "must not contain credentials"),
        id="base-url-with-credentials",
    ),
    pytest.param(
        [("connections/Bad_Name/spec.json", (), GOOD_FILES["connections/api/spec.json"])],
        ("connections/Bad_Name/spec.json", "", "must be lower-case kebab-case"),
        id="connection-name-not-kebab",
    ),
    pytest.param(
        [("connections/orphan/access.json", (), {"endpoints": {}})],
        ("connections/orphan/spec.json", "", "is missing"),
        id="connection-without-spec",
    ),
    pytest.param(
        [("connections/api/access.json", ("endpoints", "FETCH /transfers"), {"confirm": True})],
        ("connections/api/access.json", "endpoints.FETCH /transfers", "unknown HTTP method 'FETCH'"),
        id="access-bad-method",
    ),
    pytest.param(
        [("connections/api/access.json", ("endpoints", "POST /transfers", "confirm"), "sometimes")],
        (
            "connections/api/access.json",
            "endpoints.POST /transfers.confirm",
            'expected true, false or "never"',
        ),
        id="access-bad-confirm",
    ),
    pytest.param(
        [("amodal.json", ("models", "main"), DELETE)],
        ("amodal.json", "models.main", "is required ({provider, model})"),
        id="missing-main-model",
    ),
    pytest.param(
        [("amodal.json", ("models", "main", "provider"), "anthropic")],
        ("amodal.json", "models.main.model", "is required (a non-empty string)"),
        id="anthropic-without-model",
    ),
    pytest.param(
        [("amodal.json", ("agent", "toolTimeoutSeconds"), f"env:{TEXT}")],
        (
            "amodal.json",
            "agent.toolTimeoutSeconds",
            f"expected a positive number, got 'not a number' (from env:{TEXT})",
        ),
        id="env-text-not-a-number",
    ),
    pytest.param(
        [("stores/notes.json", ("entity", "schema"), {})],
        ("stores/notes.json", "entity.schema", "must declare at least one field"),
        id="empty-entity-schema",
    ),
    pytest.param(
        [("stores/notes.json", ("entity", "schema", "2nd"), {"type": "string"})],
        ("stores/notes.json", "entity.schema.2nd", "field name '2nd' must be letters, digits and '_'"),
        id="bad-field-name",
    ),
    pytest.param(
        [("stores/notes.json", ("entity", "schema", "amount", "colour"), "red")],
        (
            "stores/notes.json",
            "entity.schema.amount.colour",
            "unknown key; a field spec has type, nullable, values, item, fields, min, max, description",
        ),
        id="unknown-field-spec-key",
    ),
    pytest.param(
        [("stores/notes.json", ("entity", "schema", "amount", "values"), ["a"])],
        ("stores/notes.json", "entity.schema.amount.values", "applies only to enum fields, not number"),
        id="values-on-a-number",
    ),
    pytest.param(
        [("stores/notes.json", ("entity", "schema", "tags"), {"type": "array"})],
        ("stores/notes.json", "entity.schema.tags.item", "an array needs an item field spec"),
        id="array-without-item",
    ),
    pytest.param(
        [("stores/notes.json", ("entity", "schema", "kind", "values"), ["a", "a"])],
        ("stores/notes.json", "entity.schema.kind.values", "lists a value more than once"),
        id="enum-duplicate-values",
    ),
    pytest.param(
        [("stores/notes.json", ("entity", "schema", "name"), {"type": "string", "min": 1.5})],
        ("stores/notes.json", "entity.schema.name.min", "expected a non-negative integer, got 1.5"),
        id="fractional-string-length",
    ),
    pytest.param(
        [("stores/notes.json", ("entity", "schema", "id", "nullable"), True)],
        ("stores/notes.json", "entity.key", "key field 'id' must not be nullable"),
        id="nullable-key-field",
    ),
    pytest.param(
        [("connections/api/spec.json", ("auth",), f"env:{UNSET}")],
        ("connections/api/spec.json", "auth", f"environment variable {UNSET} is not set"),
        id="env-unset-for-an-object",
    ),
    pytest.param(
        [("connections/api/spec.json", ("auth", "header"), "X Token")],
        ("connections/api/spec.json", "auth.header", "'X Token' is not a valid HTTP header name"),
        id="bad-auth-header",
    ),
    pytest.param(
        [("connections/api/spec.json", ("auth", "token"), "scope:")],
        ("connections/api/spec.json", "auth.token", "'scope:' names no credential key (expected scope:KEY)"),
        id="scope-reference-without-key",
    ),
    pytest.param(
        [("connections/api/spec.json", ("contextInjection", "tenant_id", "field"), "X Tenant")],
        ("connections/api/spec.json", "contextInjection.tenant_id.field", "'X Tenant' is not a valid HTTP header name"),
        id="bad-injected-header",
    ),
    pytest.param(
        [("connections/api/access.json", ("endpoints", "post /transfers"), {"confirm": False})],
        ("connections/api/access.json", "endpoints.post /transfers", "duplicates the rule for POST /transfers"),
        id="access-duplicate-rule",
    ),
    pytest.param(
        [("connections/api/access.json", ("endpoints", "POST /transfers", "confirm"), DELETE)],
        ("connections/api/access.json", "endpoints.POST /transfers.confirm", 'is required (true, false or "never")'),
        id="access-without-confirm",
    ),
    pytest.param(
        [(".amodal/scopes.json", ("tenant-a", "credentials", "API_TOKEN"), 42)],
        (".amodal/scopes.json", "tenant-a.credentials.API_TOKEN", "expected a string, got 42"),
        id="scopes-json-credential-not-string",
    ),
    pytest.param(
        [(".amodal/scopes.json", (), ["tenant-a"])],
        (".amodal/scopes.json", "", "expected an object, got an array"),
        id="scopes-json-not-an-object",
    ),
    pytest.param(
        [(".amodal/scopes.json", ("bad\nscope",), {"credentials": {}})],
        (".amodal/scopes.json", "'bad\\nscope'", "invalid scope id"),
        id="scopes-json-invalid-scope-id",
    ),
]


@pytest.mark.parametrize(("changes", "expected"), BAD_FOLDERS)
def test_a_bad_folder_names_the_file_and_the_field(tmp_path, monkeypatch, changes, expected):
    monkeypatch.delenv(UNSET, raising=False)
    monkeypatch.setenv(TEXT, "not a number")
    folder = build_folder(tmp_path, changes)

    assert_has_problem(problems_of(folder), *expected)


def test_the_good_folder_loads(tmp_path):
    agent = load_agent_folder(build_folder(tmp_path))

    manifest = manifest_of(agent)
    assert manifest.name == "test-agent"
    assert manifest.main_model.provider == "local" and manifest.main_model.model == "local"
    assert manifest.require_scope is False
    assert manifest.memory.enabled is False and manifest.memory.max_entries == 50
    assert (manifest.limits.max_turns, manifest.limits.tool_timeout_seconds) == (15, 30)
    assert connections_of(agent)["api"].timeout_seconds == 30
    assert stores_of(agent)["notes"].key_fields == ("id",)
    assert dev_scopes_of(agent) == {"tenant-a": {"API_TOKEN": "token-a"}}


def test_every_problem_of_a_folder_is_reported_at_once(tmp_path):
    folder = build_folder(
        tmp_path,
        [
            ("amodal.json", ("name",), DELETE),
            ("stores/notes.json", ("entity", "schema", "amount", "type"), "money"),
            ("connections/api/spec.json", ("auth", "type"), "oauth"),
            (".amodal/scopes.json", ("tenant-a", "credentials"), "token-a"),
        ],
    )

    with pytest.raises(AgentFolderError) as raised:
        load_agent_folder(folder)

    problems = raised.value.problems
    assert [(p.file, p.field) for p in problems] == [
        ("amodal.json", "name"),
        ("connections/api/spec.json", "auth.type"),
        ("stores/notes.json", "entity.schema.amount.type"),
        (".amodal/scopes.json", "tenant-a.credentials"),
    ]
    lines = str(raised.value).splitlines()
    assert lines[0] == f"The agent folder {folder.resolve()} has 4 problems:"
    assert lines[1:] == [f"  {problem}" for problem in problems]


def test_each_app_registers_its_part_in_the_order_of_the_folder_layout():
    assert [part.name for part in folder_parts()] == ["manifest", "connections", "stores", "knowledge", "dev_scopes"]


def test_a_part_no_app_registered_is_named(tmp_path):
    agent = AgentFolder(path=tmp_path, deploy_id="0" * 12, parts={})

    with pytest.raises(LookupError, match="no 'stores' part"):
        stores_of(agent)


def test_a_problem_reads_file_field_message():
    problem = ConfigProblem("stores/preferences.json", "entity.schema.amount.type", "unknown field type 'money'")

    assert str(problem) == "stores/preferences.json: entity.schema.amount.type: unknown field type 'money'"
    assert str(ConfigProblem("amodal.json", "", "is missing")) == "amodal.json: is missing"


def test_a_missing_folder_is_a_problem(tmp_path):
    problems = problems_of(tmp_path / "nowhere")

    assert len(problems) == 1 and "does not exist" in str(problems[0])


def test_env_references_are_resolved_at_load_time_except_in_auth(tmp_path, monkeypatch):
    monkeypatch.setenv("AMODAL_TEST_PROMPT", "Be kind.")
    monkeypatch.setenv("AMODAL_TEST_TIMEOUT", "12.5")
    monkeypatch.setenv("AMODAL_TEST_TOKEN", "secret-token")
    folder = build_folder(
        tmp_path,
        [
            ("amodal.json", ("basePrompt",), "env:AMODAL_TEST_PROMPT"),
            ("connections/api/spec.json", ("timeoutSeconds",), "env:AMODAL_TEST_TIMEOUT"),
            ("connections/api/spec.json", ("auth", "token"), "env:AMODAL_TEST_TOKEN"),
        ],
    )

    agent = load_agent_folder(folder)

    assert manifest_of(agent).base_prompt == "Be kind."
    assert connections_of(agent)["api"].timeout_seconds == 12.5
    assert connections_of(agent)["api"].auth.token == "env:AMODAL_TEST_TOKEN"  # resolved per call, later


def test_the_example_agent_loads(monkeypatch):
    monkeypatch.setenv("FINANCE_API_URL", "http://127.0.0.1:8000/demo/finance-api/")

    agent = load_agent_folder(EXAMPLE_FOLDER)

    manifest = manifest_of(agent)
    assert (manifest.name, manifest.version) == ("finance-agent", "1.0.0")
    assert manifest.require_scope is True
    assert manifest.memory.enabled is True
    assert manifest.main_model.provider == "local"
    api = connections_of(agent)["app-api"]
    assert list(connections_of(agent)) == ["app-api"]
    assert api.base_url == "http://127.0.0.1:8000/demo/finance-api"
    assert (api.auth.type, api.auth.token) == ("bearer", "scope:FINANCE_API_TOKEN")
    assert [(r.key, r.location, r.field, r.required) for r in api.context_injection] == [
        ("household_id", "header", "X-Household-Id", True)
    ]
    assert api.timeout_seconds == 10
    assert {(r.method, r.path_pattern, r.confirm) for r in api.access_rules} == {
        ("POST", "/transfers", True),
        ("DELETE", "/accounts/{id}", "never"),
    }
    assert set(stores_of(agent)) == {"preferences", "categories"}
    preferences, categories = stores_of(agent)["preferences"], stores_of(agent)["categories"]
    assert (preferences.shared, preferences.history_versions, preferences.tool_name) == (
        False,
        5,
        "store_preferences",
    )
    assert categories.shared is True
    assert categories.schema["kind"].values == ("income", "expense", "transfer")
    assert categories.schema["budget_hint"].nullable is True and categories.schema["budget_hint"].min == 0
    assert [doc.name for doc in knowledge_of(agent)] == ["budgeting", "tools"]
    assert set(dev_scopes_of(agent)) == {"household-garcia", "household-okafor"}
    assert dev_scopes_of(agent)["household-garcia"] == {"FINANCE_API_TOKEN": "demo-token-garcia-7Qx2"}
    assert re.fullmatch(r"[0-9a-f]{12}", agent.deploy_id)


def test_the_deploy_id_is_stable_for_identical_content(tmp_path):
    first = load_agent_folder(build_folder(tmp_path / "one")).deploy_id
    second = load_agent_folder(build_folder(tmp_path / "two")).deploy_id

    assert re.fullmatch(r"[0-9a-f]{12}", first)
    assert first == second


def test_the_deploy_id_changes_when_a_file_changes(tmp_path):
    before = load_agent_folder(build_folder(tmp_path / "one")).deploy_id
    after = load_agent_folder(
        build_folder(tmp_path / "two", [("knowledge/guide.md", (), "# Guide\n\nBe very brief.\n")])
    ).deploy_id

    assert before != after


def test_the_deploy_id_ignores_dev_credentials_and_junk(tmp_path):
    folder = build_folder(tmp_path)
    before = load_agent_folder(folder).deploy_id
    write_folder(
        folder,
        {
            ".amodal/scopes.json": {"tenant-b": {"credentials": {"API_TOKEN": "token-b"}}},
            ".DS_Store": "junk",
            "__pycache__/x.pyc": "junk",
        },
    )

    assert load_agent_folder(folder).deploy_id == before


@pytest.fixture
def fresh_current_agent():
    set_current_agent(None)
    yield
    set_current_agent(None)


def test_current_agent_loads_once_and_can_be_overridden(tmp_path, settings, fresh_current_agent):
    settings.AMODAL_AGENT_DIR = build_folder(tmp_path / "one")
    agent = current_agent()

    assert current_agent() is agent
    other = load_agent_folder(build_folder(tmp_path / "two"))
    set_current_agent(other)
    assert current_agent() is other


def test_a_bad_folder_stops_start_up_with_a_clean_message(tmp_path, settings, capsys, fresh_current_agent):
    settings.AMODAL_AGENT_DIR = build_folder(tmp_path, [("amodal.json", ("name",), DELETE)])

    with pytest.raises(SystemExit) as raised:
        load_current_agent_or_exit()

    assert raised.value.code == 2
    stderr = capsys.readouterr().err
    assert "has 1 problem:" in stderr
    assert "amodal.json: name: is required" in stderr
    assert "Traceback" not in stderr


def test_budgets_load_with_env_references_and_are_absent_by_default(tmp_path, monkeypatch):
    from agents.agent_folder import Budgets

    monkeypatch.setenv(TEXT, "25000000")
    budgets = {"period": "month", "scopeCostMicros": f"env:{TEXT}", "reserveCostMicros": 50_000}
    folder = build_folder(tmp_path / "with", [("amodal.json", ("budgets",), budgets)])
    assert manifest_of(load_agent_folder(folder)).budgets == Budgets("month", 25_000_000, 50_000)
    assert manifest_of(load_agent_folder(build_folder(tmp_path / "without"))).budgets is None
