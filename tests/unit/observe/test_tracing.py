"""Trace context on the request path (observe/tracing.py): W3C parsing, sampling, the OTEL_* settings."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmgate.observe.tracing import Sampler, begin_trace, parse_traceparent, tracing_from_env

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


@pytest.mark.parametrize(("value", "expected"), [
    (f"00-{TRACE}-{PARENT}-01", (TRACE, PARENT, 1)),
    (f"00-{TRACE}-{PARENT}-00", (TRACE, PARENT, 0)),
    (f" 00-{TRACE}-{PARENT}-01 ", (TRACE, PARENT, 1)),
    (f"01-{TRACE}-{PARENT}-01-what-comes-later", (TRACE, PARENT, 1)),  # a later version: its known part
])
def test_a_valid_traceparent_is_continued(value: str, expected: tuple[str, str, int]) -> None:
    assert parse_traceparent(value) == expected


@pytest.mark.parametrize("value", [
    "",
    f"00-{TRACE}-{PARENT}-01-extra",          # version 00 has exactly four fields
    f"ff-{TRACE}-{PARENT}-01",                # version ff is invalid
    f"00-{'0' * 32}-{PARENT}-01",             # all-zero trace id
    f"00-{TRACE}-{'0' * 16}-01",              # all-zero parent id
    f"00-{TRACE.upper()}-{PARENT}-01",        # upper-case hex
    f"00-{TRACE[:-1]}-{PARENT}-01",           # short trace id
    f"00_{TRACE}_{PARENT}_01",
])
def test_an_invalid_traceparent_starts_a_new_trace(value: str) -> None:
    assert parse_traceparent(value) is None


@given(st.text(max_size=80))
def test_parsing_never_raises(value: str) -> None:
    parsed = parse_traceparent(value)
    assert parsed is None or (len(parsed[0]) == 32 and len(parsed[1]) == 16)


def test_the_callers_trace_headers_are_replaced_by_the_attempts_own() -> None:
    forward = [("content-type", "application/json"), ("traceparent", f"00-{TRACE}-{PARENT}-01"),
               ("tracestate", "vendor=x"), ("x-custom", "1")]
    trace = begin_trace(forward, Sampler())
    assert forward == [("content-type", "application/json"), ("x-custom", "1")]
    assert (trace.trace_id, trace.parent_id, trace.sampled, trace.state) == (TRACE, PARENT, True, "vendor=x")
    assert trace.span_id != PARENT and len(trace.span_id) == 16
    attempt = trace.start_attempt(1, "d", "p", "openai", "gpt-4o", 0.0)
    assert trace.upstream_headers() == [("traceparent", f"00-{TRACE}-{attempt.span_id}-01"),
                                        ("tracestate", "vendor=x")]
    second = trace.start_attempt(2, "d", "p", "openai", "gpt-4o", 1.0)
    assert second.span_id != attempt.span_id
    assert trace.upstream_headers()[0] == ("traceparent", f"00-{TRACE}-{second.span_id}-01")


def test_without_a_traceparent_a_new_trace_starts_and_a_tracestate_alone_is_dropped() -> None:
    forward = [("tracestate", "vendor=x")]
    trace = begin_trace(forward, Sampler())
    assert forward == []
    assert trace.parent_id is None and trace.state is None and trace.sampled
    assert len(trace.trace_id) == 32 and trace.trace_id != "0" * 32
    assert begin_trace([], Sampler()).trace_id != trace.trace_id


def test_an_unsampled_caller_is_followed_and_its_context_still_passed_on() -> None:
    trace = begin_trace([("traceparent", f"00-{TRACE}-{PARENT}-00")], Sampler())
    assert not trace.sampled
    trace.start_attempt(1, "d", "p", "openai", None, 0.0)
    assert trace.upstream_headers()[0][1].endswith("-00")


def test_samplers() -> None:
    low, high = "0" * 16 + "0" * 15 + "1", "0" * 16 + "f" * 16
    half = Sampler(parent_based=False, ratio=0.5)
    assert half.sampled(low, None) and not half.sampled(high, None)
    assert half.sampled(low, 0)  # not parent based: the caller's flag does not count
    assert Sampler(parent_based=True, ratio=0.0).sampled(high, 1)
    assert not Sampler(parent_based=True, ratio=1.0).sampled(low, 0)
    assert not Sampler(parent_based=True, ratio=0.0).sampled(low, None)


def test_tracing_is_off_without_an_endpoint_or_when_disabled() -> None:
    endpoint = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}
    assert tracing_from_env({}) is None
    assert tracing_from_env({**endpoint, "OTEL_SDK_DISABLED": "true"}) is None
    assert tracing_from_env({**endpoint, "OTEL_TRACES_EXPORTER": "none"}) is None
    config = tracing_from_env(endpoint)
    assert config is not None
    assert config.endpoint == "http://127.0.0.1:4318/v1/traces"
    assert config.service_name == "llmgate" and config.sampler == Sampler()


def test_the_traces_endpoint_is_used_as_given_and_the_service_named() -> None:
    config = tracing_from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4318",
                               "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://b/custom/path",
                               "OTEL_RESOURCE_ATTRIBUTES": "team=ml, service.name=edge",
                               "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
                               "OTEL_TRACES_SAMPLER_ARG": "0.25"})
    assert config is not None
    assert config.endpoint == "https://b/custom/path"
    assert config.service_name == "edge"
    assert config.sampler == Sampler(parent_based=True, ratio=0.25)
    named = tracing_from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a", "OTEL_SERVICE_NAME": "gw",
                              "OTEL_RESOURCE_ATTRIBUTES": "service.name=edge"})
    assert named is not None and named.service_name == "gw"


@pytest.mark.parametrize(("env", "message"), [
    ({"OTEL_TRACES_EXPORTER": "zipkin"}, "OTLP only"),
    ({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "over HTTP"),
    ({"OTEL_TRACES_SAMPLER": "sometimes"}, "expected one of"),
    ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"}, "from 0 to 1"),
    ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "half"}, "from 0 to 1"),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"}, "http:// or https://"),
])
def test_settings_llmgate_cannot_honour_are_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        tracing_from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", **env})
