"""GET /health: is this process able to serve? No auth; reveals no tenant data."""

from __future__ import annotations

import asyncio
import logging

from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection
from django.http import JsonResponse

from agents.agent_folder import manifest_of
from core.agent_folder import current_agent
from core.db import db_call
from scoping import row_security

logger = logging.getLogger(__name__)

CHANNEL_LAYER_TIMEOUT_SECONDS = 2.0


def check_database() -> tuple[str, str]:
    """The database's answer, and row-level security's state ("off" when the setting is off): one hand-off."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:
        logger.exception("health: database check failed")
        return "error", "error" if settings.AMODAL_DB_ROW_SECURITY else "off"
    return "ok", check_row_security()


def check_row_security() -> str:
    """With AMODAL_DB_ROW_SECURITY on, a process whose every scoped query would fail (the role missing, not its
    to switch to, or tables without their policy) is not able to serve: said here, and in the log."""
    if not settings.AMODAL_DB_ROW_SECURITY:
        return "off"
    try:
        problem = row_security.installation_problem(connection)
    except Exception:
        logger.exception("health: row-level security check failed")
        return "error"
    if problem:
        logger.error("health: row-level security is on but %s: run `manage.py migrate` (docs/security.md)", problem)
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
    database, row_security_state = await db_call(check_database)()
    channel_layer = await check_channel_layer()
    healthy = database == "ok" and channel_layer == "ok" and row_security_state != "error"
    return JsonResponse(
        {
            "status": "ok" if healthy else "degraded",
            "agent": manifest_of(agent).name,
            "deploy_id": agent.deploy_id,
            "database": database,
            "channel_layer": channel_layer,
            "row_security": row_security_state,
        },
        status=200 if healthy else 503,
    )
