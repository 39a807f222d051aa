"""Pytest fixtures for the fake Anthropic API; import them into a conftest.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.anthropic_api import FakeAnthropic


@pytest.fixture
def fake_anthropic() -> Iterator[FakeAnthropic]:
    """A started FakeAnthropic, closed after the test."""
    with FakeAnthropic() as fake:
        yield fake
