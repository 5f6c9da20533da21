"""Building a usage event from what the request path stamped into its Exchange."""

from __future__ import annotations

import msgspec

from llmgate.observe.tracing import Trace
from llmgate.usage.event import Exchange, build_event
from llmgate.usage.meter import UsageMeter


def test_times_ids_and_tokens() -> None:
    exchange = Exchange(b"rid", "POST", "/v1/chat/completions", lag_s=0.002)
    exchange.ended_at = exchange.started_at + 0.5
    exchange.upstream_s, exchange.ttfb_s = 0.49, 0.2
    exchange.status, exchange.stream, exchange.model, exchange.attempts = 200, True, "gpt-4o", 2
    exchange.deployment, exchange.provider = "gpt-4o@openai", "openai"
    exchange.project_id, exchange.token_id = "proj_1", "tok_1"
    exchange.upstream_request_id = b"req_up"
    exchange.meter = UsageMeter()
    exchange.meter.whole(b'{"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7,'
                         b'"prompt_tokens_details":{"cached_tokens":1}}}')
    event = build_event(exchange)
    assert (event.request_id, event.upstream_request_id, event.status, event.attempts) == ("rid", "req_up", 200, 2)
    assert (event.model, event.deployment, event.provider) == ("gpt-4o", "gpt-4o@openai", "openai")
    assert (event.project_id, event.token_id) == ("proj_1", "tok_1")
    assert event.duration_ms == 500.0 and event.upstream_ttfb_ms == 200.0 and event.upstream_ms == 490.0
    assert event.overhead_ms == 12.0  # 10 ms in the gateway + 2 ms waiting for the loop
    assert (event.prompt_tokens, event.completion_tokens, event.total_tokens, event.cached_tokens) == (3, 4, 7, 1)
    assert not event.estimated


def test_an_error_answer_carries_no_tokens_and_overhead_is_never_negative() -> None:
    exchange = Exchange(b"rid", "POST", "/v1/chat/completions")
    exchange.ended_at = exchange.started_at + 0.1
    exchange.upstream_s = 0.2  # hedged attempts overlap: upstream time can exceed the duration
    exchange.status, exchange.error = 429, "rate_limit_exceeded"
    exchange.meter = UsageMeter()
    exchange.meter.whole(b'{"usage":{"total_tokens":7}}')
    event = build_event(exchange)
    assert event.total_tokens is None and event.overhead_ms == 0.0 and event.error == "rate_limit_exceeded"


def test_every_field_gets_its_own_value() -> None:
    # every field of the event gets its own value, none another's
    exchange = Exchange(b"rid", "PUT", "/v1/embeddings", lag_s=0.004)
    exchange.started = 1_700_000_000.25
    exchange.ended_at = exchange.started_at + 0.5
    exchange.upstream_s, exchange.ttfb_s = 0.25, 0.125
    exchange.status, exchange.stream, exchange.model, exchange.attempts = 200, True, "alias", 3
    exchange.deployment, exchange.provider, exchange.error = "dep", "prov", "err"
    exchange.project_id, exchange.token_id, exchange.upstream_request_id = "proj", "tok", b"up"
    exchange.trace = Trace("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", None, True)
    exchange.cache = "hit"
    exchange.end_user = "user-7"
    exchange.meter = UsageMeter()
    exchange.meter.whole(b'{"usage":{"prompt_tokens":5,"completion_tokens":6,"total_tokens":12,'
                         b'"prompt_tokens_details":{"cached_tokens":2}}}')
    assert msgspec.structs.asdict(build_event(exchange)) == {
        "request_id": "rid", "time": 1_700_000_000.25, "method": "PUT", "endpoint": "/v1/embeddings", "status": 200,
        "stream": True, "model": "alias", "deployment": "dep", "provider": "prov", "project_id": "proj",
        "token_id": "tok", "attempts": 3, "duration_ms": 500.0, "upstream_ttfb_ms": 125.0, "upstream_ms": 250.0,
        "overhead_ms": 254.0, "prompt_tokens": 5, "completion_tokens": 6, "total_tokens": 12, "cached_tokens": 2,
        "estimated": False, "cost": None, "upstream_request_id": "up", "error": "err", "cached": True,
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "end_user": "user-7"}
