"""The agent folder: the loading framework, the deploy id, and the agent this process serves.

`core` knows the folder only as a set of **parts**. Each app declares the part it reads (a `FolderPart`:
its loader and the file kinds it validates, each a pydantic model with a JSON Schema) and registers it in
its `AppConfig.ready()`: agents the manifest (`amodal.json`) and `knowledge/`, connections
`connections/` and `.amodal/scopes.json`, stores `stores/`. `load_agent_folder` runs every registered
part against one `FolderReader`, which collects every problem of every file, then raises one
`AgentFolderError` listing them all, or returns the `AgentFolder`: the folder's path, its deploy id and
each part's value. Parts report their problems in `order` (the folder layout of SPEC §1), not in the order
apps register. `current_agent()` loads the folder of `AMODAL_AGENT_DIR` once; amodal_site, last in
INSTALLED_APPS, calls it at start-up, when every part is registered.

Typed access: a part is also the typed key to its value. `agent.part(STORES)` is a
`dict[str, StoreDefinition]` for mypy because `STORES` is a `FolderPart[dict[str, StoreDefinition]]`,
and each owner wraps it in a named accessor (`stores_of(agent)`, `connections_of(agent)`,
`manifest_of(agent)`). This beats a Protocol per app (`agent.stores`): the record stays one class that
core can build without knowing any app, callers keep full typing, and a part that was never registered
fails loudly with its name instead of as a missing attribute.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Generic, TypeVar, cast

from django.conf import settings
from pydantic import BaseModel

from core.folder_models import validate_file
from core.folder_problems import AgentFolderError, ConfigProblem

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class FileKind:
    """One kind of JSON file in the folder: the model that validates it and publishes its JSON Schema
    (`docs/schemas/<name>.schema.json`)."""

    name: str  # "amodal", "spec", "access", "store", "scopes"
    path: str  # where it lives, e.g. "connections/<name>/spec.json"
    model: type[BaseModel]


@dataclass(frozen=True, eq=False)
class FolderPart(Generic[T]):
    """What one app reads from the folder. `load` reports its problems to the reader and returns the
    part's value, or raises `PartNotLoaded` when it has nothing to give (its problems are reported)."""

    name: str
    order: int  # where its problems come in the report: the order of the folder layout (SPEC §1)
    load: Callable[[FolderReader], T]
    files: tuple[FileKind, ...] = ()


class PartNotLoaded(Exception):
    """Raised by a part's loader that has no value to give; it has reported why."""


@dataclass(frozen=True)
class AgentFolder:
    path: Path
    deploy_id: str
    parts: Mapping[str, Any] = field(repr=False)  # part name -> the part's value

    def part(self, part: FolderPart[T]) -> T:
        try:
            return cast(T, self.parts[part.name])
        except KeyError:
            raise LookupError(
                f"The agent folder has no {part.name!r} part: its app registers it in AppConfig.ready() "
                "(register_folder_part), before the folder is loaded."
            ) from None


# --- The registry of parts ---------------------------------------------------------------------------

_parts: dict[str, FolderPart[Any]] = {}


def register_folder_part(part: FolderPart[Any]) -> FolderPart[Any]:
    registered = _parts.setdefault(part.name, part)
    if registered is not part:
        raise ValueError(f"Two agent folder parts are named {part.name!r}.")
    return part


def folder_parts() -> list[FolderPart[Any]]:
    return sorted(_parts.values(), key=lambda part: part.order)


def folder_file_kinds() -> list[FileKind]:
    return [kind for part in folder_parts() for kind in part.files]


# --- Reading -----------------------------------------------------------------------------------------

UNREADABLE = object()  # a file that could not be read or parsed (its problem is already reported)


def is_ignored(name: str) -> bool:
    """Hidden entries (.amodal, .git, .DS_Store), caches and editor backups are not configuration."""
    return name.startswith(".") or name == "__pycache__" or name.endswith("~")


class FolderReader:
    """What a part reads the folder through: paths relative to the folder, every problem collected."""

    def __init__(self, folder: Path, problems: list[ConfigProblem]) -> None:
        self.folder = folder
        self.problems = problems

    def add(self, file: str, field: str, message: str) -> None:
        self.problems.append(ConfigProblem(file, field, message))

    def is_file(self, relative: str) -> bool:
        return (self.folder / relative).is_file()

    def text(self, relative: str) -> str | None:
        try:
            return (self.folder / relative).read_text(encoding="utf-8-sig")
        except UnicodeDecodeError:
            self.add(relative, "", "is not valid UTF-8 text")
        except OSError as error:
            self.add(relative, "", f"cannot be read: {error.strerror or error}")
        return None

    def json(self, relative: str) -> Any:
        """The file's JSON, or UNREADABLE (with its problem reported)."""
        text = self.text(relative)
        if text is None:
            return UNREADABLE
        try:
            return json.loads(text)
        except json.JSONDecodeError as error:
            self.add(relative, "", f"invalid JSON at line {error.lineno}, column {error.colno}: {error.msg}")
            return UNREADABLE

    def validate(
        self, model: type[M], data: Any, relative: str, *, context: Mapping[str, Any] | None = None
    ) -> M | None:
        """`data` (the JSON of `relative`) as `model`, or None with its problems reported."""
        return validate_file(model, data, relative, self.problems, context=context)

    def load(self, model: type[M], relative: str, *, context: Mapping[str, Any] | None = None) -> M | None:
        data = self.json(relative)
        return None if data is UNREADABLE else self.validate(model, data, relative, context=context)

    def entries(self, relative: str) -> list[Path]:
        """The visible entries of an optional sub-folder, sorted by name."""
        directory = self.folder / relative
        if not directory.exists():
            return []
        if not directory.is_dir():
            self.add(relative, "", "expected a folder")
            return []
        return sorted((entry for entry in directory.iterdir() if not is_ignored(entry.name)), key=lambda e: e.name)


def load_agent_folder(path: Path | str) -> AgentFolder:
    """Load and validate the agent folder at `path`; raises AgentFolderError listing every problem."""
    folder = Path(path).expanduser().resolve()
    problems: list[ConfigProblem] = []
    if not folder.is_dir():
        state = "is not a folder" if folder.exists() else "does not exist"
        problems.append(ConfigProblem("", "", f"the agent folder {folder} {state} (see AMODAL_AGENT_DIR)"))
        raise AgentFolderError(folder, problems)
    reader = FolderReader(folder, problems)
    values: dict[str, Any] = {}
    for part in folder_parts():
        try:
            values[part.name] = part.load(reader)
        except PartNotLoaded:
            continue
    if problems:
        raise AgentFolderError(folder, problems)
    return AgentFolder(path=folder, deploy_id=compute_deploy_id(folder), parts=MappingProxyType(values))


# --- Deploy id --------------------------------------------------------------------------------------


def compute_deploy_id(folder: Path) -> str:
    """12 hex characters of a sha256 over every configuration file: its relative path and its bytes.

    Hidden entries are skipped, `.amodal/` in particular: development credentials are not part of a deploy.
    """
    digest = hashlib.sha256()
    for relative, file in _deploy_files(folder):
        content = file.read_bytes()
        # Length-prefixed so that moving bytes between a name and a content cannot collide.
        digest.update(f"{relative}\0{len(content)}\0".encode())
        digest.update(content)
    return digest.hexdigest()[:12]


def _deploy_files(folder: Path) -> list[tuple[str, Path]]:
    files = []
    for directory, subdirectories, names in os.walk(folder):
        subdirectories[:] = [name for name in subdirectories if not is_ignored(name)]
        for name in names:
            path = Path(directory, name)
            if not is_ignored(name) and path.is_file():
                files.append((path.relative_to(folder).as_posix(), path))
    return sorted(files)


# --- The agent of this process ----------------------------------------------------------------------

_loaded: dict[Path, AgentFolder] = {}  # resolved AMODAL_AGENT_DIR -> its agent
_override: AgentFolder | None = None


def current_agent() -> AgentFolder:
    """The agent of `settings.AMODAL_AGENT_DIR`, loaded once (or the one given to set_current_agent)."""
    if _override is not None:
        return _override
    path = Path(settings.AMODAL_AGENT_DIR).expanduser().resolve()
    agent = _loaded.get(path)
    if agent is None:
        agent = _loaded[path] = load_agent_folder(path)
    return agent


def set_current_agent(agent: AgentFolder | None) -> None:
    """Serve `agent` from now on; None forgets any override and every cached load (tests)."""
    global _override
    _override = agent
    if agent is None:
        _loaded.clear()


def load_current_agent_or_exit() -> AgentFolder:
    """current_agent(), or the problems on stderr and exit status 2: start-up shows no traceback."""
    try:
        return current_agent()
    except AgentFolderError as error:
        sys.stderr.write(f"{error}\n")
        raise SystemExit(2) from None
