"""The W3C `Server-Timing` header: what the gateway itself did to a request, in milliseconds."""

from __future__ import annotations

from llmgate.usage.event import Exchange


def server_timing(exchange: Exchange, now: float, in_flight_since: float | None = None) -> bytes:
    """`auth`, `route`, `upstream-ttfb` (the delivered attempt's) and `overhead` (time so far minus time spent
    upstream, plus the loop lag the request waited before its handler ran) at `now` (monotonic seconds);
    `in_flight_since`: when a stream still being received was requested (its time is upstream time too)."""
    upstream = exchange.upstream_s + (now - in_flight_since if in_flight_since is not None else 0.0)
    overhead = now - exchange.started_at - upstream - exchange.queue_s + exchange.lag_s
    ttfb = exchange.ttfb_s if exchange.ttfb_s is not None else 0.0
    timing = b"auth;dur=%.3f, route;dur=%.3f, upstream-ttfb;dur=%.3f, overhead;dur=%.3f" % (
        exchange.auth_s * 1000, exchange.route_s * 1000, ttfb * 1000, max(0.0, overhead) * 1000)
    if exchange.queue_s:  # only for a request that waited for an rpm/tpm slot
        timing += b", queue;dur=%.3f" % (exchange.queue_s * 1000)
    return timing
