"""Two llmgate processes sharing real PostgreSQL and Redis servers (skipped when they are not installed)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.servers import Gateway, gateway_env, sample, scrape, scrape_until, start_gateway

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


def pass_the_minute(redis_url: str, subject: str) -> None:
    """The minute of every request a token's (`tok_...`) or project's (`project:proj_...`) rpm counts in Redis goes
    by: each is dated 60 s earlier, as it will be once the window has moved on (the Lua admission dates requests by
    Redis's own clock, not ours)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    key = f"llmgate:{{{subject}}}:rpm"
    try:
        for member, score in client.zrange(key, 0, -1, withscores=True):
            client.zadd(key, {member: score - 60_001}, xx=True)
    finally:
        client.close()


def post(gw: Gateway, secret: str) -> httpx.Response:
    return httpx.post(f"{gw.url}/v1/chat/completions", json={"model": "m"}, timeout=10,
                      headers={"authorization": f"Bearer {secret}"})


def test_a_request_queued_on_one_instance_takes_a_slot_freed_in_redis(pair: tuple[Gateway, Gateway],
                                                                       redis_url: str) -> None:
    a, b = pair
    token = new_token(a, rpm_limit=1, queue_ms=3000)
    assert chat(a, token["secret"]) == 200  # instance A takes the minute's only slot
    with ThreadPoolExecutor(1) as pool:
        queued = pool.submit(post, b, token["secret"])
        waiting = scrape_until(b.url, "llmgate_limit_queued_requests", {}, 1)
        assert sample(waiting, "llmgate_limit_queued_requests") == 1 and not queued.done()  # B waits, not 429
        pass_the_minute(redis_url, token["id"])
        admitted = queued.result(timeout=10)
    assert admitted.status_code == 200  # B polled Redis, saw the freed slot and took it
    assert "queue;dur=" in admitted.headers["server-timing"]
    # B's request now holds the slot: another waits its 3 s on A, no slot frees, and it gets the usual 429
    with ThreadPoolExecutor(1) as pool:
        late = pool.submit(post, a, token["secret"])
        waiting = scrape_until(a.url, "llmgate_limit_queued_requests", {}, 1)
        assert sample(waiting, "llmgate_limit_queued_requests") == 1
        refused = late.result(timeout=10)
    assert refused.status_code == 429 and refused.json()["error"]["param"] == "token.rpm_limit"
    assert sample(scrape(a.url), "llmgate_limit_queued_requests") == 0


def test_a_project_request_queued_on_one_instance_takes_a_slot_freed_in_redis(pair: tuple[Gateway, Gateway],
                                                                               redis_url: str) -> None:
    a, b = pair
    project = httpx.post(f"{a.url}/manage/projects", headers=MANAGE, json={
        "name": f"queued-{time.monotonic_ns()}", "rpm_limit": 1, "queue_ms": 3000}).json()
    one, two = new_project_token(a, project)["secret"], new_project_token(b, project)["secret"]
    assert chat(a, one) == 200  # the project's only slot, taken on A by one of its tokens
    with ThreadPoolExecutor(1) as pool:
        queued = pool.submit(post, b, two)  # another of its tokens, on B
        waiting = scrape_until(b.url, "llmgate_limit_queued_requests", {}, 1)
        assert sample(waiting, "llmgate_limit_queued_requests") == 1 and not queued.done()
        pass_the_minute(redis_url, f"project:{project['id']}")
        admitted = queued.result(timeout=10)
    assert admitted.status_code == 200 and "queue;dur=" in admitted.headers["server-timing"]
