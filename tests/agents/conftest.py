"""Fixtures of the agents tests."""

from __future__ import annotations

import pytest

from agents.runtime.providers.anthropic import AnthropicProvider


@pytest.fixture(autouse=True)
def fresh_anthropic_clients():
    """SDK clients are shared per endpoint, and each test's asyncio.run has its own event loop: a client
    (and its connection pool) never outlives the test that made it."""
    AnthropicProvider._shared.clear()
    yield
    AnthropicProvider._shared.clear()
