"""Fixtures for the connection tests: two recording HTTP servers (the API and an "evil" host), agent
folders with connections pointing at them, and a direct way to run the `request` tool."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from connections.tools import run_request
from core.agent_folder import AgentFolder
from core.tools import ToolContext, ToolResult
from scoping.context import scoped_db
from tests.conftest import write_agent_folder
from tests.connections.recorder import Recorder


@pytest.fixture
def api() -> Iterator[Recorder]:
    """The connection's API: records every request and answers JSON."""
    recorder = Recorder("api").start()
    yield recorder
    recorder.stop()


@pytest.fixture
def evil() -> Iterator[Recorder]:
    """Another host (another port): no call may ever reach it."""
    recorder = Recorder("evil").start()
    yield recorder
    recorder.stop()


MakeAgent = Callable[..., AgentFolder]


@pytest.fixture
def make_agent(tmp_path: Path, use_agent) -> MakeAgent:
    """`make_agent(connections={name: spec}, access={name: access}, files={...})`: write an agent folder
    with these connections, make it the server's agent and return it."""
    counter = iter(range(1000))

    def make(
        connections: dict[str, dict[str, Any]],
        *,
        access: dict[str, dict[str, Any]] | None = None,
        files: dict[str, Any] | None = None,
        amodal: dict[str, Any] | None = None,
    ) -> AgentFolder:
        all_files: dict[str, Any] = dict(files or {})
        for name, spec in connections.items():
            all_files[f"connections/{name}/spec.json"] = spec
        for name, rules in (access or {}).items():
            all_files[f"connections/{name}/access.json"] = rules
        folder = write_agent_folder(tmp_path / f"agent-{next(counter)}", amodal=amodal, files=all_files)
        return use_agent(folder)

    return make


def run_tool(
    agent: AgentFolder,
    arguments: dict[str, Any],
    *,
    scope_id: str = "tenant-a",
    context: dict[str, str] | None = None,
    session_id: str | None = None,
    tool_id: str = "toolu_test_0001",
) -> ToolResult:
    """Run the `request` tool once, in `scope_id`, as the agent loop would (outside any HTTP request)."""
    tool_context = ToolContext(
        agent=agent,
        scope_id=scope_id,
        scope_context=dict(context or {}),
        session_id=session_id or str(uuid.uuid4()),
        db=scoped_db(scope_id),
        tool_id=tool_id,
    )

    async def go() -> ToolResult:  # no ambient scope: the tool's database work goes through context.db
        return await run_request(tool_context, arguments)

    return asyncio.run(go())


@pytest.fixture
def request_tool() -> Callable[..., ToolResult]:
    return run_tool
