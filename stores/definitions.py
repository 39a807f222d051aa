"""Store definitions in the agent folder: `stores/<name>.json`.

The file is a pydantic model (core.folder_models: strict types, the project's messages, a JSON Schema);
its field specs (`FieldSpec`) are used as they are, the rest becomes a `StoreDefinition`, named the way
the runtime uses it. Callers reach the loaded stores through `stores_of(agent)` (typed: see
core.agent_folder for why an accessor rather than an attribute).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, Strict, ValidationInfo, field_validator, model_validator
from pydantic.json_schema import JsonDict
from pydantic_core import PydanticCustomError

from core.agent_folder import UNREADABLE, AgentFolder, FileKind, FolderPart, FolderReader
from core.folder_models import (
    KEBAB_NAME_PATTERN,
    KEBAB_NAME_RE,
    Boolean,
    Choice,
    FolderModel,
    Hint,
    Loc,
    NonEmptyString,
    NonNegativeInt,
    Number,
    PositiveInt,
    String,
    raise_problems,
    validate_file,
)
from core.folder_problems import ConfigProblem, describe

FieldType = Literal["string", "number", "boolean", "datetime", "enum", "array", "object"]
# The keys that only make sense for some types; `min`/`max` bound a number's value or a length.
TYPED_KEYS = {
    "values": ("enum",),
    "item": ("array",),
    "fields": ("object",),
    "min": ("number", "string", "array"),
    "max": ("number", "string", "array"),
}
KEY_FIELD_TYPES = ("string", "number", "enum")
FIELD_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
FIELD_NAME_RE = re.compile(FIELD_NAME_PATTERN)
FIELD_NAMES_SCHEMA: JsonDict = {"propertyNames": {"pattern": FIELD_NAME_PATTERN}}
KEY_PLACEHOLDER_RE = re.compile(r"\{([^{}]*)\}")
# Tool names are `store_<name>_batch` and the model APIs cap tool names at 64 characters.
MAX_STORE_NAME_LENGTH = 50


def _field_name(name: str) -> str:
    if not FIELD_NAME_RE.match(name):
        message = f"field name {name!r} must be letters, digits and '_' (not starting with a digit)"
        raise PydanticCustomError("folder", message)
    return name


def _declares_a_field(fields: dict[str, Any]) -> dict[str, Any]:
    if not fields:
        raise PydanticCustomError("folder", "must declare at least one field")
    return fields


FieldSpecs = Annotated[
    dict[Annotated[str, AfterValidator(_field_name)], "FieldSpec"],
    AfterValidator(_declares_a_field),
    Hint("an object of field specs"),
]


class FieldSpec(FolderModel):
    """One declared field. Every field is required in a document unless `nullable`.

    `min`/`max` bound the value of a `number`, the length of a `string` and the item count of an `array`.
    """

    model_config = {"extra": "forbid", "title": "Field spec"}
    noun = "a field spec"

    type: Annotated[FieldType, Choice("field type")] = Field(
        description="enum needs values, array needs item, object needs fields."
    )
    nullable: Boolean = Field(False, description="The field may be null or left out.")
    values: Annotated[tuple[NonEmptyString, ...], Strict(False)] | None = Field(
        None, description="enum only: the allowed values."
    )
    item: FieldSpec | None = Field(None, description="array only: the spec of every item.")
    fields: FieldSpecs | None = Field(
        None, description="object only: its fields.", json_schema_extra=FIELD_NAMES_SCHEMA
    )
    min: Number | None = Field(None, description="number: the lowest value; string, array: the least length.")
    max: Number | None = Field(None, description="number: the highest value; string, array: the most length.")
    description: String = Field("", description="Shown to the model with the field.")

    @model_validator(mode="after")
    def _keys_of_the_type(self) -> FieldSpec:
        raise_problems([*self._misplaced_keys(), *self._needed_keys(), *self._bound_problems()], self)
        return self

    def _misplaced_keys(self) -> list[tuple[Loc, str]]:
        return [
            ((key,), f"applies only to {'/'.join(types)} fields, not {self.type}")
            for key, types in TYPED_KEYS.items()
            if getattr(self, key) is not None and self.type not in types
        ]

    def _needed_keys(self) -> list[tuple[Loc, str]]:
        if self.type == "enum" and not self.values:
            return [(("values",), "an enum needs a non-empty list of allowed values")]
        if self.type == "enum" and self.values and len(set(self.values)) != len(self.values):
            return [(("values",), "lists a value more than once")]
        if self.type == "array" and self.item is None:
            return [(("item",), 'an array needs an item field spec, e.g. {"type": "string"}')]
        if self.type == "object" and self.fields is None:
            return [(("fields",), "is required (an object of field specs)")]
        return []

    def _bound_problems(self) -> list[tuple[Loc, str]]:
        problems: list[tuple[Loc, str]] = []
        if self.type != "number":  # a length or a count: a whole number of at least zero
            for key, bound in (("min", self.min), ("max", self.max)):
                if bound is not None and not (isinstance(bound, int) and bound >= 0):
                    problems.append(((key,), f"expected a non-negative integer, got {describe(bound)}"))
        if self.min is not None and self.max is not None and self.min > self.max:
            problems.append((("max",), f"max ({describe(self.max)}) is less than min ({describe(self.min)})"))
        return problems


class Entity(FolderModel):
    """The documents of the store: their name, their key and their fields."""

    name: NonEmptyString = Field(description="The entity's name, e.g. HouseholdPreference.")
    key: NonEmptyString = Field(
        description="The key template: literal text and {field} placeholders naming string, number or enum "
        "fields that are not nullable, e.g. '{household}:{slug}'."
    )
    schema_: FieldSpecs = Field(
        alias="schema", description="The entity's fields by name.", json_schema_extra=FIELD_NAMES_SCHEMA
    )

    @field_validator("key")
    @classmethod
    def _key_template(cls, template: str) -> str:
        problems: list[tuple[Loc, str]] = []
        literal = KEY_PLACEHOLDER_RE.sub("", template)
        if "{" in literal or "}" in literal:
            problems.append(((), f"key template {template!r} has an unmatched brace"))
        if not key_fields(template):
            problems.append(((), "key template must name at least one field, e.g. '{id}'"))
        raise_problems(problems, template)
        return template

    @model_validator(mode="after")
    def _key_fields(self) -> Entity:
        problems: list[tuple[Loc, str]] = []
        for name in key_fields(self.key):
            spec = self.schema_.get(name)
            if spec is None:
                problems.append((("key",), f"key template names field {name!r} which is not in entity.schema"))
            elif spec.type not in KEY_FIELD_TYPES:
                message = f"key field {name!r} must be a string, number or enum field, not {spec.type}"
                problems.append((("key",), message))
            elif spec.nullable:
                problems.append((("key",), f"key field {name!r} must not be nullable"))
        raise_problems(problems, self)
        return self


class History(FolderModel):
    versions: NonNegativeInt = Field(0, description="How many previous versions of a document to keep.")


class StoreFile(FolderModel):
    """stores/<name>.json: a typed document store, partitioned by scope."""

    model_config = {"title": "stores/<name>.json"}

    name: NonEmptyString = Field(
        description="The file name without .json, lower-case kebab-case.",
        json_schema_extra={"pattern": KEBAB_NAME_PATTERN, "maxLength": MAX_STORE_NAME_LENGTH},
    )
    description: String = Field("", description="What the store holds; shown to the model.")
    shared: Boolean = Field(
        False, description="Lives in the global partition, readable from every scope; the agent never writes it."
    )
    entity: Entity = Field(description="What a document of the store is.")
    ttl: PositiveInt | None = Field(None, description="Seconds after its last write that a document expires.")
    history: History = Field(History(), description="Previous versions kept per document.")

    @field_validator("name")
    @classmethod
    def _name(cls, name: str, info: ValidationInfo) -> str:
        if not KEBAB_NAME_RE.match(name):
            message = f"store name {name!r} must be lower-case kebab-case (letters, digits, '-'), e.g. 'preferences'"
            raise PydanticCustomError("folder", message)
        problems: list[tuple[Loc, str]] = []
        if len(name) > MAX_STORE_NAME_LENGTH:
            problems.append(((), f"store name must be at most {MAX_STORE_NAME_LENGTH} characters long"))
        file_stem = (info.context or {}).get("file_stem", name)
        if name != file_stem:
            problems.append(((), f"store name {name!r} must equal its file name without .json ({file_stem!r})"))
        raise_problems(problems, name)
        return name


# --- What the runtime uses ----------------------------------------------------------------------------


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


def key_fields(template: str) -> tuple[str, ...]:
    """The fields a key template names, in order of first use."""
    return tuple(dict.fromkeys(KEY_PLACEHOLDER_RE.findall(template)))


def parse_store(file_stem: str, data: Any, problems: list[ConfigProblem], file: str) -> StoreDefinition | None:
    """The store definition of one file, or None when it has problems (appended to `problems`)."""
    store = validate_file(StoreFile, data, file, problems, context={"file_stem": file_stem})
    if store is None:
        return None
    return StoreDefinition(
        name=store.name,
        shared=store.shared,
        entity_name=store.entity.name,
        key_template=store.entity.key,
        key_fields=key_fields(store.entity.key),
        schema=store.entity.schema_,
        ttl_seconds=store.ttl,
        history_versions=store.history.versions,
        description=store.description,
    )


# --- The folder part ----------------------------------------------------------------------------------


def load_stores(reader: FolderReader) -> dict[str, StoreDefinition]:
    stores: dict[str, StoreDefinition] = {}
    declared_by: dict[str, str] = {}  # lower-cased store name -> the first file declaring it
    tool_owners: dict[str, str] = {}  # tool name -> the store file offering it
    for entry in reader.entries("stores"):
        if entry.suffix != ".json" or not entry.is_file():
            continue
        relative = f"stores/{entry.name}"
        data = reader.json(relative)
        if data is UNREADABLE:
            continue
        declared = data.get("name") if isinstance(data, dict) else None
        # Case-insensitively: on macOS and Windows `Prefs.json` and `prefs.json` are the same file.
        name = declared if isinstance(declared, str) else entry.stem
        first = declared_by.setdefault(name.lower(), relative)
        if first != relative:
            reader.add(relative, "name", f"store name {name!r} is already declared by {first}")
        store = parse_store(entry.stem, data, reader.problems, relative)
        if store is None:
            continue
        # `store_a_batch` is both the batch tool of store `a` and the write tool of store `a-batch`.
        for tool in (store.tool_name, f"{store.tool_name}_batch"):
            owner = tool_owners.setdefault(tool, relative)
            if owner != relative:
                reader.add(relative, "name", f"its tool name {tool!r} is also a tool of {owner}")
        stores[store.name] = store
    return stores


STORES: FolderPart[dict[str, StoreDefinition]] = FolderPart(
    "stores", order=20, load=load_stores, files=(FileKind("store", "stores/<name>.json", StoreFile),)
)


def stores_of(agent: AgentFolder) -> dict[str, StoreDefinition]:
    """The agent's stores by name."""
    return agent.part(STORES)
