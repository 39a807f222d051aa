import json
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from connections import services
from connections.models import validate_credential_key, validate_credential_value
from scoping.context import InvalidScope, validate_scope_id
from scoping.management import command_actor, describe_scope

MAX_PROBLEMS_SHOWN = 20


class Command(BaseCommand):
    help = (
        'Load per-scope credentials from a file shaped like .amodal/scopes.json ({"<scope>": {"credentials": '
        '{"KEY": "value"}}}): the whole file is checked first, then written in one transaction. Prints what '
        "changed per scope and key, never a value."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="The JSON file to load.")

    def handle(self, *args, file: str, **options):
        entries = read_credentials_file(Path(file))
        actor = command_actor()
        with transaction.atomic():
            outcomes = [
                (scope_id, key, services.set_credential(scope_id=scope_id, key=key, value=value, actor_name=actor))
                for scope_id, key, value in entries
            ]
        for scope_id, key, outcome in outcomes:
            self.stdout.write(f"{outcome} credential {key} in {describe_scope(scope_id)}")
        if not outcomes:
            self.stdout.write(f"{file} holds no credentials; nothing was written.")


def read_credentials_file(path: Path) -> list[tuple[str, str, str]]:
    """(scope id, key, value) for every credential of the file; CommandError listing every problem, each
    naming its place in the file (never a value), when anything is wrong."""
    data = read_json(path)
    if not isinstance(data, dict):
        raise CommandError(
            f'{path}: expected an object of scope ids, like {{"<scope>": {{"credentials": '
            f'{{"KEY": "value"}}}}}}, got {kind(data)}.'
        )
    problems: list[str] = []
    entries: list[tuple[str, str, str]] = []
    for scope_id, entry in data.items():
        entries += scope_credentials(scope_id, entry, problems)
    if problems:
        shown = problems[:MAX_PROBLEMS_SHOWN]
        if len(problems) > len(shown):
            shown.append(f"... and {len(problems) - len(shown)} more problems")
        raise CommandError(f"{path}: nothing was written:\n" + "\n".join(f"  {problem}" for problem in shown))
    return entries


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CommandError(f"{path}: cannot be read ({exc.strerror or exc}).")
    except UnicodeDecodeError:
        raise CommandError(f"{path}: is not UTF-8 text.")
    except json.JSONDecodeError as exc:
        raise CommandError(f"{path}: is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}).")


def scope_credentials(scope_id: str, entry: Any, problems: list[str]) -> list[tuple[str, str, str]]:
    """The valid credentials of one scope's entry; every problem is added to `problems`."""
    place = f"[{json.dumps(scope_id)}]"
    try:
        validate_scope_id(scope_id)
    except InvalidScope as exc:
        problems.append(f"{place}: invalid scope id: {exc}")
    credentials = entry.get("credentials") if isinstance(entry, dict) else None
    if not isinstance(credentials, dict):
        what = f"got {kind(entry)}" if not isinstance(entry, dict) else f'its "credentials" is {kind(credentials)}'
        problems.append(f'{place}: expected {{"credentials": {{"KEY": "value", ...}}}}, {what}.')
        return []
    entries = []
    for key, value in credentials.items():
        try:
            validate_credential_key(key)
            validate_credential_value(value)
        except ValidationError as exc:
            problems.append(f'{place}["credentials"][{json.dumps(key)}]: {" ".join(exc.messages)}')
            continue
        entries.append((scope_id, key, value))
    return entries


def kind(value: Any) -> str:
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "an object",
    }.get(type(value), type(value).__name__)
