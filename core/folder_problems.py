"""Configuration problems: what is wrong, in which file, at which field.

The agent folder loader, connection specs and store definitions all validate JSON the same way through
`FileChecker`: every check appends a `ConfigProblem` and returns a fallback, so one pass reports every
problem of a folder instead of stopping at the first.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

ENV_PREFIX = "env:"
SCOPE_PREFIX = "scope:"
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
KEBAB_NAME_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


@dataclass(frozen=True)
class ConfigProblem:
    file: str  # relative to the agent folder; "" is the folder itself
    field: str  # dotted path inside the file; "" is the whole file
    message: str

    def __str__(self) -> str:
        return ": ".join(part for part in (self.file, self.field, self.message) if part)


def field_path(*parts: str | int) -> str:
    """`field_path("entity", "schema", "kind", "values", 0)` -> `"entity.schema.kind.values[0]"`."""
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part:
            path = f"{path}.{part}" if path else part
    return path


def describe(value: Any) -> str:
    """A short, JSON-flavoured description of a value for problem messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:37] + "...")
    return repr(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # JSON true is not 1


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _bool_from_text(text: str) -> bool | str:
    return {"true": True, "false": False}.get(text.strip().lower(), text)


def _number_from_text(convert: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            return convert(text.strip())
        except ValueError:
            return text

    return parse


def is_http_url(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 -- raises ValueError on a malformed port
    except ValueError:
        return False
    return parts.scheme in {"http", "https"} and bool(parts.hostname)


@dataclass(frozen=True)
class Expected:
    """A kind of JSON value: its description for messages, a test, and how `env:` text converts to it."""

    description: str
    accepts: Callable[[Any], bool]
    from_text: Callable[[str], Any] | None = None


STRING = Expected("a string", lambda v: isinstance(v, str))
NON_EMPTY_STRING = Expected("a non-empty string", lambda v: isinstance(v, str) and bool(v.strip()))
BOOLEAN = Expected("true or false", lambda v: isinstance(v, bool), _bool_from_text)
NUMBER = Expected("a number", _is_number, _number_from_text(float))
POSITIVE_NUMBER = Expected("a positive number", lambda v: _is_number(v) and v > 0, _number_from_text(float))
POSITIVE_INT = Expected("a positive integer", lambda v: _is_int(v) and v > 0, _number_from_text(int))
NON_NEGATIVE_INT = Expected("a non-negative integer", lambda v: _is_int(v) and v >= 0, _number_from_text(int))
OBJECT = Expected("an object", lambda v: isinstance(v, dict))
ARRAY = Expected("an array", lambda v: isinstance(v, list))
HTTP_URL = Expected("an absolute http(s) URL", is_http_url)


class FileChecker:
    """Validates the JSON of one file, appending every problem found to a shared list."""

    def __init__(self, file: str, problems: list[ConfigProblem]) -> None:
        self.file = file
        self.problems = problems
        self._env_fields: dict[str, str] = {}  # field path -> the env: reference its value came from
        self._unresolved: set[str] = set()  # fields whose env: reference failed (already reported)

    def add(self, field: str, message: str) -> None:
        self.problems.append(ConfigProblem(self.file, field, message))

    def check(self, value: Any, field: str, expected: Expected) -> Any:
        """`value` (converted from `env:` text when needed) if it is `expected`, else None and a problem."""
        if field in self._unresolved:
            return None
        reference = self._env_fields.get(field)
        if reference is not None and expected.from_text is not None and isinstance(value, str):
            value = expected.from_text(value)
        if expected.accepts(value):
            return value
        source = f" (from {reference})" if reference else ""
        self.add(field, f"expected {expected.description}, got {describe(value)}{source}")
        return None

    def get(
        self,
        data: Mapping[str, Any],
        key: str,
        expected: Expected,
        *,
        parent: str = "",
        required: bool = False,
        default: Any = None,
    ) -> Any:
        """`data[key]` checked against `expected`; `default` when absent (null counts as absent) or wrong."""
        field = field_path(parent, key)
        value = data.get(key)
        if value is None:
            if required:
                self.add(field, f"is required ({expected.description})")
            return default
        checked = self.check(value, field, expected)
        return default if checked is None else checked

    def choice(
        self,
        data: Mapping[str, Any],
        key: str,
        options: Iterable[str],
        *,
        what: str,
        parent: str = "",
        required: bool = False,
        default: str | None = None,
    ) -> str | None:
        """`data[key]` if it is one of `options`, else `default` and a problem naming the options."""
        options = tuple(options)
        value = self.get(data, key, STRING, parent=parent, required=required)
        if value is None:
            return default
        if value not in options:
            self.add(field_path(parent, key), f"unknown {what} {value!r}; expected one of {', '.join(options)}")
            return default
        return value

    def kebab_name(self, value: str, field: str, what: str, example: str) -> bool:
        if KEBAB_NAME_RE.match(value):
            return True
        self.add(field, f"{what} {value!r} must be lower-case kebab-case (letters, digits, '-'), e.g. {example!r}")
        return False

    def resolve_env(self, value: Any, field: str = "", *, keep_references: bool = False) -> Any:
        """Replace every `env:NAME` string in `value` (recursively) by the variable's value.

        An unset or empty variable is a problem. With `keep_references` the references are only checked
        (credentials are resolved per call, later) and the raw strings are kept.
        """
        if isinstance(value, dict):
            return {
                key: self.resolve_env(item, field_path(field, key), keep_references=keep_references)
                for key, item in value.items()
            }
        if isinstance(value, list):
            return [
                self.resolve_env(item, field_path(field, index), keep_references=keep_references)
                for index, item in enumerate(value)
            ]
        if not (isinstance(value, str) and value.startswith(ENV_PREFIX)):
            return value
        resolved = self._env_value(value, field)
        if resolved is None:
            self._unresolved.add(field)
            return value
        if keep_references:
            return value
        self._env_fields[field] = value
        return resolved

    def _env_value(self, reference: str, field: str) -> str | None:
        name = reference[len(ENV_PREFIX) :]
        if not ENV_NAME_RE.match(name):
            self.add(field, f"{describe(reference)} is not a valid environment variable reference (env:NAME)")
            return None
        value = os.environ.get(name, "")
        if not value:
            self.add(field, f"environment variable {name} is not set or empty (referenced as {reference})")
            return None
        return value
