"""A scope's display label and metadata (SPEC §10): what a SaaS sets so operators can tell its tenants apart.

The one validation of both, shared by the HTTP API (scoping.views) and the admin form (scoping.admin):

- `label`: text shown beside the raw id in Studio. Leading and trailing whitespace is trimmed; at most
  200 characters, every one printable (no NUL, no line breaks or other control characters); "" means none.
- `metadata`: a small JSON object (plan, region, CRM id...). At most 4096 bytes as compact UTF-8 JSON,
  nested at most 3 levels (`{"a": {"b": [1]}}` is 3), keys of 1 to 100 printable characters, no NUL
  or lone surrogate in any string, no NaN or Infinity.

The scope id stays the only key: neither field is ever used to find a scope's rows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from core.validation import json_depth_exceeds, json_text_problems

MAX_LABEL_CHARS = 200
MAX_METADATA_BYTES = 4096
MAX_METADATA_DEPTH = 3
MAX_METADATA_KEY_CHARS = 100
DETAIL_FIELDS = ("label", "metadata")


class InvalidScopeDetail(ValueError):
    """A label or metadata value that cannot be stored; `field` is a dotted path such as `metadata.plan`."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


def json_type_name(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number" if isinstance(value, int | float) else type(value).__name__)


def clean_label(value: object) -> str:
    """The label to store: trimmed, printable, at most MAX_LABEL_CHARS characters ("" clears it)."""
    if not isinstance(value, str):
        raise InvalidScopeDetail("label", f'must be a string (got {json_type_name(value)}); send "" to clear it.')
    label = value.strip()
    if len(label) > MAX_LABEL_CHARS:
        raise InvalidScopeDetail("label", f"must be at most {MAX_LABEL_CHARS} characters (got {len(label)}).")
    bad = next((char for char in label if not char.isprintable()), None)
    if bad is not None:
        raise InvalidScopeDetail(
            "label", f"must contain only printable characters (found U+{ord(bad):04X}: no NUL, line breaks or tabs)."
        )
    return label


def clean_metadata(value: object) -> dict[str, Any]:
    """The metadata to store: a small, shallow JSON object ({} clears it)."""
    if not isinstance(value, dict):
        got = json_type_name(value)
        raise InvalidScopeDetail("metadata", f"must be a JSON object (got {got}); send {{}} to clear it.")
    if json_depth_exceeds(value, MAX_METADATA_DEPTH):
        raise InvalidScopeDetail("metadata", f"must be nested at most {MAX_METADATA_DEPTH} levels deep.")
    check_metadata_keys(value, "metadata")
    for where, problem in json_text_problems(value, "metadata"):
        raise InvalidScopeDetail(where, problem + ".")
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except ValueError:
        raise InvalidScopeDetail("metadata", "must not contain NaN or Infinity (not JSON numbers).")
    except TypeError as exc:  # only from Python callers: JSON has no other types
        raise InvalidScopeDetail("metadata", f"must hold only JSON values ({exc}).")
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_METADATA_BYTES:
        raise InvalidScopeDetail(
            "metadata", f"must be at most {MAX_METADATA_BYTES} bytes as compact JSON (got {size} bytes)."
        )
    return value


def check_metadata_keys(value: object, where: str) -> None:
    """Every object key at any level: a string of 1 to MAX_METADATA_KEY_CHARS printable characters.
    Recursive, which is safe: the depth was checked first."""
    if isinstance(value, list):
        for index, item in enumerate(value):
            check_metadata_keys(item, f"{where}[{index}]")
    if not isinstance(value, dict):
        return
    for key, item in value.items():
        if not isinstance(key, str) or not 0 < len(key) <= MAX_METADATA_KEY_CHARS or not key.isprintable():
            raise InvalidScopeDetail(
                where, f"the key {ascii(key)} must be 1 to {MAX_METADATA_KEY_CHARS} printable characters."
            )
        check_metadata_keys(item, f"{where}.{key}")


@dataclass(frozen=True)
class ScopeDetailsChange:
    """What a request changes: None leaves a field as it is."""

    label: str | None = None
    metadata: dict[str, Any] | None = None


def parse_scope_details(body: object) -> ScopeDetailsChange:
    """A request body `{label?, metadata?}` checked whole: an object, no other fields, each field valid."""
    if not isinstance(body, dict):
        got = json_type_name(body)
        raise InvalidScopeDetail("body", f"must be a JSON object with label and/or metadata (got {got}).")
    unknown = sorted(str(name) for name in body if name not in DETAIL_FIELDS)
    if unknown:
        names = ", ".join(ascii(name[:40]) for name in unknown[:5]) + (", ..." if len(unknown) > 5 else "")
        raise InvalidScopeDetail("body", f"unknown field(s) {names}; only label and metadata may be set.")
    return ScopeDetailsChange(
        label=clean_label(body["label"]) if "label" in body else None,
        metadata=clean_metadata(body["metadata"]) if "metadata" in body else None,
    )
