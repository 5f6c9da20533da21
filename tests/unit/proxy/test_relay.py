"""The passthrough's delivery (proxy/relay.py), in process against the double: the body goes up byte for byte
(the model renamed only where a deployment needs it), the upstream's answer comes down as it came, its errors
included."""

from __future__ import annotations

import json

from tests.inprocess.gateway import Gateway
from tests.inprocess.upstream import ask_double, seen


def test_request_body_is_forwarded_byte_for_byte(double_gateway: Gateway) -> None:
    body = b'{ "model" : "gpt-4o-mini",\n "messages": [{"role":"user","content":"h\\u00e9llo \xc3\xa9"}], "n": 1 }'
    response = double_gateway.post("/v1/chat/completions", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 200
    assert seen()["last_body"] == body.decode()


def test_upstream_error_body_and_status_unchanged(double_gateway: Gateway) -> None:
    # a model of its own: the 5xx are retried and count against that model's breaker, not the one of `m`
    body = json.dumps({"model": "errors"}).encode()
    for status in ("400", "404", "422", "500", "503"):
        mock = {"x-mock-status": status, "content-type": "application/json"}
        direct = double_gateway.run(ask_double("POST", "/v1/chat/completions", mock, body))
        through = double_gateway.post("/v1/chat/completions", content=body, headers=mock)
        assert (through.status_code, through.content) == (direct[0], direct[2])


def test_query_string_is_forwarded(double_gateway: Gateway) -> None:
    double_gateway.post("/v1/chat/completions?api-version=2024-10-21", json={"model": "m"})
    assert seen()["last_path"] == "/v1/chat/completions?api-version=2024-10-21"


def test_a_whole_answer_keeps_the_upstreams_headers_and_adds_ours(double_gateway: Gateway) -> None:
    response = double_gateway.post("/v1/chat/completions", json={"model": "m"})
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-upstream-request-id"].startswith("up-")
    assert response.headers["x-llmgate-deployment"] == "openai" and response.headers["x-llmgate-attempts"] == "1"
    assert response.headers["x-request-id"] != response.headers["x-upstream-request-id"]
