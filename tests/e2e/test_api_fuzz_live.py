"""Schemathesis against a live daphne server: every JSON operation of /api/schema/ is called with generated
requests (ones that fit the schema, the schema's own examples, and ones that do not fit it), as an end
user's JWT and as an API key with every permission. No answer may be a 500, every answer's status must be
documented for its operation, its body must match the documented schema, and every error must be the one
error shape.

The event streams (/chat/stream, /chat) are not fuzzed here: schemathesis checks each SSE event against
the text/event-stream schema, and the per-event JSON Schemas (docs/schemas/events/) are referenced from there
separately (tests/e2e/test_live_chat.py drives the streams). Nor is /health (no input). The examples per
operation are bounded (MAX_EXAMPLES) so the module runs in about a minute; `derandomize` makes every run send
the same requests.

Schemathesis's pytest plugin does not run under pytest 9 (it reads a removed `_nodeid`), so the operations'
strategies are driven with Hypothesis directly.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.e2e.live import LiveServer, run_manage

pytestmark = pytest.mark.live

MAX_EXAMPLES = 25
SCOPE = "fuzz-tenant"
NOT_FUZZED = ["/chat/stream", "/chat", "/health"]
FUZZ_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
)
# Per operation: requests that fit the schema and requests that do not, plus its own examples.
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)


@pytest.fixture(scope="module")
def fuzz_server(live_server_factory) -> LiveServer:
    return live_server_factory()


@pytest.fixture(scope="module")
def api_key(fuzz_server: LiveServer) -> str:
    created = run_manage(
        ["create_api_key", "fuzz", "--shared-write", "--manage-credentials", "--manage-scopes"], fuzz_server.env
    )
    return created.stdout.strip()


@pytest.fixture(scope="module")
def api_schema(fuzz_server: LiveServer):
    schema = schemathesis.openapi.from_url(f"{fuzz_server.base_url}/api/schema/?format=json", timeout=30)
    schema.config.update(base_url=fuzz_server.base_url)
    return schema.exclude(path=NOT_FUZZED)


@pytest.fixture(scope="module")
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.trust_env = False
        yield session


def error_shape(ctx, response, case) -> bool | None:
    """Every error answer is `{"error": {"code": "<snake_case>", "message": "<text>"}}` and nothing else."""
    if response.status_code < 400:
        return None
    content_type = response.headers.get("content-type", [""])[0]
    assert content_type.split(";")[0] == "application/json", f"an error as {content_type!r}"
    body = response.json()
    assert isinstance(body, dict) and set(body) == {"error"}, body
    assert isinstance(body["error"], dict) and set(body["error"]) == {"code", "message"}, body
    code, message = body["error"]["code"], body["error"]["message"]
    assert isinstance(code, str) and re.fullmatch(r"[a-z][a-z0-9_]*", code), body
    assert isinstance(message, str) and message.strip(), body
    return True


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    error_shape,
]


def fuzz(api_schema, session: requests.Session, headers: dict[str, str]) -> tuple[int, int, list[str]]:
    """Call every operation with generated requests: (operations, requests sent, failures found)."""
    operations, calls, failures = 0, 0, []
    for result in api_schema.get_all_operations():
        operation = result.ok()
        operations += 1
        strategies = [operation.as_strategy(generation_mode=mode) for mode in MODES]
        strategies += api_schema.get_strategies_from_examples(operation)

        @FUZZ_SETTINGS
        @given(case=st.one_of(strategies))
        def call(case):
            nonlocal calls
            calls += 1
            case.call_and_validate(session=session, headers=headers, checks=CHECKS, timeout=30)

        try:
            call()
        # Every operation is tried and all failures are reported together (schemathesis raises a
        # BaseExceptionGroup of its failures, which `except Exception` would let through).
        except (Exception, BaseExceptionGroup) as exc:
            failures.append(f"{operation.label}: {exc}")
    return operations, calls, failures


def test_as_an_end_users_jwt_every_answer_is_documented_and_none_is_a_500(api_schema, fuzz_server, http):
    operations, calls, failures = fuzz(api_schema, http, {"Authorization": f"Bearer {fuzz_server.token(SCOPE)}"})
    assert not failures, "\n\n".join(failures)
    assert operations >= 24  # every operation but the event streams' and /health
    assert calls >= operations * MAX_EXAMPLES // 2


def test_as_an_api_key_with_every_permission_every_answer_is_documented_and_none_is_a_500(api_schema, api_key, http):
    operations, calls, failures = fuzz(api_schema, http, {"Authorization": f"Bearer {api_key}"})
    assert not failures, "\n\n".join(failures)
    assert operations >= 24  # every operation but the event streams' and /health
    assert calls >= operations * MAX_EXAMPLES // 2
