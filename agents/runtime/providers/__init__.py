"""Model providers: `anthropic` (the real Claude API) and `local` (deterministic, offline)."""

from __future__ import annotations

from agents.runtime.providers.base import Provider


def provider_for(provider: str, *, model: str, base_url: str | None, api_key: str | None) -> Provider:
    if provider == "local":
        from agents.runtime.providers.local import LocalProvider

        return LocalProvider()
    if provider == "anthropic":
        from agents.runtime.providers.anthropic import AnthropicProvider

        return AnthropicProvider.shared(base_url=base_url, api_key=api_key)
    raise ValueError(f"Unknown model provider {provider!r}.")
