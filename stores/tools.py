"""What the model can do with stores: `store_<name>` (write one document), `store_<name>_batch` and
`query_store`, plus a system-prompt section describing the stores.

Every tool's database work runs in the session's scope through `ToolContext.db`; no argument can choose
another one: a scope-like argument is refused, and a shared store (global
partition, readable by all) has no write tools at all.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from core.agent_folder import AgentFolder
from core.errors import ApiError
from core.tools import Tool, ToolContext, ToolResult, unknown_arguments
from stores import selectors, services
from stores.definitions import FieldSpec, StoreDefinition, stores_of
from stores.documents import DocumentInvalid

QUERY_TOOL = "query_store"
QUERY_ARGUMENTS = ("store", "key", "filter", "sort", "limit", "offset")


# --- Tool factory --------------------------------------------------------------------------------------


def store_tools(agent: AgentFolder) -> list[Tool]:
    stores = stores_of(agent)
    if not stores:
        return []
    tools: list[Tool] = []
    for definition in stores.values():
        if definition.shared:
            continue  # operators seed shared stores; the agent only reads them
        tools.append(write_tool(definition))
        tools.append(batch_tool(definition))
    tools.append(query_tool(agent))
    return tools


def write_tool(definition: StoreDefinition) -> Tool:
    description = (
        f"Write one {definition.entity_name} document to the `{definition.name}` store of this conversation "
        f"(insert, or replace the document with the same key; the key is {definition.key_template!r}). "
        f"The arguments are the document's fields: {describe_fields(definition.schema)}."
    )
    if definition.description:
        description += f" Store: {definition.description}"

    async def run(context: ToolContext, arguments: dict[str, Any]) -> ToolResult:
        def write() -> dict[str, Any]:
            result = services.put_document(definition=definition, document=arguments)
            return write_summary(definition, result)

        return await run_in_scope(context, write)

    return Tool(definition.tool_name, description, entity_schema(definition), run)


def batch_tool(definition: StoreDefinition) -> Tool:
    description = (
        f"Write up to {services.MAX_BATCH} {definition.entity_name} documents to the `{definition.name}` store "
        "at once, all or nothing: if one is invalid, none is written. Each document has the fields of "
        f"`{definition.tool_name}`."
    )
    schema = {
        "type": "object",
        "properties": {
            "documents": {
                "type": "array",
                "items": entity_schema(definition),
                "minItems": 1,
                "maxItems": services.MAX_BATCH,
            },
        },
        "required": ["documents"],
        "additionalProperties": False,
    }

    async def run(context: ToolContext, arguments: dict[str, Any]) -> ToolResult:
        unknown = sorted(set(arguments) - {"documents"})
        if unknown:
            return ToolResult(
                f"{definition.tool_name}_batch takes only `documents`; not {', '.join(unknown)}. "
                "It always writes this conversation's own documents.",
                is_error=True,
            )

        def write() -> dict[str, Any]:
            results = services.put_documents(definition=definition, documents=arguments.get("documents"))
            return {
                "store": definition.name,
                "written": len(results),
                "documents": [
                    {"key": r.document.key, "version": r.document.version, "created": r.created} for r in results
                ],
            }

        return await run_in_scope(context, write)

    return Tool(f"{definition.tool_name}_batch", description, schema, run)


def query_tool(agent: AgentFolder) -> Tool:
    stores = stores_of(agent)
    names = sorted(stores)
    description = (
        "Read documents from a store: one by `key`, or a page filtered by field equality "
        '(`filter`, e.g. {"kind": "expense"}), sorted by `sort` (a field, or -field for descending), '
        f"`limit` 1 to {selectors.MAX_LIMIT} (default {selectors.DEFAULT_LIMIT}) and `offset`. "
        f"Stores: {', '.join(names)}."
    )
    schema = {
        "type": "object",
        "properties": {
            "store": {"type": "string", "enum": names},
            "key": {"type": "string", "description": "Fetch the one document with this key."},
            "filter": {"type": "object", "description": 'Field equality, e.g. {"kind": "expense"}.'},
            "sort": {"type": "string", "description": "A field name, or -field for descending."},
            "limit": {"type": "integer", "minimum": 1, "maximum": selectors.MAX_LIMIT},
            "offset": {"type": "integer", "minimum": 0},
        },
        "required": ["store"],
        "additionalProperties": False,
    }

    async def run(context: ToolContext, arguments: dict[str, Any]) -> ToolResult:
        refused = unknown_arguments(
            "query_store", arguments, QUERY_ARGUMENTS, "reads this conversation's own documents (and the shared stores)"
        )
        if refused is not None:
            return refused
        name = arguments.get("store")
        definition = stores.get(name) if isinstance(name, str) else None
        if definition is None:
            return ToolResult(f"store must be one of: {', '.join(names)}.", is_error=True)
        return await run_in_scope(context, lambda: query(definition, arguments))

    return Tool(QUERY_TOOL, description, schema, run)


def query(definition: StoreDefinition, arguments: dict[str, Any]) -> dict[str, Any]:
    key = arguments.get("key")
    if key is not None:
        if not isinstance(key, str):
            raise ApiError(400, "validation_error", "key: must be a string.")
        document = selectors.get_document(definition=definition, key=key)
        return {
            "store": definition.name,
            "key": key,
            "document": None if document is None else document.as_dict(),
            **({} if document else {"message": f"No document with key {key!r} in {definition.name}."}),
        }
    filters = arguments.get("filter")
    if isinstance(filters, str) and filters.strip():
        try:
            filters = json.loads(filters)  # some models send the object as JSON text
        except json.JSONDecodeError:
            raise ApiError(400, "validation_error", "filter: must be an object of field equalities.")
    limit, offset = selectors.parse_page_bounds(arguments.get("limit"), arguments.get("offset"))
    page = selectors.query_documents(
        definition=definition, filters=filters, sort=arguments.get("sort"), limit=limit, offset=offset
    )
    return {"store": definition.name, "shared": definition.shared, **page.as_dict()}


def write_summary(definition: StoreDefinition, result: services.WriteResult) -> dict[str, Any]:
    return {
        "store": definition.name,
        "key": result.document.key,
        "version": result.document.version,
        "created": result.created,
    }


async def run_in_scope(context: ToolContext, work: Callable[[], dict[str, Any]]) -> ToolResult:
    """Run `work` (sync, ORM) in a worker thread inside the session's scope; errors become tool errors."""

    try:
        payload = await context.db(work)
    except DocumentInvalid as exc:
        return ToolResult(f"The document was not written: {exc}", is_error=True)
    except ApiError as exc:
        return ToolResult(exc.message, is_error=True)
    return ToolResult(json.dumps(payload, ensure_ascii=False, default=str))


# --- Schemas and descriptions ------------------------------------------------------------------------


def entity_schema(definition: StoreDefinition) -> dict[str, Any]:
    return object_schema(definition.schema)


def object_schema(fields: dict[str, FieldSpec]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {name: field_schema(spec) for name, spec in fields.items()},
        "required": [name for name, spec in fields.items() if not spec.nullable],
        "additionalProperties": False,
    }


def field_schema(spec: FieldSpec) -> dict[str, Any]:
    schema: dict[str, Any]
    if spec.type == "string":
        schema = {"type": "string", **_bounds(spec, "minLength", "maxLength")}
    elif spec.type == "number":
        schema = {"type": "number", **_bounds(spec, "minimum", "maximum")}
    elif spec.type == "boolean":
        schema = {"type": "boolean"}
    elif spec.type == "datetime":
        schema = {"type": "string", "format": "date-time"}
    elif spec.type == "enum":
        schema = {"type": "string", "enum": list(spec.values or ())}
    elif spec.type == "array":
        item = field_schema(spec.item) if spec.item else {}
        schema = {"type": "array", "items": item, **_bounds(spec, "minItems", "maxItems")}
    else:
        schema = object_schema(spec.fields or {})
    if spec.nullable:
        schema["type"] = [schema["type"], "null"]
        if "enum" in schema:
            schema["enum"] = [*schema["enum"], None]
    return schema


def _bounds(spec: FieldSpec, low_name: str, high_name: str) -> dict[str, Any]:
    bounds = {}
    for name, value in ((low_name, spec.min), (high_name, spec.max)):
        if value is not None:
            bounds[name] = int(value) if float(value).is_integer() else value
    return bounds


def describe_field(spec: FieldSpec) -> str:
    if spec.type == "enum":
        text = f"enum: {'|'.join(spec.values or ())}"
    elif spec.type == "array" and spec.item is not None:
        text = f"array of {describe_field(spec.item)}"
    elif spec.type == "object" and spec.fields is not None:
        text = "object {" + describe_fields(spec.fields) + "}"
    else:
        text = spec.type
    extras = []
    if spec.nullable:
        extras.append("nullable")
    unit = {"string": " chars", "array": " items"}.get(spec.type, "")
    if spec.min is not None:
        extras.append(f"min {_number(spec.min)}{unit}")
    if spec.max is not None:
        extras.append(f"max {_number(spec.max)}{unit}")
    return f"{text}, {', '.join(extras)}" if extras else text


def describe_fields(fields: dict[str, FieldSpec]) -> str:
    return "; ".join(f"{name} ({describe_field(spec)})" for name, spec in fields.items())


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


# --- Prompt section ------------------------------------------------------------------------------------


def stores_prompt_section(agent: AgentFolder) -> str | None:
    stores = stores_of(agent)
    if not stores:
        return None
    lines = [
        "# Stores",
        "",
        "Typed document stores. Read any of them with `query_store`; write the ones of this conversation "
        "with their `store_<name>` tools. Shared stores are the same for everyone and read-only for you.",
    ]
    for definition in stores.values():
        if definition.shared:
            access = "shared, read-only"
        else:
            access = f"this conversation's own; write with `{definition.tool_name}` or `{definition.tool_name}_batch`"
        line = f"- `{definition.name}` ({access}): {definition.entity_name}, key {definition.key_template!r}"
        if definition.description:
            line += f". {definition.description}"
        lines.append(line)
        lines.append(f"  Fields: {describe_fields(definition.schema)}.")
        notes = []
        if definition.ttl_seconds:
            notes.append(f"documents expire {definition.ttl_seconds} s after their last write")
        if definition.history_versions:
            notes.append(f"the last {definition.history_versions} previous versions are kept")
        if notes:
            lines.append(f"  Note: {'; '.join(notes)}.")
    return "\n".join(lines)
