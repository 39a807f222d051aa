"""Shared fixtures: agent folders made for a test, tokens, API keys, and the fake Claude API."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agents.agent_folder import AgentFolder, load_agent_folder, set_current_agent
from scoping.services import create_api_key
from scoping.tokens import mint_token
from tests.fakes.fixtures import fake_anthropic  # noqa: F401  (a fixture)


def write_agent_folder(folder: Path, *, amodal: dict[str, Any] | None = None,
                       files: dict[str, Any] | None = None) -> Path:
    """A minimal valid agent folder; `amodal` is merged into amodal.json, `files` adds files
    (dicts are written as JSON, strings as text)."""
    manifest = {
        "name": "test-agent",
        "version": "0.0.1",
        "basePrompt": "You are a test agent.",
        "models": {"main": {"provider": "local", "model": "local"}},
    }
    manifest.update(amodal or {})
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "amodal.json").write_text(json.dumps(manifest))
    for relative, content in (files or {}).items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content if isinstance(content, str) else json.dumps(content))
    return folder


@pytest.fixture
def use_agent() -> Iterator[Callable[[Path | AgentFolder], AgentFolder]]:
    """Make a folder (or loaded AgentFolder) the server's agent for this test."""

    def use(folder: Path | AgentFolder) -> AgentFolder:
        agent = folder if isinstance(folder, AgentFolder) else load_agent_folder(folder)
        set_current_agent(agent)
        return agent

    yield use
    set_current_agent(None)


@pytest.fixture
def test_agent(tmp_path, use_agent) -> AgentFolder:
    """A plain agent on the local provider, scope not required."""
    return use_agent(write_agent_folder(tmp_path / "agent"))


@pytest.fixture
def jwt_header() -> Callable[..., dict[str, str]]:
    def header(scope_id: str, context: dict[str, str] | None = None, **kwargs: Any) -> dict[str, str]:
        return {"Authorization": "Bearer " + mint_token(scope_id=scope_id, context=context, **kwargs)}

    return header


@pytest.fixture
def api_key_header(db) -> Callable[..., dict[str, str]]:
    def header(scope_id: str | None = None, shared_write: bool = False) -> dict[str, str]:
        key = create_api_key(name="test key", scope_id=scope_id, shared_write=shared_write)
        return {"Authorization": "Bearer " + key.raw_key}

    return header
