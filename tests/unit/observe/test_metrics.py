"""The metrics sink: usage events counted into Prometheus series, labels bounded, the text format parseable."""

from __future__ import annotations

import json

import pytest
from prometheus_client.parser import text_string_to_metric_families

from llmgate.observe import metrics as metrics_module
from llmgate.observe.metrics import GatewayMetrics, route_label
from llmgate.usage.event import Exchange, build_event
from llmgate.usage.meter import UsageMeter


def finished(*, endpoint: str = "/v1/chat/completions", method: str = "POST", status: int = 200,
             model: str | None = "gpt-4o", attempts: int = 1, duration_ms: float = 120.0, upstream_ms: float = 119.5,
             upstream_ttfb_ms: float | None = 80.0, lag_ms: float = 0.0, error: str | None = None,
             prompt_tokens: int | None = None, completion_tokens: int | None = None) -> Exchange:
    """A finished request as the hot path leaves it; tokens as the upstream's `usage` reported them."""
    exchange = Exchange(b"r", method, endpoint, lag_s=lag_ms / 1000)
    exchange.status, exchange.model, exchange.attempts, exchange.error = status, model, attempts, error
    exchange.started_at, exchange.ended_at = 0.0, duration_ms / 1000  # durations exact, bounds included
    exchange.upstream_s = upstream_ms / 1000
    exchange.ttfb_s = upstream_ttfb_ms / 1000 if upstream_ttfb_ms is not None else None
    if prompt_tokens is not None or completion_tokens is not None:
        exchange.meter = UsageMeter()
        usage = {"prompt_tokens": prompt_tokens or 0, "completion_tokens": completion_tokens or 0,
                 "total_tokens": (prompt_tokens or 0) + (completion_tokens or 0)}
        exchange.meter.whole(json.dumps({"usage": usage}).encode())
    return exchange


def samples(metrics: GatewayMetrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of the exposition, by (sample name, labels)."""
    out = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def value(found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return found[(name, frozenset(labels.items()))]


def test_requests_latency_tokens_and_retries() -> None:
    metrics = GatewayMetrics()
    metrics.record([
        finished(prompt_tokens=11, completion_tokens=24),
        finished(prompt_tokens=5, completion_tokens=1, attempts=3, upstream_ms=300.0, duration_ms=300.5),
        finished(status=502, error="upstream_unreachable", upstream_ttfb_ms=None),
        finished(endpoint="/v1/embeddings", model="text-embedding-3-small", prompt_tokens=40),
    ])
    found = samples(metrics)
    chat = {"route": "/v1/chat/completions", "model": "gpt-4o"}
    assert value(found, "llmgate_requests_total", status="200", **chat) == 2
    assert value(found, "llmgate_requests_total", status="502", **chat) == 1
    assert value(found, "llmgate_requests_total", route="/v1/embeddings", model="text-embedding-3-small",
                 status="200") == 1
    assert value(found, "llmgate_errors_total", route="/v1/chat/completions", error="upstream_unreachable") == 1
    assert value(found, "llmgate_tokens_total", model="gpt-4o", kind="prompt") == 16
    assert value(found, "llmgate_tokens_total", model="gpt-4o", kind="completion") == 25
    assert value(found, "llmgate_tokens_total", model="text-embedding-3-small", kind="prompt") == 40
    assert value(found, "llmgate_retries_total", **chat) == 2  # attempts - 1
    assert value(found, "llmgate_request_duration_seconds_count", **chat) == 3
    assert value(found, "llmgate_request_duration_seconds_sum", **chat) == pytest.approx(0.5405)
    assert value(found, "llmgate_upstream_duration_seconds_bucket", le="0.25", **chat) == 2  # 0.1195 twice
    assert value(found, "llmgate_upstream_duration_seconds_bucket", le="0.5", **chat) == 3
    assert value(found, "llmgate_upstream_ttfb_seconds_count", **chat) == 2  # the 502 had no first byte
    # overhead: duration minus upstream time, 0.5 ms each
    assert value(found, "llmgate_overhead_seconds_bucket", route="/v1/chat/completions", le="0.00025") == 0
    assert value(found, "llmgate_overhead_seconds_bucket", route="/v1/chat/completions", le="0.001") == 3
    assert value(found, "llmgate_overhead_seconds_count", route="/v1/embeddings") == 1


def test_requests_that_never_went_upstream_have_no_upstream_time() -> None:
    metrics = GatewayMetrics()
    metrics.record([finished(status=401, attempts=0, upstream_ms=0.0, upstream_ttfb_ms=None, error="invalid_api_key")])
    found = samples(metrics)
    chat = {"route": "/v1/chat/completions", "model": "gpt-4o"}
    assert value(found, "llmgate_requests_total", status="401", **chat) == 1
    assert value(found, "llmgate_upstream_duration_seconds_count", **chat) == 0
    assert value(found, "llmgate_overhead_seconds_count", route="/v1/chat/completions") == 1


def test_route_labels_fold_unbounded_paths() -> None:
    assert route_label("/v1/whatever/123", "unknown_url") == "unmatched"
    assert route_label("/v1/models/org/model-x", None) == "/v1/models/{id}"
    assert route_label("/v1/messages", None) == "/v1/messages"


def test_model_labels_are_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics_module, "MAX_MODEL_LABELS", 3)
    metrics = GatewayMetrics()
    metrics.record([finished(model=f"m{n}") for n in range(6)] + [finished(model="m0")])
    found = samples(metrics)
    models = {dict(labels)["model"] for name, labels in found if name == "llmgate_requests_total"}
    assert models == {"m0", "m1", "m2", "other"}
    assert value(found, "llmgate_requests_total", route="/v1/chat/completions", model="other", status="200") == 3
    assert value(found, "llmgate_requests_total", route="/v1/chat/completions", model="m0", status="200") == 2


def test_tokens_come_from_the_events_when_the_bus_built_them() -> None:
    """With usage sinks, the bus builds events (tiktoken's estimates included): the metrics count their tokens."""
    metrics = GatewayMetrics()
    metered, unmetered = finished(prompt_tokens=1, completion_tokens=1), finished()
    estimated = build_event(unmetered)
    estimated.prompt_tokens, estimated.completion_tokens, estimated.estimated = 7, 3, True
    metrics.record([metered, unmetered], [build_event(metered), estimated])
    metrics.record([finished(status=429, error="rate_limit_exceeded")], [None])  # its event failed to build
    found = samples(metrics)
    chat = {"route": "/v1/chat/completions", "model": "gpt-4o"}
    assert value(found, "llmgate_tokens_total", model="gpt-4o", kind="prompt") == 8
    assert value(found, "llmgate_tokens_total", model="gpt-4o", kind="completion") == 4
    assert value(found, "llmgate_requests_total", status="200", **chat) == 2
    assert value(found, "llmgate_requests_total", status="429", **chat) == 1
    assert not metrics.multiprocess


def test_two_gateways_in_one_process_count_apart() -> None:
    first, second = GatewayMetrics(), GatewayMetrics()
    first.record([finished()])
    found = samples(second)
    assert ("llmgate_requests_total", frozenset({("route", "/v1/chat/completions"), ("model", "gpt-4o"),
                                                 ("status", "200")})) not in found
    assert value(found, "llmgate_workers") == 1


def test_tallied_histograms_match_observe_one_by_one() -> None:
    """`record` tallies a batch and updates each bucket once; the exposition is what `observe()` per value gives,
    bounds included (a value equal to a bound falls in that bucket)."""
    from prometheus_client import CollectorRegistry, Histogram

    from llmgate.observe.metrics import LATENCY_BUCKETS_S

    durations_s = [0.0, 0.005, 0.0050001, 0.1, 0.3, 2.5, 299.9, 300.0, 1000.0, 0.042]
    registry = CollectorRegistry()
    reference = Histogram("reference_seconds", "-", buckets=LATENCY_BUCKETS_S, registry=registry)
    for duration_s in durations_s:
        reference.observe(duration_s)
    expected = {dict(s.labels).get("le"): s.value for family in text_string_to_metric_families(
        registry_text(registry)) for s in family.samples if s.name == "reference_seconds_bucket"}
    metrics = GatewayMetrics()
    metrics.record([finished(duration_ms=d * 1000) for d in durations_s[:4]])  # two batches
    metrics.record([finished(duration_ms=d * 1000) for d in durations_s[4:]])
    found = samples(metrics)
    chat = {"route": "/v1/chat/completions", "model": "gpt-4o"}
    got = {le: value(found, "llmgate_request_duration_seconds_bucket", le=le, **chat) for le in expected}
    assert got == expected
    assert value(found, "llmgate_request_duration_seconds_sum", **chat) == pytest.approx(sum(durations_s))


def registry_text(registry: object) -> str:
    from prometheus_client import generate_latest

    return generate_latest(registry).decode()  # type: ignore[arg-type]
