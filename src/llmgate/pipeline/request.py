"""The one object a `/v1` request carries through the pipeline, and the services the steps are given."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

import msgspec
from msgspec import UnsetType

from llmgate.pipeline.dialects import OPENAI, Dialect
from llmgate.proxy.asgi import Receive, Scope, Send
from llmgate.proxy.client import Body
from llmgate.proxy.headers import InboundHeaders

if TYPE_CHECKING:
    from llmgate.access.authenticate import Authenticator
    from llmgate.access.throttle import AuthThrottle
    from llmgate.access.token_entry import TokenEntry
    from llmgate.access.tokens import TokenCache
    from llmgate.cache.flight import ResponseCache
    from llmgate.config import ServerConfig
    from llmgate.observe.lag import LoopLag
    from llmgate.observe.tracing import TracingConfig
    from llmgate.upstreams import Upstreams
    from llmgate.usage.event import Exchange
    from llmgate.usage.prices import Pricing


class V1Services(NamedTuple):
    """What the pipeline's steps use, each handed only the ones it needs (built by llmgate.services)."""

    server: ServerConfig
    authenticator: Authenticator
    tokens: TokenCache
    pricing: Pricing
    upstreams: Callable[[], Upstreams]
    """The current configuration generation; a request keeps the one it started with (a reload swaps it)."""
    emit: Callable[[Exchange], None]
    """Hands a finished request to the usage bus (metrics, usage log)."""
    lag: LoopLag
    auth_throttle: AuthThrottle
    """Counts failed authentications per client address (429 past its bucket)."""
    cache: ResponseCache | None = None
    """The response cache, when the settings turn it on."""
    tracing: TracingConfig | None = None
    """Tracing's sampler when an OTLP endpoint is configured; None: the pipeline traces nothing."""


class V1Request(msgspec.Struct):
    """One `/v1` request: the ASGI triple and the task serving it, and what the steps learn about it, in the order
    they learn it.

    A Struct, as `Exchange` is: one is made for every request, and its fields are set in C rather than by a
    Python `__init__`. Tracked by the cyclic GC: the task it holds runs the frames that hold it, a cycle that ends
    with the request, unless an exception the task keeps holds those frames (a cancellation at shutdown)."""

    scope: Scope
    receive: Receive
    send: Send
    task: asyncio.Task[object]
    """The task serving the request, looked up once: what a deadline or a disconnect cancels."""
    inbound: InboundHeaders
    exchange: Exchange
    """What the request leaves behind for the usage event, metrics and Server-Timing."""
    path: str
    """Relative to /v1, without a trailing slash."""
    method: str
    dialect: Dialect = OPENAI
    entry: TokenEntry | None = None
    """The caller's virtual token; None for the master key or an open gateway."""
    body: Body = b""
    model: str | None = None
    stream: bool = False
    stream_options: msgspec.Raw | UnsetType | None = None
    user: str | None = None
    """The end user: the body's `user`, else the end-user header (set by `admit`)."""
    """The body's own `stream_options` as decoded for routing (UNSET: it has none; None: not decoded)."""

    @property
    def request_id(self) -> bytes:
        return self.exchange.request_id

    @property
    def query(self) -> str:
        query: bytes = self.scope.get("query_string", b"")
        return query.decode("latin-1") if query else ""
