"""The JSON Schema of every agent folder file kind, from the same pydantic models that validate the folder.

`folder_schemas()` builds them from the registered parts (core.agent_folder), so the schemas exist for
exactly the files the server reads. They are committed under `docs/schemas/<name>.schema.json`
(`manage.py export_folder_schemas`, `--check` fails when they are stale) and served at
`/api/schemas/agent-folder/<name>.schema.json` for editors: point `"$schema"` of a file at that URL (or
map the file pattern to it in the editor's settings) to get completion, hover descriptions and checks.

Each schema's `$id` is that path, relative to the server that serves it: the folder belongs to whichever
deployment reads it, so there is no one host to name.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import condition, require_safe

from core.agent_folder import FileKind, folder_file_kinds
from core.errors import error_response
from core.folder_models import FolderSchemaGenerator

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_PATH = "/api/schemas/agent-folder/{name}.schema.json"
CACHE_SECONDS = 3600


def folder_schema(kind: FileKind) -> dict[str, Any]:
    schema = kind.model.model_json_schema(schema_generator=FolderSchemaGenerator)
    return {
        "$schema": SCHEMA_DIALECT,
        "$id": SCHEMA_PATH.format(name=kind.name),
        "title": kind.path,
        **{key: value for key, value in schema.items() if key != "title"},
    }


def folder_schemas() -> dict[str, dict[str, Any]]:
    """File kind name ("amodal", "spec", ...) -> its JSON Schema."""
    return {kind.name: folder_schema(kind) for kind in folder_file_kinds()}


def schema_text(schema: dict[str, Any]) -> str:
    """The schema as committed and served: stable key order from the model, two-space indent."""
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


@cache
def _served() -> dict[str, tuple[str, str]]:
    """name -> (text, ETag), built once per process (the models do not change while it runs)."""
    texts = {name: schema_text(schema) for name, schema in folder_schemas().items()}
    return {name: (text, hashlib.sha256(text.encode()).hexdigest()[:16]) for name, text in texts.items()}


def _etag(request: HttpRequest, name: str) -> str | None:
    served = _served().get(name)
    return None if served is None else f'"{served[1]}"'


@require_safe
@condition(etag_func=_etag)
def folder_schema_view(request: HttpRequest, name: str) -> HttpResponse:
    """GET /api/schemas/agent-folder/<name>.schema.json: public (it describes files, never a tenant)."""
    served = _served().get(name)
    if served is None:
        known = ", ".join(f"{kind}.schema.json" for kind in _served())
        return error_response(404, "not_found", f"No agent folder schema {name!r}; there are {known}.")
    response = HttpResponse(served[0], content_type="application/json")
    response["Cache-Control"] = f"public, max-age={CACHE_SECONDS}"
    return response
