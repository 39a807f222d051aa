"""Reading the event stream frame by frame, checking each event's shape, and bounded polling.

Every event a live test parses goes through `check_event`, which validates it against the committed
JSON Schema of the events (docs/schemas/events.schema.json, an independent validator: jsonschema), so
every live test checks that what the server sends is what the contract publishes."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import httpx
from jsonschema import Draft202012Validator

EVENTS_SCHEMA = Path(__file__).resolve().parents[2] / "docs" / "schemas" / "events.schema.json"
KEEP_ALIVE = ": keep-alive"
DONE_REASONS = {"model_stop", "max_turns", "user_abort", "error", "budget_exceeded"}
USAGE_KEYS = {"input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens"}
REQUIRED_FIELDS = {
    "init": {"session_id", "scope_id", "deploy_id"},
    "text_delta": {"content"},
    "tool_call_start": {"tool_id", "tool_name", "parameters"},
    "tool_call_result": {"tool_id", "status", "duration_ms"},
    "confirmation_required": {"tool_id", "correlation_id", "connection", "method", "endpoint", "params"},
    "usage": {"model", *USAGE_KEYS, "cost_micros"},
    "error": {"code", "message"},
    "done": {"reason", "usage"},
    "auth_ok": set(),  # WebSocket only
}

T = TypeVar("T")


@dataclass(frozen=True)
class Frame:
    """One frame of the stream: a `data:` event or a comment, and which network read completed it."""

    raw: str
    read_index: int
    event: dict[str, Any] | None  # None for a comment frame

    @property
    def is_comment(self) -> bool:
        return self.event is None

    @property
    def type(self) -> str | None:
        return None if self.event is None else self.event["type"]


def parse_timestamp(value: object) -> datetime:
    assert isinstance(value, str), f"timestamp must be a string, got {value!r}"
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@cache
def events_schema() -> dict[str, Any]:
    schema = json.loads(EVENTS_SCHEMA.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return schema


@cache
def event_validator(kind: object) -> Draft202012Validator:
    """The validator of one event type (its errors name the field), or of the union for an unknown type."""
    schema = events_schema()
    ref = schema["discriminator"]["mapping"].get(kind) if isinstance(kind, str) else None
    return Draft202012Validator({"$defs": schema["$defs"], "$ref": ref} if ref else schema)


def schema_errors(item: object) -> list[str]:
    """Where `item` breaks the published event schema (empty when it is a valid event)."""
    kind = item.get("type") if isinstance(item, dict) else None
    errors = event_validator(kind).iter_errors(item)
    return [f"{'/'.join(map(str, error.absolute_path)) or '(event)'}: {error.message}" for error in errors]


def check_event(item: object) -> dict[str, Any]:
    """The event's shape as SPEC §3 lists it: `type`, its fields, an ISO-8601 `timestamp`; and valid
    against the published JSON Schema."""
    assert isinstance(item, dict), item
    problems = schema_errors(item)
    assert not problems, f"{item.get('type')} event breaks docs/schemas/events.schema.json: {problems}: {item}"
    kind = item.get("type")
    assert kind in REQUIRED_FIELDS, f"unknown event type in {item}"
    missing = REQUIRED_FIELDS[kind] - item.keys()
    assert not missing, f"{kind} lacks {sorted(missing)}: {item}"
    parse_timestamp(item.get("timestamp"))
    if kind == "text_delta":
        assert isinstance(item["content"], str) and item["content"]
    elif kind == "tool_call_result":
        assert item["status"] in {"success", "error"}
        assert ("result" in item) if item["status"] == "success" else ("error" in item), item
        assert isinstance(item["duration_ms"], int)
    elif kind == "usage":
        assert all(isinstance(item[key], int) and item[key] >= 0 for key in USAGE_KEYS), item
    elif kind == "done":
        assert item["reason"] in DONE_REASONS, item
        usage = item["usage"]
        assert USAGE_KEYS | {"total_tokens", "cost_micros"} <= usage.keys(), usage
        assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"], usage
    return item


def parse_frame(raw: str, read_index: int) -> Frame:
    """A frame without its blank-line terminator: exactly `: keep-alive` or `data: <one-line JSON>`."""
    if raw == KEEP_ALIVE:
        return Frame(raw, read_index, None)
    assert raw.startswith("data: "), f"not a data frame: {raw!r}"
    assert "\n" not in raw and "\r" not in raw, f"a frame must be one line: {raw!r}"
    return Frame(raw, read_index, check_event(json.loads(raw[len("data: ") :])))


def iter_frames(response: httpx.Response) -> Iterator[Frame]:
    """Frames as they arrive, each tagged with the index of the network read that completed it."""
    buffer = ""
    for read_index, chunk in enumerate(response.iter_text()):
        buffer += chunk
        while "\n\n" in buffer:
            raw, buffer = buffer.split("\n\n", 1)
            yield parse_frame(raw, read_index)
    assert buffer == "", f"the stream ended inside a frame: {buffer!r}"


def events_of(frames: list[Frame]) -> list[dict[str, Any]]:
    return [frame.event for frame in frames if frame.event is not None]


def check_stream(events: list[dict[str, Any]]) -> None:
    """`init` first and only once, `done` last and only once."""
    types = [item["type"] for item in events]
    assert types and types[0] == "init", types
    assert types[-1] == "done", types
    assert types.count("init") == 1 and types.count("done") == 1, types


def text_of(events: list[dict[str, Any]]) -> str:
    return "".join(item["content"] for item in events if item["type"] == "text_delta")


def poll(
    check: Callable[[], T | None], *, timeout: float = 15.0, interval: float = 0.2, what: str = "the condition"
) -> T:
    """Call `check` until it returns something truthy, for at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} did not happen within {timeout:g} s (last: {last!r})")
        time.sleep(interval)
