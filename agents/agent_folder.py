"""The agent's own parts of its folder: the manifest (`amodal.json`) and `knowledge/*.md`.

The manifest file is a pydantic model (core.folder_models: strict types, the project's messages, a JSON
Schema); the loaded manifest is a `Manifest`, named the way the runtime uses it, reached through
`manifest_of(agent)`, and the knowledge through `knowledge_of(agent)` (typed: see core.agent_folder for
why accessors rather than attributes). Loading, the deploy id and the agent of this process are
core.agent_folder's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import Field, model_validator

from core.agent_folder import AgentFolder, FileKind, FolderPart, FolderReader, PartNotLoaded
from core.folder_models import (
    Boolean,
    Choice,
    FolderModel,
    HttpUrl,
    NonEmptyString,
    PositiveInt,
    PositiveNumber,
    String,
    raise_problems,
)
from memory.config import MemoryConfig

MANIFEST_FILE = "amodal.json"
LOCAL_MODEL_NAME = "local"
# Claude's window is 200k tokens; the default leaves room for the answer and the estimate's error.
DEFAULT_CONTEXT_TOKENS = 180_000


# --- amodal.json --------------------------------------------------------------------------------------


class ModelCredentials(FolderModel):
    api_key: NonEmptyString | None = Field(
        None, description="env:ANTHROPIC_API_KEY-style; left out, the SDK reads ANTHROPIC_API_KEY itself."
    )


class MainModel(FolderModel):
    """The model that answers: `anthropic` (the Claude API) or `local` (deterministic, offline)."""

    hint = "{provider, model}"

    provider: Annotated[Literal["anthropic", "local"], Choice("model provider")] = Field(
        description="anthropic: the Claude API through the anthropic SDK; local: offline, for development and tests."
    )
    model: NonEmptyString | None = Field(None, description="The model id; required for anthropic.")
    base_url: HttpUrl | None = Field(
        None, description="Another endpoint of the Messages API; https://host and https://host/v1 both work."
    )
    credentials: ModelCredentials = Field(ModelCredentials(), description="The API key, if not from the environment.")

    @model_validator(mode="after")
    def _model_for_anthropic(self) -> MainModel:
        if self.provider == "anthropic" and self.model is None:
            raise_problems([(("model",), "is required (a non-empty string)")], self)
        return self


class Models(FolderModel):
    main: MainModel = Field(description="The model that answers every message.")


class ScopeSettings(FolderModel):
    require_scope: Boolean = Field(False, description="Refuse every request that carries no scope.")


class MemorySettings(FolderModel):
    enabled: Boolean = Field(False, description="Offer the memory tool and put the scope's entries in the prompt.")
    max_entries: PositiveInt = Field(50, description="Entries per scope.")
    max_total_chars: PositiveInt = Field(8000, description="Characters of all entries of a scope.")


class AgentSettings(FolderModel):
    max_turns: PositiveInt = Field(15, description="Model calls per user message.")
    tool_timeout_seconds: PositiveNumber = Field(30.0, description="Seconds a tool call may take.")
    max_session_tokens: PositiveInt | None = Field(None, description="Tokens a session may use in all.")
    max_context_tokens: PositiveInt = Field(
        DEFAULT_CONTEXT_TOKENS,
        description="Estimated input tokens a model call may carry; older whole exchanges are left out beyond it.",
    )


class BudgetSettings(FolderModel):
    """A cap on each scope's spend per UTC calendar period; an operator may set another cap for one scope
    (the Scope admin). Unknown keys are refused: a misspelt cap must not silently mean "no cap"."""

    model_config = {"extra": "forbid"}
    hint = "{period, scopeCostMicros}"
    noun = "budgets"

    period: Annotated[Literal["day", "month"], Choice("budget period")] = Field(
        description="The calendar period a cap covers, in UTC: day (resets at 00:00 UTC) or month (on the 1st)."
    )
    scope_cost_micros: PositiveInt = Field(
        description="What each scope may spend per period, in micro-dollars (1 USD = 1000000)."
    )
    reserve_cost_micros: PositiveInt | None = Field(
        None,
        description=(
            "What a running message counts for until its cost is recorded, in micro-dollars; default 1% of"
            " the scope's cap. Set it to what your costliest message costs."
        ),
    )


class ManifestFile(FolderModel):
    """amodal.json: the agent's name, version, models, scope rule, memory, limits and budgets. Any value may be
    env:NAME (the server's environment, read at start-up)."""

    model_config = {"title": "amodal.json"}

    name: NonEmptyString = Field(description="The agent's name.")
    version: NonEmptyString = Field(description="The configuration's version, recorded with each deploy.")
    description: String = Field("", description="What the agent does; its prompt when basePrompt is empty.")
    base_prompt: String = Field("", description="The start of the system prompt.")
    models: Models = Field(description="The models the agent uses.")
    scope: ScopeSettings = Field(ScopeSettings(), description="How requests choose their scope.")
    memory: MemorySettings = Field(MemorySettings(), description="Per-scope facts the agent remembers.")
    agent: AgentSettings = Field(AgentSettings(), description="Limits of the agent loop.")
    budgets: BudgetSettings | None = Field(None, description="Spend caps per scope; left out, no cap.")


# --- What the runtime uses ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelConfig:
    provider: str  # anthropic | local
    model: str
    base_url: str | None
    api_key: str | None  # None: the SDK reads ANTHROPIC_API_KEY itself


@dataclass(frozen=True)
class AgentLimits:
    max_turns: int  # model calls per user message
    tool_timeout_seconds: float
    max_session_tokens: int | None
    max_context_tokens: int  # the model's input, estimated: older whole exchanges are dropped beyond it


@dataclass(frozen=True)
class Budgets:
    period: str  # day | month (UTC)
    scope_cost_micros: int  # each scope's cap, unless its Scope row overrides it
    reserve_cost_micros: int | None  # a running message's reservation; None: 1% of the scope's cap


@dataclass(frozen=True)
class Manifest:
    name: str
    version: str
    description: str
    base_prompt: str
    main_model: ModelConfig
    require_scope: bool
    memory: MemoryConfig
    limits: AgentLimits
    budgets: Budgets | None  # None: no spend cap


@dataclass(frozen=True)
class KnowledgeDoc:
    name: str  # the file name without `.md`
    text: str


def load_manifest(reader: FolderReader) -> Manifest:
    if not reader.is_file(MANIFEST_FILE):
        reader.add(MANIFEST_FILE, "", "is missing: every agent folder needs one (name, version, models.main)")
        raise PartNotLoaded
    manifest = reader.load(ManifestFile, MANIFEST_FILE)
    if manifest is None:
        raise PartNotLoaded
    main = manifest.models.main
    return Manifest(
        name=manifest.name,
        version=manifest.version,
        description=manifest.description,
        base_prompt=manifest.base_prompt,
        main_model=ModelConfig(
            provider=main.provider,
            model=main.model or LOCAL_MODEL_NAME,
            base_url=messages_api_root(main.base_url),
            api_key=main.credentials.api_key,
        ),
        require_scope=manifest.scope.require_scope,
        memory=MemoryConfig(**manifest.memory.model_dump()),
        limits=AgentLimits(**manifest.agent.model_dump()),
        budgets=None if manifest.budgets is None else Budgets(**manifest.budgets.model_dump()),
    )


def messages_api_root(url: str | None) -> str | None:
    """`https://host/v1` (the seed's form) and `https://host` both reach `https://host/v1/messages`."""
    if url is None:
        return None
    trimmed = url.rstrip("/")
    return trimmed.removesuffix("/v1") if trimmed.endswith("/v1") else trimmed


def load_knowledge(reader: FolderReader) -> tuple[KnowledgeDoc, ...]:
    documents = []
    for entry in reader.entries("knowledge"):
        if entry.suffix == ".md" and entry.is_file():
            text = reader.text(f"knowledge/{entry.name}")
            if text is not None:
                documents.append(KnowledgeDoc(name=entry.stem, text=text.strip()))
    return tuple(documents)


MANIFEST: FolderPart[Manifest] = FolderPart(
    "manifest", order=0, load=load_manifest, files=(FileKind("amodal", MANIFEST_FILE, ManifestFile),)
)
KNOWLEDGE: FolderPart[tuple[KnowledgeDoc, ...]] = FolderPart("knowledge", order=30, load=load_knowledge)


def manifest_of(agent: AgentFolder) -> Manifest:
    """The agent's amodal.json."""
    return agent.part(MANIFEST)


def knowledge_of(agent: AgentFolder) -> tuple[KnowledgeDoc, ...]:
    """The agent's knowledge/*.md, by file name."""
    return agent.part(KNOWLEDGE)
