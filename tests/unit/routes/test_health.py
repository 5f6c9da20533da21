"""`/health` and `/health/deployments` (routes/health.py), in process: who may see deployments' state, and what
it says at routing's time."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from llmgate import __version__
from tests.inprocess.access import MANAGE, TOKENS_ENV, new_token
from tests.inprocess.gateway import Gateway
from tests.inprocess.upstream import Reply

CONFIG = """
[routing]
breaker_failures = 1
breaker_open_s = 30
max_attempts = 1

[[providers]]
name = "only"
base_url = "http://only.test/v1"
api_key = "sk-only-key-000000000001"

[[models]]
name = "chat"
deployments = [{ provider = "only" }]
"""


@pytest.fixture(scope="module")
def gw() -> Iterator[Gateway]:
    with Gateway(CONFIG, lambda _: Reply(500), env=TOKENS_ENV) as gateway:
        yield gateway


def test_health_is_open_to_anyone_and_says_what_it_knows(gw: Gateway) -> None:
    health = gw.get("/health", auth=False).json()
    assert health["status"] == "ok" and health["version"] == __version__ and health["access"] == "closed"
    assert health["uptime_s"] >= 0 and health["loop_lag_ms"] >= 0 and health["loop_lag_peak_ms"] >= 0


def test_deployments_need_the_master_key_or_the_management_token(gw: Gateway) -> None:
    assert gw.get("/health/deployments").status_code == 200
    assert gw.get("/health/deployments", headers=MANAGE, auth=False).status_code == 200
    token = new_token(gw)
    for headers in ({}, {"authorization": f"Bearer {token['secret']}"}, {"authorization": "Bearer wrong"}):
        assert gw.get("/health/deployments", headers=headers, auth=False).status_code == 401


def test_deployments_show_routings_state_at_its_clock(gw: Gateway) -> None:
    assert gw.post("/v1/chat/completions", json={"model": "chat"}).status_code == 500
    (only,) = gw.get("/health/deployments").json()["deployments"]
    assert only["name"] == "only/chat" and not only["healthy"]
    assert only["breaker"]["state"] == "open" and only["breaker"]["half_open_in_s"] == 30
    assert only["keys"] == [{"key": "sk-****0001", "state": "ok", "cooling_down_for_s": None, "rate_limited": 0,
                             "failures": 1}]
    gw.clock.advance(30)
    (only,) = gw.get("/health/deployments").json()["deployments"]
    assert only["healthy"]  # open_s has passed: a probe may go
