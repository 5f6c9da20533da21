"""Google AI Studio (Gemini API): `{base_url}/v1beta/models/{model}:{method}`, the key in `x-goog-api-key`.

https://ai.google.dev/api — `POST /v1beta/models/gemini-2.5-flash:generateContent`, `:streamGenerateContent?alt=sse`,
`:batchEmbedContents`, `:countTokens`; `GET /v1beta/models` lists the models. The bodies are Gemini's own:
translate/gemini_*.py turn OpenAI's into them and back (pipeline/google.py).
"""

from __future__ import annotations

from llmgate.config import Capability, ProviderConfig
from llmgate.providers.base import AuthHeaders, capabilities_of

DEFAULT_CAPABILITIES: frozenset[Capability] = frozenset(("chat", "embeddings"))


class Gemini:
    """`path` is the method (`:generateContent`, ...) or `/models` for the model list."""

    __slots__ = ("_prefix", "capabilities", "config", "default_headers", "name")

    def __init__(self, config: ProviderConfig) -> None:
        self.name = config.name
        self.config = config
        self.capabilities = capabilities_of(config, DEFAULT_CAPABILITIES)
        self.default_headers: AuthHeaders = ()
        # A base URL given with its version (…/v1beta, …/v1) keeps it.
        self._prefix = "" if config.base_url.endswith(("/v1beta", "/v1", "/v1alpha")) else "/v1beta"

    def upstream_path(self, path: str, query: str, model: str) -> str:
        url = f"{self._prefix}/models" if path == "/models" else f"{self._prefix}/models/{model}{path}"
        return f"{url}?{query}" if query else url

    def auth_headers(self, key: str) -> AuthHeaders:
        return (("x-goog-api-key", key),) if key else ()
