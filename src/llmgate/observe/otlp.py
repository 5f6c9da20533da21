"""The spans of traced requests, built after each request from what it left behind, and exported over OTLP/HTTP
by the OpenTelemetry SDK: its batching span processor (a queue and a worker thread of its own) and its OTLP/HTTP
exporter, configured by the standard OTEL_* variables (endpoint, headers, timeout, compression, OTEL_BSP_*).

This is the only module that imports the SDK, and it is imported only when tracing is on (services.py): a
gateway that traces nothing loads none of it.

A request's spans (times from the request path's stamps, observe/tracing.py):

    <operation> <model>   SERVER   the whole request; the caller's span as parent when it sent one
      authenticate        INTERNAL
      route               INTERNAL body read, alias resolved, limits checked
      <operation> <model> CLIENT   each upstream attempt, to its first byte (a whole answer: all of it)
      relay               INTERNAL a stream's delivered answer, from its first byte to its last

with the OpenTelemetry GenAI semantic conventions' attributes (`gen_ai.*`) where they apply and `llmgate.*`
for the rest. No prompt or completion content is recorded.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

from llmgate import __version__
from llmgate.usage.event import Exchange, UsageEvent, build_event

if TYPE_CHECKING:
    from llmgate.observe.tracing import AttemptSpan, Trace, TracingConfig

Attributes = dict[str, str | bool | int | float]

_OPERATIONS = {"/v1/chat/completions": "chat", "/v1/messages": "chat", "/v1/responses": "chat",
               "/v1/completions": "text_completion", "/v1/embeddings": "embeddings"}
"""`gen_ai.operation.name` of the endpoints that have one."""
_SYSTEMS = {"openai": "openai", "anthropic": "anthropic", "azure": "az.ai.openai", "gemini": "gcp.gemini",
            "vertex": "gcp.vertex_ai", "bedrock": "aws.bedrock"}
"""`gen_ai.system` of each provider kind (the GenAI conventions' well-known values); other kinds as named."""
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_SCOPE = InstrumentationScope("llmgate", __version__)


def make_resource(service_name: str) -> Resource:
    """The SDK's resource (with what OTEL_RESOURCE_ATTRIBUTES adds), named `service_name`."""
    return Resource.create({"service.name": service_name, "service.version": __version__})


class SpanExport:
    """Turns finished traced requests into spans for the SDK's batch processor (`observe`, called by the usage
    bus off the request path); `close` flushes what is queued."""

    def __init__(self, config: TracingConfig, exporter: SpanExporter | None = None) -> None:
        """`exporter`: OTLP/HTTP to `config.endpoint` unless given (tests)."""
        if exporter is None:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter(endpoint=config.endpoint)
        self.processor = BatchSpanProcessor(exporter)
        self.resource = make_resource(config.service_name)
        self.exported = 0
        """Requests whose spans were queued for export."""

    def observe(self, exchanges: Sequence[Exchange], events: Sequence[UsageEvent | None] | None) -> None:
        """Queue the spans of the sampled requests among `exchanges` (with their usage events when the bus built
        them, for the token counts; otherwise the provider's own counts)."""
        for index, exchange in enumerate(exchanges):
            trace = exchange.trace
            if trace is None or not trace.sampled:
                continue
            event = events[index] if events is not None else None
            for span in request_spans(exchange, trace, event or build_event(exchange), self.resource):
                self.processor.on_end(span)
            self.exported += 1

    async def close(self) -> None:
        """Export what is queued (the SDK's shutdown blocks on its worker thread: waited for in a thread)."""
        await asyncio.to_thread(self.processor.shutdown)


def request_spans(exchange: Exchange, trace: Trace, event: UsageEvent, resource: Resource) -> list[ReadableSpan]:
    """The spans of one finished request (see the module docstring), children before their parent."""
    started_ns = int(exchange.started * 1e9)

    def ns(monotonic: float) -> int:
        return started_ns + int((monotonic - exchange.started_at) * 1e9)

    operation = _OPERATIONS.get(exchange.endpoint)
    root = SpanContext(int(trace.trace_id, 16), int(trace.span_id, 16), is_remote=False, trace_flags=_SAMPLED,
                       trace_state=_trace_state(trace.state))
    parent = (SpanContext(int(trace.trace_id, 16), int(trace.parent_id, 16), is_remote=True, trace_flags=_SAMPLED)
              if trace.parent_id is not None else None)

    def child(name: str, span_id: str | None, kind: SpanKind, start: float, end: float, attributes: Attributes,
              failed: str | None = None) -> ReadableSpan:
        context = SpanContext(root.trace_id, int(span_id, 16) if span_id else _span_id(), is_remote=False,
                              trace_flags=_SAMPLED)
        status = Status(StatusCode.ERROR, failed) if failed else Status(StatusCode.UNSET)
        return ReadableSpan(name, context, root, resource, attributes, kind=kind, status=status,
                            start_time=ns(start), end_time=ns(end), instrumentation_scope=_SCOPE)

    spans = []
    authenticated = exchange.started_at + exchange.auth_s
    if exchange.auth_s:
        spans.append(child("authenticate", None, SpanKind.INTERNAL, exchange.started_at, authenticated, {}))
    if exchange.route_s:
        spans.append(child("route", None, SpanKind.INTERNAL, authenticated, authenticated + exchange.route_s, {}))
    delivered = None
    for attempt in trace.attempts:
        if attempt.error is None and attempt.ended_at:
            delivered = attempt
        attributes = _attempt_attributes(attempt, operation)
        if attempt is trace.attempts[-1] and delivered is attempt:
            attributes.update(_usage_attributes(event))
        name = f"{operation} {attempt.model}" if operation and attempt.model else f"upstream {attempt.deployment}"
        spans.append(child(name, attempt.span_id, SpanKind.CLIENT, attempt.started_at,
                           attempt.ended_at or exchange.ended_at, attributes, attempt.error))
    if exchange.stream and delivered is not None and trace.delivered_at:
        spans.append(child("relay", None, SpanKind.INTERNAL, delivered.ended_at, trace.delivered_at, {}))
    failed = _failed(event)
    name = f"{operation} {exchange.model}" if operation and exchange.model else f"{exchange.method} {exchange.endpoint}"
    spans.append(ReadableSpan(
        name, root, parent, resource, _request_attributes(exchange, event, operation, delivered), kind=SpanKind.SERVER,
        status=Status(StatusCode.ERROR, failed) if failed else Status(StatusCode.UNSET),
        start_time=started_ns, end_time=ns(exchange.ended_at), instrumentation_scope=_SCOPE))
    return spans


def _request_attributes(exchange: Exchange, event: UsageEvent, operation: str | None,
                        delivered: AttemptSpan | None) -> Attributes:
    attributes: Attributes = {"http.request.method": exchange.method, "url.path": exchange.endpoint,
                              "http.response.status_code": event.status, "llmgate.request_id": event.request_id,
                              "llmgate.attempts": event.attempts, "llmgate.stream": event.stream}
    if operation:
        attributes["gen_ai.operation.name"] = operation
    if exchange.model:
        attributes["gen_ai.request.model"] = exchange.model
    if delivered is not None:
        attributes["gen_ai.system"] = _SYSTEMS.get(delivered.kind, delivered.kind)
    for name, value in (("llmgate.deployment", event.deployment), ("llmgate.provider", event.provider),
                        ("llmgate.project_id", event.project_id), ("llmgate.token_id", event.token_id),
                        ("llmgate.upstream_request_id", event.upstream_request_id), ("llmgate.cost", event.cost),
                        ("error.type", _failed(event) or (event.error if event.status >= 400 else None))):
        if value is not None:
            attributes[name] = value
    attributes.update(_usage_attributes(event))
    return attributes


def _attempt_attributes(attempt: AttemptSpan, operation: str | None) -> Attributes:
    attributes: Attributes = {"gen_ai.system": _SYSTEMS.get(attempt.kind, attempt.kind),
                              "llmgate.deployment": attempt.deployment, "llmgate.provider": attempt.provider,
                              "llmgate.attempt": attempt.number}
    if operation:
        attributes["gen_ai.operation.name"] = operation
    if attempt.model:
        attributes["gen_ai.request.model"] = attempt.model
    if attempt.status:
        attributes["http.response.status_code"] = attempt.status
    if attempt.error:
        attributes["error.type"] = attempt.error
    return attributes


def _usage_attributes(event: UsageEvent) -> Attributes:
    attributes: Attributes = {}
    if event.prompt_tokens is not None:
        attributes["gen_ai.usage.input_tokens"] = event.prompt_tokens
    if event.completion_tokens is not None:
        attributes["gen_ai.usage.output_tokens"] = event.completion_tokens
    if event.estimated:
        attributes["llmgate.usage.estimated"] = True
    return attributes


def _failed(event: UsageEvent) -> str | None:
    """Why the request failed, as the span's error status: a 5xx, or an error that ended a started stream."""
    if event.status >= 500 or (event.status < 400 and event.error):
        return event.error or str(event.status)
    return None


def _trace_state(state: str | None) -> TraceState | None:
    if not state:
        return None
    try:
        return TraceState.from_header([state])
    except ValueError:
        return None


def _span_id() -> int:
    return int.from_bytes(os.urandom(8), "big") or 1
