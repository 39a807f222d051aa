from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.errors import ApiError
from scoping.context import InvalidScope
from scoping.management import command_actor, describe_scope
from scoping.services import erase_scope, erased_scope_id


class Command(BaseCommand):
    help = (
        "Delete everything of one scope, printing the rows erased per kind, then check that nothing of it is "
        "left. Its usage rows stay for billing totals under an anonymous id. Recorded in the scope audit log."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("scope", help="The scope id.")
        parser.add_argument("--yes", action="store_true", help="Really erase it (required: this cannot be undone).")

    def handle(self, *args: Any, scope: str, yes: bool, **options: Any) -> None:
        if not yes:
            raise CommandError(
                f"This deletes everything of {describe_scope(scope)} and cannot be undone; nothing was changed. "
                "Run it again with --yes to erase it (export_scope first to keep a copy)."
            )
        try:
            counts = erase_scope(
                scope_id=scope,
                actor=command_actor(),
                progress=lambda kind, count: self.stdout.write(f"{kind}: {count}"),
            )
        except InvalidScope as exc:
            raise CommandError(f"SCOPE: {exc}")
        except ApiError as exc:
            raise CommandError(exc.message)
        self.stdout.write(
            f"Erased {describe_scope(scope)}: {sum(counts.values())} rows; nothing of it is left. Its usage rows "
            f"stay for billing totals as scope {erased_scope_id(scope)!r}."
        )
