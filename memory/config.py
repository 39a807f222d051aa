"""amodal.json's `memory` section, and where the serving agent's settings come from.

The agent folder (parsed by a higher app) carries a `MemoryConfig`; memory reads it without importing that
app: the tool factory and the prompt section get the agent as their argument (anything with a `memory`
attribute, `MemoryAgent`), and the HTTP API asks `current_memory_config()`, a hook the app that loads the
agent folder fills in its `AppConfig.ready()` (`memory_config_from`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from django.core.exceptions import ImproperlyConfigured


@dataclass(frozen=True)
class MemoryConfig:
    enabled: bool
    max_entries: int = 50
    max_total_chars: int = 8000


class MemoryAgent(Protocol):
    """What memory reads from an agent: its `memory` settings."""

    @property
    def memory(self) -> MemoryConfig: ...


_config_source: Callable[[], MemoryConfig] | None = None


def memory_config_from(source: Callable[[], MemoryConfig]) -> None:
    """Say where the serving agent's memory settings are (called once, in an AppConfig.ready())."""
    global _config_source
    _config_source = source


def current_memory_config() -> MemoryConfig:
    if _config_source is None:
        raise ImproperlyConfigured("No app has said where the agent's memory settings are "
                                   "(memory.config.memory_config_from).")
    return _config_source()
