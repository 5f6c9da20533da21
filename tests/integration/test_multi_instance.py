"""Two llmgate processes sharing real PostgreSQL and Redis servers (skipped when they are not installed)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.servers import Gateway, gateway_env, start_gateway

MT = "mt-multi-0123456789"
MANAGE = {"authorization": f"Bearer {MT}"}


@pytest.fixture(scope="module")
def pair(upstream: str, postgres_url: str, redis_url: str) -> Iterator[tuple[Gateway, Gateway]]:
    # A long cache TTL: anything faster than it on the other instance came through Redis.
    env = gateway_env(upstream, LLMGATE_MANAGEMENT_TOKEN=MT, LLMGATE_DATABASE_URL=postgres_url,
                      LLMGATE_REDIS_URL=redis_url, LLMGATE_TOKEN_CACHE_TTL_S="300")
    with start_gateway(env) as a, start_gateway(env) as b:
        yield a, b


def new_token(gw: Gateway, **limits: int) -> dict:
    project = httpx.post(f"{gw.url}/manage/projects", json={"name": f"p-{time.monotonic_ns()}"},
                         headers=MANAGE).json()
    return httpx.post(f"{gw.url}/manage/tokens", json={"project_id": project["id"], **limits},
                      headers=MANAGE).json()


def chat(gw: Gateway, secret: str) -> int:
    return httpx.post(f"{gw.url}/v1/chat/completions", json={"model": "m"},
                      headers={"authorization": f"Bearer {secret}"}).status_code


def test_revocation_reaches_the_other_instance_within_1_s(pair: tuple[Gateway, Gateway]) -> None:
    a, b = pair
    token = new_token(a)
    assert chat(a, token["secret"]) == 200 and chat(b, token["secret"]) == 200  # cached on both
    httpx.delete(f"{a.url}/manage/tokens/{token['id']}", headers=MANAGE)
    assert chat(a, token["secret"]) == 401
    deadline = time.monotonic() + 1.0
    while chat(b, token["secret"]) != 401:
        assert time.monotonic() < deadline, "the other instance still accepts the revoked token after 1 s"
        time.sleep(0.02)


def test_rpm_limit_holds_across_instances(pair: tuple[Gateway, Gateway]) -> None:
    a, b = pair
    n, k = 6, 4
    token = new_token(a, rpm_limit=n)
    statuses = [chat((a, b)[i % 2], token["secret"]) for i in range(n + k)]
    assert statuses.count(200) == n and statuses.count(429) == k


def test_max_requests_holds_across_instances(pair: tuple[Gateway, Gateway]) -> None:
    a, b = pair
    token = new_token(a, max_requests=5)
    statuses = [chat((a, b)[i % 2], token["secret"]) for i in range(9)]
    assert statuses.count(200) == 5 and statuses.count(429) == 4


def new_project_token(gw: Gateway, project: dict) -> dict:
    return httpx.post(f"{gw.url}/manage/tokens", json={"project_id": project["id"]}, headers=MANAGE).json()


def test_project_budget_holds_across_instances_and_tokens(pair: tuple[Gateway, Gateway]) -> None:
    a, b = pair
    # the double answers 35 tokens a request: 3 requests use up 100, whichever instance and token served them
    project = httpx.post(f"{a.url}/manage/projects", headers=MANAGE, json={
        "name": f"budget-{time.monotonic_ns()}", "budget_tokens": 100, "budget_period": "daily"}).json()
    one, two = new_project_token(a, project)["secret"], new_project_token(b, project)["secret"]
    statuses = [chat(gw, secret) for gw, secret in ((a, one), (b, two), (a, two), (b, one), (a, one))]
    assert statuses == [200, 200, 200, 429, 429]
    refused = httpx.post(f"{b.url}/v1/chat/completions", json={"model": "m"},
                         headers={"authorization": f"Bearer {one}"})
    assert refused.json()["error"]["param"] == "project.budget_tokens"
    budget = httpx.get(f"{b.url}/manage/projects/{project['id']}", headers=MANAGE).json()["budget"]
    assert budget["tokens"]["used"] == 105 and budget["resets_at"] is not None


def test_project_rpm_holds_across_instances(pair: tuple[Gateway, Gateway]) -> None:
    a, b = pair
    project = httpx.post(f"{a.url}/manage/projects", headers=MANAGE, json={
        "name": f"rpm-{time.monotonic_ns()}", "rpm_limit": 4}).json()
    one, two = new_project_token(a, project)["secret"], new_project_token(b, project)["secret"]
    statuses = [chat((a, b)[i % 2], (one, two)[i // 2 % 2]) for i in range(7)]
    assert statuses.count(200) == 4 and statuses.count(429) == 3
