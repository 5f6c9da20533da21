"""The cheap refusals: load shedding's answer (503 with retry-after, in the caller's dialect), a bad Host."""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

import pytest

from llmgate.config import ServerConfig
from llmgate.errors import GatewayError, InvalidRequest, Overloaded
from llmgate.pipeline.dialects import ANTHROPIC, OPENAI, send_error
from llmgate.pipeline.request import V1Request
from llmgate.pipeline.screen import screen, shed_after_s
from llmgate.proxy.headers import split_request_headers
from llmgate.usage.event import Exchange
from tests.inprocess.gateway import Gateway, drive, http_scope
from tests.servers import MASTER_KEY


def request(anthropic: bool, lag_s: float = 0.4321, host: bytes = b"localhost:8000") -> V1Request:
    path = "/messages" if anthropic else "/chat/completions"
    exchange = Exchange(b"req-1", "POST", "/v1" + path, lag_s=lag_s)
    scope = {"method": "POST", "path": path, "headers": [(b"host", host)]}
    return V1Request(scope, None, None, None, split_request_headers(scope["headers"]), exchange, path, "POST")  # type: ignore[arg-type]


def answer(anthropic: bool) -> tuple[Exchange, list[dict[str, Any]]]:
    """What /v1's error block does with the refusal (pipeline/v1.py)."""
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    shed = request(anthropic)
    with pytest.raises(Overloaded) as info:
        screen(shed, max_lag_s=0.25)
    error: GatewayError = info.value
    exchange = shed.exchange
    exchange.status, exchange.error = error.status, error.code or error.type
    asyncio.run(send_error(send, ANTHROPIC if anthropic else OPENAI, error, exchange.request_id))
    return exchange, sent


def test_openai_callers_get_an_openai_error() -> None:
    exchange, (start, body) = answer(anthropic=False)
    headers = dict(start["headers"])
    assert start["status"] == 503 and headers[b"retry-after"] == b"1" and headers[b"x-request-id"] == b"req-1"
    error = json.loads(body["body"])["error"]
    assert error["type"] == "server_error" and error["code"] == "overloaded"
    assert "432 ms behind" in error["message"]
    assert (exchange.status, exchange.error) == (503, "overloaded")


def test_anthropic_callers_get_an_anthropic_error() -> None:
    _, (start, body) = answer(anthropic=True)
    assert start["status"] == 503 and dict(start["headers"])[b"retry-after"] == b"1"
    decoded = json.loads(body["body"])
    assert decoded["type"] == "error" and decoded["error"]["type"] == "api_error"
    assert "overloaded" in decoded["error"]["message"]


def test_the_threshold() -> None:
    assert shed_after_s(ServerConfig()) == math.inf  # off by default
    assert shed_after_s(ServerConfig(shed_lag_ms=250)) == 0.25


def test_a_loop_within_the_threshold_and_a_good_host_pass() -> None:
    screen(request(False, lag_s=0.1), max_lag_s=0.25)


def test_a_host_that_is_no_host_name_is_400() -> None:
    with pytest.raises(InvalidRequest):
        screen(request(False, lag_s=0.0, host=b"evil host/"), max_lag_s=0.25)


def test_a_host_header_no_url_could_hold_is_400(double_gateway: Gateway) -> None:
    response = double_gateway.post("/v1/chat/completions", json={"model": "m"}, headers={"host": "evil.example/path?x"})
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert "Host header" in response.json()["error"]["message"]


@pytest.mark.parametrize(("hosts", "version", "says"), [
    ([b"a.example", b"b.example"], "1.1", "more than one Host header"),
    ([b"a.example", b"a.example"], "1.0", "more than one Host header"),
    ([], "1.1", "no Host header; HTTP/1.1 requires one"),
    ([b""], "1.1", "no Host header; HTTP/1.1 requires one"),  # what granian gives for none
])
def test_a_missing_or_repeated_host_is_400(double_gateway: Gateway, hosts: list[bytes], version: str,
                                           says: str) -> None:
    """Both were served (RFC 9112 §3.2 asks for 400)."""
    scope = http_scope("POST", "/v1/messages", {"authorization": f"Bearer {MASTER_KEY}"}, 2)
    scope["headers"] = [h for h in scope["headers"] if h[0] != b"host"] + [(b"host", host) for host in hosts]
    scope["http_version"] = version
    response = double_gateway.run(drive(double_gateway.app, scope, [b"{}"]))
    assert response.status_code == 400 and says in response.json()["error"]["message"]
    assert response.json()["type"] == "error"  # /v1/messages: Anthropic's shape


@pytest.mark.parametrize("version", ["1", "1.0", "2"])
def test_no_host_is_fine_where_the_protocol_allows_it(double_gateway: Gateway, version: str) -> None:
    scope = http_scope("GET", "/v1/models", {"authorization": f"Bearer {MASTER_KEY}"})
    scope["headers"] = [h for h in scope["headers"] if h[0] != b"host"]
    scope["http_version"] = version
    assert double_gateway.run(drive(double_gateway.app, scope, [])).status_code == 200
