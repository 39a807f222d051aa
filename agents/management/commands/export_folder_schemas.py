"""`python manage.py export_folder_schemas [--check] [--dir DIR]`

Writes the JSON Schema of every agent folder file kind (core.folder_schemas) to `docs/schemas/<name>
.schema.json`. With `--check` it writes nothing and fails if the committed files differ from what the
models publish: run it after changing a folder model, commit the result.
"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand

from agents.management import generated_files
from agents.management.generated_files import sync_files
from core.event_schemas import EVENTS_FILE
from core.folder_schemas import folder_schemas, schema_text

SUFFIX = ".schema.json"


class Command(BaseCommand):
    help = "Write (or with --check, verify) the agent folder's JSON Schemas under docs/schemas/."

    def add_arguments(self, parser):
        generated_files.add_arguments(parser, default_dir="docs/schemas", what="schemas")

    def handle(self, *args, check: bool, dir: str, **options):
        directory = Path(dir)
        expected = {f"{name}{SUFFIX}": schema_text(schema) for name, schema in folder_schemas().items()}
        # The event stream's schema sits beside these; export_event_schemas owns it.
        present = {path.name for path in directory.glob(f"*{SUFFIX}") if path.name != EVENTS_FILE}
        self.stdout.write(sync_files(directory, expected, present, check=check, command="export_folder_schemas"))
