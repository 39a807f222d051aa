"""The `request` tool: the agent calls the SaaS's own APIs through the declared connections.

The model chooses the connection, method, endpoint, params and data. The runtime adds the tenant's
context (header, query, path or body, overriding the model) and the credentials, which the model never
sees: they are resolved per call and scrubbed from whatever comes back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import requests

from connections import services
from connections.access import INTENTS, decide, fingerprint
from connections.credentials import UnresolvedCredential, resolve_reference
from connections.outbound import (
    ALLOWED_METHODS,
    CallRefused,
    apply_auth,
    build_call,
    check_endpoint,
    send,
    shaped_result,
)
from connections.specs import connections_of
from core import events
from core.agent_folder import AgentFolder
from core.tools import Tool, ToolContext, ToolResult

logger = logging.getLogger(__name__)

HTTP_ERROR_STATUS = 400

TOOL_NAME = "request"


def request_tool(agent: AgentFolder) -> list[Tool]:
    connections = connections_of(agent)
    if not connections:
        return []
    listing = "\n".join(f"- {name}: {spec.description or spec.base_url}" for name, spec in sorted(connections.items()))
    description = (
        "Call one of the application's APIs. The URL is the connection's base URL plus `endpoint` (a path). "
        "Use intent 'read' for GET, 'write' for changes; a write that needs the user's approval returns a "
        "preview, and after the user approves you repeat the same call with intent 'confirmed_write'. "
        f"Connections:\n{listing}"
    )
    schema = {
        "type": "object",
        "properties": {
            "connection": {"type": "string", "enum": sorted(connections)},
            "method": {"type": "string", "enum": sorted(ALLOWED_METHODS)},
            "endpoint": {"type": "string", "description": "A path such as /transactions"},
            "params": {"type": "object", "description": "Query parameters"},
            "data": {"description": "JSON body for POST, PUT and PATCH"},
            "intent": {"type": "string", "enum": list(INTENTS)},
        },
        "required": ["connection", "method", "endpoint"],
    }
    return [Tool(TOOL_NAME, description, schema, run_request)]


async def run_request(context: ToolContext, arguments: dict[str, Any]) -> ToolResult:
    try:
        return await call_connection(context, arguments)
    except (CallRefused, UnresolvedCredential) as exc:
        return ToolResult(str(exc), is_error=True)


async def call_connection(context: ToolContext, arguments: dict[str, Any]) -> ToolResult:
    name = arguments.get("connection")
    connections = connections_of(context.agent)
    spec = connections.get(name) if isinstance(name, str) else None
    if spec is None:
        raise CallRefused(f"connection must be one of: {', '.join(sorted(connections))}.")
    method = str(arguments.get("method", "GET")).upper()
    raw_endpoint = arguments.get("endpoint")
    params = arguments.get("params") or {}
    if not isinstance(params, dict):
        raise CallRefused("params must be an object of query parameters.")
    data = arguments.get("data")
    intent = arguments.get("intent") or ("read" if method in ("GET", "HEAD") else "write")
    decision = decide(spec, method, str(raw_endpoint), intent)
    call = build_call(
        spec=spec,
        method=method,
        endpoint=raw_endpoint,
        params=params,
        data=data,
        scope_context=dict(context.scope_context),
    )
    endpoint = check_endpoint(raw_endpoint)  # cannot fail once build_call accepted it: only makes it a str
    call_fingerprint = fingerprint(spec.name, method, endpoint, params, data)
    if decision.action == "preview":
        await context.db(
            services.remember_preview,
            session_id=context.session_id,
            correlation_id=context.tool_id,
            connection=spec.name,
            method=method,
            endpoint=endpoint,
            fingerprint=call_fingerprint,
        )
        reason = decision.rule.reason if decision.rule else ""
        confirmation = events.confirmation_required(
            tool_id=context.tool_id,
            connection=spec.name,
            method=method,
            endpoint=endpoint,
            reason=reason,
            params={"params": params, "data": data},
        )
        preview = (
            f"Not sent yet: {method} {endpoint} on {spec.name} needs the user's approval"
            f"{f' ({reason})' if reason else ''}. The user sees Approve/Deny buttons; if they approve, "
            "repeat exactly the same call with intent 'confirmed_write'."
        )
        return ToolResult(preview, extra_events=(confirmation,))
    if decision.action == "confirmed":
        await context.db(services.claim_approved_action, session_id=context.session_id, fingerprint=call_fingerprint)
    await context.db(apply_auth, call, spec.auth, lambda ref: resolve_reference(ref, context.agent))
    started = time.monotonic()
    try:
        result = await asyncio.to_thread(send, call, base_url=spec.base_url, timeout=spec.timeout_seconds)
    except requests.Timeout:
        raise CallRefused(f"Connection {spec.name} did not answer within {spec.timeout_seconds:g} seconds.")
    except requests.RequestException as exc:
        raise CallRefused(f"Connection {spec.name} could not be reached ({type(exc).__name__}).")
    logger.info(
        "connection %s %s %s -> %s in %d ms",
        spec.name,
        method,
        endpoint.split("?", 1)[0],
        result.status,
        (time.monotonic() - started) * 1000,
    )
    # A 4xx/5xx is a result the model reads (`{status, data}`), and a failed call: marked as an error, so
    # the event, the history, replay and the widget do not show a 404 page as a success.
    return ToolResult(shaped_result(result, call.secrets), is_error=result.status >= HTTP_ERROR_STATUS)
