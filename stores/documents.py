"""Documents against their store's entity schema: validation, normalisation and the key template.

`validate_document` lists every problem at once, each naming the field path (`amount`,
`tags[2]`, `address.city`), so a caller (the model, an API client) fixes a document in one round.
`clean_document` is the same check returning the document as it is stored: datetimes are normalised to
UTC ISO 8601 (`2024-05-01T08:00:00Z`) so equal instants compare equal and sort as dates everywhere, and an
omitted nullable field is stored as null.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from core.folder_problems import describe, field_path
from core.validation import json_text_problems
from stores.definitions import KEY_PLACEHOLDER_RE, FieldSpec, StoreDefinition

MAX_KEY_LENGTH = 255
DOCUMENT_FIELD = "document"  # the field path that names the whole document


@dataclass(frozen=True)
class DocumentProblem:
    field: str  # a path inside the document, e.g. "address.city" or "tags[2]"
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class DocumentInvalid(ValueError):
    """A document (or a batch of them) does not match its store's schema; nothing was written."""

    def __init__(self, problems: list[DocumentProblem]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(str(problem) for problem in self.problems))

    def prefixed(self, prefix: str) -> DocumentInvalid:
        """The same problems with their field paths under `prefix` (e.g. `documents[3]`)."""
        return DocumentInvalid(
            [
                DocumentProblem(prefix if p.field == DOCUMENT_FIELD else field_path(prefix, p.field), p.message)
                for p in self.problems
            ]
        )


def validate_document(definition: StoreDefinition, document: Any) -> list[DocumentProblem]:
    """Every problem of `document` against the store's entity schema (empty: valid). Text that cannot be
    stored (NUL, lone surrogates) in any key or value, at any depth, is reported first and alone: the
    schema's messages would quote it."""
    problems = [DocumentProblem(path or DOCUMENT_FIELD, problem) for path, problem in json_text_problems(document, "")]
    if problems:
        return problems
    _check_object(definition.schema, document, "", problems)
    if not problems:
        try:
            render_key(definition, document)
        except DocumentInvalid as exc:
            problems.extend(exc.problems)
    return problems


def clean_document(definition: StoreDefinition, document: Any) -> dict[str, Any]:
    """The document as stored (datetimes normalised); raises DocumentInvalid listing every problem."""
    problems = validate_document(definition, document)
    if problems:
        raise DocumentInvalid(problems)
    return _normalise_object(definition.schema, document)


def render_key(definition: StoreDefinition, document: dict[str, Any]) -> str:
    """The document's key from the entity key template, e.g. `{household}:{slug}` -> `h1:groceries`."""

    def value_of(match) -> str:
        return key_text(document.get(match.group(1)))

    key = KEY_PLACEHOLDER_RE.sub(value_of, definition.key_template)
    first_field = definition.key_fields[0] if definition.key_fields else DOCUMENT_FIELD
    if not key:
        raise DocumentInvalid([DocumentProblem(first_field, "the rendered key is empty")])
    if len(key) > MAX_KEY_LENGTH:
        message = f"the rendered key is {len(key)} characters long; at most {MAX_KEY_LENGTH} are allowed"
        raise DocumentInvalid([DocumentProblem(first_field, message)])
    if not key.isprintable():
        raise DocumentInvalid([DocumentProblem(first_field, "the rendered key must be printable text")])
    return key


def key_text(value: Any) -> str:
    """How a key field's value reads inside a key: whole numbers without `.0`."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "" if value is None else str(value)


def normalise_value(spec: FieldSpec, value: Any) -> Any:
    """A valid value as it is stored (and as a filter compares it): datetimes in UTC ISO 8601."""
    if value is None:
        return None
    if spec.type == "datetime":
        return format_datetime(parse_datetime(value))
    if spec.type == "array" and spec.item is not None:
        return [normalise_value(spec.item, item) for item in value]
    if spec.type == "object" and spec.fields is not None:
        return _normalise_object(spec.fields, value)
    return value


def check_value(spec: FieldSpec, value: Any, path: str) -> list[DocumentProblem]:
    """The problems of one value against one field spec (used for documents and query filters)."""
    problems: list[DocumentProblem] = []
    _check_value(spec, value, path, problems)
    return problems


# --- Datetimes --------------------------------------------------------------------------------------


def parse_datetime(value: Any) -> datetime:
    """An ISO 8601 date or datetime string; one without an offset is taken as UTC. Raises ValueError."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError("not a string")
    text = value.strip()
    parsed = datetime.fromisoformat(text)  # also takes a date alone (midnight)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def format_datetime(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


# --- Checks -----------------------------------------------------------------------------------------


def _check_object(fields: dict[str, FieldSpec], value: Any, path: str, problems: list[DocumentProblem]) -> None:
    if not isinstance(value, dict):
        problems.append(DocumentProblem(path or DOCUMENT_FIELD, f"must be an object, not {_kind(value)}"))
        return
    for name, spec in fields.items():
        child = field_path(path, name)
        if name not in value:
            if not spec.nullable:
                problems.append(DocumentProblem(child, f"is required ({_expected(spec)})"))
            continue
        _check_value(spec, value[name], child, problems)
    for name in value:
        if name not in fields:
            known = ", ".join(fields)
            problems.append(DocumentProblem(field_path(path, str(name)), f"is not a field of this entity ({known})"))


def _check_value(spec: FieldSpec, value: Any, path: str, problems: list[DocumentProblem]) -> None:
    if value is None:
        if not spec.nullable:
            problems.append(DocumentProblem(path, f"must not be null ({_expected(spec)})"))
        return
    checker = _CHECKS[spec.type]
    checker(spec, value, path, problems)


def _check_string(spec: FieldSpec, value: Any, path: str, problems: list[DocumentProblem]) -> None:
    if not isinstance(value, str):
        problems.append(DocumentProblem(path, f"must be a string, not {_kind(value)}"))
        return
    _check_bounds(spec, len(value), path, problems, "characters long")


def _check_number(spec: FieldSpec, value: Any, path: str, problems: list[DocumentProblem]) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        problems.append(DocumentProblem(path, f"must be a number, not {_kind(value)}"))
        return
    _check_bounds(spec, value, path, problems, None)


def _check_boolean(spec: FieldSpec, value: Any, path: str, problems: list[DocumentProblem]) -> None:
    if not isinstance(value, bool):
        problems.append(DocumentProblem(path, f"must be true or false, not {_kind(value)}"))


def _check_datetime(spec: FieldSpec, value: Any, path: str, problems: list[DocumentProblem]) -> None:
    try:
        parse_datetime(value)
    except (ValueError, TypeError):
        problems.append(
            DocumentProblem(path, f"must be an ISO 8601 date-time such as 2024-05-01T08:00:00Z, not {_kind(value)}")
        )


def _check_enum(spec: FieldSpec, value: Any, path: str, problems: list[DocumentProblem]) -> None:
    allowed = spec.values or ()
    if not isinstance(value, str) or value not in allowed:
        problems.append(DocumentProblem(path, f"must be one of {', '.join(allowed)}; got {_kind(value)}"))


def _check_array(spec: FieldSpec, value: Any, path: str, problems: list[DocumentProblem]) -> None:
    if not isinstance(value, list):
        problems.append(DocumentProblem(path, f"must be an array, not {_kind(value)}"))
        return
    _check_bounds(spec, len(value), path, problems, "items")
    if spec.item is not None:
        for index, item in enumerate(value):
            _check_value(spec.item, item, field_path(path, index), problems)


def _check_object_field(spec: FieldSpec, value: Any, path: str, problems: list[DocumentProblem]) -> None:
    _check_object(spec.fields or {}, value, path, problems)


_CHECKS = {
    "string": _check_string,
    "number": _check_number,
    "boolean": _check_boolean,
    "datetime": _check_datetime,
    "enum": _check_enum,
    "array": _check_array,
    "object": _check_object_field,
}


def _check_bounds(
    spec: FieldSpec, measure: float, path: str, problems: list[DocumentProblem], unit: str | None
) -> None:
    """min/max: a number's value, a string's length, an array's item count."""

    def text(bound: float) -> str:
        shown = int(bound) if float(bound).is_integer() else bound
        return f"{shown} {unit}" if unit else f"{shown}"

    if unit == "items":
        what = f"has {int(measure)} items"
    elif unit:
        what = f"is {int(measure)} characters long"
    else:
        what = f"is {describe(measure)}"
    if spec.min is not None and measure < spec.min:
        problems.append(DocumentProblem(path, f"{what}; the minimum is {text(spec.min)}"))
    if spec.max is not None and measure > spec.max:
        problems.append(DocumentProblem(path, f"{what}; the maximum is {text(spec.max)}"))


def _normalise_object(fields: dict[str, FieldSpec], value: dict[str, Any]) -> dict[str, Any]:
    """Declared fields in schema order; an omitted nullable field is stored as null, so a filter on null
    finds it on every database."""
    return {name: normalise_value(spec, value.get(name)) for name, spec in fields.items()}


def _expected(spec: FieldSpec) -> str:
    if spec.type == "enum":
        return f"one of {', '.join(spec.values or ())}"
    if spec.type == "array" and spec.item is not None:
        return f"an array of {spec.item.type}"
    article = "an" if spec.type[0] in "aeiou" else "a"
    return f"{article} {spec.type}"


def _kind(value: Any) -> str:
    if isinstance(value, bool) or value is None or isinstance(value, dict | list):
        return describe(value)
    if isinstance(value, str):
        return f"the string {describe(value)}"
    if isinstance(value, int | float):
        return f"the number {describe(value)}"
    return type(value).__name__
