"""What one `/v1` request leaves behind: `Exchange` (filled on the hot path) and `UsageEvent` (what sinks get).

The request path only stamps times and ids into its `Exchange` and hands it to the event bus; turning it into a
`UsageEvent` (reading the usage out of the answer's bytes, estimating tokens with tiktoken when the provider sent
none, pricing) happens later, in the bus's background task, so none of it delays the response.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import msgspec

from llmgate.usage.meter import UsageMeter

MAX_USER_CHARS = 256
"""An end-user id longer than this is cut: it is a label (usage rows, limit keys), not data."""

if TYPE_CHECKING:
    from llmgate.observe.tracing import Trace

CLIENT_CLOSED = 499
"""The status an exchange ends with when the client left before its answer was complete (nginx's convention)."""


class Exchange(msgspec.Struct, gc=False):
    """One request as the gateway handled it; mutable, cheap, never sent anywhere itself.

    A Struct rather than a class with `__init__`: its two dozen defaults are set in C (a Python `__init__` ran
    ~90 bytecodes a request); gc=False because it holds no cycles (ids, times, the meter, the body).
    """

    request_id: bytes
    method: str
    endpoint: str
    lag_s: float = 0.0
    """The event loop's lag when the request came: time it waited before the handler ran."""
    started_at: float = msgspec.field(default_factory=time.monotonic)
    started: float = msgspec.field(default_factory=time.time)
    ended_at: float = 0.0
    status: int = 0
    auth_s: float = 0.0
    """Time to authenticate the caller (a cache hit, or the store's answer for a new virtual token)."""
    route_s: float = 0.0
    """Time from authenticated to routed: body read and decoded, alias resolved, limits checked."""
    stream: bool = False
    model: str | None = None
    deployment: str | None = None
    provider: str | None = None
    project_id: str | None = None
    token_id: str | None = None
    attempts: int = 0
    upstream_s: float = 0.0
    """Time spent in upstream calls, every attempt's, until the delivered answer's last byte."""
    ttfb_s: float | None = None
    """The delivered attempt's time to its first byte (for a whole answer: to all of it)."""
    upstream_request_id: bytes | None = None
    error: str | None = None
    """The error `type` llmgate answered with, when it answered with one of its own."""
    meter: UsageMeter | None = None
    cache: str | None = None
    """The response cache's part: `hit`, `miss` or `bypass` (None: the request was not for a cached alias)."""
    broken: bool = False
    """A started stream ended with an error (the upstream broke or fell silent mid-way)."""
    request_body: bytes | None = None
    """Kept only when usage is logged: the prompt to count with tiktoken if the provider reports none."""
    request_headers: list[tuple[str, str]] | None = None
    """Kept only for the raw body log: the client's headers as forwarded (no credentials)."""
    trace: Trace | None = None
    """The request's trace context, when tracing is on (observe/tracing.py)."""
    end_user: str | None = None
    """The end user the request was made for: a JWT caller's `user_claim`, else the body's `user`."""
    forwarded: list[tuple[str, str]] | None = None
    """The client's headers as forwarded, kept (no copy) when usage is recorded and the body named no end user:
    the event builder looks for the end-user header in them, off the request path."""
    queue_s: float = 0.0
    """Time spent queued for an rpm/tpm slot (`queue_ms`)."""


class UsageEvent(msgspec.Struct, gc=False):
    """One `/v1` request, as the sinks store it (never a secret: ids only)."""

    request_id: str
    time: float
    """When the request came, Unix seconds."""
    method: str
    endpoint: str
    status: int
    stream: bool = False
    model: str | None = None
    """The model (alias) the caller asked for."""
    deployment: str | None = None
    provider: str | None = None
    project_id: str | None = None
    token_id: str | None = None
    attempts: int = 0
    duration_ms: float = 0.0
    upstream_ttfb_ms: float | None = None
    upstream_ms: float = 0.0
    overhead_ms: float = 0.0
    """What the gateway itself added: duration minus upstream time, plus the loop lag the request waited."""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    cached_tokens: int | None = None
    estimated: bool = False
    """The token counts are tiktoken's estimate: the provider reported no usage."""
    cost: float | None = None
    """In the currency of the configured prices (USD by convention)."""
    upstream_request_id: str | None = None
    error: str | None = None
    trace_id: str | None = None
    """The request's W3C trace id, when tracing is on."""
    cached: bool = False
    """Answered from the response cache: no upstream call, no cost (the tokens are those of the kept answer)."""
    end_user: str | None = None
    """The end user the request was made for: the body's `user` field, or the end-user header."""


def _ms(seconds: float) -> float:
    """Seconds as milliseconds, to the microsecond (rounded half up: cheaper than `round` with digits, and run
    for every request)."""
    return int(seconds * 1e6 + 0.5) / 1000


def build_event(exchange: Exchange) -> UsageEvent:
    """The event of a finished request: times in ms, tokens as the provider reported them (`estimated` and `cost`
    are the EventBuilder's, usage/account.py). Overhead is what the gateway added: the duration minus the
    upstream's time, plus the time the request waited for the event loop."""
    duration = exchange.ended_at - exchange.started_at
    meter = exchange.meter
    usage = meter.usage() if meter is not None and exchange.status == 200 else None
    upstream_id = exchange.upstream_request_id
    return UsageEvent(
        request_id=exchange.request_id.decode("latin-1"), time=exchange.started, method=exchange.method,
        endpoint=exchange.endpoint, status=exchange.status, stream=exchange.stream, model=exchange.model,
        deployment=exchange.deployment, provider=exchange.provider, project_id=exchange.project_id,
        token_id=exchange.token_id, attempts=exchange.attempts, duration_ms=_ms(duration),
        upstream_ttfb_ms=_ms(exchange.ttfb_s) if exchange.ttfb_s is not None else None,
        upstream_ms=_ms(exchange.upstream_s),
        overhead_ms=_ms(max(0.0, duration - exchange.upstream_s - exchange.queue_s) + exchange.lag_s),
        prompt_tokens=usage.prompt if usage is not None else None,
        completion_tokens=usage.completion if usage is not None else None,
        total_tokens=usage.total if usage is not None else None,
        cached_tokens=usage.cached if usage is not None else None,
        upstream_request_id=upstream_id.decode("latin-1") if upstream_id is not None else None,
        error=exchange.error, cached=exchange.cache == "hit",
        trace_id=exchange.trace.trace_id if exchange.trace is not None else None,
        end_user=exchange.end_user[:MAX_USER_CHARS] if exchange.end_user else None)


def end_user(user: str | None, forwarded: list[tuple[str, str]], header: str) -> str | None:
    """The end user: `user` (the body's field), else the value of the end-user `header` (a lower-case name)
    among the forwarded headers; cut to MAX_USER_CHARS."""
    if user is None and header:
        for name, value in forwarded:
            if name == header:
                user = value
                break
    return user[:MAX_USER_CHARS] if user is not None else None

