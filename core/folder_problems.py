"""Configuration problems: what is wrong, in which file, at which field.

Loading an agent folder collects every problem of every file (core.folder_models turns each pydantic
validation error into one) and raises one `AgentFolderError` listing them all, so a broken folder is fixed
in one round instead of one error at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ConfigProblem:
    file: str  # relative to the agent folder; "" is the folder itself
    field: str  # dotted path inside the file; "" is the whole file
    message: str

    def __str__(self) -> str:
        return ": ".join(part for part in (self.file, self.field, self.message) if part)


class AgentFolderError(Exception):
    def __init__(self, path: Path, problems: list[ConfigProblem]) -> None:
        self.path = path
        self.problems = list(problems)
        super().__init__(str(self))

    def __str__(self) -> str:
        count = len(self.problems)
        header = f"The agent folder {self.path} has {count} problem{'' if count == 1 else 's'}:"
        return "\n".join([header, *(f"  {problem}" for problem in self.problems)])


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
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, str):
        return repr(str(value) if len(value) <= 40 else value[:37] + "...")
    return repr(value)
