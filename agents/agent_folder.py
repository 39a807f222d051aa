"""The agent folder: loading, validation, the deploy id, and the agent this process serves.

Loading validates everything it can and raises one `AgentFolderError` listing every problem, each
naming the file and the field, so a broken folder is fixed in one round instead of one error at a time.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings

from connections.specs import ConnectionSpec, parse_connection
from core.folder_problems import (
    BOOLEAN,
    HTTP_URL,
    NON_EMPTY_STRING,
    OBJECT,
    POSITIVE_INT,
    POSITIVE_NUMBER,
    STRING,
    ConfigProblem,
    FileChecker,
    field_path,
)
from memory.config import MemoryConfig
from scoping.context import InvalidScope, validate_scope_id
from stores.definitions import StoreDefinition, parse_store

MANIFEST_FILE = "amodal.json"
DEV_SCOPES_FILE = ".amodal/scopes.json"
MODEL_PROVIDERS = ("anthropic", "local")
LOCAL_MODEL_NAME = "local"


@dataclass(frozen=True)
class ModelConfig:
    provider: str  # anthropic | local
    model: str
    base_url: str | None
    api_key: str | None  # None: the SDK reads ANTHROPIC_API_KEY itself


@dataclass(frozen=True)
class AgentLimits:
    max_turns: int = 15  # model calls per user message
    tool_timeout_seconds: float = 30
    max_session_tokens: int | None = None


@dataclass(frozen=True)
class KnowledgeDoc:
    name: str  # the file name without `.md`
    text: str


@dataclass(frozen=True)
class AgentFolder:
    path: Path
    name: str
    version: str
    description: str
    base_prompt: str
    main_model: ModelConfig
    require_scope: bool
    memory: MemoryConfig
    limits: AgentLimits
    connections: dict[str, ConnectionSpec]
    stores: dict[str, StoreDefinition]
    knowledge: tuple[KnowledgeDoc, ...]
    dev_scopes: dict[str, dict[str, str]]  # scope id -> credentials, from .amodal/scopes.json
    deploy_id: str


class AgentFolderError(Exception):
    def __init__(self, path: Path, problems: list[ConfigProblem]) -> None:
        self.path = path
        self.problems = list(problems)
        super().__init__(str(self))

    def __str__(self) -> str:
        count = len(self.problems)
        header = f"The agent folder {self.path} has {count} problem{'' if count == 1 else 's'}:"
        return "\n".join([header, *(f"  {problem}" for problem in self.problems)])


# --- Loading ----------------------------------------------------------------------------------------


def load_agent_folder(path: Path | str) -> AgentFolder:
    """Load and validate the agent folder at `path`; raises AgentFolderError listing every problem."""
    folder = Path(path).expanduser().resolve()
    problems: list[ConfigProblem] = []
    if not folder.is_dir():
        state = "is not a folder" if folder.exists() else "does not exist"
        problems.append(ConfigProblem("", "", f"the agent folder {folder} {state} (see AMODAL_AGENT_DIR)"))
        raise AgentFolderError(folder, problems)
    manifest = _load_manifest(folder, problems)
    connections = _load_connections(folder, problems)
    stores = _load_stores(folder, problems)
    knowledge = _load_knowledge(folder, problems)
    dev_scopes = _load_dev_scopes(folder, problems)
    if problems or manifest is None:
        raise AgentFolderError(folder, problems)
    return AgentFolder(
        path=folder,
        **manifest,
        connections=connections,
        stores=stores,
        knowledge=knowledge,
        dev_scopes=dev_scopes,
        deploy_id=compute_deploy_id(folder),
    )


_UNREADABLE = object()  # a file that could not be read or parsed (its problem is already reported)


def _read_text(folder: Path, relative: str, problems: list[ConfigProblem]) -> str | None:
    try:
        return (folder / relative).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        problems.append(ConfigProblem(relative, "", "is not valid UTF-8 text"))
    except OSError as error:
        problems.append(ConfigProblem(relative, "", f"cannot be read: {error.strerror or error}"))
    return None


def _read_json(folder: Path, relative: str, problems: list[ConfigProblem]) -> Any:
    text = _read_text(folder, relative, problems)
    if text is None:
        return _UNREADABLE
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        message = f"invalid JSON at line {error.lineno}, column {error.colno}: {error.msg}"
        problems.append(ConfigProblem(relative, "", message))
        return _UNREADABLE


def _is_ignored(name: str) -> bool:
    """Hidden entries (.amodal, .git, .DS_Store), caches and editor backups are not configuration."""
    return name.startswith(".") or name == "__pycache__" or name.endswith("~")


def _entries(folder: Path, relative: str, problems: list[ConfigProblem]) -> list[Path]:
    """The visible entries of an optional sub-folder, sorted by name."""
    directory = folder / relative
    if not directory.exists():
        return []
    if not directory.is_dir():
        problems.append(ConfigProblem(relative, "", "expected a folder"))
        return []
    return sorted((entry for entry in directory.iterdir() if not _is_ignored(entry.name)), key=lambda e: e.name)


def _load_manifest(folder: Path, problems: list[ConfigProblem]) -> dict[str, Any] | None:
    if not (folder / MANIFEST_FILE).is_file():
        message = "is missing: every agent folder needs one (name, version, models.main)"
        problems.append(ConfigProblem(MANIFEST_FILE, "", message))
        return None
    data = _read_json(folder, MANIFEST_FILE, problems)
    if data is _UNREADABLE:
        return None
    before = len(problems)
    manifest = _parse_manifest(FileChecker(MANIFEST_FILE, problems), data)
    return manifest if len(problems) == before else None


def _parse_manifest(checker: FileChecker, data: Any) -> dict[str, Any] | None:
    if checker.check(data, "", OBJECT) is None:
        return None
    data = checker.resolve_env(data)
    name = checker.get(data, "name", NON_EMPTY_STRING, required=True)
    version = checker.get(data, "version", NON_EMPTY_STRING, required=True)
    models = checker.get(data, "models", OBJECT, required=True)
    main_model = None if models is None else _parse_model(checker, models.get("main"), "models.main")
    scope = checker.get(data, "scope", OBJECT, default={})
    return {
        "name": name,
        "version": version,
        "description": checker.get(data, "description", STRING, default=""),
        "base_prompt": checker.get(data, "basePrompt", STRING, default=""),
        "main_model": main_model,
        "require_scope": checker.get(scope, "requireScope", BOOLEAN, parent="scope", default=False),
        "memory": _parse_memory(checker, checker.get(data, "memory", OBJECT, default={})),
        "limits": _parse_limits(checker, checker.get(data, "agent", OBJECT, default={})),
    }


def _parse_model(checker: FileChecker, value: Any, field: str) -> ModelConfig | None:
    if value is None:
        checker.add(field, "is required ({provider, model})")
        return None
    if checker.check(value, field, OBJECT) is None:
        return None
    provider = checker.choice(value, "provider", MODEL_PROVIDERS, what="model provider", parent=field, required=True)
    is_local = provider == "local"
    model = checker.get(
        value,
        "model",
        NON_EMPTY_STRING,
        parent=field,
        required=provider == "anthropic",
        default=LOCAL_MODEL_NAME if is_local else None,
    )
    base_url = checker.get(value, "baseUrl", HTTP_URL, parent=field)
    credentials = checker.get(value, "credentials", OBJECT, parent=field, default={})
    api_key = checker.get(credentials, "apiKey", NON_EMPTY_STRING, parent=field_path(field, "credentials"))
    if provider is None or model is None:
        return None
    return ModelConfig(provider=provider, model=model, base_url=base_url, api_key=api_key)


def _parse_memory(checker: FileChecker, memory: dict[str, Any]) -> MemoryConfig:
    defaults = MemoryConfig(enabled=False)
    return MemoryConfig(
        enabled=checker.get(memory, "enabled", BOOLEAN, parent="memory", default=defaults.enabled),
        max_entries=checker.get(memory, "maxEntries", POSITIVE_INT, parent="memory", default=defaults.max_entries),
        max_total_chars=checker.get(
            memory, "maxTotalChars", POSITIVE_INT, parent="memory", default=defaults.max_total_chars
        ),
    )


def _parse_limits(checker: FileChecker, agent: dict[str, Any]) -> AgentLimits:
    defaults = AgentLimits()
    timeout = checker.get(
        agent, "toolTimeoutSeconds", POSITIVE_NUMBER, parent="agent", default=defaults.tool_timeout_seconds
    )
    return AgentLimits(
        max_turns=checker.get(agent, "maxTurns", POSITIVE_INT, parent="agent", default=defaults.max_turns),
        tool_timeout_seconds=float(timeout),
        max_session_tokens=checker.get(agent, "maxSessionTokens", POSITIVE_INT, parent="agent"),
    )


def _load_connections(folder: Path, problems: list[ConfigProblem]) -> dict[str, ConnectionSpec]:
    connections: dict[str, ConnectionSpec] = {}
    for entry in _entries(folder, "connections", problems):
        relative = f"connections/{entry.name}"
        if not entry.is_dir():
            if entry.suffix == ".json":
                problems.append(ConfigProblem(relative, "", "a connection is a folder: connections/<name>/spec.json"))
            continue
        spec_file, access_file = f"{relative}/spec.json", f"{relative}/access.json"
        if not (folder / spec_file).is_file():
            problems.append(ConfigProblem(spec_file, "", "is missing: every connection folder needs one (baseUrl)"))
            continue
        spec_data = _read_json(folder, spec_file, problems)
        access_data = _read_json(folder, access_file, problems) if (folder / access_file).is_file() else None
        if spec_data is _UNREADABLE or access_data is _UNREADABLE:
            continue
        connection = parse_connection(entry.name, spec_data, access_data, problems, spec_file, access_file)
        if connection is not None:
            connections[connection.name] = connection
    return connections


def _load_stores(folder: Path, problems: list[ConfigProblem]) -> dict[str, StoreDefinition]:
    stores: dict[str, StoreDefinition] = {}
    declared_by: dict[str, str] = {}  # lower-cased store name -> the first file declaring it
    tool_owners: dict[str, str] = {}  # tool name -> the store file offering it
    for entry in _entries(folder, "stores", problems):
        if entry.suffix != ".json" or not entry.is_file():
            continue
        relative = f"stores/{entry.name}"
        data = _read_json(folder, relative, problems)
        if data is _UNREADABLE:
            continue
        declared = data.get("name") if isinstance(data, dict) else None
        _check_unique(declared if isinstance(declared, str) else entry.stem, relative, declared_by, problems)
        store = parse_store(entry.stem, data, problems, relative)
        if store is not None:
            _claim_tool_names(store, relative, tool_owners, problems)
            stores[store.name] = store
    return stores


def _check_unique(name: str, relative: str, declared_by: dict[str, str], problems: list[ConfigProblem]) -> None:
    # Case-insensitively: on macOS and Windows `Prefs.json` and `prefs.json` are the same file.
    first = declared_by.setdefault(name.lower(), relative)
    if first != relative:
        problems.append(ConfigProblem(relative, "name", f"store name {name!r} is already declared by {first}"))


def _claim_tool_names(
    store: StoreDefinition, relative: str, tool_owners: dict[str, str], problems: list[ConfigProblem]
) -> None:
    # `store_a_batch` is both the batch tool of store `a` and the write tool of store `a-batch`.
    for tool in (store.tool_name, f"{store.tool_name}_batch"):
        owner = tool_owners.setdefault(tool, relative)
        if owner != relative:
            problems.append(ConfigProblem(relative, "name", f"its tool name {tool!r} is also a tool of {owner}"))


def _load_knowledge(folder: Path, problems: list[ConfigProblem]) -> tuple[KnowledgeDoc, ...]:
    documents = []
    for entry in _entries(folder, "knowledge", problems):
        if entry.suffix == ".md" and entry.is_file():
            text = _read_text(folder, f"knowledge/{entry.name}", problems)
            if text is not None:
                documents.append(KnowledgeDoc(name=entry.stem, text=text.strip()))
    return tuple(documents)


def _load_dev_scopes(folder: Path, problems: list[ConfigProblem]) -> dict[str, dict[str, str]]:
    """`.amodal/scopes.json`: `{"<scope>": {"credentials": {"KEY": "value"}}}`, for development only."""
    if not (folder / DEV_SCOPES_FILE).is_file():
        return {}
    data = _read_json(folder, DEV_SCOPES_FILE, problems)
    checker = FileChecker(DEV_SCOPES_FILE, problems)
    if data is _UNREADABLE or checker.check(data, "", OBJECT) is None:
        return {}
    scopes: dict[str, dict[str, str]] = {}
    for scope_id, entry in data.items():
        field = scope_id if scope_id.isprintable() and scope_id else repr(scope_id)
        try:
            validate_scope_id(scope_id)
        except InvalidScope as error:
            checker.add(field, f"invalid scope id: {error}")
        credentials = _parse_dev_credentials(checker, entry, field)
        if credentials is not None:
            scopes[scope_id] = credentials
    return scopes


def _parse_dev_credentials(checker: FileChecker, entry: Any, field: str) -> dict[str, str] | None:
    if checker.check(entry, field, OBJECT) is None:
        return None
    credentials = checker.get(entry, "credentials", OBJECT, parent=field, required=True)
    if credentials is None:
        return None
    parent = field_path(field, "credentials")
    for key, value in credentials.items():
        if not key.strip():
            checker.add(parent, "a credential key must not be empty")
        checker.check(value, field_path(parent, key), STRING)
    return {key: value for key, value in credentials.items() if isinstance(value, str)}


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
        subdirectories[:] = [name for name in subdirectories if not _is_ignored(name)]
        for name in names:
            path = Path(directory, name)
            if not _is_ignored(name) and path.is_file():
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
