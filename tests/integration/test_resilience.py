"""Fault injection: deployments that rate-limit, fail, refuse, reset and stall; the clients see none of it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.servers import MASTER_KEY, Gateway, free_port, gateway_env, start_gateway, write_config

AUTH = {"authorization": f"Bearer {MASTER_KEY}"}
FAULTS = {  # provider name → path prefix making the double misbehave that way
    "limited": "/_mock/status=429,retry-after=300",
    "e500": "/_mock/status=500",
    "e503": "/_mock/status=503",
    "reset": "/_mock/reset-after-chunks=0",
    "slow": "/_mock/delay-ms=3000",
}


@pytest.fixture(scope="module")
def faulty(upstream: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """One alias over seven deployments, only the last of which is healthy."""
    providers = [f'[[providers]]\nname = "{name}"\nbase_url = "{upstream}{prefix}/v1"\n'
                 f'api_key = "sk-{name}-key-0123456789"\n' for name, prefix in FAULTS.items()]
    providers.append('timeouts = { first_byte_s = 0.3 }\n')  # for "slow", the last one above
    providers.append(f'[[providers]]\nname = "refused"\nbase_url = "http://127.0.0.1:{free_port()}/v1"\n')
    providers.append(f'[[providers]]\nname = "good"\nbase_url = "{upstream}/v1"\napi_key = "sk-good-key-0123456789"\n')
    names = [*FAULTS, "refused", "good"]
    deployments = ", ".join(f'{{ provider = "{n}", model = "gpt-4o" }}' for n in names)
    config = write_config(tmp_path_factory.mktemp("faults"), f"""
[routing]
max_attempts = 8
breaker_failures = 3
breaker_open_s = 600
backoff_base_ms = 1
backoff_max_ms = 5

{"".join(providers)}
[[models]]
name = "gpt-4o"
deployments = [{deployments}]
""")
    with start_gateway(gateway_env(upstream), "--config", config) as gw:
        yield gw


async def _one(client: httpx.AsyncClient, url: str, i: int) -> str | None:
    """None when the request fully succeeded, else what went wrong."""
    stream = i % 2 == 0
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "stream": stream}
    if not stream:
        response = await client.post(url, json=body, headers=AUTH)
        ok = response.status_code == 200 and response.json()["choices"]
        return None if ok else f"{response.status_code} {response.text[:200]}"
    async with client.stream("POST", url, json=body, headers={**AUTH, "x-mock-chunks": "3"}) as response:
        data = await response.aread()
    ok = response.status_code == 200 and data.endswith(b"data: [DONE]\n\n") and b'"error"' not in data
    return None if ok else f"{response.status_code} {data[-200:]!r}"


async def _load(url: str, total: int, concurrency: int) -> list[str]:
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=concurrency)) as client:
        async def run(i: int) -> str | None:
            async with gate:
                return await _one(client, url, i)

        results = await asyncio.gather(*(run(i) for i in range(total)))
    return [r for r in results if r is not None]


def test_one_healthy_deployment_left_serves_every_request(faulty: Gateway) -> None:
    errors = asyncio.run(_load(f"{faulty.url}/v1/chat/completions", 1000, 32))
    assert errors == []
    health = httpx.get(f"{faulty.url}/health/deployments", headers=AUTH).json()["deployments"]
    by_name = {d["provider"]: d for d in health}
    limited = by_name["limited"]
    assert limited["breaker"]["state"] == "closed"  # a 429 rests the key, it is not the deployment's fault
    assert limited["keys"][0]["state"] == "cooling_down" and limited["keys"][0]["cooling_down_for_s"] > 200
    assert limited["keys"][0]["key"] == "sk-****6789"
    for name in ("e500", "e503", "reset", "slow", "refused"):
        assert by_name[name]["breaker"]["state"] == "open", name
        assert not by_name[name]["healthy"]
    good = by_name["good"]
    assert good["healthy"] and good["breaker"]["state"] == "closed" and good["keys"][0]["state"] == "ok"
    assert "sk-good-key-0123456789" not in str(health)


def test_the_response_says_which_deployment_answered(faulty: Gateway) -> None:
    response = httpx.post(f"{faulty.url}/v1/chat/completions", json={"model": "gpt-4o", "messages": []},
                          headers=AUTH)
    assert response.headers["x-llmgate-deployment"] == "good/gpt-4o"
    assert response.headers["x-llmgate-attempts"] == "1"  # every other deployment is resting by now


def test_health_deployments_needs_the_master_key(faulty: Gateway) -> None:
    assert httpx.get(f"{faulty.url}/health/deployments").status_code == 401
    assert httpx.get(f"{faulty.url}/health").status_code == 200


def _chat(gw: Gateway, model: str, stream: bool = False, **headers: str) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": stream}
    return httpx.post(f"{gw.url}/v1/chat/completions", json=body, headers={**AUTH, **headers}, timeout=10)


def _catch_all(upstream: str, tmp_path: Path, keys: tuple[str, ...], base_url: str = "") -> str:
    """One provider that passes every model through (no `models`, no alias), with these keys."""
    return write_config(tmp_path, f"""
[routing]
backoff_base_ms = 1
backoff_max_ms = 5

[[providers]]
name = "only"
base_url = "{base_url or upstream + '/v1'}"
api_keys = {list(keys)!r}
""")


def test_one_models_failures_rest_only_that_model(upstream: str, tmp_path: Path) -> None:
    config = _catch_all(upstream, tmp_path, ("sk-one-000000000001", "sk-two-000000000002", "sk-three-00000000003"))
    with start_gateway(gateway_env(upstream), "--config", config) as gw:
        answers = [_chat(gw, "model-a", **{"x-mock-status": "500"}) for _ in range(5)]
        assert answers[0].status_code == 500  # the upstream's answer, passed on after its retries
        refused = _chat(gw, "model-a")  # model-a's breaker is open: refused without asking the upstream
        assert refused.status_code == 503 and refused.headers["x-llmgate-attempts"] == "0"
        assert refused.json()["error"]["code"] == "no_healthy_deployment"
        assert refused.json()["error"]["message"] == "No healthy deployment can serve `model-a` right now."
        served = _chat(gw, "model-b")  # another model on the same (catch-all) deployment is still served
        assert served.status_code == 200 and served.headers["x-llmgate-attempts"] == "1"
        assert _chat(gw, "model-b", stream=True).status_code == 200
        embedded = httpx.post(f"{gw.url}/v1/embeddings", json={"model": "text-embedding-3-small", "input": "x"},
                              headers=AUTH, timeout=10)
        assert embedded.status_code == 200
        health = httpx.get(f"{gw.url}/health/deployments", headers=AUTH).json()["deployments"]
    (only,) = health
    assert only["name"] == "only" and only["healthy"] and only["breaker"]["state"] == "closed"
    models = {m["model"]: m for m in only["models"]}
    assert models["model-a"]["breaker"]["state"] == "open" and not models["model-a"]["healthy"]
    assert models["model-a"]["recent"]["errors"] >= 5
    assert models["model-b"]["breaker"]["state"] == "closed" and models["model-b"]["healthy"]
    assert models["text-embedding-3-small"]["recent"] == {"errors": 0, "requests": 1}


@pytest.mark.parametrize("stream", [False, True])
def test_a_5xx_on_the_only_deployment_is_retried_on_another_key(upstream: str, tmp_path: Path,
                                                                   stream: bool) -> None:
    keys = ("sk-bad-0000000000001", "sk-bad-0000000000002", "sk-good-000000000003")
    config = _catch_all(upstream, tmp_path, keys)
    with start_gateway(gateway_env(upstream), "--config", config) as gw:
        httpx.post(f"{upstream}/_reset")
        response = _chat(gw, "gpt-4o", stream, **{"x-mock-fail-key": "sk-bad"})
        used = [r["auth"] for r in httpx.get(f"{upstream}/_seen").json()["recent"]]
    assert response.status_code == 200 and response.headers["x-llmgate-attempts"] == "3"
    assert used == [f"Bearer {k}" for k in keys]  # each retry on a key this request had not tried yet


def test_every_attempt_failing_ends_with_the_upstreams_answer(upstream: str, tmp_path: Path) -> None:
    keys = ("sk-one-000000000001", "sk-two-000000000002", "sk-three-00000000003")
    config = _catch_all(upstream, tmp_path, keys)
    with start_gateway(gateway_env(upstream), "--config", config) as gw:
        httpx.post(f"{upstream}/_reset")
        response = _chat(gw, "gpt-4o", **{"x-mock-status": "503"})
        used = [r["auth"] for r in httpx.get(f"{upstream}/_seen").json()["recent"]]
    assert response.status_code == 503 and response.json()["error"]["message"] == "mock error 503"
    assert response.headers["x-llmgate-attempts"] == "4"  # max_attempts
    assert used == [f"Bearer {k}" for k in (*keys, keys[0])]  # every key once, then the same ones again


def test_a_connection_error_on_the_only_deployment_is_retried(upstream: str, tmp_path: Path) -> None:
    config = _catch_all(upstream, tmp_path, ("sk-one-000000000001",), f"http://127.0.0.1:{free_port()}/v1")
    with start_gateway(gateway_env(upstream), "--config", config) as gw:
        response = _chat(gw, "gpt-4o")
    assert response.status_code == 502 and response.headers["x-llmgate-attempts"] == "4"
    assert response.json()["error"]["message"] == "Could not reach the upstream provider `only`."
