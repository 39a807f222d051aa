"""amodal.json's `memory` section, and how memory reads it for an agent.

The agent folder's manifest is parsed by a higher app (agents), which carries a `MemoryConfig`; memory reads
it without importing that app, through a hook that app fills in its `AppConfig.ready()`
(`memory_config_from`): the tool factory and the prompt section ask `memory_config_of(agent)` for the agent
they are given, the HTTP API asks `current_memory_config()` for the agent this process serves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured

from core.agent_folder import AgentFolder, current_agent


@dataclass(frozen=True)
class MemoryConfig:
    enabled: bool
    max_entries: int = 50
    max_total_chars: int = 8000


_config_of: Callable[[AgentFolder], MemoryConfig] | None = None


def memory_config_from(source: Callable[[AgentFolder], MemoryConfig]) -> None:
    """Say where an agent's memory settings are (called once, in an AppConfig.ready())."""
    global _config_of
    _config_of = source


def memory_config_of(agent: AgentFolder) -> MemoryConfig:
    if _config_of is None:
        raise ImproperlyConfigured(
            "No app has said where the agent's memory settings are (memory.config.memory_config_from)."
        )
    return _config_of(agent)


def current_memory_config() -> MemoryConfig:
    return memory_config_of(current_agent())
