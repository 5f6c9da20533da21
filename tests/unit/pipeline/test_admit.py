"""The admit step (pipeline/admit.py) in process: a virtual token's model (403) and its limits (429, with the
headers OpenAI's clients read), counted once per request, concurrent requests included."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from tests.inprocess.access import TOKENS_ENV, chat, manage, new_token
from tests.inprocess.gateway import Gateway
from tests.inprocess.upstream import DOUBLE_URL, double


@pytest.fixture(scope="module")
def gw() -> Iterator[Gateway]:
    with Gateway(upstream=double(), env={**TOKENS_ENV, "OPENAI_BASE_URL": f"{DOUBLE_URL}/v1"}) as gateway:
        yield gateway


def test_wrong_model_is_403(gw: Gateway) -> None:
    project = manage(gw, "POST", "/projects", json={"name": "models", "allowed_models": ["a", "b"]}).json()
    bad = manage(gw, "POST", "/tokens", json={"project_id": project["id"], "allowed_models": ["c"]})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "allowed_models"
    token = new_token(gw, project, allowed_models=["a"])
    assert chat(gw, token["secret"], model="a").status_code == 200
    for model in ("b", "gpt-4o"):
        response = chat(gw, token["secret"], model=model)
        assert response.status_code == 403 and response.json()["error"]["code"] == "model_not_allowed"


def test_rpm_limit_answers_429_with_headers(gw: Gateway) -> None:
    token = new_token(gw, rpm_limit=2)
    assert [chat(gw, token["secret"]).status_code for _ in range(3)] == [200, 200, 429]
    response = chat(gw, token["secret"])
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("requests", "rate_limit_exceeded")
    assert int(response.headers["retry-after"]) >= 1
    assert response.headers["x-ratelimit-limit-requests"] == "2"
    assert response.headers["x-ratelimit-remaining-requests"] == "0"
    assert response.headers["x-ratelimit-reset-requests"]


def test_200_concurrent_requests_on_max_requests_100(gw: Gateway) -> None:
    token = new_token(gw, max_requests=100)

    async def run() -> list[int]:
        calls = [gw.send("POST", "/v1/chat/completions", json={"model": "m"}, auth=False,
                         headers={"authorization": f"Bearer {token['secret']}"}) for _ in range(200)]
        return [r.status_code for r in await asyncio.gather(*calls)]

    statuses = gw.run(run())
    assert statuses.count(200) == 100 and statuses.count(429) == 100
    assert chat(gw, token["secret"]).json()["error"]["code"] == "request_limit_reached"


def test_update_limits_applies_at_once(gw: Gateway) -> None:
    token = new_token(gw)
    assert chat(gw, token["secret"]).status_code == 200
    assert manage(gw, "PATCH", f"/tokens/{token['id']}", json={"max_requests": 1}).status_code == 200
    assert chat(gw, token["secret"]).status_code == 429
    assert manage(gw, "PATCH", f"/tokens/{token['id']}", json={"max_requests": None}).json()["max_requests"] is None
    assert chat(gw, token["secret"]).status_code == 200

