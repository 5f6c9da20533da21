"""Micro benchmarks of the metrics' per-request work, off the request path (in the event bus's task).

`GatewayMetrics.record` counts a batch of 500 finished requests (the bus's default batch) from their
`Exchange`s; no usage event is built for it (events are built only when a usage sink is configured).
Reference: building the batch's usage events, what the bus does per batch for its sinks. Per-request cost = a
round's time / 500; compare it with the gateway's ~300-400 CPU-µs per request (benchmarks/README.md).
"""

from __future__ import annotations

from collections.abc import Callable

from llmgate.observe.metrics import GatewayMetrics
from llmgate.usage.event import Exchange, UsageEvent, build_event

BATCH = 500
MODELS = ("gpt-4o", "gpt-4o-mini", "claude-sonnet-4-5", "text-embedding-3-small")


def exchanges() -> list[Exchange]:
    batch = []
    for n in range(BATCH):
        exchange = Exchange(b"%024x" % n, "POST", "/v1/embeddings" if n % 4 == 3 else "/v1/chat/completions",
                            lag_s=0.0002)
        exchange.status = 200 if n % 20 else 502
        exchange.model = MODELS[n % len(MODELS)]
        exchange.deployment = exchange.provider = "openai"
        exchange.attempts = 1 if n % 10 else 2
        exchange.upstream_s = exchange.ttfb_s = 0.05 + (n % 7) * 0.1
        exchange.ended_at = exchange.started_at + exchange.upstream_s + 0.0003
        batch.append(exchange)
    return batch


def build_all(batch: list[Exchange]) -> list[UsageEvent]:
    return [build_event(exchange) for exchange in batch]


def test_build_events_reference(record: Callable[..., None]) -> None:
    record(build_all, exchanges(), is_reference="build")


def test_count_requests(record: Callable[..., None]) -> None:
    metrics = GatewayMetrics()
    batch = exchanges()
    record(metrics.record, batch, reference="build")
    found = metrics.render().decode()
    assert 'llmgate_requests_total{model="gpt-4o",route="/v1/chat/completions",status="200"}' in found
