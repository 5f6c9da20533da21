"""Aliases, fallbacks, key rotation and disabling, provider URL/auth shapes, capabilities, the models listing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.servers import MASTER_KEY, Gateway, gateway_env, start_gateway, write_config

AUTH = {"authorization": f"Bearer {MASTER_KEY}"}
KEYS = ("sk-rot-one-000000000001", "sk-rot-two-000000000002", "sk-rot-three-00000000003")


def seen(upstream: str) -> dict:
    return httpx.get(f"{upstream}/_seen").json()


def chat(gw: Gateway, model: str, **headers: str) -> httpx.Response:
    return httpx.post(f"{gw.url}/v1/chat/completions", json={"model": model, "messages": []},
                      headers={**AUTH, **headers}, timeout=10)


@pytest.fixture(scope="module")
def routed(upstream: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    config = write_config(tmp_path_factory.mktemp("routing"), f"""
[routing]
backoff_base_ms = 1

[[providers]]
name = "rotating"
base_url = "{upstream}/rot/v1"
api_keys = {list(KEYS)!r}

[[providers]]
name = "revoking"
base_url = "{upstream}/_mock/reject-key=revoked/v1"
api_keys = ["sk-revoked-key-0000000001", "sk-fine-key-00000000000002"]

[[providers]]
name = "spare"
base_url = "{upstream}/spare/v1"

[[providers]]
name = "broken"
base_url = "{upstream}/_mock/status=503/v1"

[[providers]]
name = "azure"
kind = "azure"
base_url = "{upstream}/az"
api_key = "env:AZURE_KEY"
api_version = "2024-06-01"

[[providers]]
name = "anthropic"
kind = "anthropic"
base_url = "{upstream}/anth"
api_key = "sk-ant-test-00000000000000"
models = ["claude-*"]

[[providers]]
name = "embedder"
base_url = "{upstream}/emb/v1"
capabilities = ["embeddings"]

[[models]]
name = "rotated"
deployments = [{{ provider = "rotating", model = "upstream-name" }}]

[[models]]
name = "revoked"
deployments = [{{ provider = "revoking" }}]

[[models]]
name = "primary"
deployments = [{{ provider = "broken" }}]
fallbacks = ["backup"]

[[models]]
name = "backup"
deployments = [{{ provider = "spare" }}]

[[models]]
name = "down"
deployments = [{{ provider = "broken", model = "down" }}]

[[models]]
name = "gpt-4o"
deployments = [{{ provider = "azure", model = "my-gpt4o-deployment" }}]

[[models]]
name = "text-embedding-3-small"
deployments = [{{ provider = "embedder" }}]
""")
    with start_gateway(gateway_env(upstream, AZURE_KEY="azure-secret-key-000000001"), "--config", config) as gw:
        yield gw


def test_alias_renames_the_model_upstream(routed: Gateway, upstream: str) -> None:
    body = b'{"model": "rotated", "messages": [{"role": "user", "content": "hi"}], "n": 1}'
    response = httpx.post(f"{routed.url}/v1/chat/completions", content=body, headers=AUTH)
    assert response.status_code == 200
    assert response.headers["x-llmgate-deployment"] == "rotating/upstream-name"
    sent = '{"model":"upstream-name","messages":[{"role": "user", "content": "hi"}],"n":1}'
    assert seen(upstream)["last_body"] == sent


def test_keys_rotate_least_recently_used_first(routed: Gateway, upstream: str) -> None:
    httpx.post(f"{upstream}/_reset")
    for _ in range(6):
        assert chat(routed, "rotated").status_code == 200
    used = [r["auth"] for r in seen(upstream)["recent"]]
    assert sorted(used[:3]) == sorted(f"Bearer {k}" for k in KEYS)
    assert used[3:] == used[:3]


def test_a_429_rests_only_that_key(routed: Gateway, upstream: str) -> None:
    httpx.post(f"{upstream}/_reset")
    response = chat(routed, "rotated", **{"x-mock-status": "429", "x-mock-retry-after": "120"})
    # every key got its 429 in turn (retried on the next key), then the upstream's answer is passed on
    assert response.status_code == 429 and response.headers["x-llmgate-attempts"] == "3"
    keys = {k["key"]: k for k in _health(routed, "rotating/upstream-name")["keys"]}
    assert all(k["state"] == "cooling_down" and k["cooling_down_for_s"] > 100 for k in keys.values())
    # with every key resting, a request still goes out once (the upstream decides) rather than being refused
    assert chat(routed, "rotated").status_code == 200


def test_401_disables_the_key_and_logs_it_masked_once(routed: Gateway, upstream: str) -> None:
    for _ in range(4):
        response = chat(routed, "revoked")
        assert response.status_code == 200, response.text
    keys = _health(routed, "revoking/revoked")["keys"]
    assert [k["state"] for k in keys] == ["disabled", "ok"]
    logs = routed.logs()
    assert logs.count("rejected key sk-****0001 with 401") == 1
    assert "sk-revoked-key-0000000001" not in logs


def test_fallback_alias_when_every_deployment_fails(routed: Gateway) -> None:
    response = chat(routed, "primary")
    assert response.status_code == 200
    assert response.headers["x-llmgate-deployment"] == "spare/backup"
    assert response.headers["x-llmgate-attempts"] == "2"


def test_a_failing_deployment_opens_its_breaker(routed: Gateway) -> None:
    # breaker_failures defaults to 5: the first request fails max_attempts (4) times (its only deployment is tried
    # again), the second the fifth time; each 503 is passed on as the upstream sent it
    for attempts in ("4", "1"):
        response = chat(routed, "down")
        assert response.status_code == 503 and response.json()["error"]["message"] == "mock error 503"
        assert response.headers["x-llmgate-attempts"] == attempts
    assert _health(routed, "broken/down")["breaker"]["state"] == "open"
    response = chat(routed, "down")  # now llmgate answers at once, without calling the upstream
    assert response.status_code == 503 and response.json()["error"]["code"] == "no_healthy_deployment"
    assert response.headers["x-llmgate-attempts"] == "0"


def test_other_4xx_pass_through_at_once(routed: Gateway) -> None:
    response = chat(routed, "rotated", **{"x-mock-status": "422"})
    assert response.status_code == 422 and response.headers["x-llmgate-attempts"] == "1"
    assert response.json()["error"]["message"] == "mock error 422"


def test_azure_url_and_header_shape(routed: Gateway, upstream: str) -> None:
    assert chat(routed, "gpt-4o").status_code == 200
    up = seen(upstream)
    assert up["last_path"] == "/az/openai/deployments/my-gpt4o-deployment/chat/completions?api-version=2024-06-01"
    assert up["last_headers"]["api-key"] == "azure-secret-key-000000001"
    assert "authorization" not in up["last_headers"]
    client = openai.OpenAI(base_url=f"{routed.url}/v1", api_key=MASTER_KEY, max_retries=0)
    embedding = client.embeddings.create(model="text-embedding-3-small", input=["a", "b", "c"])
    assert len(embedding.data) == 3 and embedding.usage.prompt_tokens > 0  # one batch, one usage


def say_hi(gw: Gateway, model: str) -> httpx.Response:
    return httpx.post(f"{gw.url}/v1/chat/completions", headers=AUTH, timeout=10,
                      json={"model": model, "messages": [{"role": "user", "content": "hi"}]})


def test_anthropic_auth_headers(routed: Gateway, upstream: str) -> None:
    """A chat request for a model on an Anthropic provider is translated to Messages (translate/)."""
    assert say_hi(routed, "claude-3-5-haiku-latest").status_code == 200
    up = seen(upstream)
    assert up["last_path"] == "/anth/v1/messages"
    assert up["last_headers"]["x-api-key"] == "sk-ant-test-00000000000000"
    assert up["last_headers"]["anthropic-version"] == "2023-06-01"
    assert "authorization" not in up["last_headers"]


def test_unknown_alias_and_missing_capability_are_404(routed: Gateway) -> None:
    response = chat(routed, "gpt-5")
    assert response.status_code == 404 and response.json()["error"]["code"] == "model_not_found"
    response = chat(routed, "text-embedding-3-small")  # the embedder serves embeddings only
    assert response.status_code == 404 and "does not support /v1/chat/completions" in response.text


def test_models_lists_the_aliases(routed: Gateway) -> None:
    ids = [m["id"] for m in httpx.get(f"{routed.url}/v1/models", headers=AUTH).json()["data"]]
    assert ids == ["rotated", "revoked", "primary", "backup", "down", "gpt-4o",
                   "text-embedding-3-small", "claude-sonnet-4-5-20250929", "claude-3-5-haiku-20241022"]


def test_no_config_anthropic_provider_serves_claude(upstream: str) -> None:
    env = gateway_env(upstream, ANTHROPIC_API_KEY="sk-ant-env-0000000000001", ANTHROPIC_BASE_URL=f"{upstream}/a")
    with start_gateway(env) as gw:
        assert say_hi(gw, "claude-sonnet-4-5").status_code == 200
        up = seen(upstream)
        assert up["last_path"] == "/a/v1/messages"
        assert up["last_headers"]["x-api-key"] == "sk-ant-env-0000000000001"
        assert chat(gw, "gpt-4o-mini").status_code == 200
        assert seen(upstream)["last_path"] == "/v1/chat/completions"
        # /v1/models: the OpenAI upstream's list, then the claude-* models from Anthropic's, in OpenAI's shape
        listed = httpx.get(f"{gw.url}/v1/models", headers=AUTH).json()["data"]
        claude = httpx.get(f"{gw.url}/v1/models/claude-3-5-haiku-20241022", headers=AUTH).json()
    assert [m["id"] for m in listed] == ["gpt-4o-mini", "text-embedding-3-small", "claude-sonnet-4-5-20250929",
                                         "claude-3-5-haiku-20241022"]
    assert claude == {"id": "claude-3-5-haiku-20241022", "object": "model", "created": 1759104000,
                      "owned_by": "anthropic"}


def _health(gw: Gateway, name: str) -> dict:
    deployments = httpx.get(f"{gw.url}/health/deployments", headers=AUTH).json()["deployments"]
    return next(d for d in deployments if d["name"] == name)


def test_tpm_moves_traffic_once_a_deployment_has_used_its_tokens(upstream: str, tmp_path: Path) -> None:
    config = write_config(tmp_path, f"""
[[providers]]
name = "small"
base_url = "{upstream}/small/v1"

[[providers]]
name = "large"
base_url = "{upstream}/large/v1"

[[models]]
name = "budgeted"
deployments = [{{ provider = "small", weight = 1000000, tpm = 100 }}, {{ provider = "large", weight = 0.000001 }}]
""")
    with start_gateway(gateway_env(upstream), "--config", config) as gw:
        used = [chat(gw, "budgeted").headers["x-llmgate-deployment"] for _ in range(4)]
        # the double's answers use 35 tokens each: the 100-token minute is over after the third
        assert used == ["small/budgeted"] * 3 + ["large/budgeted"]
    with start_gateway(gateway_env(upstream), "--config", config) as gw:  # a fresh minute
        streams = [httpx.post(f"{gw.url}/v1/chat/completions", headers=AUTH, timeout=10,
                              json={"model": "budgeted", "stream": True, "messages": []}) for _ in range(5)]
    # a stream's usage is asked for (31 tokens: 11 + 20 chunks) and not shown to a client that did not ask
    assert [s.headers["x-llmgate-deployment"] for s in streams] == ["small/budgeted"] * 4 + ["large/budgeted"]
    assert all(b'"usage":{' not in s.content and s.content.endswith(b"data: [DONE]\n\n") for s in streams)
