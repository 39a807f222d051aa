"""`python manage.py export_event_schemas [--check] [--dir DIR]`

Writes the JSON Schema of every chat stream event (core.event_schemas) to `docs/schemas/events/<type>
.schema.json`, and all of them as one to `docs/schemas/events.schema.json`. With `--check` it writes
nothing and fails if the committed files differ: run it after changing an event record in core.events,
commit the result (and regenerate the TypeScript types: `python manage.py export_typescript`).
"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand

from agents.management import generated_files
from agents.management.generated_files import sync_files
from core.event_schemas import EVENTS_FILE, schema_files


class Command(BaseCommand):
    help = "Write (or with --check, verify) the chat stream events' JSON Schemas under docs/schemas/."

    def add_arguments(self, parser):
        generated_files.add_arguments(parser, default_dir="docs/schemas", what="schemas")

    def handle(self, *args, check: bool, dir: str, **options):
        directory = Path(dir)
        present = {f"events/{path.name}" for path in (directory / "events").glob("*.schema.json")}
        if (directory / EVENTS_FILE).is_file():
            present.add(EVENTS_FILE)
        self.stdout.write(sync_files(directory, schema_files(), present, check=check, command="export_event_schemas"))
