"""Google Cloud Vertex AI: `{base_url}/v1/projects/{project}/locations/{location}/publishers/{publisher}/models/
{model}:{method}`, a service account's (or the metadata server's) access token as `Authorization: Bearer`.

Gemini models are Google's (`:generateContent`, `:streamGenerateContent?alt=sse`, `:predict` for embeddings);
Claude models are Anthropic's, served through `:rawPredict` / `:streamRawPredict` with the Messages API body
(https://cloud.google.com/vertex-ai/generative-ai/docs/partner-models/claude/use-claude). The token is not a
key: proxy/google_auth.py obtains and refreshes it, and proxy/google.py adds it to each request.
"""

from __future__ import annotations

from llmgate.config import Capability, ProviderConfig
from llmgate.providers.base import AuthHeaders, capabilities_of

DEFAULT_CAPABILITIES: frozenset[Capability] = frozenset(("chat", "embeddings"))
ANTHROPIC_VERSION = "vertex-2023-10-16"
"""The `anthropic_version` a Claude request on Vertex carries in its body."""


def is_anthropic_model(model: str) -> bool:
    """Claude models on Vertex are Anthropic's publisher's (rawPredict); the rest are Google's."""
    return model.startswith("claude")


class Vertex:
    """`path` is the method (`:generateContent`, `:rawPredict`, ...); the publisher follows from the model."""

    __slots__ = ("_prefix", "capabilities", "config", "default_headers", "name", "tokens")

    def __init__(self, config: ProviderConfig) -> None:
        self.name = config.name
        self.config = config
        self.capabilities = capabilities_of(config, DEFAULT_CAPABILITIES)
        self.default_headers: AuthHeaders = ()
        self.tokens: object = None
        """The access token cache, made by proxy/google.py at the first request (I/O stays out of here)."""
        self._prefix = f"/v1/projects/{config.project}/locations/{config.location}/publishers"

    def upstream_path(self, path: str, query: str, model: str) -> str:
        publisher = "anthropic" if is_anthropic_model(model) else "google"
        url = f"{self._prefix}/{publisher}/models/{model}{path}"
        return f"{url}?{query}" if query else url

    def auth_headers(self, key: str) -> AuthHeaders:
        return ()  # the access token is added per request (proxy/google.py)
