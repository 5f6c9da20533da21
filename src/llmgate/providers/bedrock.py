"""AWS Bedrock's Converse API: `{base_url}/model/{modelId}/converse` (`/converse-stream` for a stream), no key:
every request is signed with SigV4 by proxy/sigv4.py from the standard AWS credentials.

https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html. Chat requests are translated
to Converse (translate/converse.py); nothing is passed through untranslated.
"""

from __future__ import annotations

from urllib.parse import quote

from llmgate.config import Capability, ProviderConfig
from llmgate.providers.base import AuthHeaders, capabilities_of

DEFAULT_CAPABILITIES: frozenset[Capability] = frozenset(("chat",))
SERVICE = "bedrock"
"""The SigV4 signing name of bedrock-runtime."""


class Bedrock:
    """The model id (an ARN or an inference profile too) is one path segment, percent-encoded."""

    __slots__ = ("capabilities", "config", "default_headers", "name")

    def __init__(self, config: ProviderConfig) -> None:
        self.name = config.name
        self.config = config
        self.capabilities = capabilities_of(config, DEFAULT_CAPABILITIES)
        self.default_headers: AuthHeaders = ()

    def upstream_path(self, path: str, query: str, model: str) -> str:
        # `/` (in ARNs) is encoded; `:` and `@`, legal in a path segment, are not. The signature covers the path
        # as it is sent, which proxy/wire.py does as given.
        return f"/model/{quote(model, safe=':@')}{path}"

    def auth_headers(self, key: str) -> AuthHeaders:
        return ()
