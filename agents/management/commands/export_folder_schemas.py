"""`python manage.py export_folder_schemas [--check] [--dir DIR]`

Writes the JSON Schema of every agent folder file kind (core.folder_schemas) to `docs/schemas/<name>
.schema.json`. With `--check` it writes nothing and fails if the committed files differ from what the
models publish: run it after changing a folder model, commit the result.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from core.folder_schemas import folder_schemas, schema_text

SUFFIX = ".schema.json"


class Command(BaseCommand):
    help = "Write (or with --check, verify) the agent folder's JSON Schemas under docs/schemas/."

    def add_arguments(self, parser):
        parser.add_argument("--check", action="store_true", help="Fail if the files are stale; write nothing.")
        parser.add_argument(
            "--dir",
            default=str(Path(settings.BASE_DIR) / "docs" / "schemas"),
            help="Where the schemas live (default docs/schemas).",
        )

    def handle(self, *args, check: bool, dir: str, **options):
        directory = Path(dir)
        expected = {f"{name}{SUFFIX}": schema_text(schema) for name, schema in folder_schemas().items()}
        present = {path.name for path in directory.glob(f"*{SUFFIX}")} if directory.is_dir() else set()
        changed = [name for name, text in expected.items() if not _has_text(directory / name, text)]
        extra = sorted(present - set(expected))
        if check:
            if changed or extra:
                problems = [*(f"{name} (stale)" for name in changed), *(f"{name} (unknown)" for name in extra)]
                listing = ", ".join(problems)
                raise CommandError(f"{directory}: {listing}. Run `python manage.py export_folder_schemas`.")
            self.stdout.write(f"{directory}: {len(expected)} schemas up to date.")
            return
        directory.mkdir(parents=True, exist_ok=True)
        for name in changed:
            (directory / name).write_text(expected[name], encoding="utf-8")
        for name in extra:
            (directory / name).unlink()
        self.stdout.write(f"{directory}: {len(changed)} written, {len(extra)} removed, {len(expected)} in all.")


def _has_text(path: Path, text: str) -> bool:
    return path.is_file() and path.read_text(encoding="utf-8") == text
