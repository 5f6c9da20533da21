"""Azure OpenAI: the deployment is in the path, `api-version` in the query, the key in `api-key`.

https://learn.microsoft.com/azure/ai-services/openai/reference — `POST {endpoint}/openai/deployments/
{deployment-id}/chat/completions?api-version=2024-10-21` with header `api-key: ...`.
"""

from __future__ import annotations

from llmgate.config import Capability, ProviderConfig
from llmgate.providers.base import ALL_CAPABILITIES, AuthHeaders, capabilities_of

DEFAULT_API_VERSION = "2024-10-21"
DEFAULT_CAPABILITIES: frozenset[Capability] = ALL_CAPABILITIES - {"messages"}


class Azure:
    """`{base_url}/openai/deployments/{model}{path}?api-version=...`; the upstream model is the deployment name."""

    __slots__ = ("_version_query", "capabilities", "config", "default_headers", "name")

    def __init__(self, config: ProviderConfig) -> None:
        self.name = config.name
        self.config = config
        self.capabilities = capabilities_of(config, DEFAULT_CAPABILITIES)
        self.default_headers: AuthHeaders = ()
        self._version_query = f"api-version={config.api_version or DEFAULT_API_VERSION}"

    def upstream_path(self, path: str, query: str, model: str) -> str:
        if path == "/models":  # the resource-level list: no deployment in the path
            return f"/openai/models?{self._version_query}"
        # The caller's own api-version (the AzureOpenAI SDK sends one) wins over the configured default.
        if "api-version=" in query:
            return f"/openai/deployments/{model}{path}?{query}"
        return f"/openai/deployments/{model}{path}?{self._version_query}{'&' + query if query else ''}"

    def auth_headers(self, key: str) -> AuthHeaders:
        return (("api-key", key),) if key else ()
