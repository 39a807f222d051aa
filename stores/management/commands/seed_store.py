import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from core.agent_folder import current_agent
from scoping.context import GLOBAL_SCOPE, InvalidScope, scope
from scoping.models import display_scope
from stores.definitions import stores_of
from stores.documents import DocumentInvalid
from stores.services import put_documents


class Command(BaseCommand):
    help = (
        'Write the documents of a JSON file (an array, or {"documents": [...]}) into a store, as an '
        "operator: a shared store is written in the global partition, a scoped store in --scope. "
        "Documents are upserted by key; unchanged ones are left alone, so running it again is harmless. "
        "All or nothing: one invalid document and nothing is written."
    )

    def add_arguments(self, parser):
        parser.add_argument("store", help="The store name, e.g. categories.")
        parser.add_argument("file", help='A JSON file: an array of documents, or {"documents": [...]}.')
        parser.add_argument(
            "--scope",
            default=None,
            help="The scope to write a (non-shared) store's documents in. Not for shared stores.",
        )

    def handle(self, *args, **options):
        name = options["store"]
        definition = stores_of(current_agent()).get(name)
        if definition is None:
            known = ", ".join(stores_of(current_agent())) or "none"
            raise CommandError(f"No store is named {name!r} (stores: {known}).")
        documents = self.read_documents(Path(options["file"]))
        scope_id = options["scope"]
        if definition.shared:
            if scope_id not in (None, GLOBAL_SCOPE):
                raise CommandError(f"{name} is a shared store: it lives in the global partition, not in a scope.")
            scope_id = GLOBAL_SCOPE
        elif scope_id is None:
            raise CommandError(f"{name} is partitioned by scope: say which with --scope SCOPE_ID.")
        try:
            with scope(scope_id), transaction.atomic():
                results = put_documents(
                    definition=definition,
                    documents=documents,
                    shared_write=True,
                    skip_unchanged=True,
                    max_batch=max(len(documents), 1),
                )
        except InvalidScope as exc:
            raise CommandError(str(exc))
        except DocumentInvalid as exc:
            raise CommandError(f"Nothing was written: {exc}")
        created = sum(1 for result in results if result.created)
        unchanged = sum(1 for result in results if not result.changed)
        updated = len(results) - created - unchanged
        where = "shared, global partition" if definition.shared else f"scope {display_scope(scope_id)}"
        self.stdout.write(
            f"Seeded store {name!r} ({where}): {created} created, {updated} updated, {unchanged} unchanged."
        )

    @staticmethod
    def read_documents(path: Path) -> list:
        try:
            content = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror or exc}")
        except json.JSONDecodeError as exc:
            raise CommandError(f"{path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}).")
        if isinstance(content, dict) and isinstance(content.get("documents"), list):
            content = content["documents"]
        if not isinstance(content, list):
            raise CommandError(f'{path} must hold an array of documents, or {{"documents": [...]}}.')
        return content
