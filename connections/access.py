"""`access.json` rules and intents: which calls run, which need the user's approval, which never run."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from connections.outbound import MUTATING_METHODS, CallRefused, decoded_forms, normalised_path
from connections.specs import AccessRule, ConnectionSpec

INTENTS = ("read", "write", "confirmed_write")


@lru_cache(maxsize=256)
def pattern_regex(path_pattern: str) -> re.Pattern:
    parts = re.split(r"(\{[^/{}]+\})", path_pattern.rstrip("/") or "/")
    regex = "".join("[^/]+" if part.startswith("{") else re.escape(part) for part in parts)
    # Case-insensitive: many API frameworks route /Accounts like /accounts, and a rule must not be
    # sidestepped by changing the case.
    return re.compile(f"^{regex}/?$", re.IGNORECASE)


def path_forms(endpoint: str) -> set[str]:
    """Every path the API may route the endpoint to: as written, after each round of percent-decoding
    (the HTTP client decodes %61 to `a`, many servers decode %2F to `/`), and each of those normalised
    (`;` parameters dropped, empty and dot segments resolved: `/transfers;x`, `/transfers/;x` and
    `/;x/transfers` are `/transfers` to many servers). A rule matching any of them applies, so neither an
    encoding nor a path parameter dodges it. Such an endpoint is still sent as written: whatever the API
    makes of it, the rule has been applied."""
    forms: set[str] = set()
    for form in decoded_forms(endpoint.split("?", 1)[0]):
        forms.update((form, normalised_path(form)))
    return forms


def matching_rule(spec: ConnectionSpec, method: str, endpoint: str) -> AccessRule | None:
    forms = path_forms(endpoint)
    for rule in spec.access_rules:
        if rule.method == method and any(pattern_regex(rule.path_pattern).match(path) for path in forms):
            return rule
    return None


@dataclass(frozen=True)
class Decision:
    action: str  # "send", "preview" or "confirmed"
    rule: AccessRule | None


def decide(spec: ConnectionSpec, method: str, endpoint: str, intent: str) -> Decision:
    if intent not in INTENTS:
        raise CallRefused(f"intent must be one of {', '.join(INTENTS)}.")
    if method in MUTATING_METHODS and intent == "read":
        raise CallRefused(f"{method} changes data, so it cannot be sent with intent 'read'.")
    rule = matching_rule(spec, method, endpoint)
    if rule is not None and rule.confirm == "never":
        reason = f" ({rule.reason})" if rule.reason else ""
        raise CallRefused(f"{method} {rule.path_pattern} is never allowed on connection {spec.name}{reason}.")
    if rule is not None and rule.confirm is True and method in MUTATING_METHODS:
        return Decision("confirmed" if intent == "confirmed_write" else "preview", rule)
    return Decision("send", rule)


def fingerprint(connection: str, method: str, endpoint: str, params: Any, data: Any) -> str:
    """The identity of a call, so only the same call that was previewed can be confirmed."""
    canonical = json.dumps([connection, method, endpoint, params or {}, data], sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()
