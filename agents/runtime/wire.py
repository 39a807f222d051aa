"""How the runtime writes JSON for the model and estimates tokens, in one place: the transcript, the
request body and the offline provider's usage must agree byte for byte and token for token."""

from __future__ import annotations

import json

CHARS_PER_TOKEN = 4


def encode_json(value: object) -> str:
    """JSON exactly as the anthropic SDK writes a request body (`anthropic._utils._json.openapi_dumps`)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def estimate_tokens(text: str) -> int:
    """About four characters a token (the offline provider's rule; the context window's estimate)."""
    return max(1, -(-len(text) // CHARS_PER_TOKEN))
