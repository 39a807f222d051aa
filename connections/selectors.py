"""Reads on credentials: one scope's list (never a value), and for operators which `scope:KEY` credentials
the agent's connections need and which scopes lack them."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Exists, OuterRef

from connections.models import ScopedCredential
from connections.specs import connections_of, dev_scopes_of, scope_credential_keys
from core.agent_folder import AgentFolder
from scoping.context import scope
from scoping.models import Scope

FIRST_MISSING = 20


def credential_page(*, scope_id: str, limit: int, offset: int) -> tuple[list[ScopedCredential], bool]:
    """The scope's credentials by key from `offset`, at most `limit`, and whether more follow."""
    with scope(scope_id):
        rows = list(ScopedCredential.objects.order_by("key")[offset : offset + limit + 1])
    return rows[:limit], len(rows) > limit


def get_credential(*, scope_id: str, key: str) -> ScopedCredential:
    with scope(scope_id):
        return ScopedCredential.objects.get(key=key)


@dataclass(frozen=True)
class MissingCredential:
    key: str
    missing_count: int  # scopes that lack the key
    first_missing: list[str]  # up to FIRST_MISSING of their ids, most recently active first

    @property
    def reference(self) -> str:
        return f"scope:{self.key}"

    @property
    def more(self) -> int:
        return self.missing_count - len(self.first_missing)


@dataclass(frozen=True)
class ConnectionNeeds:
    connection: str
    credentials: list[MissingCredential]


def missing_credentials(*, agent: AgentFolder, include_dev_file: bool) -> list[ConnectionNeeds]:
    """Per connection, each `scope:KEY` it needs and the known scopes (scoping.Scope) without KEY: no
    ScopedCredential row and, when `include_dev_file` (development), no `.amodal/scopes.json` entry.

    Two queries per distinct key, whatever the number of scopes: a count and the first ids of the scopes
    for which NOT EXISTS a credential row."""
    needs = {name: scope_credential_keys(spec) for name, spec in sorted(connections_of(agent).items())}
    by_key: dict[str, MissingCredential] = {}
    for key in dict.fromkeys(key for keys in needs.values() for key in keys):
        # Operator code across scopes: the deliberate all_scopes manager.
        stored = ScopedCredential.all_scopes.filter(scope=OuterRef("scope_id"), key=key)
        missing = Scope.objects.filter(~Exists(stored))
        if include_dev_file:
            in_file = [scope_id for scope_id, credentials in dev_scopes_of(agent).items() if credentials.get(key)]
            if in_file:
                missing = missing.exclude(scope_id__in=in_file)
        first = list(missing.order_by("-last_seen_at", "scope_id").values_list("scope_id", flat=True)[:FIRST_MISSING])
        by_key[key] = MissingCredential(key=key, missing_count=missing.count(), first_missing=first)
    return [ConnectionNeeds(connection=name, credentials=[by_key[key] for key in keys]) for name, keys in needs.items()]
