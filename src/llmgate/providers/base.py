"""The Provider protocol: how one upstream dialect builds URLs and auth headers, and what it can serve."""

from __future__ import annotations

from typing import Protocol

from llmgate.config import Capability, ProviderConfig

ALL_CAPABILITIES: frozenset[Capability] = frozenset(
    ("chat", "completions", "embeddings", "images", "audio", "responses", "messages"))

# /v1 path (relative) → the capability a deployment needs to serve it; paths not listed need none.
ENDPOINT_CAPABILITIES: dict[str, Capability] = {
    "/chat/completions": "chat",
    "/completions": "completions",
    "/embeddings": "embeddings",
    "/images/generations": "images",
    "/audio/speech": "audio",
    "/audio/transcriptions": "audio",
    "/responses": "responses",
    "/messages": "messages",
    "/messages/count_tokens": "messages",
}

AuthHeaders = tuple[tuple[str, str], ...]


class Provider(Protocol):
    """One configured upstream: its URL scheme, auth headers and capabilities. Pure: no I/O."""

    name: str
    config: ProviderConfig
    capabilities: frozenset[Capability]
    default_headers: AuthHeaders
    """Headers sent unless the caller sent the same name (e.g. `anthropic-version`)."""

    def upstream_path(self, path: str, query: str, model: str) -> str:
        """The URL path (after base_url) for a /v1 `path` and raw `query`, serving upstream `model`."""
        ...

    def auth_headers(self, key: str) -> AuthHeaders:
        """The headers that carry `key` (empty when the provider has no key)."""
        ...


def capabilities_of(config: ProviderConfig, default: frozenset[Capability]) -> frozenset[Capability]:
    return frozenset(config.capabilities) if config.capabilities is not None else default
