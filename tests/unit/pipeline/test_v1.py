"""The /v1 pipeline (pipeline/v1.py) in process: every request answered once, its errors in the caller's
dialect, what nobody foresaw a 500 that is logged, and every request (refused, failed, abandoned) leaving one
usage event with what the client saw."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.inprocess.access import until
from tests.inprocess.gateway import Gateway, Response, http_scope
from tests.inprocess.upstream import DOUBLE_URL, Reply, Sent, double
from tests.servers import MASTER_KEY

ERROR_STREAMS = {
    "openai-error-stream": b'data: {"error":{"message":"overloaded","type":"server_error","code":"overloaded"}}\n\n',
    "anthropic-error-stream": b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error"}}\n\n',
}


def boom(sent: Sent) -> Any:
    model = sent.json().get("model")
    if model == "boom":
        raise RuntimeError("a bug nobody foresaw")
    if model in ERROR_STREAMS:
        first = b'data: {"id":"c","choices":[{"index":0,"delta":{"content":"hi"}}]}\n\n'
        return Reply(200, [first, ERROR_STREAMS[model]], [("content-type", "text/event-stream")])
    return double()(sent)


@pytest.fixture(scope="module")
def events(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("v1") / "events.jsonl"


@pytest.fixture(scope="module")
def gw(events: Path) -> Iterator[Gateway]:
    env = {"OPENAI_BASE_URL": f"{DOUBLE_URL}/v1", "LLMGATE_USAGE_JSONL": str(events), "LLMGATE_USAGE_FLUSH_S": "0.05"}
    with Gateway(upstream=boom, env=env) as gateway:
        yield gateway


def event_of(gw: Gateway, events: Path, response: Response | str) -> dict[str, Any]:
    request_id = response if isinstance(response, str) else response.headers["x-request-id"]

    def find() -> dict[str, Any] | None:
        lines = events.read_text().splitlines() if events.exists() else []
        return next((e for e in map(json.loads, lines) if e["request_id"] == request_id), None)

    event = until(gw, find)
    assert event is not None, f"no usage event for {request_id}"
    return event  # type: ignore[no-any-return]


def test_an_unexpected_error_is_a_logged_500_in_the_callers_dialect(gw: Gateway, events: Path) -> None:
    openai = gw.post("/v1/chat/completions", json={"model": "boom", "messages": []})
    assert openai.status_code == 500
    error = openai.json()["error"]
    assert (error["message"], error["type"]) == ("The gateway failed to handle the request.", "server_error")
    anthropic = gw.post("/v1/messages", json={"model": "boom", "max_tokens": 5, "messages": []}, auth=False,
                        headers={"x-api-key": MASTER_KEY})
    assert anthropic.status_code == 500 and anthropic.json()["type"] == "error"
    assert "unexpected error" in gw.logs() and "RuntimeError: a bug nobody foresaw" in gw.logs()
    assert event_of(gw, events, openai)["status"] == 500 and event_of(gw, events, openai)["error"] == "server_error"
    assert gw.services.upstreams.active == 0  # the generation was left, error or not


@pytest.mark.parametrize(("method", "path", "body", "headers", "status", "error"), [
    ("POST", "/v1/nope", None, {}, 404, "unknown_url"),
    ("GET", "/v1/chat/completions", None, {}, 405, "method_not_allowed"),
    ("POST", "/v1/chat/completions", {"model": "m"}, {"authorization": "Bearer wrong"}, 401, "invalid_api_key"),
    ("POST", "/v1/chat/completions", {"messages": []}, {}, 400, "invalid_request_error"),
    ("POST", "/v1/chat/completions", {"model": "m"}, {"x-mock-status": "503"}, 503, None),
    ("POST", "/v1/chat/completions", {"model": "m"}, {}, 200, None),
])
def test_every_request_leaves_one_event_with_what_the_client_saw(gw: Gateway, events: Path, method: str, path: str,
                                                                 body: Any, headers: dict[str, str], status: int,
                                                                 error: str | None) -> None:
    response = gw.request(method, path, json=body, headers=headers)
    assert response.status_code == status
    event = event_of(gw, events, response)
    assert (event["status"], event["error"]) == (status, error)
    assert event["endpoint"] == path and event["method"] == method


def test_the_callers_request_id_is_kept(gw: Gateway) -> None:
    response = gw.post("/v1/chat/completions", json={"model": "m"}, headers={"x-request-id": "caller-7"})
    assert response.headers["x-request-id"] == "caller-7"
    failed = gw.post("/v1/nope", headers={"x-request-id": "caller-8"})
    assert failed.headers["x-request-id"] == "caller-8"


def test_a_body_that_ends_early_is_answered_400_and_recorded_as_such(gw: Gateway, events: Path) -> None:
    """granian reports a client that left mid-body and a body it could not read (malformed chunked framing) alike,
    as `http.disconnect`: a client still there must get an answer in its shape (the server drops it otherwise)."""
    sent: list[dict[str, Any]] = []
    messages = [{"type": "http.request", "body": b'{"model": "m", ', "more_body": True}, {"type": "http.disconnect"}]

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = http_scope("POST", "/v1/chat/completions", {"authorization": f"Bearer {MASTER_KEY}",
                                                         "x-request-id": "left-early", "content-length": "40"})
    gw.run(gw.app(scope, receive, send))
    assert sent[0]["status"] == 400 and (b"connection", b"close") in sent[0]["headers"]
    assert json.loads(sent[1]["body"])["error"]["code"] == "incomplete_body"
    event = event_of(gw, events, "left-early")
    assert (event["status"], event["error"]) == (400, "incomplete_body")
    assert "the request body ended early, after 15 bytes" in gw.logs()


@pytest.mark.parametrize(("model", "error"), [("openai-error-stream", "overloaded"),
                                              ("anthropic-error-stream", "overloaded_error")])
def test_a_stream_the_upstream_ended_with_an_error_event_is_logged_as_an_error(gw: Gateway, events: Path,
                                                                                model: str, error: str) -> None:
    response = gw.post("/v1/chat/completions", json={"model": model, "stream": True, "messages": []})
    assert response.status_code == 200 and response.content.endswith(ERROR_STREAMS[model])  # passed on as it came
    event = event_of(gw, events, response)
    assert (event["status"], event["error"]) == (200, error)
