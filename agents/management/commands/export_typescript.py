"""`python manage.py export_typescript [--check] [--dir DIR]`

Writes the TypeScript declarations of the API (agents.management.typescript) to `clients/typescript/`:
`events.d.ts` (every chat stream event, from the event schemas of core.event_schemas), `api.d.ts` (the
REST request and response shapes, from the OpenAPI schema's components) and `index.d.ts` (both). With
`--check` it writes nothing and fails if the committed files differ: run it (`make schemas`) after
changing an event record or an API serializer, commit the result.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand
from drf_spectacular.generators import SchemaGenerator

from agents.management import generated_files
from agents.management.generated_files import sync_files
from agents.management.typescript import HEADER, declarations, union
from core.event_schemas import EVENTS_PATH, openapi_components
from core.events import KNOWN_ERROR_CODES

INDEX = HEADER.format(source="the two files it re-exports") + 'export * from "./events";\nexport * from "./api";\n'


def events_declarations() -> str:
    codes = union(f'"{code}"' for code in KNOWN_ERROR_CODES)
    return "\n".join(
        [
            HEADER.format(source=f"the event JSON Schemas ({EVENTS_PATH})"),
            declarations(openapi_components()),
            '/** The `type` of every event. */\nexport type ChatEventType = ChatEvent["type"];\n',
            '/** Why a message ended. */\nexport type DoneReason = DoneEvent["reason"];\n',
            "/** The codes an `error` event is known to carry (a model provider may add others). */",
            f"export type KnownErrorCode = {codes};\n",
        ]
    )


def api_declarations(openapi: dict[str, Any]) -> str:
    events = openapi_components()
    schemas = {name: schema for name, schema in openapi["components"]["schemas"].items() if name not in events}
    source = "the OpenAPI schema's components (/api/schema/); the events are in events.d.ts"
    return "\n".join(
        [
            HEADER.format(source=source),
            declarations(schemas, ref_name=lambda name: f'import("./events").{name}' if name in events else name),
        ]
    )


def typescript_files() -> dict[str, str]:
    openapi = SchemaGenerator().get_schema(request=None, public=True)
    return {"events.d.ts": events_declarations(), "api.d.ts": api_declarations(openapi), "index.d.ts": INDEX}


class Command(BaseCommand):
    help = "Write (or with --check, verify) the TypeScript declarations under clients/typescript/."

    def add_arguments(self, parser):
        generated_files.add_arguments(parser, default_dir="clients/typescript", what="declarations")

    def handle(self, *args, check: bool, dir: str, **options):
        directory = Path(dir)
        present = {path.name for path in directory.glob("*.d.ts")}
        self.stdout.write(sync_files(directory, typescript_files(), present, check=check, command="export_typescript"))
