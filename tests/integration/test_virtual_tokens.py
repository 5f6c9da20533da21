"""Virtual tokens end to end: created through /manage, used on /v1 against the upstream double."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.servers import MASTER_KEY, Gateway, gateway_env, start_gateway

MANAGEMENT_TOKEN = "mt-test-0123456789abcdef"
MANAGE = {"authorization": f"Bearer {MANAGEMENT_TOKEN}"}


@pytest.fixture(scope="module")
def gw(upstream: str) -> Iterator[Gateway]:
    env = gateway_env(upstream, LLMGATE_MANAGEMENT_TOKEN=MANAGEMENT_TOKEN, LLMGATE_SECRET_KEY="s" * 32)
    with start_gateway(env) as gateway:
        yield gateway


def manage(gw: Gateway, method: str, path: str, **kw) -> httpx.Response:  # type: ignore[no-untyped-def]
    return httpx.request(method, f"{gw.url}/manage{path}", headers=MANAGE, **kw)


def new_token(gw: Gateway, project: dict | None = None, **limits) -> dict:  # type: ignore[no-untyped-def]
    if project is None:
        project = manage(gw, "POST", "/projects", json={"name": f"p-{time.monotonic_ns()}"}).json()
    response = manage(gw, "POST", "/tokens", json={"project_id": project["id"], **limits})
    assert response.status_code == 201, response.text
    return response.json()


def chat(gw: Gateway, secret: str, model: str = "gpt-4o-mini", **kw) -> httpx.Response:  # type: ignore[no-untyped-def]
    return httpx.post(f"{gw.url}/v1/chat/completions", json={"model": model, "messages": []},
                      headers={"authorization": f"Bearer {secret}"}, **kw)


def test_token_works_and_secret_is_shown_once(gw: Gateway) -> None:
    token = new_token(gw)
    assert token["secret"].startswith("lg-") and token["prefix"] == f"lg-…{token['secret'][-4:]}"
    assert chat(gw, token["secret"]).status_code == 200
    again = manage(gw, "GET", f"/tokens/{token['id']}").json()
    assert "secret" not in again and token["secret"] not in str(manage(gw, "GET", "/tokens").json())


def test_master_key_is_still_admin(gw: Gateway) -> None:
    assert chat(gw, MASTER_KEY).status_code == 200


def test_unknown_token_is_401(gw: Gateway) -> None:
    response = chat(gw, "lg-not-a-real-token")
    assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_api_key"


def test_revoked_token_is_refused_at_once(gw: Gateway) -> None:
    token = new_token(gw)
    assert chat(gw, token["secret"]).status_code == 200
    assert manage(gw, "DELETE", f"/tokens/{token['id']}").json()["is_active"] is False
    response = chat(gw, token["secret"])
    assert response.status_code == 401 and response.json()["error"]["code"] == "token_revoked"


def test_expired_token_is_401(gw: Gateway) -> None:
    token = new_token(gw, expires_at=time.time() - 1)
    response = chat(gw, token["secret"])
    assert response.status_code == 401 and response.json()["error"]["code"] == "token_expired"


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


def test_token_budget_counts_usage(gw: Gateway) -> None:
    token = new_token(gw, budget_tokens=50, tpm_limit=1000)  # the double answers 35 tokens per completion
    assert [chat(gw, token["secret"]).status_code for _ in range(3)] == [200, 200, 429]
    response = chat(gw, token["secret"])
    assert response.json()["error"]["code"] == "token_budget_exhausted" and "retry-after" not in response.headers
    deadline = time.monotonic() + 5
    while manage(gw, "GET", f"/tokens/{token['id']}").json()["tokens_used"] != 70:  # written back in batches
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert manage(gw, "GET", f"/tokens/{token['id']}").json()["request_count"] == 2


def test_200_concurrent_requests_on_max_requests_100(gw: Gateway) -> None:
    token = new_token(gw, max_requests=100)

    async def run() -> list[int]:
        limits = httpx.Limits(max_connections=200)
        async with httpx.AsyncClient(limits=limits, timeout=30) as client:
            calls = [client.post(f"{gw.url}/v1/chat/completions", json={"model": "m"},
                                 headers={"authorization": f"Bearer {token['secret']}"}) for _ in range(200)]
            return [r.status_code for r in await asyncio.gather(*calls)]

    statuses = asyncio.run(run())
    assert statuses.count(200) == 100 and statuses.count(429) == 100
    assert chat(gw, token["secret"]).json()["error"]["code"] == "request_limit_reached"


def test_rotate_replaces_the_secret(gw: Gateway) -> None:
    token = new_token(gw)
    assert chat(gw, token["secret"]).status_code == 200
    rotated = manage(gw, "POST", f"/tokens/{token['id']}/rotate").json()
    assert rotated["secret"] != token["secret"]
    assert chat(gw, token["secret"]).status_code == 401
    assert chat(gw, rotated["secret"]).status_code == 200


def test_update_limits_applies_at_once(gw: Gateway) -> None:
    token = new_token(gw)
    assert chat(gw, token["secret"]).status_code == 200
    assert manage(gw, "PATCH", f"/tokens/{token['id']}", json={"max_requests": 1}).status_code == 200
    assert chat(gw, token["secret"]).status_code == 429
    assert manage(gw, "PATCH", f"/tokens/{token['id']}", json={"max_requests": None}).json()["max_requests"] is None
    assert chat(gw, token["secret"]).status_code == 200


def test_deleting_a_project_revokes_its_tokens(gw: Gateway) -> None:
    project = manage(gw, "POST", "/projects", json={"name": "doomed"}).json()
    token = new_token(gw, project)
    assert chat(gw, token["secret"]).status_code == 200
    assert manage(gw, "DELETE", f"/projects/{project['id']}").json()["revoked_tokens"] == 1
    assert chat(gw, token["secret"]).status_code == 401
    assert manage(gw, "GET", f"/projects/{project['id']}").status_code == 404


def test_project_upstream_key_is_used_and_masked(gw: Gateway, upstream: str) -> None:
    project = manage(gw, "POST", "/projects", json={"name": "own-key",
                                                    "upstream_keys": {"openai": "sk-project-own-key-1234"}}).json()
    assert project["upstream_keys"] == {"openai": "sk-****1234"}
    token = new_token(gw, project)
    chat(gw, token["secret"])
    assert httpx.get(f"{upstream}/_seen").json()["last_auth"] == "Bearer sk-project-own-key-1234"


def test_management_api_needs_its_token(gw: Gateway) -> None:
    assert httpx.get(f"{gw.url}/manage/projects").status_code == 401
    assert httpx.get(f"{gw.url}/manage/projects", headers={"authorization": "Bearer wrong"}).status_code == 401
    assert httpx.get(f"{gw.url}/manage/projects", headers={"authorization": f"Bearer {MASTER_KEY}"}).status_code == 401


def test_management_api_disabled_without_its_token(gateway: Gateway) -> None:
    response = httpx.get(f"{gateway.url}/manage/projects", headers=MANAGE)
    assert response.status_code == 503 and "LLMGATE_MANAGEMENT_TOKEN" in response.json()["error"]["message"]


def test_upstream_keys_refused_without_secret_key(gateway: Gateway, upstream: str) -> None:
    env = gateway_env(upstream, LLMGATE_MANAGEMENT_TOKEN=MANAGEMENT_TOKEN)
    with start_gateway(env) as other:
        response = manage(other, "POST", "/projects", json={"name": "k", "upstream_keys": {"openai": "sk-x"}})
        assert response.status_code == 400 and "LLMGATE_SECRET_KEY" in response.json()["error"]["message"]


def test_schema_describes_only_manage(gw: Gateway) -> None:
    paths = httpx.get(f"{gw.url}/manage/schema").json()["paths"]
    assert paths and all(p.startswith("/manage/") for p in paths)


def test_streamed_usage_counts_when_the_request_asks_for_it(gw: Gateway) -> None:
    token = new_token(gw, budget_tokens=10)
    body = {"model": "m", "messages": [], "stream": True, "stream_options": {"include_usage": True}}
    with httpx.stream("POST", f"{gw.url}/v1/chat/completions", json=body,
                      headers={"authorization": f"Bearer {token['secret']}"}) as response:
        assert response.status_code == 200
        text = b"".join(response.iter_bytes())
    assert b'"usage"' in text, "the double should send a usage chunk"
    assert chat(gw, token["secret"]).json()["error"]["code"] == "token_budget_exhausted"


def test_anthropic_route_checks_tokens_and_answers_in_its_format(gw: Gateway) -> None:
    project = manage(gw, "POST", "/projects", json={"name": "anthropic-callers"}).json()
    token = new_token(gw, project, allowed_models=["gpt-4o-mini"])
    body = {"model": "gpt-4o-mini", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
    url, headers = f"{gw.url}/v1/messages", {"x-api-key": token["secret"], "anthropic-version": "2023-06-01"}
    assert httpx.post(url, json=body, headers=headers).status_code == 200
    wrong = httpx.post(url, json={**body, "model": "other"}, headers=headers)
    assert wrong.status_code == 403 and wrong.json()["error"]["type"] == "permission_error"
    manage(gw, "DELETE", f"/tokens/{token['id']}")
    revoked = httpx.post(url, json=body, headers=headers)
    assert revoked.status_code == 401 and revoked.json()["type"] == "error"


def test_streamed_usage_counts_when_the_request_does_not_ask_and_the_client_sees_no_usage(
        gw: Gateway, upstream: str) -> None:
    token = new_token(gw, budget_tokens=10)
    body = {"model": "m", "messages": [], "stream": True}
    direct = httpx.post(f"{upstream}/v1/chat/completions", json=body).content
    through = httpx.post(f"{gw.url}/v1/chat/completions", json=body,
                         headers={"authorization": f"Bearer {token['secret']}"})
    assert through.status_code == 200
    # the same bytes the upstream sends for the client's own request (ids and timestamps are fixed in the double)
    assert through.content == direct and b'"usage":{' not in through.content
    assert chat(gw, token["secret"]).json()["error"]["code"] == "token_budget_exhausted"


def _stored_after_write_back(gw: Gateway, token_id: str, requests: int) -> dict:  # type: ignore[type-arg]
    deadline = time.monotonic() + 5
    while (stored := manage(gw, "GET", f"/tokens/{token_id}").json())["request_count"] != requests:
        assert time.monotonic() < deadline, stored
        time.sleep(0.05)
    return stored  # type: ignore[no-any-return]


@pytest.mark.parametrize("every", [False, True])
def test_a_token_without_token_limits_is_metered_only_with_meter_every_token(upstream: str, every: bool) -> None:
    # with the usage log off: it meters every request
    env = gateway_env(upstream, LLMGATE_MANAGEMENT_TOKEN=MANAGEMENT_TOKEN, LLMGATE_USAGE_FLUSH_S="0.05",
                      LLMGATE_METER_EVERY_TOKEN="1" if every else "0", LLMGATE_USAGE_LOG="0")
    body = {"model": "gpt-4o-mini", "messages": [], "stream": True}
    with start_gateway(env) as gateway:
        token = new_token(gateway, rpm_limit=1000, max_requests=1000)  # limits, but none on LLM tokens
        assert chat(gateway, token["secret"]).status_code == 200
        streamed = httpx.post(f"{gateway.url}/v1/chat/completions", json=body,
                              headers={"authorization": f"Bearer {token['secret']}"})
        assert streamed.status_code == 200 and b"[DONE]" in streamed.content
        sent_upstream = json.loads(httpx.get(f"{upstream}/_seen").json()["last_body"])
        stored = _stored_after_write_back(gateway, token["id"], 2)
    # metered, the stream was asked for its usage chunk; not metered, it went to the upstream as the client sent it
    assert ("stream_options" in sent_upstream) is every
    assert stored["tokens_used"] == (35 + 31 if every else 0)  # the double's answer and stream: 35 and 31 tokens


@pytest.mark.parametrize("stream", [False, True])
def test_translated_requests_are_metered(gw: Gateway, stream: bool) -> None:
    token = new_token(gw, budget_tokens=10)
    # /v1/messages for a model only the OpenAI-compatible provider serves: translated both ways
    body = {"model": "gpt-4o-mini", "max_tokens": 50, "stream": stream,
            "messages": [{"role": "user", "content": "hi"}]}
    answer = httpx.post(f"{gw.url}/v1/messages", json=body, headers={"x-api-key": token["secret"]})
    assert answer.status_code == 200, answer.text
    assert (b"message_stop" in answer.content) if stream else answer.json()["type"] == "message"
    assert chat(gw, token["secret"]).json()["error"]["code"] == "token_budget_exhausted"


def test_cost_budget_at_the_configured_prices(upstream: str, tmp_path: Path) -> None:
    config = tmp_path / "prices.toml"
    config.write_text(f"""
[[providers]]
name = "openai"
base_url = "{upstream}/v1"
api_key = "env:OPENAI_API_KEY"

[prices."gpt-4o-mini"]
input_per_mtok = 1000
output_per_mtok = 2000
""")
    env = gateway_env(upstream, LLMGATE_MANAGEMENT_TOKEN=MANAGEMENT_TOKEN, LLMGATE_SECRET_KEY="s" * 32,
                      LLMGATE_CONFIG=str(config), LLMGATE_USAGE_FLUSH_S="0.05")
    with start_gateway(env) as gateway:
        token = new_token(gateway, budget_cost=0.1)
        # the double's answers: 11 prompt + 24 completion tokens = 0.011 + 0.048 = 0.059 each
        assert chat(gateway, token["secret"]).status_code == 200
        assert chat(gateway, token["secret"]).status_code == 200
        refused = chat(gateway, token["secret"])
        assert refused.status_code == 429 and refused.json()["error"]["code"] == "cost_budget_exhausted"
        time.sleep(0.3)  # the write-back
        stored = manage(gateway, "GET", f"/tokens/{token['id']}").json()
    assert stored["budget_cost"] == 0.1 and stored["cost_used"] == pytest.approx(0.118)
