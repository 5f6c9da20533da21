"""Anthropic: `{base_url}/v1{path}`, the key in `x-api-key`, plus `anthropic-version`.

Only URLs and auth live here; translating OpenAI-shaped bodies to Messages (and back) is a separate module.
OpenAI-shaped requests routed here without translation reach Anthropic's OpenAI-compatible endpoints
(`/v1/chat/completions`), which accept the same `x-api-key`.
"""

from __future__ import annotations

from llmgate.config import Capability, ProviderConfig
from llmgate.providers.base import AuthHeaders, capabilities_of

DEFAULT_ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_CAPABILITIES: frozenset[Capability] = frozenset(("messages", "chat"))


class Anthropic:
    """`x-api-key` + `anthropic-version` (a caller's own `anthropic-version` header is forwarded instead)."""

    __slots__ = ("_prefix", "capabilities", "config", "default_headers", "name")

    def __init__(self, config: ProviderConfig) -> None:
        self.name = config.name
        self.config = config
        self.capabilities = capabilities_of(config, DEFAULT_CAPABILITIES)
        self.default_headers: AuthHeaders = (("anthropic-version", config.api_version or DEFAULT_ANTHROPIC_VERSION),)
        # ANTHROPIC_BASE_URL has no version prefix (the SDK adds /v1); accept one given anyway.
        self._prefix = "" if config.base_url.endswith("/v1") else "/v1"

    def upstream_path(self, path: str, query: str, model: str) -> str:
        return f"{self._prefix}{path}?{query}" if query else f"{self._prefix}{path}"

    def auth_headers(self, key: str) -> AuthHeaders:
        return (("x-api-key", key),) if key else ()
