"""Load shedding's answer: 503 with retry-after, in the caller's dialect, counted on the exchange."""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

from llmgate.config import ServerConfig
from llmgate.routes.shedding import shed, shed_after_s
from llmgate.usage.event import Exchange


def answer(anthropic: bool) -> tuple[Exchange, list[dict[str, Any]]]:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    exchange = Exchange(b"req-1", "POST", "/v1/messages" if anthropic else "/v1/chat/completions", lag_s=0.4321)
    asyncio.run(shed(send, exchange, anthropic))
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
