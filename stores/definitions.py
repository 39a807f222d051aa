"""Store definitions: `stores/<name>.json`, parsed and validated into typed field specs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from core.folder_problems import (
    ARRAY,
    BOOLEAN,
    NON_EMPTY_STRING,
    NON_NEGATIVE_INT,
    NUMBER,
    OBJECT,
    POSITIVE_INT,
    STRING,
    ConfigProblem,
    Expected,
    FileChecker,
    describe,
    field_path,
)

FIELD_TYPES = ("string", "number", "boolean", "datetime", "enum", "array", "object")
FIELD_SPEC_KEYS = ("type", "nullable", "values", "item", "fields", "min", "max", "description")
# The keys that only make sense for some types; `min`/`max` bound a number's value or a length.
TYPED_KEYS = {
    "values": ("enum",),
    "item": ("array",),
    "fields": ("object",),
    "min": ("number", "string", "array"),
    "max": ("number", "string", "array"),
}
KEY_FIELD_TYPES = ("string", "number", "enum")
FIELD_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
KEY_PLACEHOLDER_RE = re.compile(r"\{([^{}]*)\}")
# Tool names are `store_<name>_batch` and the model APIs cap tool names at 64 characters.
MAX_STORE_NAME_LENGTH = 50


@dataclass(frozen=True)
class FieldSpec:
    """One declared field. Every field is required in a document unless `nullable`.

    `min`/`max` bound the value of a `number`, the length of a `string` and the item count of an `array`.
    """

    name: str
    type: str
    nullable: bool
    values: tuple[str, ...] | None  # enum
    item: FieldSpec | None  # array
    fields: dict[str, FieldSpec] | None  # object
    min: float | None
    max: float | None


@dataclass(frozen=True)
class StoreDefinition:
    name: str
    shared: bool  # lives in the global partition, readable from every scope, never written by the agent
    entity_name: str
    key_template: str  # e.g. "{household}:{slug}"
    key_fields: tuple[str, ...]  # the fields the key template names, in order of first use
    schema: dict[str, FieldSpec]
    ttl_seconds: int | None
    history_versions: int
    description: str

    @property
    def tool_name(self) -> str:
        return "store_" + self.name.replace("-", "_")


def parse_store(file_stem: str, data: Any, problems: list[ConfigProblem], file: str) -> StoreDefinition | None:
    """The store definition, or None when it has problems (appended to `problems`)."""
    before = len(problems)
    checker = FileChecker(file, problems)
    if checker.check(data, "", OBJECT) is None:
        return None
    data = checker.resolve_env(data)
    name = _parse_name(checker, data, file_stem)
    shared = checker.get(data, "shared", BOOLEAN, default=False)
    description = checker.get(data, "description", STRING, default="")
    entity = checker.get(data, "entity", OBJECT, required=True)
    parsed_entity = _parse_entity(checker, entity) if entity is not None else None
    ttl = checker.get(data, "ttl", POSITIVE_INT)
    history = checker.get(data, "history", OBJECT, default={})
    versions = checker.get(history, "versions", NON_NEGATIVE_INT, parent="history", default=0)
    if len(problems) > before or parsed_entity is None:
        return None
    entity_name, key_template, key_fields, schema = parsed_entity
    return StoreDefinition(
        name=name,
        shared=shared,
        entity_name=entity_name,
        key_template=key_template,
        key_fields=key_fields,
        schema=schema,
        ttl_seconds=ttl,
        history_versions=versions,
        description=description,
    )


def _parse_entity(checker: FileChecker, entity: dict[str, Any]) -> tuple[Any, ...]:
    """(entity name, key template, key fields, schema); parts with problems are None."""
    entity_name = checker.get(entity, "name", NON_EMPTY_STRING, parent="entity", required=True)
    schema = _parse_schema(checker, entity.get("schema"), "entity.schema")
    key_template = checker.get(entity, "key", NON_EMPTY_STRING, parent="entity", required=True)
    key_fields = _parse_key_template(checker, key_template, schema) if key_template else ()
    return entity_name, key_template, key_fields, schema


def _parse_name(checker: FileChecker, data: dict[str, Any], file_stem: str) -> str | None:
    name = checker.get(data, "name", NON_EMPTY_STRING, required=True)
    if name is None or not checker.kebab_name(name, "name", "store name", "preferences"):
        return None
    if len(name) > MAX_STORE_NAME_LENGTH:
        checker.add("name", f"store name must be at most {MAX_STORE_NAME_LENGTH} characters long")
    if name != file_stem:
        checker.add("name", f"store name {name!r} must equal its file name without .json ({file_stem!r})")
    return name


def _parse_schema(checker: FileChecker, value: Any, field: str) -> dict[str, FieldSpec | None] | None:
    """A non-empty object of field specs (an entity schema or an object's `fields`).

    A field with problems maps to None; the caller builds nothing from a schema that had problems.
    """
    if value is None:
        checker.add(field, "is required (an object of field specs)")
        return None
    if checker.check(value, field, OBJECT) is None:
        return None
    if not value:
        checker.add(field, "must declare at least one field")
        return None
    return {name: _parse_field(checker, name, spec, field_path(field, name)) for name, spec in value.items()}


def _parse_field(checker: FileChecker, name: str, spec: Any, field: str) -> FieldSpec | None:
    before = len(checker.problems)
    if not FIELD_NAME_RE.match(name):
        checker.add(field, f"field name {name!r} must be letters, digits and '_' (not starting with a digit)")
    if checker.check(spec, field, OBJECT) is None:
        return None
    for key in spec:
        if key not in FIELD_SPEC_KEYS:
            checker.add(field_path(field, key), f"unknown key; a field spec has {', '.join(FIELD_SPEC_KEYS)}")
    field_type = checker.choice(spec, "type", FIELD_TYPES, what="field type", parent=field, required=True)
    if field_type is not None:
        _reject_keys_of_other_types(checker, spec, field_type, field)
    nullable = checker.get(spec, "nullable", BOOLEAN, parent=field, default=False)
    values = _parse_enum_values(checker, spec, field) if field_type == "enum" else None
    item = _parse_array_item(checker, spec, field) if field_type == "array" else None
    fields = _parse_schema(checker, spec.get("fields"), field_path(field, "fields")) if field_type == "object" else None
    low, high = _parse_bounds(checker, spec, field, field_type)
    if len(checker.problems) > before:
        return None
    return FieldSpec(
        name=name,
        type=field_type,
        nullable=nullable,
        values=values,
        item=item,
        fields=fields,
        min=low,
        max=high,
    )


def _reject_keys_of_other_types(checker: FileChecker, spec: dict[str, Any], field_type: str, field: str) -> None:
    for key, types in TYPED_KEYS.items():
        if key in spec and field_type not in types:
            checker.add(field_path(field, key), f"applies only to {'/'.join(types)} fields, not {field_type}")


def _parse_array_item(checker: FileChecker, spec: dict[str, Any], field: str) -> FieldSpec | None:
    field = field_path(field, "item")
    if spec.get("item") is None:
        checker.add(field, 'an array needs an item field spec, e.g. {"type": "string"}')
        return None
    return _parse_field(checker, "item", spec["item"], field)


def _parse_enum_values(checker: FileChecker, spec: dict[str, Any], field: str) -> tuple[str, ...] | None:
    field = field_path(field, "values")
    if spec.get("values") in (None, []):
        checker.add(field, "an enum needs a non-empty list of allowed values")
        return None
    values = checker.check(spec["values"], field, ARRAY)
    if values is None:
        return None
    for index, value in enumerate(values):
        checker.check(value, field_path(field, index), NON_EMPTY_STRING)
    if len(set(map(str, values))) != len(values):
        checker.add(field, "lists a value more than once")
    return tuple(values)


def _parse_bounds(
    checker: FileChecker, spec: dict[str, Any], field: str, field_type: str | None
) -> tuple[float | None, float | None]:
    # A length or count is a whole number of at least zero; a number's bounds are any numbers.
    expected: Expected = NUMBER if field_type == "number" else NON_NEGATIVE_INT
    low = checker.get(spec, "min", expected, parent=field)
    high = checker.get(spec, "max", expected, parent=field)
    if low is not None and high is not None and low > high:
        checker.add(field_path(field, "max"), f"max ({describe(high)}) is less than min ({describe(low)})")
    return low, high


def _parse_key_template(
    checker: FileChecker, template: str, schema: dict[str, FieldSpec | None] | None
) -> tuple[str, ...]:
    names = KEY_PLACEHOLDER_RE.findall(template)
    literal = KEY_PLACEHOLDER_RE.sub("", template)
    if "{" in literal or "}" in literal:
        checker.add("entity.key", f"key template {template!r} has an unmatched brace")
    if not names:
        checker.add("entity.key", "key template must name at least one field, e.g. '{id}'")
    for name in dict.fromkeys(names):
        _check_key_field(checker, name, schema)
    return tuple(dict.fromkeys(names))


def _check_key_field(checker: FileChecker, name: str, schema: dict[str, FieldSpec | None] | None) -> None:
    if schema is None:
        return  # no usable schema: its own problem is already reported
    if name not in schema:
        checker.add("entity.key", f"key template names field {name!r} which is not in entity.schema")
        return
    spec = schema[name]
    if spec is None:
        return  # the field's own problem is already reported
    if spec.type not in KEY_FIELD_TYPES:
        checker.add("entity.key", f"key field {name!r} must be a string, number or enum field, not {spec.type}")
    elif spec.nullable:
        checker.add("entity.key", f"key field {name!r} must not be nullable")
