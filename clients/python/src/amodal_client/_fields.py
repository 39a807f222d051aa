"""Reading a JSON object's fields with their types checked: a field of the wrong type is a ProtocolError that
names it, so a server that drifts from the contract fails loudly here instead of somewhere downstream.
Fields the reader is not asked about are ignored (newer servers may add fields)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from amodal_client.errors import ProtocolError

MISSING: Any = object()


class Fields:
    """The fields of one JSON object; `what` names it in errors ("the init event", "a session")."""

    def __init__(self, data: object, what: str) -> None:
        if not isinstance(data, dict):
            raise ProtocolError(f"{what} is not a JSON object: {data!r:.200}")
        self.data: dict[str, Any] = data
        self.what = what

    def _get(self, name: str, types: tuple[type, ...], label: str, default: Any = MISSING) -> Any:
        value = self.data.get(name, MISSING)
        if value is MISSING:
            if default is MISSING:
                raise ProtocolError(f"{self.what} has no {name!r} field.")
            return default
        # bool is an int in Python, but a JSON true is never a number here.
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise ProtocolError(f"{self.what}: {name!r} must be {label}, not {value!r:.100}.")
        return value

    def text(self, name: str, default: str | None = None) -> str:
        value: str = self._get(name, (str,), "a string", MISSING if default is None else default)
        return value

    def opt_text(self, name: str) -> str | None:
        """A string, or None when the field is null or absent."""
        value: str | None = self._get(name, (str, type(None)), "a string or null", None)
        return value

    def integer(self, name: str) -> int:
        value: int = self._get(name, (int,), "an integer")
        return value

    def opt_integer(self, name: str) -> int | None:
        value: int | None = self._get(name, (int, type(None)), "an integer or null", None)
        return value

    def opt_number(self, name: str) -> float | None:
        value: float | None = self._get(name, (int, float, type(None)), "a number or null", None)
        return None if value is None else float(value)

    def flag(self, name: str, default: bool | None = None) -> bool:
        value: bool = self._get(name, (bool,), "true or false", MISSING if default is None else default)
        return value

    def obj(self, name: str, default: dict[str, Any] | None = None) -> dict[str, Any]:
        value: dict[str, Any] = self._get(name, (dict,), "an object", MISSING if default is None else default)
        return value

    def array(self, name: str, default: list[Any] | None = None) -> list[Any]:
        value: list[Any] = self._get(name, (list,), "an array", MISSING if default is None else default)
        return value

    def texts(self, name: str, default: list[str] | None = None) -> list[str]:
        values = self.array(name, default)
        if not all(isinstance(value, str) for value in values):
            raise ProtocolError(f"{self.what}: {name!r} must be an array of strings.")
        return values

    def value(self, name: str, default: Any = MISSING) -> Any:
        """Any JSON value (required unless a default is given)."""
        return self._get(name, (object,), "a JSON value", default)

    def time(self, name: str) -> datetime:
        """An ISO-8601 date and time (`Z` or an offset)."""
        raw = self.text(name)
        try:
            return datetime.fromisoformat(raw)
        except ValueError:
            raise ProtocolError(f"{self.what}: {name!r} must be an ISO-8601 date and time, not {raw!r:.100}.") from None

    def opt_time(self, name: str) -> datetime | None:
        return None if self.data.get(name) is None else self.time(name)
