"""Input checks every entry point shares, so bad input is a 400 naming the field and never reaches the
database (where it would be a 500):

- `load_json`: a request body (or query parameter) as JSON, nested at most 64 levels, UTF-8, no NaN.
  `JSONParser` is the same for DRF views (REST_FRAMEWORK's DEFAULT_PARSER_CLASSES).
- `check_text` / `check_json_text`: text safe to store. PostgreSQL refuses NUL (U+0000) in text and
  jsonb, and a lone surrogate (U+D800..U+DFFF) cannot be encoded as UTF-8 at all.
- `parse_whole_number`: `limit`, `offset`, ids: ASCII digits within bounds (`int("²")` fails and a
  20-digit offset overflows SQLite's INTEGER).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import IO, Any

from rest_framework import parsers

from core.errors import MAX_JSON_DEPTH, InvalidJson, ValidationFailed, too_deep

UNSAFE_TEXT_RE = re.compile("[\x00\ud800-\udfff]")
WHOLE_NUMBER_RE = re.compile(r"-?[0-9]{1,30}")


# --- Text safe to store --------------------------------------------------------------------------------


def text_problem(text: str) -> str | None:
    """Why `text` cannot be stored, or None."""
    match = UNSAFE_TEXT_RE.search(text)
    if match is None:
        return None
    if match.group() == "\x00":
        return "must not contain NUL characters (\\u0000)"
    return f"must not contain a lone surrogate (U+{ord(match.group()):04X}); send valid Unicode text"


def check_text(value: Any, field: str) -> None:
    """Raise a 400 validation_error naming `field` when `value` is a string that cannot be stored."""
    if isinstance(value, str) and (problem := text_problem(value)) is not None:
        raise ValidationFailed(f"{field}: {problem}.")


def json_text_problems(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """(field path, problem) for every key and string anywhere inside a JSON value, e.g.
    `("data.tags[2]", "must not contain ...")`. Iterative: any depth is fine."""
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if (problem := text_problem(item)) is not None:
                yield where, problem
        elif isinstance(item, dict):
            for key, child in reversed(list(item.items())):
                key = str(key)
                if (problem := text_problem(key)) is not None:
                    yield where, f"the key {ascii(key)} {problem}"
                    continue
                stack.append((child, f"{where}.{key}" if where else key))
        elif isinstance(item, list | tuple):
            stack.extend((child, f"{where}[{index}]") for index, child in reversed(list(enumerate(item))))


def check_json_text(value: Any, field: str) -> None:
    """Raise a 400 validation_error naming the first unsafe key or string inside `value`."""
    for where, problem in json_text_problems(value, field):
        raise ValidationFailed(f"{where}: {problem}.")


# --- JSON ------------------------------------------------------------------------------------------------


def json_depth_exceeds(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when objects and arrays nest deeper than `limit` (`[]` is depth 1). Iterative."""
    stack: list[tuple[Any, int]] = [(value, 1)] if isinstance(value, dict | list) else []
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON value")


def load_json(raw: bytes | str, *, field: str = "body") -> Any:
    """Parse JSON text from a caller; raises InvalidJson (400) naming `field`."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        value = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise too_deep(field) from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, NaN / Infinity
        raise InvalidJson(f"{field}: not valid JSON ({exc}).") from None
    if json_depth_exceeds(value):
        raise too_deep(field)
    return value


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser through `load_json`: depth-limited, UTF-8 only, no NaN."""

    def parse(
        self, stream: IO[bytes] | None, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None
    ) -> Any:
        return load_json(stream.read() if stream is not None else b"")


# --- Numbers in query strings -------------------------------------------------------------------------------


def parse_whole_number(raw: Any, field: str, *, minimum: int, maximum: int) -> int:
    """A whole number from query-string text (ASCII digits) or a JSON number, within [minimum, maximum];
    raises a 400 validation_error naming `field`."""
    problem = ValidationFailed(f"{field}: must be a whole number from {minimum} to {maximum}.")
    if isinstance(raw, bool):
        raise problem
    if isinstance(raw, float):
        if not raw.is_integer():
            raise problem
        raw = int(raw)
    if isinstance(raw, str):
        text = raw.strip()
        if not WHOLE_NUMBER_RE.fullmatch(text):
            raise problem
        raw = int(text)
    if not isinstance(raw, int) or not minimum <= raw <= maximum:
        raise problem
    return raw
