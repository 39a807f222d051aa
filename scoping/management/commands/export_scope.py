import os
import tempfile
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.errors import ApiError
from scoping.context import InvalidScope
from scoping.management import command_actor, describe_scope
from scoping.services import export_scope


class Command(BaseCommand):
    help = (
        "Write everything of one scope as JSON Lines (one object a line, each with a `kind`), streamed from the "
        "database; credentials as key names only. Recorded in the scope audit log."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("scope", help="The scope id ('' for the global scope).")
        parser.add_argument(
            "--out", default=None, help="Write to this file (only once the export is complete); default: stdout."
        )

    def handle(self, *args: Any, scope: str, out: str | None, **options: Any) -> None:
        try:
            chunks = export_scope(scope_id=scope, actor=command_actor())
        except InvalidScope as exc:
            raise CommandError(f"SCOPE: {exc}")
        except ApiError as exc:
            raise CommandError(exc.message)
        if out is None:
            for chunk in chunks:
                self.stdout.write(chunk, ending="")
            return
        target = Path(out)
        # A partial file never takes the name: the export goes to a temporary file beside it (readable by its
        # owner only, as the result stays), renamed once complete.
        try:
            with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=target.parent, delete=False) as file:
                try:
                    for chunk in chunks:
                        file.write(chunk)
                except BaseException:
                    os.unlink(file.name)
                    raise
            os.replace(file.name, target)
        except OSError as exc:
            raise CommandError(f"--out: cannot write {target}: {exc.strerror or exc}")
        self.stderr.write(f"Exported {describe_scope(scope)} to {target}.")
