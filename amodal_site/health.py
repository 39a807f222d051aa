"""GET /health: is this process able to serve? No auth; reveals no tenant data."""

from __future__ import annotations

import asyncio
import logging

from channels.layers import get_channel_layer
from django.db import connection
from django.http import JsonResponse

from agents.agent_folder import manifest_of
from core.agent_folder import current_agent
from core.db import db_call

logger = logging.getLogger(__name__)

CHANNEL_LAYER_TIMEOUT_SECONDS = 2.0


def check_database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:
        logger.exception("health: database check failed")
        return "error"
    return "ok"


async def check_channel_layer() -> str:
    """A round trip through the channel layer (Redis when configured)."""
    layer = get_channel_layer()
    if layer is None:
        return "not_configured"
    try:
        channel = await layer.new_channel("health.")
        await layer.send(channel, {"type": "health.ping"})
        await asyncio.wait_for(layer.receive(channel), CHANNEL_LAYER_TIMEOUT_SECONDS)
    except Exception:
        logger.exception("health: channel layer check failed")
        return "error"
    return "ok"


async def health(request):
    agent = current_agent()
    database = await db_call(check_database)()
    channel_layer = await check_channel_layer()
    healthy = database == "ok" and channel_layer == "ok"
    return JsonResponse(
        {
            "status": "ok" if healthy else "degraded",
            "agent": manifest_of(agent).name,
            "deploy_id": agent.deploy_id,
            "database": database,
            "channel_layer": channel_layer,
        },
        status=200 if healthy else 503,
    )
