"""agent.maxContextTokens (SPEC §1): the model is sent the newest whole exchanges that fit, the rest is
left out, and replay says so."""

from __future__ import annotations

import asyncio

import pytest
from django.urls import reverse

from agents.models import Message, MessageRole
from core.tools import Tool, ToolResult
from tests.conftest import claude_agent_folder

LONG = "x" * 2000  # about 500 tokens a message


@pytest.fixture
def small_window_agent(tmp_path, use_agent, fake_anthropic, register_tools):
    async def echo(context, arguments):
        return ToolResult("echoed")

    register_tools(Tool("t_echo", "Echo.", {"type": "object"}, echo))
    amodal = {"agent": {"maxContextTokens": 2500}}
    return use_agent(claude_agent_folder(tmp_path / "agent", fake_anthropic.base_url, amodal=amodal))


@pytest.mark.django_db(transaction=True)
def test_old_exchanges_are_left_out_whole_and_recorded(
    small_window_agent, fake_anthropic, chat, jwt_header, client, admin_user
):
    headers = jwt_header("tenant-a")
    for index in range(6):
        if index == 2:
            fake_anthropic.queue_tool_use("t_echo", {"n": index})
        fake_anthropic.queue_text(f"answer {index}")

    async def conversation() -> str:
        first = await chat.astream({"message": f"{LONG} 0"}, headers)
        session_id = first.events[0]["session_id"]
        for index in range(1, 6):
            result = await chat.astream({"message": f"{LONG} {index}", "session_id": session_id}, headers)
            assert result.events[-1]["reason"] == "model_stop"
        return session_id

    session_id = asyncio.run(conversation())
    requests = [request.json for request in fake_anthropic.message_requests()]
    last = requests[-1]["messages"]
    assert last[0]["role"] == "user" and last[0]["content"].startswith(LONG)  # starts at an exchange
    assert last[-1]["content"] == f"{LONG} 5"
    assert len(last) < 2 * 6 + 2  # some exchanges were dropped
    for request in requests:
        blocks = [b for m in request["messages"] if isinstance(m["content"], list) for b in m["content"]]
        uses = {b["id"] for b in blocks if b["type"] == "tool_use"}
        assert uses == {b["tool_use_id"] for b in blocks if b["type"] == "tool_result"}
    latest = Message.all_scopes.filter(session_id=session_id, role=MessageRole.ASSISTANT).order_by("-seq").first()
    assert latest.context_dropped >= 1
    first_answer = Message.all_scopes.filter(session_id=session_id, role=MessageRole.ASSISTANT).order_by("seq").first()
    assert first_answer.context_dropped == 0

    client.force_login(admin_user)
    page = client.get(reverse("studio:replay", args=[session_id])).content.decode()
    assert f"{latest.context_dropped} earlier exchange" in page
    assert "left out of the context" in page
