from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from scoping.context import InvalidScope
from scoping.services import create_api_key


class Command(BaseCommand):
    help = "Create an API key and print it once (only its digest is stored)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="What the key is for, e.g. 'billing backend'.")
        parser.add_argument("--scope", default=None, help="Restrict the key to this one scope.")
        parser.add_argument("--shared-write", action="store_true", help="Allow writes to shared stores.")
        parser.add_argument(
            "--manage-credentials",
            action="store_true",
            help="Allow setting, listing and deleting per-scope credentials (/api/credentials).",
        )
        parser.add_argument(
            "--manage-scopes",
            action="store_true",
            help="Allow reading and setting a scope's label and metadata (/api/scopes/<scope id>).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            new_key = create_api_key(
                name=options["name"],
                scope_id=options["scope"],
                shared_write=options["shared_write"],
                manage_credentials=options["manage_credentials"],
                manage_scopes=options["manage_scopes"],
            )
        except InvalidScope as exc:
            raise CommandError(str(exc))
        self.stderr.write(f"Created API key {new_key.api_key}. Store it now: it is not shown again.")
        self.stdout.write(new_key.raw_key)
