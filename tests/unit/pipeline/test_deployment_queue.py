"""Queued deployment limits: with every deployment of an alias at its rpm, a request waits up to `queue_ms`
(`[routing] queue_ms`, or the deployment's) for room, then goes upstream, or is answered as before (503)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmgate.config import load_settings
from llmgate.routing.table import RoutingTable
from tests.inprocess.gateway import Gateway, Response
from tests.inprocess.upstream import DOUBLE_URL, double

CONFIG = f"""
[routing]
queue_ms = 120000

[[providers]]
name = "up"
base_url = "{DOUBLE_URL}/v1"
api_key = "sk-up-0000000000000000"

[[models]]
name = "limited"
deployments = [{{ provider = "up", model = "gpt-4o-mini", rpm = 1 }}]

[[models]]
name = "impatient"
deployments = [{{ provider = "up", model = "gpt-4o", rpm = 1, queue_ms = 500 }}]

[[models]]
name = "free"
deployments = [{{ provider = "up", model = "gpt-4.1" }}]
"""


@pytest.fixture
def gw() -> Iterator[Gateway]:
    with Gateway(CONFIG, upstream=double()) as gateway:
        yield gateway


def send(gw: Gateway, model: str) -> asyncio.Future[Response]:
    return asyncio.ensure_future(gw.send("POST", "/v1/chat/completions", json={"model": model, "messages": []}))


def test_a_request_waits_for_a_deployment_under_its_rpm(gw: Gateway) -> None:
    async def scenario() -> tuple[Response, Response]:
        first = await send(gw, "limited")
        second = send(gw, "limited")
        await asyncio.sleep(0.15)
        assert not second.done() and gw.services.tokens.queued == 1
        gw.clock.advance(61)  # routing's minute is over: the deployment has room again
        return first, await asyncio.wait_for(second, 5)

    first, second = gw.run(scenario())
    assert (first.status_code, second.status_code) == (200, 200)
    assert "queue;dur=61000" in second.headers["server-timing"] and "queue;dur" not in first.headers["server-timing"]


def test_past_its_queue_ms_it_is_answered_as_without_a_queue(gw: Gateway) -> None:
    async def scenario() -> Response:
        await send(gw, "impatient")
        waiting = send(gw, "impatient")
        await asyncio.sleep(0.15)
        assert not waiting.done()
        gw.clock.advance(1)
        return await asyncio.wait_for(waiting, 5)

    assert gw.run(scenario()).status_code == 503


def test_queue_ms_per_alias_from_routing_and_deployments(tmp_path: Path) -> None:
    config = tmp_path / "llmgate.toml"
    config.write_text(CONFIG)
    settings = load_settings({"LLMGATE_CONFIG": str(config)})
    table = RoutingTable(settings.providers, settings.models, settings.routing)
    assert table.resolve("limited", "/chat/completions").queue_ms == 120000
    assert table.resolve("impatient", "/chat/completions").queue_ms == 500
    assert table.resolve("free", "/chat/completions").queue_ms == 0  # no limit to wait for
