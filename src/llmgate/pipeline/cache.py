"""The response cache's step: a successful answer is kept by the request that determines it (cache/key.py) and
served again while fresh; identical misses at once make one upstream call (single-flight).

It wraps `forward` (the attempts): a hit is answered here and forwards nothing; a miss is forwarded with the
client's `send` wrapped, so that what the client receives is kept once the answer is complete and successful
(not an error, not a stream that broke or that the client left, not an answer of several choices). Only a
request that is cached pays for it: requests for aliases without a TTL go straight to `forward`. Per request,
`cache-control: no-cache` skips the lookup (the fresh answer is kept) and `no-store` keeps nothing;
`x-llmgate-cache` says `hit`, `miss` or `bypass`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from llmgate.cache.key import KeyRequest, answer_headers
from llmgate.cache.store import Answer, Usage
from llmgate.proxy.asgi import Headers, Message, Send, send_response
from llmgate.proxy.streaming import KEEPALIVE_COMMENT
from llmgate.usage.meter import TokenUsage

if TYPE_CHECKING:
    from llmgate.cache.flight import ResponseCache
    from llmgate.proxy.attempt import Call
    from llmgate.routing.select import Route
    from llmgate.upstreams import Upstreams
    from llmgate.usage.event import Exchange

Forward = Callable[["Call", "Route"], Awaitable[None]]

CACHEABLE = frozenset({"/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses", "/v1/messages"})
"""The endpoints whose answers are cached (as the client called them)."""
HIT, MISS, BYPASS = "hit", "miss", "bypass"
_KEPT_HEADERS = frozenset({b"content-type", b"x-llmgate-deployment"})
"""The headers of an answer repeated on a hit; the others belong to the request that made it (ids, timings,
rate-limit counts) or to its connection."""
_HEADER = b"x-llmgate-cache"


def through_cache(cache: ResponseCache, forward: Forward, upstreams: Callable[[], Upstreams]) -> Forward:
    """`forward`, with `cache` in front of it for the requests whose alias has a TTL."""

    async def forward_cached(call: Call, route: Route) -> None:
        ttl_s = cache.ttl_s(call.model, upstreams().settings)
        exchange = call.exchange
        if ttl_s is None or exchange.endpoint not in CACHEABLE or not isinstance(call.body, bytes):
            await forward(call, route)
            return
        no_cache, no_store = cache_control(call.inbound.forward)
        key = None
        if not (no_cache and no_store):
            scope = (exchange.project_id or "") if cache.scope == "project" else ""
            request = KeyRequest(endpoint=exchange.endpoint, model=f"{route.name}:{call.model}", stream=call.stream,
                                 scope=scope, headers=answer_headers(call.inbound.forward))
            key = cache.keys.key(request, call.body)
        if key is None or no_cache:  # not cacheable (several choices), or asked not to look
            await _forward(call, route, forward, BYPASS, cache, key if not no_store else None, ttl_s)
            return
        answer = await cache.store.get(key)
        if answer is None and not no_store:
            flight = cache.in_flight(key)
            if flight is None:  # this request leads: the identical ones wait for it
                await _forward(call, route, forward, MISS, cache, key, ttl_s, lead=True)
                return
            answer = await cache.wait(flight)
        if answer is not None:
            await replay(call, answer)
            return
        await _forward(call, route, forward, MISS, cache, None if no_store else key, ttl_s)

    return forward_cached


def cache_control(forward: list[tuple[str, str]]) -> tuple[bool, bool]:
    """(no-cache, no-store) of the request's `cache-control` header."""
    no_cache = no_store = False
    for name, value in forward:
        if name == "cache-control":
            directives = {part.strip().lower() for part in value.split(",")}
            no_cache = no_cache or "no-cache" in directives
            no_store = no_store or "no-store" in directives
    return no_cache, no_store


async def _forward(call: Call, route: Route, forward: Forward, result: str, cache: ResponseCache, key: str | None,
                   ttl_s: float, lead: bool = False) -> None:
    """Forward `call`, saying `result` in its header; keep its answer under `key` (None: keep nothing); `lead`:
    the waiting identical requests get the answer (or None) once it is known."""
    call.exchange.cache = result
    capture = call.send = Capture(call.send, result.encode(), cache.max_entry_bytes if key is not None else -1)
    try:
        await forward(call, route)
    except BaseException:
        if lead and key is not None:
            cache.land(key, None)
        raise
    if key is None:
        return
    answer = capture.answer(call.exchange)
    if lead:
        cache.land(key, answer)
    if answer is not None:
        await cache.store.put(key, answer, ttl_s)


async def replay(call: Call, answer: Answer) -> None:
    """Answer `call` with a kept answer: its bytes as they were (a stream's SSE events in one go), and its usage
    for the usage log, at no cost."""
    exchange = call.exchange
    exchange.status, exchange.cache, exchange.deployment = 200, HIT, answer.deployment
    meter = exchange.meter
    if meter is not None:
        usage = answer.usage
        if call.stream:
            meter.feed(answer.body)
        elif usage is None or meter.keeps_body:  # the raw log wants the body; or the usage is to be found in it
            meter.whole(answer.body)
        if usage is not None:  # kept with the answer: not looked for in its bytes again
            meter.reported(TokenUsage(usage.prompt, usage.completion, usage.total, usage.cached))
    headers: Headers = [(b"x-request-id", call.request_id), *answer.headers, (_HEADER, HIT.encode())]
    await send_response(call.send, 200, headers, answer.body)


class Capture:
    """The client's `send`, which adds `x-llmgate-cache` to the response and keeps what goes out (up to `limit`
    bytes; -1: nothing) for `answer()`. Keep-alive comments sent while the upstream was silent are not kept."""

    __slots__ = ("_limit", "_send", "_size", "chunks", "complete", "headers", "status", "value")

    def __init__(self, send: Send, value: bytes, limit: int) -> None:
        self._send = send
        self.value = value
        self._limit = limit
        self._size = 0
        self.chunks: list[bytes] = []
        self.headers: Headers = []
        self.status = 0
        self.complete = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = message["headers"]
            message["headers"] = [*self.headers, (_HEADER, self.value)]
        else:
            body = message.get("body", b"")
            if self._limit >= 0 and body and body is not KEEPALIVE_COMMENT:
                self._size += len(body)
                if self._size > self._limit:
                    self._limit, self.chunks = -1, []  # too large to keep: let go of it now
                else:
                    self.chunks.append(body)
            if not message.get("more_body", False):
                self.complete = True
        await self._send(message)

    def answer(self, exchange: Exchange) -> Answer | None:
        """What to keep of a complete, successful answer; None for anything else."""
        if not self.complete or self._limit < 0 or self.status != 200 or exchange.status != 200 \
                or exchange.error is not None or exchange.broken:
            return None
        headers = []
        for name, value in self.headers:
            if name == b"content-encoding":  # compressed by the upstream: not for every client
                return None
            if name in _KEPT_HEADERS:
                headers.append((name, value))
        meter = exchange.meter
        found = meter.usage() if meter is not None else None
        usage = Usage(found.prompt, found.completion, found.total, found.cached) if found is not None else None
        return Answer(headers, b"".join(self.chunks), exchange.deployment, usage)
