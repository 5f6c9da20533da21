"""Send a request upstream with retries and failover, and its answer back; the one place where upstream client
errors become ours.

    forward()   the attempt loop: routing picks (deployment, key); an attempt that fails before the first byte
                went to the client (connect error, timeout, 429, 401/403, 5xx) is retried on the next pick,
                then on the alias's fallbacks; when nothing else can take it, a transient failure (5xx,
                connection error, timeout) is retried on the same deployments, another key first. With
                exponential backoff and jitter, within the attempt and time budget. Other 4xx pass through at
                once. Every outcome goes back to routing (cooldown, the breaker of the model asked).
    open_*()    one attempt, up to its first byte (the whole answer when not streaming)
    deliver     the chosen answer to the client, with `x-llmgate-deployment` and `x-llmgate-attempts`
"""

from __future__ import annotations

import asyncio
import random
import time

from loguru import logger

from llmgate.errors import (
    GatewayError,
    NoHealthyDeployment,
    RateLimited,
    UpstreamTimeout,
    UpstreamUnreachable,
    error_body,
)
from llmgate.log import mask_secret
from llmgate.observe.timing import server_timing
from llmgate.proxy.asgi import DisconnectWatch, Headers, uncancel
from llmgate.proxy.attempt import TRANSIENT, Call, Failure, Opened, failure_kind, record_failure
from llmgate.proxy.client import TRANSPORT_ERRORS, UpstreamClient, is_connect_timeout, is_timeout
from llmgate.proxy.hedge import open_hedged
from llmgate.proxy.streaming import StreamGuard, end_with_error
from llmgate.routing.keys import KeyState
from llmgate.routing.select import Deployment, Route, choose, choose_last_resort
from llmgate.usage.event import CLIENT_CLOSED

__all__ = ["Call", "forward", "upstream_error"]

_monotonic = time.monotonic
"""The request's own timings (upstream time, Server-Timing), real time like `Exchange.started_at`; routing's
decisions use `call.clock`."""
_ATTEMPTS = tuple(b"%d" % n for n in range(64))


def upstream_error(exc: BaseException, client: UpstreamClient, secret: str = "") -> GatewayError:
    """Translate an upstream client error: timeouts → 504, anything else on the wire → 502."""
    provider = client.provider.name
    if is_connect_timeout(exc):
        return UpstreamTimeout(f"Timed out connecting to the upstream provider `{provider}`.")
    if is_timeout(exc):
        return UpstreamTimeout(f"The upstream provider `{provider}` did not answer in time.")
    # The client's message can hold the URL but never the key (it travels in a header); mask anyway.
    detail = str(exc).replace(secret, mask_secret(secret)) if secret else str(exc)
    logger.warning("upstream {} unreachable: {}", provider, detail)
    return UpstreamUnreachable(f"Could not reach the upstream provider `{provider}`.")


async def forward(call: Call, route: Route) -> None:
    """Serve `call` from `route` (then its fallbacks); answer the client exactly once."""
    watch = DisconnectWatch(call.receive, call.task, call.upstreams.watches) if isinstance(call.body, bytes) else None
    guard = StreamGuard(call.send, call.keepalive_s, call.keepalive_headers, call.error_frame) if call.stream else None
    call.guard = guard
    failure: Failure | None = None
    try:
        failure = await _try_chain(call, route)
    except asyncio.CancelledError:
        _release_probe(call)
        if watch is None or not watch.disconnected:
            raise
        uncancel()
        call.exchange.status = CLIENT_CLOSED
        if guard is not None and guard.started:
            logger.debug("client disconnected mid-stream; upstream response closed")
        else:
            logger.debug("client disconnected while waiting; upstream request closed")
        return
    except BaseException:
        _release_probe(call)
        raise
    finally:
        if watch is not None:
            watch.stop()
        if guard is not None:
            guard.stop()
    if failure is not _DONE:
        await _answer_failure(call, route, failure)


_DONE = Failure(None, None, "done")


async def _try_chain(call: Call, route: Route) -> Failure | None:
    """The alias, then its fallbacks; for a transient failure (nothing else could take it) the same again; then
    (when nothing at all was available) a resting key."""
    failure = await _try_route(call, route, None, again=False)
    if failure is not _DONE:
        failure = await _try_fallbacks(call, route, failure, again=False)
        if failure is not None and failure.kind in TRANSIENT:
            failure = await _try_route(call, route, failure, again=True)
            failure = await _try_fallbacks(call, route, failure, again=True)
        if failure is None:
            failure = await _last_resort(call, route)
    return failure


async def _try_fallbacks(call: Call, route: Route, failure: Failure | None, again: bool) -> Failure | None:
    for fallback in route.fallbacks:
        if failure is _DONE or _out_of_budget(call):
            break
        failure = await _try_route(call, fallback, failure, again)
    return failure


def _release_probe(call: Call) -> None:
    """The request ended before its attempt's outcome was known: a half-open probe it held is free again."""
    if call.deployment is not None:
        breaker = call.deployment.breaker_for(call.model)
        if breaker.state == "half_open":
            breaker.release()


async def _last_resort(call: Call, route: Route) -> Failure | None:
    """Nothing was available: try a resting key once rather than refuse (see routing.select.choose_last_resort)."""
    entries = route.by_capability.get(call.capability)
    pick = choose_last_resort(entries, call.model, call.clock()) if entries is not None else None
    if pick is None:
        return None
    call.attempts += 1
    call.deployment = pick[0]
    opened = await _open(call, *pick)
    if isinstance(opened, Opened):
        await _deliver(call, opened)
        return _DONE
    _record(call, opened)
    return opened


def _out_of_budget(call: Call) -> bool:
    routing = call.routing
    return call.attempts >= call.max_attempts or call.clock() - call.started_at >= routing.budget_s


async def _try_route(call: Call, route: Route, failure: Failure | None, again: bool) -> Failure | None:
    """Attempts on one alias until one is delivered (→ _DONE) or none is left (→ the last failure). A deployment
    that failed is left out for the rest of the pass, unless `again` (the retry pass: nothing else can take it,
    and its breaker for the model says when to stop)."""
    entries = route.by_capability.get(call.capability)
    if entries is None:
        return failure
    exclude: list[Deployment] = []
    while not _out_of_budget(call):
        pick = choose(entries, call.model, call.clock(), exclude, random.random, call.tried_keys or ())
        if pick is None:
            return failure
        if call.attempts:
            await asyncio.sleep(_backoff_s(call))
        call.attempts += 1
        call.deployment = pick[0]
        if route.hedge is not None and call.may_retry:
            opened = await open_hedged(call, route, pick, entries, exclude, _open, lambda f: _record(call, f))
        else:
            opened = await _open(call, *pick)
        if isinstance(opened, Opened):
            await _deliver(call, opened)
            return _DONE
        failure = opened
        if _record(call, failure) and not again:
            exclude.append(failure.deployment)  # type: ignore[arg-type]
        if not call.may_retry:
            return failure
    return failure


async def _open(call: Call, deployment: Deployment, key: KeyState) -> Opened | Failure:
    """One attempt up to its first byte; its span's times and outcome noted when the request is traced."""
    trace = call.exchange.trace
    if trace is None:
        return await _open_attempt(call, deployment, key)
    span = trace.start_attempt(call.attempts, deployment.name, deployment.provider.name,
                               deployment.provider.config.kind, deployment.upstream_model or call.model, _monotonic())
    try:
        outcome = await _open_attempt(call, deployment, key)
    except BaseException as exc:  # cancelled: a deadline, the client left, a hedge lost
        span.ended_at, span.error = _monotonic(), type(exc).__name__
        raise
    span.ended_at, span.status = _monotonic(), outcome.status
    if isinstance(outcome, Failure):
        span.error = (outcome.error.code or outcome.error.type) if outcome.error is not None else outcome.kind
    return outcome


def _headers(call: Call, deployment: Deployment, key: KeyState) -> list[tuple[str, str]]:
    """The attempt's upstream headers: the call's, and the attempt's trace context when traced."""
    headers = call.upstream_headers(deployment, key)
    if call.exchange.trace is not None:
        headers += call.exchange.trace.upstream_headers()
    return headers


async def _open_attempt(call: Call, deployment: Deployment, key: KeyState) -> Opened | Failure:
    """One attempt up to its first byte; a stream's first-byte deadline turns into a timeout Failure."""
    if call.guard is None:
        return await open_buffered(call, deployment, key)
    guard = call.guard
    guard.expect_first_byte(deployment.provider.config.timeouts)
    try:
        return await open_stream(call, deployment, key)
    except asyncio.CancelledError:
        if not guard.fired:
            raise
        uncancel()
        guard.between_attempts()
        error = UpstreamTimeout(f"The upstream provider `{deployment.provider.name}` did not answer in time.")
        return Failure(deployment, key, "timeout", error=error)


async def open_buffered(call: Call, deployment: Deployment, key: KeyState) -> Opened | Failure:
    """Send the request and read the whole answer (the provider's first-byte timeout bounds it)."""
    client = call.upstreams.clients[deployment.provider.name]
    exchange = call.exchange
    sent_at = _monotonic()
    try:
        status, headers, data = await client.fetch(call.method, call.upstream_path(deployment),
                                                   _headers(call, deployment, key),
                                                   call.upstream_body(deployment))
    except TRANSPORT_ERRORS as exc:
        exchange.upstream_s += _monotonic() - sent_at
        error = upstream_error(exc, client, key.secret)
        return Failure(deployment, key, "timeout" if isinstance(error, UpstreamTimeout) else "transport",
                       error=error)
    took = _monotonic() - sent_at
    exchange.upstream_s += took
    exchange.ttfb_s = took
    kind = failure_kind(status)
    if kind is not None:
        kind = call.refine_failure(kind, headers)
    if kind is None:
        return Opened(deployment, key, status, headers, data)
    return Failure(deployment, key, kind, status, headers, data)


async def open_stream(call: Call, deployment: Deployment, key: KeyState) -> Opened | Failure:
    """Send the request and wait for the answer's first chunk: until then a failure can still be retried."""
    client = call.upstreams.clients[deployment.provider.name]
    exchange = call.exchange
    sent_at = _monotonic()
    reply = client.stream(call.method, call.upstream_path(deployment), _headers(call, deployment, key),
                          call.upstream_body(deployment))
    entered = False
    try:
        await reply.__aenter__()
        entered = True
        kind = failure_kind(reply.status)
        if kind is not None:
            kind = call.refine_failure(kind, reply.raw_headers())
        if kind is not None:
            body = await reply.read()
            await reply.__aexit__(None, None, None)
            exchange.upstream_s += _monotonic() - sent_at
            return Failure(deployment, key, kind, reply.status, reply.raw_headers(), body)
        first = await reply.next_chunk()
        assert call.guard is not None
        call.guard.progress()
        exchange.ttfb_s = _monotonic() - sent_at
        return Opened(deployment, key, reply.status, reply.raw_headers(), first, reply, sent_at)
    except TRANSPORT_ERRORS as exc:
        exchange.upstream_s += _monotonic() - sent_at
        if entered:
            await reply.__aexit__(type(exc), exc, exc.__traceback__)
        error = upstream_error(exc, client, key.secret)
        return Failure(deployment, key, "timeout" if isinstance(error, UpstreamTimeout) else "transport",
                       error=error)
    except BaseException as exc:  # cancelled (deadline, disconnect, hedge lost): drop the connection
        exchange.upstream_s += _monotonic() - sent_at
        if entered:
            await reply.__aexit__(type(exc), exc, exc.__traceback__)
        raise


def _backoff_s(call: Call) -> float:
    """Exponential backoff with jitter: base * 2**(retry-1), capped, times a random factor in [0.5, 1]."""
    routing = call.routing
    ceiling = min(routing.backoff_max_ms, routing.backoff_base_ms * 2.0 ** (call.attempts - 1)) / 1000
    return ceiling * (0.5 + random.random() / 2)


def _record(call: Call, failure: Failure) -> bool:
    """Tell routing about a failed attempt of `call` and remember its key (a retry tries another first)."""
    assert failure.key is not None
    if call.tried_keys is None:
        call.tried_keys = [failure.key]
    else:
        call.tried_keys.append(failure.key)
    return record_failure(failure, call.model, call.clock(), call.routing)


async def _deliver(call: Call, opened: Opened, succeeded: bool = True) -> None:
    """Send the chosen answer to the client and tell routing how it went (`succeeded` False: a failure's answer
    passed on after the last attempt, already counted)."""
    deployment = opened.deployment
    exchange = call.exchange
    call.deployment = deployment
    exchange.status, exchange.attempts = opened.status, call.attempts
    exchange.deployment, exchange.provider = deployment.name, deployment.provider.name
    extra: Headers = [(b"x-llmgate-deployment", deployment.header),
                      (b"x-llmgate-attempts", _ATTEMPTS[call.attempts] if call.attempts < 64 else b"64")]
    if call.hedges:
        extra.append((b"x-llmgate-hedges", b"%d" % call.hedges))
    extra.append((b"server-timing", server_timing(exchange, _monotonic(), opened.sent_at if opened.reply else None)))
    reply = opened.reply
    try:
        error = await call.deliver(opened, extra)
    finally:
        if reply is not None:
            await reply.__aexit__(None, None, None)
            exchange.upstream_s += _monotonic() - opened.sent_at
        if exchange.trace is not None:
            exchange.trace.delivered_at = _monotonic()
    if error is not None:
        exchange.broken = True
        if deployment.breaker_for(call.model).record_failure(call.clock()):
            logger.warning("deployment {} circuit breaker opened for {} (mid-stream failure)", deployment.name,
                           call.model or "requests naming no model")
        return
    if succeeded:
        deployment.breaker_for(call.model).record_success(call.clock())
    if deployment.tpm is not None and exchange.status == 200 and exchange.meter is not None:
        deployment.record_tokens(exchange.meter.tokens(), call.clock())  # a deployment with a tpm limit


async def _answer_failure(call: Call, route: Route, failure: Failure | None) -> None:
    """No attempt succeeded: pass the last upstream answer on, or say why there was none."""
    call.exchange.attempts = call.attempts  # also when an error of llmgate's own is the answer (usage, metrics)
    if failure is None:
        error = _nothing_available(call, route)
    elif failure.error is not None:
        error = failure.error
    else:
        opened = Opened(failure.deployment, failure.key, failure.status, failure.headers, failure.body)  # type: ignore[arg-type]
        if call.guard is None or not call.guard.started:
            await _deliver(call, opened, succeeded=False)
            return
        call.exchange.status, call.exchange.error = 200, "upstream_error"  # keep-alives went out as a 200
        await end_with_error(call.send, call.guard, failure.body or b"{}")
        return
    error.headers["x-llmgate-attempts"] = str(call.attempts)
    if call.guard is not None and call.guard.started:
        call.exchange.status, call.exchange.error = 200, error.code or error.type
        await end_with_error(call.send, call.guard, error_body(error))
        return
    raise error


def _nothing_available(call: Call, route: Route) -> GatewayError:
    """Every deployment is resting: 429 when keys are cooling down (with when to come back), else 503. The
    message names the model the client asked for (a catch-all or prefix route's name is a pattern)."""
    now = call.clock()
    returns = []
    for deployment, _ in route.entries:
        back = deployment.keys.next_available_at()
        if back is not None and back > now and deployment.breaker_for(call.model).allows(now):
            returns.append(back)
    asked = f"`{call.model}`" if call.model else "this request"
    if returns:
        wait = max(1, int(min(returns) - now + 0.999))
        return RateLimited(f"Every API key for {asked} is rate limited; retry in {wait} s.",
                           headers={"retry-after": str(wait)})
    return NoHealthyDeployment(f"No healthy deployment can serve {asked} right now.")
