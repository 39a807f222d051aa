"""What every phase of the chat benchmark gets: the server, its client side, the options and the goals."""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, field

from benchmarks.figures import Goal
from benchmarks.http_client import Client
from benchmarks.observe import LogWatch
from benchmarks.server import BenchServer
from benchmarks.streams import Target

SAY_MESSAGE = "/say hello world from the benchmark"
SAY_TEXT = "hello world from the benchmark"
# Offline tools to try for the one-tool-call message, in order; the last always exists as a path.
TOOL_CANDIDATES: list[tuple[str, dict[str, object]]] = [
    ("memory", {"action": "list"}),
    ("query_store", {"store": "preferences"}),
]
MISSING_TOOL: tuple[str, dict[str, object]] = ("no_such_tool", {})
NO_TOOL_MARK = "There is no tool named"


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return self.end - time.monotonic()


@dataclass
class BenchContext:
    provider: str  # local | anthropic
    server: BenchServer
    target: Target
    args: argparse.Namespace
    deadline: Deadline
    log: LogWatch
    tool_message: str = ""
    goals: list[Goal] = field(default_factory=list)

    def goal(self, goal: str, value: float, limit: float | None, unit: str = "x", note: str = "") -> None:
        self.goals.append(Goal(self.provider, goal, value, limit, unit, note))


async def choose_tool(target: Target, client: Client) -> tuple[str, str]:
    """The `/tool` message to benchmark and a note saying which tool it is."""
    for name, arguments in TOOL_CANDIDATES:
        message = f"/tool {name} {json.dumps(arguments)}"
        result = await target.chat(client, message, 0)
        outcome = result.first("tool_call_result")
        if outcome is None:
            continue
        if outcome.get("status") == "success":
            return message, f"{name} {json.dumps(arguments)} (an offline tool of the agent; success)"
        if NO_TOOL_MARK not in str(outcome.get("error", "")):
            return message, f"{name} {json.dumps(arguments)} (an offline tool of the agent; returned an error)"
    name, arguments = MISSING_TOOL
    return (
        f"/tool {name} {json.dumps(arguments)}",
        f"{name} {{}} - the agent offers no offline tool, so this call goes through the tool path and "
        "returns an error result",
    )
