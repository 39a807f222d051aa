"""Production provisioning from the command line (SPEC §4): `set_credential` (value from stdin, never argv)
and `import_scope_credentials` (a scopes.json-shaped file, checked whole, then written in one
transaction). Both print what changed, never a value, and audit every change as `command:<os user>`."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from connections import services
from connections.models import CredentialChange, ScopedCredential
from tests.connections.test_secret_hygiene import all_logs, log_text, raw_table_text  # noqa: F401 (a fixture)

pytestmark = pytest.mark.django_db

SECRET = "prov-Secret-value-8d7c6b"
OTHER_SECRET = "prov-Other-value-1a2b3c"


class NoReads(io.StringIO):
    def readline(self, *args):
        raise AssertionError("stdin was read")

    read = readline


def set_credential(*args: str, stdin: str | io.StringIO = "") -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    stream = stdin if isinstance(stdin, io.StringIO) else io.StringIO(stdin)
    call_command("set_credential", *args, stdin=stream, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def stored() -> dict[tuple[str, str], str]:
    return {(c.scope, c.key): c.reveal() for c in ScopedCredential.all_scopes.all()}


def changes() -> list[tuple[str, str, str]]:
    return [(c.action, c.scope, c.key) for c in CredentialChange.objects.order_by("at", "pk")]


def put(scope_id: str, key: str, value: str) -> None:
    services.set_credential(scope_id=scope_id, key=key, value=value, actor_name="test-setup")


# --- set_credential -----------------------------------------------------------------------------------------


def test_set_credential_creates_replaces_and_reports_unchanged(all_logs):  # noqa: F811
    out, err = set_credential("--scope", "tenant-a", "API_TOKEN", stdin=SECRET + "\n")
    assert out == "created credential API_TOKEN in scope 'tenant-a'\n"
    out2, _ = set_credential("--scope", "tenant-a", "API_TOKEN", stdin=OTHER_SECRET + "\r\n")
    assert out2 == "replaced credential API_TOKEN in scope 'tenant-a'\n"
    out3, _ = set_credential("--scope", "tenant-a", "API_TOKEN", stdin=OTHER_SECRET)
    assert out3 == "unchanged credential API_TOKEN in scope 'tenant-a'\n"
    assert stored() == {("tenant-a", "API_TOKEN"): OTHER_SECRET}
    assert changes() == [("created", "tenant-a", "API_TOKEN"), ("replaced", "tenant-a", "API_TOKEN")]
    for change in CredentialChange.objects.all():
        assert change.actor_name.startswith("command:") and len(change.actor_name) > len("command:")
        assert change.actor is None
    credential = ScopedCredential.all_scopes.get()
    assert credential.updated_by.startswith("command:")
    printed = out + err + out2 + out3 + log_text(all_logs)
    assert SECRET not in printed and OTHER_SECRET not in printed
    assert SECRET not in raw_table_text() and OTHER_SECRET not in raw_table_text()


def test_set_credential_reads_the_process_stdin(monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(SECRET + "\n"))
    out = io.StringIO()
    call_command("set_credential", "--scope", "", "API_TOKEN", stdout=out)
    assert out.getvalue() == "created credential API_TOKEN in the global scope\n"
    assert stored() == {("", "API_TOKEN"): SECRET}


@pytest.mark.parametrize(
    ("stdin", "message"),
    [
        ("", "No value on stdin"),
        ("\n", "No value on stdin"),
        ("\r\n", "No value on stdin"),
        (f"{SECRET}\nsecond line\n", "more than one line"),
        (f"bad\x00{SECRET}\n", "NUL"),
        ("x" * 10_001 + "\n", "at most 10000 characters"),
    ],
)
def test_set_credential_refuses_a_bad_stdin_value_and_writes_nothing(stdin, message):
    with pytest.raises(CommandError, match=message) as error:
        set_credential("--scope", "tenant-a", "API_TOKEN", stdin=stdin)
    assert SECRET not in str(error.value)
    assert stored() == {} and changes() == []


def test_a_value_on_the_command_line_is_refused_without_echoing_it():
    with pytest.raises(CommandError, match="never from the command line") as error:
        set_credential("--scope", "tenant-a", "API_TOKEN", SECRET, stdin=OTHER_SECRET + "\n")
    assert SECRET not in str(error.value) and OTHER_SECRET not in str(error.value)
    assert stored() == {} and changes() == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scope", "bad\x01scope", "API_TOKEN"], "--scope: scope_id must contain only printable characters"),
        (["--scope", "s" * 256, "API_TOKEN"], "--scope: scope_id must be at most 255"),
        (["--scope", "tenant-a", "1TOKEN"], "KEY: A credential key is"),
        (["--scope", "tenant-a", "API TOKEN"], "KEY: A credential key is"),
        (["--scope", "tenant-a", "API_TOKEN\n"], "KEY: A credential key is"),
        (["--scope", "tenant-a", "scope:API_TOKEN"], "KEY: A credential key is"),
        (["--scope", "tenant-a", "K" * 101], "KEY: A credential key is"),
        (["--scope", "tenant-a", ""], "KEY: A credential key is"),
    ],
)
def test_set_credential_refuses_a_bad_scope_or_key_and_writes_nothing(args, message):
    with pytest.raises(CommandError, match=message):
        set_credential(*args, stdin=SECRET + "\n")
    assert stored() == {} and changes() == []


def test_the_scope_is_required():
    with pytest.raises(CommandError, match="--scope"):
        set_credential("API_TOKEN", stdin=SECRET + "\n")
    assert stored() == {}


def test_delete_removes_the_credential_without_reading_stdin():
    put("tenant-a", "API_TOKEN", SECRET)
    put("tenant-b", "API_TOKEN", OTHER_SECRET)
    out, _ = set_credential("--scope", "tenant-a", "--delete", "API_TOKEN", stdin=NoReads())
    assert out == "deleted credential API_TOKEN in scope 'tenant-a'\n"
    assert stored() == {("tenant-b", "API_TOKEN"): OTHER_SECRET}
    deleted = CredentialChange.objects.get(action="deleted")
    assert (deleted.scope, deleted.key) == ("tenant-a", "API_TOKEN")
    assert deleted.actor_name.startswith("command:")


def test_deleting_a_missing_credential_is_an_error():
    put("tenant-b", "API_TOKEN", OTHER_SECRET)
    with pytest.raises(CommandError, match="scope 'tenant-a' has no credential API_TOKEN"):
        set_credential("--scope", "tenant-a", "--delete", "API_TOKEN", stdin=NoReads())
    assert len(stored()) == 1 and [action for action, *_ in changes()] == ["created"]


# --- import_scope_credentials ---------------------------------------------------------------------------------


def import_file(path: Path) -> str:
    out = io.StringIO()
    call_command("import_scope_credentials", str(path), stdout=out, stderr=io.StringIO())
    return out.getvalue()


def write(tmp_path: Path, content: object) -> Path:
    path = tmp_path / "scopes.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def test_import_writes_every_credential_and_reports_each(tmp_path, all_logs):  # noqa: F811
    put("tenant-a", "SAME", "same-value-123456")
    put("tenant-a", "ROTATED", "old-value-123456")
    CredentialChange.objects.all().delete()
    path = write(
        tmp_path,
        {
            "tenant-a": {"credentials": {"SAME": "same-value-123456", "ROTATED": SECRET, "NEW": OTHER_SECRET}},
            "": {"credentials": {"GLOBAL_KEY": "global-value-77aa"}},
            "tenant-b": {"credentials": {}},
        },
    )
    out = import_file(path)
    assert out.splitlines() == [
        "unchanged credential SAME in scope 'tenant-a'",
        "replaced credential ROTATED in scope 'tenant-a'",
        "created credential NEW in scope 'tenant-a'",
        "created credential GLOBAL_KEY in the global scope",
    ]
    assert stored() == {
        ("tenant-a", "SAME"): "same-value-123456",
        ("tenant-a", "ROTATED"): SECRET,
        ("tenant-a", "NEW"): OTHER_SECRET,
        ("", "GLOBAL_KEY"): "global-value-77aa",
    }
    assert changes() == [
        ("replaced", "tenant-a", "ROTATED"),
        ("created", "tenant-a", "NEW"),
        ("created", "", "GLOBAL_KEY"),
    ]
    assert all(change.actor_name.startswith("command:") for change in CredentialChange.objects.all())
    for secret in (SECRET, OTHER_SECRET, "global-value-77aa", "same-value-123456"):
        assert secret not in out and secret not in log_text(all_logs)


BAD_FILES = [
    ("{not json", "is not valid JSON"),
    (b"\xff\xfe{}", "is not UTF-8"),
    ([SECRET], "expected an object of scope ids"),
    ({"tenant-a": SECRET}, '["tenant-a"]: expected {"credentials"'),
    ({"tenant-a": {}}, '["tenant-a"]: expected {"credentials"'),
    ({"tenant-a": {"credential": {"K": SECRET}}}, '["tenant-a"]: expected {"credentials"'),
    ({"tenant-a": {"credentials": [SECRET]}}, 'its "credentials" is an array'),
    ({"tenant-a": {"credentials": SECRET}}, 'its "credentials" is a string'),
    (
        {"tenant-a": {"credentials": {"K": 12345678}}},
        '["tenant-a"]["credentials"]["K"]: A credential value must be a string',
    ),
    ({"tenant-a": {"credentials": {"K": None}}}, "must be a string"),
    ({"tenant-a": {"credentials": {"K": {"v": SECRET}}}}, "must be a string"),
    (
        {"tenant-a": {"credentials": {"K": ""}}},
        '["tenant-a"]["credentials"]["K"]: A credential value must not be empty',
    ),
    ({"tenant-a": {"credentials": {"K": f"a\x00{SECRET}"}}}, "NUL"),
    ({"tenant-a": {"credentials": {"bad key": SECRET}}}, '["tenant-a"]["credentials"]["bad key"]: A credential key'),
    ({"bad\x01scope": {"credentials": {"K": SECRET}}}, '["bad\\u0001scope"]: invalid scope id'),
    ({"s" * 256: {"credentials": {"K": SECRET}}}, "invalid scope id: scope_id must be at most 255"),
]


@pytest.mark.parametrize(("content", "message"), BAD_FILES)
def test_a_bad_file_is_refused_whole_naming_the_place_and_never_a_value(tmp_path, content, message):
    put("tenant-a", "EXISTING", "existing-value-1234")
    before = (stored(), changes())
    good = {"tenant-z": {"credentials": {"GOOD": "good-value-5678"}}}
    if isinstance(content, dict):
        content = {**good, **content}  # a valid entry next to the bad one is not written either
    path = write(tmp_path, content)
    with pytest.raises(CommandError) as error:
        import_file(path)
    text = str(error.value)
    assert message in text
    assert str(path) in text
    assert SECRET not in text and "good-value-5678" not in text
    assert (stored(), changes()) == before


def test_every_problem_of_a_file_is_listed(tmp_path):
    path = write(tmp_path, {"a": {"credentials": {"1": "x"}}, "b": 5, "c": {"credentials": {"K": 1}}})
    with pytest.raises(CommandError) as error:
        import_file(path)
    assert [line.strip().split(":")[0] for line in str(error.value).splitlines()[1:]] == [
        '["a"]["credentials"]["1"]',
        '["b"]',
        '["c"]["credentials"]["K"]',
    ]


def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(CommandError, match="cannot be read"):
        import_file(tmp_path / "nope.json")


def test_the_import_is_one_transaction(tmp_path, monkeypatch):
    path = write(tmp_path, {"tenant-a": {"credentials": {"ONE": SECRET, "TWO": OTHER_SECRET}}})
    real = services.set_credential

    def fail_on_two(**kwargs):
        if kwargs["key"] == "TWO":
            raise RuntimeError("the database went away")
        return real(**kwargs)

    monkeypatch.setattr(services, "set_credential", fail_on_two)
    with pytest.raises(RuntimeError):
        import_file(path)
    assert stored() == {} and changes() == []
