"""Resolving credential references for one call, in the caller's scope.

- `env:NAME`: the process environment.
- `scope:KEY`: the active scope's `ScopedCredential` KEY, else (development only, DEBUG on) the agent
  folder's `.amodal/scopes.json` entry for the scope.
- anything else: a literal value.
An unresolvable reference raises `UnresolvedCredential` naming the reference, never sending it.
"""

from __future__ import annotations

import os

from django.conf import settings

from connections.crypto import UndecryptableCredential
from connections.models import ScopedCredential
from connections.specs import dev_scopes_of
from core.agent_folder import AgentFolder
from scoping.context import active_scope

ENV_PREFIX = "env:"
SCOPE_PREFIX = "scope:"


class UnresolvedCredential(Exception):
    def __init__(self, reference: str, why: str) -> None:
        super().__init__(f"The credential reference {reference} could not be resolved ({why}).")
        self.reference = reference


def resolve_reference(reference: str, agent: AgentFolder) -> str:
    """Sync (it may read the database): call it through sync_to_async from async code."""
    if reference.startswith(ENV_PREFIX):
        value = os.environ.get(reference[len(ENV_PREFIX) :], "")
        if not value:
            raise UnresolvedCredential(reference, "the environment variable is not set")
        return value
    if reference.startswith(SCOPE_PREFIX):
        key = reference[len(SCOPE_PREFIX) :]
        credential = ScopedCredential.objects.filter(key=key).first()
        if credential is not None:
            try:
                return credential.reveal()
            except UndecryptableCredential:
                raise UnresolvedCredential(reference, "the stored value cannot be decrypted")
        if settings.DEBUG:
            dev_value = dev_scopes_of(agent).get(active_scope(), {}).get(key)
            if dev_value:
                return dev_value
        raise UnresolvedCredential(reference, "this scope has no such credential")
    return reference
