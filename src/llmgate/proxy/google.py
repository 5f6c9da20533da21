"""Requests to Google's APIs (providers of kind `gemini` and `vertex`) through the shared attempt loop.

`GoogleCall` is a translated call (proxy/translated.py) whose upstream body is built per model and whose
upstream client is wrapped by `GoogleClient`, which
- adds a Vertex provider's access token (proxy/google_auth.py) to each request, awaited before it goes, and
- gives a 429 the `retry-after` header its body's `google.rpc.RetryInfo.retryDelay` asks for, so that routing
  rests the key exactly as long as Google says (and the client is told too).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

import msgspec

from llmgate.proxy.asgi import Receive, Send
from llmgate.proxy.attempt import ClientPools
from llmgate.proxy.client import Body, Headers, RawHeaders, StreamedReply, UpstreamClient
from llmgate.proxy.google_auth import AccessTokens
from llmgate.proxy.translated import TranslatedCall, Translation
from llmgate.translate.gemini_response import retry_delay_s

if TYPE_CHECKING:
    from llmgate.config import RoutingConfig
    from llmgate.proxy.asgi import WatchList
    from llmgate.proxy.headers import InboundHeaders
    from llmgate.routing.select import Deployment
    from llmgate.upstreams import Upstreams
    from llmgate.usage.event import Exchange

_models_decode = msgspec.json.Decoder(dict[str, Any]).decode


def with_retry_after(status: int, headers: RawHeaders, body: bytes) -> RawHeaders:
    """A 429's headers, plus `retry-after` from its body's RetryInfo when it has none."""
    if status != 429 or b"retryDelay" not in body or any(name == b"retry-after" for name, _ in headers):
        return headers
    delay = retry_delay_s(body)
    if delay is None:
        return headers
    return [*headers, (b"retry-after", b"%d" % max(1, round(delay)))]


def access_tokens(provider: Any) -> AccessTokens | None:
    """A vertex provider's token cache (made at its first request); None for other kinds."""
    if provider.config.kind != "vertex":
        return None
    tokens: AccessTokens | None = provider.tokens
    if tokens is None:
        tokens = provider.tokens = AccessTokens(provider.name, provider.config.credentials_file)
    return tokens


class GoogleReply:
    """A streamed reply whose request goes out once the access token is known."""

    __slots__ = ("_body", "_client", "_headers", "_method", "_path", "_read", "_reply", "_tokens", "status")

    def __init__(self, client: UpstreamClient, tokens: AccessTokens | None, method: str, path: str,
                 headers: Headers, body: Body) -> None:
        self._client, self._tokens = client, tokens
        self._method, self._path, self._headers, self._body = method, path, headers, body
        self._reply: StreamedReply | None = None
        self._read = b""
        self.status = 0

    async def __aenter__(self) -> GoogleReply:
        headers = self._headers if self._tokens is None else [*self._headers, await self._tokens.header()]
        self._reply = self._client.stream(self._method, self._path, headers, self._body)
        await self._reply.__aenter__()
        self.status = self._reply.status
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._reply is not None:
            await self._reply.__aexit__(exc_type, exc, tb)

    def raw_headers(self) -> RawHeaders:
        assert self._reply is not None
        return with_retry_after(self.status, self._reply.raw_headers(), self._read)

    async def read(self) -> bytes:
        assert self._reply is not None
        self._read = await self._reply.read()
        return self._read

    def ended(self) -> bool:
        assert self._reply is not None
        return self._reply.ended()

    async def next_chunk(self) -> bytes:
        assert self._reply is not None
        return await self._reply.next_chunk()


class GoogleClient:
    """An upstream client with Google's additions (see the module docstring)."""

    __slots__ = ("_client", "_tokens", "base_url", "provider")

    def __init__(self, client: UpstreamClient, tokens: AccessTokens | None) -> None:
        self._client, self._tokens = client, tokens
        self.provider = client.provider
        self.base_url = client.base_url

    async def fetch(self, method: str, path: str, headers: Headers, body: Body) -> tuple[int, RawHeaders, bytes]:
        if self._tokens is not None:
            headers = [*headers, await self._tokens.header()]
        status, raw, data = await self._client.fetch(method, path, headers, body)
        return status, with_retry_after(status, raw, data), data

    def stream(self, method: str, path: str, headers: Headers, body: Body) -> GoogleReply:
        return GoogleReply(self._client, self._tokens, method, path, headers, body)


class _Clients(Mapping[str, Any]):
    __slots__ = ("_upstreams",)

    def __init__(self, upstreams: Upstreams) -> None:
        self._upstreams = upstreams

    def __getitem__(self, name: str) -> GoogleClient:
        return GoogleClient(self._upstreams.clients[name], access_tokens(self._upstreams.table.providers[name]))

    def __iter__(self) -> Iterator[str]:
        return iter(self._upstreams.clients)

    def __len__(self) -> int:
        return len(self._upstreams.clients)


class GooglePools:
    """The gateway's upstreams as the attempt loop sees them, with each client wrapped in a GoogleClient."""

    __slots__ = ("_upstreams", "clients")

    def __init__(self, upstreams: Upstreams) -> None:
        self._upstreams = upstreams
        self.clients: Mapping[str, Any] = _Clients(upstreams)

    @property
    def routing(self) -> RoutingConfig:
        return self._upstreams.routing

    @property
    def keepalive_s(self) -> float:
        return self._upstreams.keepalive_s

    @property
    def watches(self) -> WatchList:
        return self._upstreams.watches

    @property
    def clock(self) -> Callable[[], float]:
        return self._upstreams.clock


class GoogleCall(TranslatedCall):
    """A translated call to a Google API: the method (and query) in the URL, the body built per model."""

    __slots__ = ("_build", "_query")

    def __init__(self, upstreams: Upstreams, send: Send, receive: Receive, task: asyncio.Task[object],
                 inbound: InboundHeaders, body: bytes, exchange: Exchange, model: str, translation: Translation,
                 capability: str, build: Callable[[str], dict[str, Any]], query: str = "") -> None:
        pools: ClientPools = GooglePools(upstreams)
        super().__init__(pools, send, receive, task, inbound, body, exchange, model, translation)
        self.capability = capability
        self._build = build
        self._query = query

    def upstream_path(self, deployment: Deployment) -> str:
        return deployment.provider.upstream_path(self.translation.path, self._query, self.model_for(deployment))

    def upstream_body(self, deployment: Deployment) -> bytes:
        model = self.model_for(deployment)
        body = self._bodies.get(model)
        if body is None:
            body = self._bodies[model] = msgspec.json.encode(self._build(model))
        return body


async def fetch_google_models(client: UpstreamClient, provider: Any, headers: Headers) -> list[dict[str, Any]]:
    """A Google provider's model list in OpenAI's shape: Gemini's `GET /v1beta/models` (`models/gemini-…` named
    without the prefix); Vertex AI has no list of the publishers' models for a project: its declared ones only."""
    if provider.config.kind != "gemini":
        return []
    from llmgate.proxy.models import fetch_model_list

    listed = await fetch_model_list(client, provider.upstream_path("/models", "pageSize=1000", ""), headers,
                                    field="models")
    return [{"id": str(model["name"]).removeprefix("models/"), "object": "model", "created": 0,
             "owned_by": provider.name} for model in listed if isinstance(model.get("name"), str)]
