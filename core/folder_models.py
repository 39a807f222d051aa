"""The agent folder's JSON files as declared pydantic models, and the problems they report.

Every file kind (`amodal.json`, `connections/<name>/spec.json`, ...) is a `FolderModel` owned by the app
that reads it. The same model validates the file at start-up and publishes its JSON Schema
(core.folder_schemas), so the editor's checks and the server's cannot drift apart.

The rules every model follows:
- strict types: JSON `true` is not 1 and `"15"` is not a number;
- JSON names are camelCase aliases of the Python names (`base_url` is `baseUrl`);
- `null` means "absent": the default applies, or the field is reported as required;
- unknown keys are ignored unless the model forbids them (`extra="forbid"`);
- the scalar kinds below (`NonEmptyString`, `PositiveInt`, `HttpUrl`, `Choice(...)`, ...) word their own
  problems the project's way ("expected a positive integer, got -3"), and `validate_file` turns every
  pydantic error into one `ConfigProblem` naming the file and the field (`field_path` format).

`env:NAME` values are resolved before validation (`resolve_env`). A resolved value arrives as `EnvText`,
so a number or boolean field converts the variable's text, and its problem says where the value came
from ("... (from env:TIMEOUT)"). An unset variable becomes `Unresolved`, reported once, at its field.

Checks between the fields of one object (`model_validator(mode="after")`, reporting through
`raise_problems`) run once that object's own fields are valid, as pydantic does: a file with both kinds
of problem shows its field problems first.
"""

from __future__ import annotations

import json
import math
import os
import re
import types
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, TypeVar, Union, get_args, get_origin
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, RootModel, ValidationError, model_validator
from pydantic.alias_generators import to_camel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import InitErrorDetails, PydanticCustomError, core_schema

from core.folder_problems import ConfigProblem, describe, field_path

ENV_PREFIX = "env:"
SCOPE_PREFIX = "scope:"
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
KEBAB_NAME_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
KEBAB_NAME_RE = re.compile(KEBAB_NAME_PATTERN)
ENV_REFERENCE_SCHEMA = {
    "type": "string",
    "pattern": r"^env:[A-Za-z_][A-Za-z0-9_]*$",
    "description": "The value of an environment variable (env:NAME), read at start-up.",
}

Loc = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)


# --- env: references --------------------------------------------------------------------------------


class EnvText(str):
    """A value read from an environment variable; `reference` is the `env:NAME` it came from."""

    reference: str

    def __new__(cls, value: str, reference: str) -> EnvText:
        text = super().__new__(cls, value)
        text.reference = reference
        return text


@dataclass(frozen=True)
class Unresolved:
    """An `env:` reference that cannot be resolved; `message` is its problem."""

    message: str


def resolve_env(value: Any, *, keep_references: bool = False) -> Any:
    """Every `env:NAME` string in `value` (recursively) as `EnvText`, or `Unresolved` when the variable is
    unset or empty. With `keep_references` a resolvable reference stays as written (credentials are
    resolved per call, later): only unresolvable ones are marked."""
    if isinstance(value, dict):
        return {key: resolve_env(item, keep_references=keep_references) for key, item in value.items()}
    if isinstance(value, list):
        return [resolve_env(item, keep_references=keep_references) for item in value]
    if not (isinstance(value, str) and value.startswith(ENV_PREFIX)):
        return value
    name = value[len(ENV_PREFIX) :]
    if not ENV_NAME_RE.match(name):
        return Unresolved(f"{describe(value)} is not a valid environment variable reference (env:NAME)")
    resolved = os.environ.get(name, "")
    if not resolved:
        return Unresolved(f"environment variable {name} is not set or empty (referenced as {value})")
    return value if keep_references else EnvText(resolved, value)


def bool_from_text(text: str) -> bool | str:
    return {"true": True, "false": False}.get(text.strip().lower(), text)


def _number_from_text(*converters: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        for convert in converters:
            try:
                return convert(text.strip())
            except ValueError:
                continue
        return text

    return parse


# --- Scalar kinds ------------------------------------------------------------------------------------


def _with_env_reference(schema: JsonSchemaValue) -> JsonSchemaValue:
    return {"anyOf": [schema, ENV_REFERENCE_SCHEMA]}


@dataclass(frozen=True, eq=False)  # hashed by identity: Annotated metadata must be hashable
class Expect:
    """Pydantic metadata for a JSON scalar: validates strictly (with `check` on top), converts `env:` text
    with `from_text`, and words every failure "expected <what>, got <value>". `what` also completes "is
    required (<what>)". Its JSON Schema admits an env:NAME reference in place of the value, unless
    `env_schema` is off (plain strings, where a reference is a string anyway)."""

    what: str
    from_text: Callable[[str], Any] | None = None
    check: Callable[[Any], bool] | None = None
    json_schema: dict[str, Any] | None = None
    env_schema: bool = True

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> core_schema.CoreSchema:
        return core_schema.no_info_wrap_validator_function(self._validate, handler(source))

    def __get_pydantic_json_schema__(self, schema: core_schema.CoreSchema, handler: Any) -> JsonSchemaValue:
        json_schema = dict(self.json_schema) if self.json_schema is not None else handler(schema)
        return _with_env_reference(json_schema) if self.env_schema else json_schema

    def _validate(self, value: Any, handler: Callable[[Any], Any]) -> Any:
        given = value
        if isinstance(value, EnvText):
            value = self.from_text(value) if self.from_text else str(value)
        try:
            result = handler(value)
        except ValidationError:
            pass
        else:
            if self.check is None or self.check(result):
                return result
        source = f" (from {given.reference})" if isinstance(given, EnvText) else ""
        raise PydanticCustomError("expected", f"expected {self.what}, got {describe(value)}{source}")


@dataclass(frozen=True)
class Choice:
    """Pydantic metadata for a `Literal[...]` of strings: "unknown <what> 'x'; expected one of a, b"."""

    what: str

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> core_schema.CoreSchema:
        options = ", ".join(get_args(source))

        def validate(value: Any, inner: Callable[[Any], Any]) -> Any:
            if not isinstance(value, str):
                raise PydanticCustomError("expected", f"expected a string, got {describe(value)}")
            try:
                return inner(str(value))
            except ValidationError:
                source_text = f" (from {value.reference})" if isinstance(value, EnvText) else ""
                message = f"unknown {self.what} {str(value)!r}{source_text}; expected one of {options}"
                raise PydanticCustomError("choice", message) from None

        return core_schema.no_info_wrap_validator_function(validate, handler(source))

    def __get_pydantic_json_schema__(self, schema: core_schema.CoreSchema, handler: Any) -> JsonSchemaValue:
        return _with_env_reference(handler(schema))


@dataclass(frozen=True)
class Hint:
    """Pydantic metadata naming what an object or array field holds, for "is required (<what>)"."""

    what: str


def is_http_url(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 -- raises ValueError on a malformed port
    except ValueError:
        return False
    return parts.scheme in {"http", "https"} and bool(parts.hostname)


def _is_finite(value: Any) -> bool:
    return isinstance(value, int) or math.isfinite(value)  # (a huge int would overflow isfinite)


String = Annotated[str, Expect("a string", env_schema=False)]
NonEmptyString = Annotated[str, Field(pattern=r"\S"), Expect("a non-empty string", env_schema=False)]
Boolean = Annotated[bool, Expect("true or false", from_text=bool_from_text)]
# A JSON number as written: 1 stays 1 (messages show it so), 1.5 is a float.
Number = Annotated[
    int | float,
    Expect("a number", from_text=_number_from_text(int, float), check=_is_finite, json_schema={"type": "number"}),
]
PositiveNumber = Annotated[
    float, Field(gt=0, allow_inf_nan=False), Expect("a positive number", from_text=_number_from_text(float))
]
PositiveInt = Annotated[int, Field(gt=0), Expect("a positive integer", from_text=_number_from_text(int))]
NonNegativeInt = Annotated[int, Field(ge=0), Expect("a non-negative integer", from_text=_number_from_text(int))]
HttpUrl = Annotated[
    str,
    Expect(
        "an absolute http(s) URL",
        check=is_http_url,
        json_schema={"type": "string", "format": "uri", "pattern": "^[Hh][Tt][Tt][Pp][Ss]?://"},
    ),
]


# --- Models --------------------------------------------------------------------------------------------

FOLDER_MODEL_CONFIG = ConfigDict(
    strict=True,
    frozen=True,
    alias_generator=to_camel,
    extra="ignore",
)


def _drop_nulls(data: Any) -> Any:
    return {key: value for key, value in data.items() if value is not None} if isinstance(data, dict) else data


class FolderModel(BaseModel):
    """An object of an agent folder file (see the module docstring for the rules)."""

    model_config = FOLDER_MODEL_CONFIG

    hint: ClassVar[str] = "an object"  # "is required (<hint>)" when the object is missing
    noun: ClassVar[str] = "an object"  # "unknown key; <noun> has a, b" when it forbids extra keys
    resolves_env: ClassVar[bool] = True  # env:NAME values are resolved before validation
    keeps_references: ClassVar[tuple[str, ...]] = ()  # top-level keys whose env: references stay as written

    @model_validator(mode="before")
    @classmethod
    def _null_is_absent(cls, data: Any) -> Any:
        return _drop_nulls(data)


def raise_problems(problems: Iterable[tuple[Loc, str]], value: Any = None) -> None:
    """Report `(location, message)` problems from a validator, each at its location relative to the value
    being validated (`()` is the value itself). Does nothing when there are none."""
    details = [
        InitErrorDetails(type=PydanticCustomError("folder", message), loc=loc, input=value) for loc, message in problems
    ]
    if details:
        raise ValidationError.from_exception_data("folder", details)


# --- From pydantic errors to problems -----------------------------------------------------------------


def validate_file(
    model: type[M],
    data: Any,
    file: str,
    problems: list[ConfigProblem],
    *,
    context: Mapping[str, Any] | None = None,
) -> M | None:
    """`data` (a file's parsed JSON) as `model`, or None with one problem per error appended."""
    if getattr(model, "resolves_env", True):
        kept = getattr(model, "keeps_references", ())
        if isinstance(data, dict):
            data = {key: resolve_env(value, keep_references=key in kept) for key, value in data.items()}
        else:
            data = resolve_env(data)
    try:
        return model.model_validate(data, context=dict(context or {}))
    except ValidationError as error:
        problems.extend(problems_from(error, model, file))
        return None


def problems_from(error: ValidationError, model: type[BaseModel], file: str) -> list[ConfigProblem]:
    """One problem per pydantic error, at `file` and the error's field path, in the project's words."""
    problems = []
    for detail in error.errors(include_url=False):
        loc = tuple(part for part in detail["loc"] if part != "[key]")  # a dict key's own problem: its path
        path = field_path(*(_path_part(part) for part in loc))
        problems.append(ConfigProblem(file, path, _message(detail, model, loc)))
    return problems


def _path_part(part: str | int) -> str | int:
    """A key as it appears in a field path; one that would break the one-line report is quoted."""
    if isinstance(part, str) and not (part and part.isprintable()):
        return repr(part)
    return part


def _message(detail: Any, model: type[BaseModel], loc: Loc) -> str:
    value, kind = detail["input"], detail["type"]
    if isinstance(value, Unresolved):
        return value.message
    if kind == "missing":
        return f"is required ({_hint_at(model, loc)})"
    source = f" (from {value.reference})" if isinstance(value, EnvText) else ""
    if kind in {"model_type", "model_attributes_type", "dict_type"}:
        return f"expected an object, got {describe(value)}{source}"
    if kind in {"list_type", "tuple_type"}:
        return f"expected an array, got {describe(value)}{source}"
    if kind == "extra_forbidden":
        owner, _ = _annotation_at(model, loc[:-1])
        if isinstance(owner, type) and issubclass(owner, FolderModel):
            keys = ", ".join(field.alias or name for name, field in owner.model_fields.items())
            return f"unknown key; {owner.noun} has {keys}"
    return str(detail["msg"])  # the models' own messages, and pydantic's wording for anything else


def _hint_at(model: type[BaseModel], loc: Loc) -> str:
    """What the field at `loc` holds, from its declaration: "a non-empty string", "{provider, model}"."""
    annotation, metadata = _annotation_at(model, loc)
    for item in metadata:
        if isinstance(item, Expect | Hint):
            return item.what
        if isinstance(item, Choice):
            return "a string"
    if isinstance(annotation, type) and issubclass(annotation, FolderModel):
        return annotation.hint
    if get_origin(annotation) in {list, tuple}:
        return "an array"
    return "an object"


def _annotation_at(model: type[BaseModel], loc: Loc) -> tuple[Any, list[Any]]:
    """The declared type (and its Annotated metadata) at `loc` inside `model`: model fields by JSON name,
    dict values by key, list and tuple items by index."""
    current, metadata = _unwrap(model, [])
    for part in loc:
        if isinstance(current, type) and issubclass(current, RootModel):
            current, metadata = _unwrap(current.model_fields["root"].annotation, [])
        if isinstance(current, type) and issubclass(current, BaseModel):
            fields = {field.alias or name: field for name, field in current.model_fields.items()}
            if part not in fields:
                return None, []
            current, metadata = _unwrap(fields[part].annotation, list(fields[part].metadata))
        elif get_origin(current) in {dict, list, tuple}:
            current, metadata = _unwrap(get_args(current)[-1 if get_origin(current) is dict else 0], [])
        else:
            return None, []
    if isinstance(current, type) and issubclass(current, RootModel):
        return _unwrap(current.model_fields["root"].annotation, [])
    return current, metadata


def _unwrap(annotation: Any, metadata: list[Any]) -> tuple[Any, list[Any]]:
    """Strip `Annotated[...]` (collecting its metadata) and `X | None` down to the declared type."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation, *extra = get_args(annotation)
            metadata = [*metadata, *extra]
        elif origin in {Union, types.UnionType} and type(None) in get_args(annotation):
            members = [member for member in get_args(annotation) if member is not type(None)]
            if len(members) != 1:
                return annotation, metadata
            annotation = members[0]
        else:
            return annotation, metadata


# --- JSON Schema ---------------------------------------------------------------------------------------


ENV_REFERENCE_REF = {"$ref": "#/$defs/EnvReference"}


class FolderSchemaGenerator(GenerateJsonSchema):
    """Pydantic's JSON Schema without a title on every property (the JSON name says it already), and
    the env:NAME alternative declared once, in `$defs/EnvReference`."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False

    def generate(self, schema: core_schema.CoreSchema, mode: Any = "validation") -> JsonSchemaValue:
        result: JsonSchemaValue = _refer_to_env_reference(super().generate(schema, mode))
        if ENV_REFERENCE_REF["$ref"] in json.dumps(result):
            result.setdefault("$defs", {})["EnvReference"] = ENV_REFERENCE_SCHEMA
        return result


def _refer_to_env_reference(value: Any) -> Any:
    """The schema with every inline env:NAME alternative replaced by a `$ref`, and docstring line breaks
    inside a paragraph joined (editors show descriptions as running text)."""
    if value == ENV_REFERENCE_SCHEMA:
        return dict(ENV_REFERENCE_REF)
    if isinstance(value, dict):
        return {
            key: re.sub(r"(?<!\n)\n(?!\n)", " ", item)
            if key == "description" and isinstance(item, str)
            else _refer_to_env_reference(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_refer_to_env_reference(item) for item in value]
    return value
