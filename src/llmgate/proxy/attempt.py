"""What one client request carries through its attempts (`Call`), and what an attempt ends with.

An attempt ends `Opened` (an answer to deliver: a success, or a 4xx that is the caller's own) or `Failure`
(retry elsewhere: 429, 401/403, 5xx, connection error, timeout before the first byte); `record_failure` tells
routing what a Failure means (a key's cooldown or end, the breaker of the deployment and model).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Literal, Protocol

from loguru import logger

from llmgate.config import RoutingConfig
from llmgate.errors import GatewayError
from llmgate.providers.presets import QUIRKY_KINDS, drop_params, rejected_params
from llmgate.proxy.asgi import Headers, Receive, Send, WatchList
from llmgate.proxy.client import Body, RawHeaders, StreamedReply, UpstreamClient
from llmgate.proxy.headers import InboundHeaders, upstream_request_headers
from llmgate.proxy.relay import relay
from llmgate.proxy.streaming import openai_error_frame
from llmgate.routing.keys import KeyState, cool_down, disable, retry_after_s
from llmgate.routing.select import Deployment
from llmgate.schemas.openai import replace_model
from llmgate.usage.event import Exchange
from llmgate.usage.tap import StreamTap

if TYPE_CHECKING:
    from llmgate.proxy.streaming import StreamGuard
    from llmgate.proxy.translated import Translation

FailureKind = Literal["rate_limited", "bad_key", "server", "transport", "timeout", "done"]
TRANSIENT: frozenset[FailureKind] = frozenset(("server", "transport", "timeout"))
"""Failures of the deployment, not of the key: retried on the same deployment when nothing else can take them."""
_SSE_START: Headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]


class ClientPools(Protocol):
    """What the attempt loop needs of the gateway's current configuration (llmgate.upstreams.Upstreams)."""

    @property
    def clients(self) -> Mapping[str, UpstreamClient]:
        """The upstream client of each provider, by name."""

    @property
    def routing(self) -> RoutingConfig:
        """Attempts, budget, backoff, cooldowns, breakers."""

    @property
    def keepalive_s(self) -> float:
        """How long a stream waits for its first byte before a keep-alive comment goes out."""

    @property
    def watches(self) -> WatchList:
        """Where a request's disconnect watch waits until it is worth starting."""

    @property
    def clock(self) -> Callable[[], float]:
        """Routing's `now` (monotonic seconds): cooldowns, breakers, the time budget; a fake one in tests."""


def failure_kind(status: int) -> FailureKind | None:
    """What an upstream status means for routing; None: an answer to deliver (success or the caller's 4xx)."""
    if status < 400:
        return None
    if status == 429:
        return "rate_limited"
    if status in (401, 403):
        return "bad_key"
    if status >= 500:
        return "server"
    return None


class Call:
    """One client request on its way through the attempts."""

    __slots__ = (
        "attempts",
        "body",
        "capability",
        "clock",
        "deployment",
        "error_frame",
        "exchange",
        "guard",
        "hedges",
        "inbound",
        "is_json",
        "keepalive_s",
        "max_attempts",
        "may_retry",
        "method",
        "model",
        "own_keys",
        "path",
        "query",
        "receive",
        "request_id",
        "routing",
        "send",
        "started_at",
        "stream",
        "tap",
        "task",
        "translation",
        "tried_keys",
        "upstreams",
        "usage_body",
    )

    def __init__(self, upstreams: ClientPools, send: Send, receive: Receive, task: asyncio.Task[object], method: str,
                 path: str, query: str, inbound: InboundHeaders, body: Body, exchange: Exchange, model: str | None,
                 stream: bool, capability: str | None, is_json: bool = True) -> None:
        self.upstreams = upstreams
        self.routing: RoutingConfig = upstreams.routing
        self.clock = upstreams.clock
        """Routing's `now`; the request's own timings (Server-Timing, usage) are measured with time.monotonic."""
        self.send, self.receive = send, receive
        self.task = task
        """The task serving the request: a disconnect cancels it."""
        self.method, self.path, self.query = method, path, query
        self.inbound, self.body = inbound, body
        self.exchange = exchange
        """What the request leaves behind for the usage event and Server-Timing."""
        self.request_id = exchange.request_id
        self.model, self.stream, self.capability = model, stream, capability
        self.is_json = is_json and model is not None
        """The body is a JSON object whose `model` can be renamed for a deployment."""
        self.may_retry = isinstance(body, bytes)  # a body streaming up can be sent once only
        self.max_attempts = self.routing.max_attempts if self.may_retry else 1
        self.keepalive_s = upstreams.keepalive_s
        self.started_at = self.clock()
        """On routing's clock: the time budget counts from here."""
        self.attempts = 0
        self.hedges = 0
        self.deployment: Deployment | None = None
        self.guard: StreamGuard | None = None
        self.error_frame: Callable[[bytes], bytes] = openai_error_frame
        """How an error ends a started stream: OpenAI's `data:` frame unless the caller speaks Anthropic."""
        self.translation: Translation | None = None
        """Set by proxy/translated.py's TranslatedCall: the answer is translated into the caller's dialect."""
        self.usage_body: bytes | None = None
        """The body asking for the stream's usage chunk the client did not ask for (usage log on)."""
        self.tap: StreamTap | None = None
        """Sees a successful stream's chunks on their way out, for its usage (a virtual token's, or logged)."""
        self.tried_keys: list[KeyState] | None = None
        """The keys this request's failed attempts used, so that a retry prefers another (None until one fails)."""
        self.own_keys: dict[str, str] = {}
        """The caller's project's own upstream keys, by provider name: used instead of the provider's."""

    def upstream_headers(self, deployment: Deployment, key: KeyState) -> list[tuple[str, str]]:
        provider = deployment.provider
        own = self.own_keys.get(provider.name) if self.own_keys else None
        auth = provider.auth_headers(own) if own else key.auth_headers
        return upstream_request_headers(self.inbound, auth, self.request_id, provider.default_headers)

    def upstream_path(self, deployment: Deployment) -> str:
        model = deployment.upstream_model or self.model or ""
        return deployment.provider.upstream_path(self.path, self.query, model)

    def upstream_body(self, deployment: Deployment) -> Body:
        """The body as sent; the model renamed only when the deployment knows the alias by another name."""
        body = self.body
        if self.usage_body is not None and deployment.provider.config.stream_usage:
            body = self.usage_body
        model = deployment.upstream_model
        kind = deployment.provider.config.kind
        if kind in QUIRKY_KINDS and self.is_json and isinstance(body, bytes):
            body = drop_params(body, rejected_params(kind, model or self.model or ""), deployment.provider.name)
        if model is None or model == self.model or not self.is_json or not isinstance(body, bytes):
            return body
        return replace_model(body, model)

    def refine_failure(self, kind: FailureKind, headers: RawHeaders) -> FailureKind | None:
        """What a failed status means for routing once its headers are read too (None: the caller's answer);
        a provider whose errors share a status (Bedrock's) tells them apart by overriding this."""
        return kind

    def asked_for_usage(self, deployment: Deployment) -> bool:
        """The body sent to `deployment` asked for a usage chunk the client did not (to remove from the stream)."""
        return self.usage_body is not None and deployment.provider.config.stream_usage

    async def deliver(self, opened: Opened, extra: Headers) -> GatewayError | None:
        """Send `opened` to the client with the gateway's `extra` headers; a stream's failure mid-way is
        returned (the caller tells routing)."""
        return await relay(self, opened, extra)

    def keepalive_headers(self) -> Headers:
        """The response start a keep-alive sends before any upstream has answered."""
        return [*_SSE_START, (b"x-request-id", self.request_id), (b"x-llmgate-attempts", b"%d" % self.attempts)]


class Opened:
    """An answer to deliver: whole (`reply` None, `body` all of it) or streaming (`body` its first chunk);
    `sent_at`: when its request went upstream (a stream's upstream time runs until its last byte)."""

    __slots__ = ("body", "deployment", "headers", "key", "reply", "sent_at", "status")

    def __init__(self, deployment: Deployment, key: KeyState, status: int, headers: RawHeaders, body: bytes,
                 reply: StreamedReply | None = None, sent_at: float = 0.0) -> None:
        self.deployment, self.key = deployment, key
        self.status, self.headers, self.body, self.reply = status, headers, body, reply
        self.sent_at = sent_at


class Failure:
    """An attempt that failed before its first byte reached the client: its upstream answer, or our error."""

    __slots__ = ("body", "deployment", "error", "headers", "key", "kind", "status")

    def __init__(self, deployment: Deployment | None, key: KeyState | None, kind: FailureKind, status: int = 0,
                 headers: RawHeaders | None = None, body: bytes = b"", error: GatewayError | None = None) -> None:
        self.deployment, self.key, self.kind = deployment, key, kind
        self.status, self.headers, self.body, self.error = status, headers, body, error


def record_failure(failure: Failure, model: str | None, now: float, routing: RoutingConfig) -> bool:
    """Tell routing what went wrong for a request for `model`; True when the deployment itself failed (a 5xx,
    connection error or timeout, counted by its breaker for that model: try another one)."""
    deployment, key = failure.deployment, failure.key
    assert deployment is not None and key is not None
    breaker = deployment.breaker_for(model)
    if failure.kind == "rate_limited":
        asked = retry_after_s(failure.headers) if failure.headers else None
        cool_down(key, now, min(asked, routing.max_cooldown_s) if asked is not None else routing.cooldown_s)
        breaker.release()
        return False
    if failure.kind == "bad_key":
        if disable(key):
            logger.error("provider {} rejected key {} with {}: key disabled until the next reload",
                         deployment.provider.name, key.masked, failure.status)
        breaker.release()
        return False
    key.failures += 1
    if breaker.record_failure(now):
        logger.warning("deployment {} circuit breaker opened for {} ({} consecutive failures)", deployment.name,
                       model or "requests naming no model", breaker.consecutive)
    return True
