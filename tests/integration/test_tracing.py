"""OpenTelemetry traces end to end: llmgate in process, a real OTLP/HTTP receiver on 127.0.0.1 decoding what the
SDK's exporter sends; the ids seen at the upstream, in the spans, in the usage log and in the log lines agree."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.inprocess.gateway import Gateway
from tests.inprocess.upstream import Reply, replies, reply_json

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
ANSWER = reply_json({"id": "chatcmpl-1", "model": "gpt-4o-mini", "choices": [],
                     "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}})
FRAMES = [b'data: {"choices":[{"delta":{"content":"a"}}]}\n\n',
          b'data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}\n\n',
          b"data: [DONE]\n\n"]


class Receiver:
    """An OTLP/HTTP traces endpoint: every span it was sent, flattened."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        self.resources: list[dict[str, Any]] = []
        received = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                assert self.path == "/v1/traces"
                assert self.headers["content-type"] == "application/x-protobuf"
                received.add(ExportTraceServiceRequest.FromString(body))
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def add(self, request: ExportTraceServiceRequest) -> None:
        for resource_spans in request.resource_spans:
            self.resources.append({a.key: _value(a.value) for a in resource_spans.resource.attributes})
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.spans.append({
                        "name": span.name, "trace_id": span.trace_id.hex(), "span_id": span.span_id.hex(),
                        "parent": span.parent_span_id.hex() or None, "kind": span.kind,
                        "start": span.start_time_unix_nano, "end": span.end_time_unix_nano,
                        "status": span.status.code, "scope": scope_spans.scope.name,
                        "attributes": {a.key: _value(a.value) for a in span.attributes}})

    def named(self, name: str) -> list[dict[str, Any]]:
        return [span for span in self.spans if span["name"] == name]


def _value(value: Any) -> Any:
    return getattr(value, value.WhichOneof("value"))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


def traced(receiver: Receiver, tmp_path: Path, **env: str) -> Gateway:
    return Gateway(env={"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "LLMGATE_USAGE_JSONL": str(tmp_path / "u.jsonl"),
                        "LLMGATE_LOG_JSON": "1", **env})


SERVER, CLIENT, INTERNAL = 2, 3, 1  # the OTLP span kinds


def test_a_request_is_traced_as_a_child_of_the_callers_span(receiver: Receiver, tmp_path: Path) -> None:
    with traced(receiver, tmp_path) as gw:
        gw.upstream = replies(ANSWER)
        response = gw.post("/v1/chat/completions", json=CHAT, headers={
            "traceparent": f"00-{TRACE}-{PARENT}-01", "tracestate": "vendor=x"})
        assert response.status_code == 200
        upstream = gw.sent[0].headers
    # gateway closed: the SDK's batch processor has exported everything
    (root,) = [span for span in receiver.spans if span["kind"] == SERVER]
    (attempt,) = [span for span in receiver.spans if span["kind"] == CLIENT]
    assert root["name"] == "chat gpt-4o-mini"
    assert (root["trace_id"], root["parent"]) == (TRACE, PARENT)
    # The upstream saw the attempt's span as its parent, not the caller's, in the same trace.
    assert upstream["traceparent"] == f"00-{TRACE}-{attempt['span_id']}-01"
    assert upstream["tracestate"] == "vendor=x"
    assert attempt["parent"] == root["span_id"] != PARENT
    assert {span["name"] for span in receiver.spans} == {"chat gpt-4o-mini", "authenticate", "route"}
    for span in receiver.spans:
        assert span["trace_id"] == TRACE and span["scope"] == "llmgate"
        assert root["start"] <= span["start"] <= span["end"] <= root["end"]
        if span is not root:
            assert span["parent"] == root["span_id"]
    assert root["attributes"] | {"llmgate.request_id": None} == {
        "http.request.method": "POST", "url.path": "/v1/chat/completions", "http.response.status_code": 200,
        "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini", "gen_ai.system": "openai",
        "gen_ai.usage.input_tokens": 5, "gen_ai.usage.output_tokens": 7, "llmgate.request_id": None,
        "llmgate.attempts": 1, "llmgate.stream": False, "llmgate.deployment": "openai",
        "llmgate.provider": "openai"}
    assert root["attributes"]["llmgate.request_id"] == response.headers["x-request-id"]
    assert attempt["attributes"]["gen_ai.usage.output_tokens"] == 7
    assert attempt["attributes"]["http.response.status_code"] == 200
    assert receiver.resources[0]["service.name"] == "llmgate"
    (event,) = [json.loads(line) for line in (tmp_path / "u.jsonl").read_text().splitlines()]
    assert event["trace_id"] == TRACE


def test_each_attempt_is_a_span_and_a_stream_has_its_relay(receiver: Receiver, tmp_path: Path) -> None:
    with traced(receiver, tmp_path) as gw:
        gw.upstream = replies(ConnectionRefusedError(), Reply(503, b'{"error":{"message":"busy"}}'),
                              Reply(200, FRAMES))
        response = gw.post("/v1/chat/completions", json={**CHAT, "stream": True})
        assert response.status_code == 200 and response.headers["x-llmgate-attempts"] == "3"
        parents = [sent.headers["traceparent"].split("-")[2] for sent in gw.sent]
        logs = [json.loads(line) for line in gw.logs().splitlines() if line.startswith("{")]
    (root,) = [span for span in receiver.spans if span["kind"] == SERVER]
    refused, failed, delivered = sorted((s for s in receiver.spans if s["kind"] == CLIENT), key=lambda s: s["start"])
    assert [refused["span_id"], failed["span_id"], delivered["span_id"]] == parents  # each its own span upstream
    assert refused["attributes"]["error.type"] == "upstream_unreachable"
    assert "http.response.status_code" not in refused["attributes"]
    assert failed["attributes"]["http.response.status_code"] == 503
    assert failed["attributes"]["error.type"] == "server"
    assert failed["status"] == 2  # ERROR
    assert "error.type" not in delivered["attributes"] and delivered["status"] == 0
    assert delivered["attributes"]["llmgate.attempt"] == 3
    (relay,) = receiver.named("relay")
    assert relay["parent"] == root["span_id"]
    assert delivered["end"] <= relay["start"] <= relay["end"] <= root["end"]
    assert root["attributes"]["llmgate.stream"] is True
    assert root["attributes"]["gen_ai.usage.output_tokens"] == 2
    # The refused connection's warning carries the trace id.
    warned = [line for line in logs if line.get("request_id") == response.headers["x-request-id"]]
    assert warned and all(line["trace_id"] == root["trace_id"] for line in warned)


def test_without_a_traceparent_a_new_trace_starts(receiver: Receiver, tmp_path: Path) -> None:
    with traced(receiver, tmp_path) as gw:
        gw.upstream = replies(ANSWER)
        assert gw.post("/v1/chat/completions", json=CHAT).status_code == 200
        traceparent = gw.sent[0].headers["traceparent"]
    (root,) = [span for span in receiver.spans if span["kind"] == SERVER]
    assert root["parent"] is None
    assert traceparent.startswith(f"00-{root['trace_id']}-") and traceparent.endswith("-01")


def test_an_error_of_the_gateways_own_is_traced(receiver: Receiver, tmp_path: Path) -> None:
    with traced(receiver, tmp_path) as gw:
        assert gw.post("/v1/chat/completions", json=CHAT, auth=False).status_code == 401
    (root,) = receiver.spans
    assert root["attributes"]["http.response.status_code"] == 401
    assert root["attributes"]["error.type"] == "invalid_api_key"
    assert root["status"] == 0  # the caller's error, not the server's


def test_an_unsampled_request_exports_nothing_and_passes_its_context_on(receiver: Receiver, tmp_path: Path) -> None:
    with traced(receiver, tmp_path) as gw:
        gw.upstream = replies(ANSWER)
        assert gw.post("/v1/chat/completions", json=CHAT,
                       headers={"traceparent": f"00-{TRACE}-{PARENT}-00"}).status_code == 200
        traceparent = gw.sent[0].headers["traceparent"]
    assert receiver.spans == []
    assert traceparent.startswith(f"00-{TRACE}-") and traceparent.endswith("-00")
    assert traceparent.split("-")[2] != PARENT


def test_with_tracing_off_the_callers_context_passes_through_untouched() -> None:
    with Gateway() as gw:
        assert gw.services.spans is None
        gw.upstream = replies(ANSWER)
        headers = {"traceparent": f"00-{TRACE}-{PARENT}-01"}
        assert gw.post("/v1/chat/completions", json=CHAT, headers=headers).status_code == 200
        assert gw.sent[0].headers["traceparent"] == f"00-{TRACE}-{PARENT}-01"
