"""Any OpenAI-compatible API (OpenAI, OpenRouter, Groq, Together, vLLM, Ollama, ...): `{base_url}{path}`, bearer.

The named presets (presets.py) are this class with their own default capabilities."""

from __future__ import annotations

from llmgate.config import Capability, ProviderConfig
from llmgate.providers.base import ALL_CAPABILITIES, AuthHeaders, capabilities_of

DEFAULT_CAPABILITIES: frozenset[Capability] = ALL_CAPABILITIES - {"messages"}


class OpenAICompatible:
    """The path is the caller's path; the key goes in `Authorization: Bearer`."""

    __slots__ = ("capabilities", "config", "default_headers", "name")

    def __init__(self, config: ProviderConfig, default_capabilities: frozenset[Capability] = DEFAULT_CAPABILITIES,
                 ) -> None:
        self.name = config.name
        self.config = config
        self.capabilities = capabilities_of(config, default_capabilities)
        self.default_headers: AuthHeaders = ()

    def upstream_path(self, path: str, query: str, model: str) -> str:
        return f"{path}?{query}" if query else path

    def auth_headers(self, key: str) -> AuthHeaders:
        return (("authorization", f"Bearer {key}"),) if key else ()
