"""The chat request, and everything about a message that can fail with a JSON error before its stream
starts: the body, the scope, the model choice, the rate limits, the session and its lease (`prepare_chat`)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from agents import services
from agents.agent_folder import Budgets, manifest_of
from agents.budgets import Admission
from agents.models import SessionStatus
from agents.turn.lease import SessionLease
from agents.turn.run import ChatRun, ModelChoice
from core.agent_folder import AgentFolder, current_agent
from core.db import db_call
from core.errors import ApiError, validation_error
from scoping.authentication import Caller, resolve_scope
from scoping.context import scope
from scoping.ratelimits import open_stream

MAX_MESSAGE_CHARS = 100_000


class ModelOverrideSerializer(serializers.Serializer):
    provider = serializers.ChoiceField(choices=["anthropic", "local"])
    model = serializers.CharField(max_length=100)


class StrictCharField(serializers.CharField):
    """A CharField that refuses numbers (DRF's turns 5 into "5"): the contract says a string."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class ChatRequestSerializer(serializers.Serializer):
    message = StrictCharField(max_length=MAX_MESSAGE_CHARS, trim_whitespace=False)
    session_id = StrictCharField(required=False, allow_null=True, allow_blank=True, max_length=64)
    scope_id = serializers.JSONField(required=False, allow_null=True)
    # The stubs see Field.context here; DRF's metaclass pops declared fields, so nothing is shadowed.
    context = serializers.JSONField(required=False, allow_null=True)  # type: ignore[assignment]
    model = ModelOverrideSerializer(required=False, allow_null=True)


def parse_chat_request(body: object) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(400, "validation_error", "The request body must be a JSON object.")
    serializer = ChatRequestSerializer(data=body)
    if not serializer.is_valid():
        raise validation_error(serializer.errors)
    return serializer.validated_data


def choose_model(agent: AgentFolder, caller: Caller, override: dict | None) -> ModelChoice:
    main = manifest_of(agent).main_model
    if not override:
        return ModelChoice(main.provider, main.model, main.base_url, main.api_key)
    if not caller.is_trusted_server:
        raise ApiError(403, "model_override_forbidden", "Only API-key callers may choose the model.")
    same_provider = override["provider"] == main.provider
    return ModelChoice(
        override["provider"],
        override["model"],
        main.base_url if same_provider else None,
        main.api_key if same_provider else None,
    )


async def prepare_chat(caller: Caller, body: object, *, refuse_over_budget: bool = False) -> ChatRun:
    """Validate, resolve the scope, count the message against the rate limits and take its stream slots,
    find or create the session, admit the message against the scope's budget and take the session's lease
    (one database trip when the session is free); raise ApiError. What follows runs inside the stream.

    A message over its scope's budget (agents.budgets) is refused in its stream (`init`, `error`, `done`):
    the stream's session is leased and the run records the refusal. With `refuse_over_budget` (the sync
    endpoint, which has no stream) it is a 429 BudgetExceeded instead, and nothing is written."""
    data = parse_chat_request(body)
    agent = current_agent()
    manifest = manifest_of(agent)
    resolved = resolve_scope(caller, data.get("scope_id"), data.get("context"))
    model = choose_model(agent, caller, data.get("model"))
    request = services.SessionRequest(
        session_id=data.get("session_id") or None,
        deploy_id=agent.deploy_id,
        agent_name=manifest.name,
        agent_version=manifest.version,
        provider=model.provider,
        model=model.model,
        first_message=data["message"],
        user_sub=caller.sub,
    )
    token = services.new_lock_token()
    budgets = manifest.budgets
    slots = await open_stream(caller, resolved.scope_id)  # rate limits: 429 before anything is written
    try:
        with scope(resolved.scope_id):
            opened = await db_call(services.open_session)(
                scope_id=resolved.scope_id,
                request=request,
                lock_token=token,
                budgets=budgets,
                refuse=refuse_over_budget,
            )
            lease = SessionLease(opened.session.pk, token)
            admission = opened.admission
            if not opened.leased:
                await lease.wait()
                if budgets is not None:
                    admission = await admit_after_wait(lease, resolved.scope_id, budgets, refuse=refuse_over_budget)
    except BaseException:
        await slots.release()
        raise
    return ChatRun(
        agent=agent,
        caller=caller,
        resolved=resolved,
        session=opened.session,
        lease=lease,
        slots=slots,
        text=data["message"],
        model=model,
        admission=admission,
    )


async def admit_after_wait(lease: SessionLease, scope_id: str, budgets: Budgets, *, refuse: bool) -> Admission:
    """The admission of a message whose session was busy, once it holds the lease."""
    admission = await db_call(services.admit_leased_session)(
        scope_id=scope_id, session_id=lease.session_id, lock_token=lease.token, budgets=budgets
    )
    if refuse and not admission.admitted:
        await lease.release(SessionStatus.IDLE)
        raise admission.refusal()
    return admission
