"""Prometheus metrics: what the usage events say (requests, latency, tokens, retries) and what the gateway's
state says (breakers, key cooldowns, the event queue, loop lag).

Nothing here runs on the request path:
- per-request metrics come from each request's `Exchange`, counted by `GatewayMetrics.record`, the event bus's
  observer, in the bus's background task, a batch at a time (no usage event is built for them);
- state metrics are sampled from the gateway's services (`StateSampler`, observe/state_metrics.py) when /metrics is
  scraped, and every `SAMPLE_EVERY_S` in each worker when there are several.

Several workers (`llmgate serve --workers N`): prometheus_client's multiprocess mode. `llmgate serve` points
`PROMETHEUS_MULTIPROC_DIR` at a fresh temp dir before granian forks the workers (observe/multiproc.py); each
worker writes its values to its own memory-mapped files there, and a scrape, whichever worker it lands on, sums
the files of all of them. Gauges of state say how many workers are in a state (breakers), or the sum (queue
depth) or the max (loop lag) over the live workers.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    values,
)
from prometheus_client.multiprocess import MultiProcessCollector

from llmgate.usage.event import Exchange, UsageEvent

LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
"""Upstream time and total duration: from a cached embedding to a long completion."""
OVERHEAD_BUCKETS_S = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
"""What the gateway adds: a fraction of a millisecond when all is well."""
LATENCY_BOUNDS = (*LATENCY_BUCKETS_S, math.inf)
OVERHEAD_BOUNDS = (*OVERHEAD_BUCKETS_S, math.inf)
MAX_MODEL_LABELS = 200
"""Distinct `model` label values kept per process; later ones are counted as `other` (a client can name any
model: the labels must not grow without bound)."""


def is_multiprocess() -> bool:
    """Were metric values set up to live in PROMETHEUS_MULTIPROC_DIR (decided when prometheus_client loaded)?"""
    return bool(getattr(values.ValueClass, "_multiprocess", False))


class GatewayMetrics:
    """Every metric llmgate exports, and `render()` for /metrics."""

    def __init__(self) -> None:
        # No `_created` series: half the output, and no scraper here needs them.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.multiprocess = is_multiprocess()
        # Multiprocess: values live in files, the scrape reads them all; no registry holds the metric objects.
        own = None if self.multiprocess else CollectorRegistry(auto_describe=False)
        self._registry = own if own is not None else CollectorRegistry(auto_describe=False)
        if own is None:
            MultiProcessCollector(self._registry)  # type: ignore[no-untyped-call]
        self.requests = Counter("llmgate_requests", "/v1 requests answered, by route, model and status.",
                                ("route", "model", "status"), registry=own)
        self.errors = Counter("llmgate_errors", "/v1 requests llmgate answered with an error of its own, by type.",
                              ("route", "error"), registry=own)
        self.duration = Histogram("llmgate_request_duration_seconds", "Time from request to the answer's last byte.",
                                  ("route", "model"), buckets=LATENCY_BUCKETS_S, registry=own)
        self.upstream = Histogram("llmgate_upstream_duration_seconds",
                                  "Time spent in upstream calls (every attempt's) per request.",
                                  ("route", "model"), buckets=LATENCY_BUCKETS_S, registry=own)
        self.ttfb = Histogram("llmgate_upstream_ttfb_seconds", "The delivered attempt's time to its first byte.",
                              ("route", "model"), buckets=LATENCY_BUCKETS_S, registry=own)
        self.overhead = Histogram("llmgate_overhead_seconds",
                                  "Gateway overhead per request: duration minus upstream time, plus event-loop lag.",
                                  ("route",), buckets=OVERHEAD_BUCKETS_S, registry=own)
        self.tokens = Counter("llmgate_tokens", "Tokens, as the provider reported them (or estimated).",
                              ("model", "kind"), registry=own)
        self.retries = Counter("llmgate_retries", "Upstream attempts beyond the first (retries and failovers).",
                               ("route", "model"), registry=own)
        self.cooldowns = Counter("llmgate_key_cooldowns", "Provider keys put to rest after a 429.", ("provider",),
                                 registry=own)
        self.keys_resting = Gauge("llmgate_keys_resting", "Provider keys resting after a 429 now.", ("provider",),
                                  registry=own, multiprocess_mode="livemax")
        self.keys_disabled = Gauge("llmgate_keys_disabled", "Provider keys disabled after a 401/403.",
                                   ("provider",), registry=own, multiprocess_mode="livemax")
        self.breaker = Gauge("llmgate_breaker_state",
                             "Circuit breaker state per deployment: 1 in the current state (a pass-through "
                             "deployment, with a breaker per upstream model: 1 in each state one of them is in; "
                             "with several workers: how many workers see it in that state).",
                             ("deployment", "state"), registry=own, multiprocess_mode="livesum")
        self.breaker_opened = Counter("llmgate_breaker_opened", "Times a deployment's circuit breaker opened.",
                                      ("deployment",), registry=own)
        self.queue_depth = Gauge("llmgate_usage_queue_depth", "Usage events waiting for the sinks.", registry=own,
                                 multiprocess_mode="livesum")
        self.spilled = Counter("llmgate_usage_events_spilled", "Usage events written to a spill file: the queue was "
                               "full, or a sink (the store, the HTTP endpoint) could not take them.", registry=own)
        self.dropped = Counter("llmgate_usage_events_dropped", "Usage events lost: they could not be queued or "
                               "written, and the spill file failed.", registry=own)
        self.sink_failures = Counter("llmgate_usage_sink_failures", "Batches a usage sink failed to write.",
                                     ("sink",), registry=own)
        self.loop_lag = Gauge("llmgate_event_loop_lag_seconds", "Event-loop lag, latest sample (worst worker).",
                              registry=own, multiprocess_mode="livemax")
        self.loop_lag_peak = Gauge("llmgate_event_loop_lag_peak_seconds", "Worst event-loop lag of the last ~10 s.",
                                   registry=own, multiprocess_mode="livemax")
        self.cache = Counter("llmgate_cache_requests", "/v1 requests for cached models, by the response cache's "
                             "result: hit, miss or bypass.", ("result",), registry=own)
        self.cache_bytes = Gauge("llmgate_cache_bytes", "Bytes of answers the response cache holds in memory "
                                 "(0 when they are kept in Redis).", registry=own, multiprocess_mode="livesum")
        self.queued = Gauge("llmgate_limit_queued_requests", "Requests waiting now for an rpm/tpm slot (queue_ms).",
                            registry=own, multiprocess_mode="livesum")
        self.queue_time = Histogram("llmgate_limit_queue_seconds", "Time an admitted request waited for an "
                                    "rpm/tpm slot (queue_ms).", buckets=LATENCY_BUCKETS_S,
                                    registry=own)
        self.budget_alerts = Counter("llmgate_budget_alerts", "Budgets that passed their alert threshold (once per "
                                     "period), by kind (token, project) and budget.", ("kind", "budget"),
                                     registry=own)
        self.workers = Gauge("llmgate_workers", "Worker processes serving.", registry=own, multiprocess_mode="livesum")
        self.workers.set(1)
        self._models: set[str] = set()
        self._series: dict[tuple[str, str], _Series] = {}
        self._by_status: dict[tuple[str, str, int], Counter] = {}
        self._overhead: dict[str, Histogram] = {}

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric (all workers' in multiprocess mode)."""
        return generate_latest(self._registry)

    def record(self, exchanges: Sequence[Exchange], events: Sequence[UsageEvent | None] | None = None) -> None:
        """Count a batch of finished requests (the event bus's observer, off the request path).

        Tokens come from `events` when the bus built them for its sinks (aligned with `exchanges`; they hold
        tiktoken's estimates too), else from each answer's metered usage. The batch is tallied in plain Python
        first (a bucket found by bisect), then each series gets one update per batch: `Histogram.observe` takes a
        lock and loops over the buckets in Python (in multiprocess mode it writes a file), which four histograms
        a request made a measurable share of the gateway's CPU (benchmarks/bench_metrics.py).
        """
        tally = _Tally()
        series, by_status, overhead = self._series, self._by_status, self._overhead
        for i, exchange in enumerate(exchanges):
            route = route_label(exchange.endpoint, exchange.error)
            model = exchange.model or ""
            found = series.get((route, model))
            if found is None:
                found = series[(route, model)] = self._new_series(route, self._model_label(model))
            status = exchange.status
            requests = by_status.get((route, found.model, status))
            if requests is None:
                requests = by_status[(route, found.model, status)] = self.requests.labels(
                    route, found.model, str(status))
            tally.count(requests, 1)
            duration = exchange.ended_at - exchange.started_at
            upstream = exchange.upstream_s
            tally.observe(found.duration, LATENCY_BOUNDS, duration)
            hist = overhead.get(route)
            if hist is None:
                hist = overhead[route] = self.overhead.labels(route)
            tally.observe(hist, OVERHEAD_BOUNDS, max(0.0, duration - upstream) + exchange.lag_s)
            attempts = exchange.attempts
            if attempts:
                tally.observe(found.upstream, LATENCY_BOUNDS, upstream)
                if attempts > 1:
                    tally.count(found.retries, attempts - 1)
            if exchange.ttfb_s is not None:
                tally.observe(found.ttfb, LATENCY_BOUNDS, exchange.ttfb_s)
            prompt, completion = _tokens(exchange, events[i] if events is not None else None)
            if prompt:
                tally.count(found.prompt, prompt)
            if completion:
                tally.count(found.completion, completion)
            self._count_outcome(tally, route, exchange)
        tally.apply()

    def _count_outcome(self, tally: _Tally, route: str, exchange: Exchange) -> None:
        """What only some requests have: an error of llmgate's own, a cache result, time queued for a slot."""
        if exchange.error is not None:
            tally.count(self.errors.labels(route, exchange.error), 1)
        if exchange.cache is not None:
            tally.count(self.cache.labels(exchange.cache), 1)
        if exchange.queue_s:
            tally.observe(self.queue_time, LATENCY_BOUNDS, exchange.queue_s)

    def _model_label(self, model: str) -> str:
        if model in self._models:
            return model
        if len(self._models) >= MAX_MODEL_LABELS:
            return "other"
        self._models.add(model)
        return model

    def _new_series(self, route: str, model: str) -> _Series:
        return _Series(model, self.duration.labels(route, model), self.upstream.labels(route, model),
                       self.ttfb.labels(route, model), self.retries.labels(route, model),
                       self.tokens.labels(model, "prompt"), self.tokens.labels(model, "completion"))


class _Tally:
    """One batch's increments per labelled child, applied in one go (see `GatewayMetrics.record`)."""

    __slots__ = ("_counts", "_histograms")

    def __init__(self) -> None:
        self._counts: dict[Counter, float] = {}
        self._histograms: dict[Histogram, list[float]] = {}
        """child → [sum, count in bucket 0, bucket 1, ..., +Inf]"""

    def count(self, child: Counter, amount: float) -> None:
        counts = self._counts
        counts[child] = counts.get(child, 0.0) + amount

    def observe(self, child: Histogram, bounds: tuple[float, ...], value: float) -> None:
        tally = self._histograms.get(child)
        if tally is None:
            tally = self._histograms[child] = [0.0] * (len(bounds) + 1)
        tally[0] += value
        tally[1 + bisect.bisect_left(bounds, value)] += 1  # Prometheus buckets: the first bound >= value

    def apply(self) -> None:
        for counter, amount in self._counts.items():
            counter.inc(amount)
        for histogram, tally in self._histograms.items():
            # What `observe()` does, for many values at once: its sum and bucket values (prometheus_client's
            # own attributes, stable since 0.4; tests/unit/observe/test_metrics.py checks the exposition).
            histogram._sum.inc(tally[0])
            buckets = histogram._buckets
            for i, hits in enumerate(tally[1:]):
                if hits:
                    buckets[i].inc(hits)


class _Series:
    """The labelled children of one (route, model), looked up once: `labels()` costs more than `inc()`."""

    __slots__ = ("completion", "duration", "model", "prompt", "retries", "ttfb", "upstream")

    def __init__(self, model: str, duration: Histogram, upstream: Histogram, ttfb: Histogram, retries: Counter,
                 prompt: Counter, completion: Counter) -> None:
        self.model = model
        self.duration, self.upstream, self.ttfb = duration, upstream, ttfb
        self.retries, self.prompt, self.completion = retries, prompt, completion


def route_label(endpoint: str, error: str | None) -> str:
    """The route a request took, with unbounded parts folded: a path outside the allowlist is `unmatched`,
    `/v1/models/{id}` one route."""
    if error == "unknown_url":
        return "unmatched"
    if endpoint.startswith("/v1/models/"):
        return "/v1/models/{id}"
    return endpoint


def _tokens(exchange: Exchange, event: UsageEvent | None) -> tuple[int | None, int | None]:
    """(prompt, completion) tokens of a finished request: its event's when built, else the metered usage."""
    if event is not None:
        return event.prompt_tokens, event.completion_tokens
    meter = exchange.meter
    usage = meter.usage() if meter is not None and exchange.status == 200 else None
    return (usage.prompt, usage.completion) if usage is not None else (None, None)
