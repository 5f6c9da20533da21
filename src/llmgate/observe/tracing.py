"""W3C trace context on the request path: no OpenTelemetry import here.

When tracing is on (an OTLP endpoint is configured: `tracing_from_env`), each `/v1` request gets a `Trace`:
the caller's `traceparent` continued (or a new trace started), a span id of our own for the request, and one
for each upstream attempt, sent upstream as that attempt's `traceparent` (so the provider's spans are children
of the attempt, not of the caller). The request path only draws ids and stamps times; the spans themselves are
built and exported after the request, off its path, by observe/otlp.py. When tracing is off none of this runs:
the pipeline holds no `Tracing` and every hook is one `is None` test.

Sampling follows the standard `OTEL_TRACES_SAMPLER` values, decided here (not by the SDK's sampler) because the
decision must be known when the first attempt's `traceparent` goes upstream: `parentbased_always_on` (the
default), `parentbased_always_off`, `parentbased_traceidratio`, `always_on`, `always_off`, `traceidratio`
(with `OTEL_TRACES_SAMPLER_ARG`). An unsampled request still passes a trace context on (flags `00`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

import msgspec

_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")
_ZERO_TRACE, _ZERO_SPAN = "0" * 32, "0" * 16
_SAMPLERS = frozenset(("always_on", "always_off", "traceidratio", "parentbased_always_on",
                       "parentbased_always_off", "parentbased_traceidratio"))
_TRACE_HEADERS = frozenset(("traceparent", "tracestate"))


class Sampler(msgspec.Struct, frozen=True):
    """Which new and continued traces are recorded (the OTEL_TRACES_SAMPLER semantics)."""

    parent_based: bool = True
    """Follow the caller's sampled flag when it sends a trace context."""
    ratio: float = 1.0
    """The share of root traces recorded (0 or 1 for always_off / always_on)."""

    def sampled(self, trace_id: str, parent_flags: int | None) -> bool:
        """Whether to record the trace `trace_id`; `parent_flags`: the caller's trace flags, None for a root."""
        if self.parent_based and parent_flags is not None:
            return bool(parent_flags & 1)
        if self.ratio >= 1.0:
            return True
        # As the SDK's TraceIdRatioBased: the trace id's low 64 bits against the ratio's share of 2**64, so
        # every service sampling by ratio makes the same decision for one trace.
        return int(trace_id[16:], 16) < round(self.ratio * 2**64)


class TracingConfig(msgspec.Struct, frozen=True):
    """What `tracing_from_env` found: tracing is on, exporting to `endpoint`, with this sampler. The SDK reads
    the other OTEL_* variables itself (headers, timeout, compression, batching)."""

    endpoint: str
    """The OTLP/HTTP traces URL: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as given, or OTEL_EXPORTER_OTLP_ENDPOINT
    with `/v1/traces` appended (the OTLP exporter specification's rule)."""
    service_name: str = "llmgate"
    sampler: Sampler = Sampler()


def tracing_from_env(environ: Mapping[str, str] = os.environ) -> TracingConfig | None:
    """Tracing's configuration from the standard OTEL_* variables; None when off: no OTLP endpoint, or
    `OTEL_SDK_DISABLED=true`, or `OTEL_TRACES_EXPORTER=none`. ValueError for a value llmgate cannot honour
    (load_settings reports it with the rest of the configuration's problems)."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    exporter = environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower()
    if exporter == "none":
        return None
    endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    if not endpoint:
        base = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
        if not base:
            return None
        endpoint = base.rstrip("/") + "/v1/traces"
    if not endpoint.startswith(("http://", "https://")):
        raise ValueError(f"OTLP endpoint {endpoint!r}: expected an http:// or https:// URL")
    if exporter != "otlp":
        raise ValueError(f"OTEL_TRACES_EXPORTER={exporter!r}: llmgate exports traces over OTLP only (otlp, none)")
    protocol = (environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
                or "http/protobuf").strip().lower()
    if protocol != "http/protobuf":
        raise ValueError(f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r}: llmgate exports OTLP over HTTP "
                          "(http/protobuf); point it at the collector's HTTP port (4318)")
    return TracingConfig(endpoint, _service_name(environ), _sampler(environ))


def _service_name(environ: Mapping[str, str]) -> str:
    """OTEL_SERVICE_NAME, else `service.name` in OTEL_RESOURCE_ATTRIBUTES, else llmgate."""
    name = environ.get("OTEL_SERVICE_NAME", "").strip()
    if name:
        return name
    for pair in environ.get("OTEL_RESOURCE_ATTRIBUTES", "").split(","):
        key, _, value = pair.partition("=")
        if key.strip() == "service.name" and value.strip():
            return value.strip()
    return "llmgate"


def _sampler(environ: Mapping[str, str]) -> Sampler:
    name = environ.get("OTEL_TRACES_SAMPLER", "parentbased_always_on").strip().lower()
    if name not in _SAMPLERS:
        raise ValueError(f"OTEL_TRACES_SAMPLER={name!r}: expected one of {', '.join(sorted(_SAMPLERS))}")
    ratio = 1.0
    if name.endswith("always_off"):
        ratio = 0.0
    elif name.endswith("traceidratio"):
        arg = environ.get("OTEL_TRACES_SAMPLER_ARG", "1.0")
        try:
            ratio = float(arg)
        except ValueError:
            ratio = -1.0
        if not 0.0 <= ratio <= 1.0:
            raise ValueError(f"OTEL_TRACES_SAMPLER_ARG={arg!r}: expected a ratio from 0 to 1")
    return Sampler(parent_based=name.startswith("parentbased_"), ratio=ratio)


def parse_traceparent(value: str) -> tuple[str, str, int] | None:
    """(trace id, parent span id, flags) of a W3C `traceparent`; None when it is invalid (a new trace starts).

    Version 00 must have exactly four fields; a later version may append more, which are ignored (W3C Trace
    Context §4.3: parse what this version knows). Version ff is invalid, as are all-zero ids."""
    match = _TRACEPARENT.fullmatch(value.strip())
    if match is None:
        return None
    version, trace_id, parent_id, flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest) or trace_id == _ZERO_TRACE or parent_id == _ZERO_SPAN:
        return None
    return trace_id, parent_id, int(flags, 16)


class AttemptSpan(msgspec.Struct, gc=False):
    """One upstream attempt, as its span will show it (times on the request's monotonic clock)."""

    span_id: str
    number: int
    deployment: str
    provider: str
    kind: str
    """The provider's kind (openai, anthropic, azure, ...): `gen_ai.system`."""
    model: str | None
    """The model name sent upstream."""
    started_at: float
    ended_at: float = 0.0
    status: int = 0
    error: str | None = None
    """Why the attempt failed (a failure kind, or the exception's name when it was cancelled)."""


class Trace(msgspec.Struct, gc=False):
    """A traced request's context: ids, and the attempts' spans as they happen."""

    trace_id: str
    span_id: str
    """The request's span (the server span), a child of `parent_id`."""
    parent_id: str | None
    """The caller's span, when it sent a valid `traceparent`."""
    sampled: bool
    state: str | None = None
    """The caller's `tracestate`, passed on unchanged."""
    attempts: list[AttemptSpan] = msgspec.field(default_factory=list)
    delivered_at: float = 0.0
    """When the delivered answer's last byte went to the client (0: none was delivered)."""

    def start_attempt(self, number: int, deployment: str, provider: str, kind: str, model: str | None,
                      now: float) -> AttemptSpan:
        """A new attempt's span; the next `upstream_headers` carry its id."""
        attempt = AttemptSpan(os.urandom(8).hex(), number, deployment, provider, kind, model, now)
        self.attempts.append(attempt)
        return attempt

    def upstream_headers(self) -> list[tuple[str, str]]:
        """`traceparent` (and `tracestate`) for the latest attempt's upstream request.

        The attempt loop draws the attempt's span and builds its headers with no `await` between them, so
        "the latest" is this attempt's even when a hedge runs two at once."""
        span = self.attempts[-1].span_id if self.attempts else self.span_id
        headers = [("traceparent", f"00-{self.trace_id}-{span}-{'01' if self.sampled else '00'}")]
        if self.state:
            headers.append(("tracestate", self.state))
        return headers


def begin_trace(forward: list[tuple[str, str]], sampler: Sampler) -> Trace:
    """The request's trace, from the caller's `traceparent`/`tracestate` among its `forward` headers, which
    lose them: each attempt sends its own (`Trace.upstream_headers`)."""
    traceparent = tracestate = None
    if any(name in _TRACE_HEADERS for name, _ in forward):
        for name, value in forward:
            if name == "traceparent":
                traceparent = value
            elif name == "tracestate":
                tracestate = value
        forward[:] = [(name, value) for name, value in forward if name not in _TRACE_HEADERS]
    parent = parse_traceparent(traceparent) if traceparent is not None else None
    if parent is None:
        trace_id = os.urandom(16).hex()
        return Trace(trace_id, os.urandom(8).hex(), None, sampler.sampled(trace_id, None))
    trace_id, parent_id, flags = parent
    # A tracestate is meaningful only with the traceparent it came with (W3C §3.3.1).
    return Trace(trace_id, os.urandom(8).hex(), parent_id, sampler.sampled(trace_id, flags), tracestate or None)
