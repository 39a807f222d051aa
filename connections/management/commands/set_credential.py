import argparse
import getpass
import sys
from typing import TextIO

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from connections import services
from connections.models import validate_credential_key
from scoping.context import InvalidScope, validate_scope_id
from scoping.management import command_actor, describe_scope


class Command(BaseCommand):
    help = (
        "Set one credential of a scope, the value read from stdin (one line), or --delete it. "
        "Prints what changed, never the value."
    )
    stealth_options = ("stdin",)

    def add_arguments(self, parser):
        parser.add_argument("key", help="The credential key, as in scope:KEY.")
        parser.add_argument("--scope", required=True, help="The scope id ('' for the global scope).")
        parser.add_argument("--delete", action="store_true", help="Delete the credential instead of setting it.")
        # Anything more on the command line would be a value in argv (and in shell history and `ps`):
        # caught here so it is refused without argparse echoing it back.
        parser.add_argument("extra", nargs="*", help=argparse.SUPPRESS)

    def handle(self, *args, key: str, scope: str, delete: bool, extra: list[str], **options):
        if extra:
            raise CommandError(
                "The value is read from stdin, never from the command line: "
                "printf '%s\\n' \"$VALUE\" | manage.py set_credential --scope S KEY"
            )
        try:
            validate_scope_id(scope)
        except InvalidScope as exc:
            raise CommandError(f"--scope: {exc}")
        try:
            validate_credential_key(key)
        except ValidationError as exc:
            raise CommandError(f"KEY: {' '.join(exc.messages)}")
        where = describe_scope(scope)
        if delete:
            if not services.delete_credential(scope_id=scope, key=key, actor_name=command_actor()):
                raise CommandError(f"{where} has no credential {key}; nothing was deleted.")
            self.stdout.write(f"deleted credential {key} in {where}")
            return
        value = read_value(options.get("stdin") or sys.stdin)
        try:
            outcome = services.set_credential(scope_id=scope, key=key, value=value, actor_name=command_actor())
        except ValidationError as exc:
            raise CommandError(f"value: {' '.join(exc.messages)}")
        self.stdout.write(f"{outcome} credential {key} in {where}")


def read_value(stream: TextIO) -> str:
    """One line from stdin, without its line ending (asked for without echo on a terminal)."""
    if stream.isatty():
        line = getpass.getpass("Value (not echoed): ")
    else:
        line = stream.readline()
        if stream.read().strip():
            raise CommandError("stdin has more than one line; a credential value is a single line.")
        line = line.removesuffix("\n").removesuffix("\r")
    if not line:
        raise CommandError("No value on stdin: pipe the value in (one line); nothing was written.")
    return line
