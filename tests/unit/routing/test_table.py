"""Model → Route resolution: aliases, declared names and prefixes, the catch-all, capabilities, reload carry-over."""

from collections.abc import Iterator

import pytest

from llmgate.config import DeploymentConfig, ModelConfig, ProviderConfig, RoutingConfig
from llmgate.errors import ModelNotFound
from llmgate.routing.keys import cool_down
from llmgate.routing.table import RoutingTable
from tests.inprocess.gateway import Gateway, Response
from tests.inprocess.routed import ROUTED
from tests.inprocess.upstream import double, seen


def provider(name: str, *models: str, **kw: object) -> ProviderConfig:
    return ProviderConfig(name=name, base_url=f"http://{name}", models=models, **kw)  # type: ignore[arg-type]


def names(route) -> list[str]:  # type: ignore[no-untyped-def]
    return [d.name for d, _ in route.entries]


def test_exact_models_first_then_prefixes_then_catch_all() -> None:
    table = RoutingTable([provider("a", "gpt-4o"), provider("any"), provider("b", "gpt-4o", "claude-*")])
    assert names(table.resolve("gpt-4o", "/chat/completions")) == ["a"]  # the first declaration wins
    assert names(table.resolve("claude-3-5-haiku", "/chat/completions")) == ["b"]
    assert names(table.resolve("llama3", "/chat/completions")) == ["any"]
    assert names(table.default_route) == ["any"]
    assert table.catch_all_providers() == ["any"]
    assert table.declared_models() == [("gpt-4o", "a")]


def test_unknown_model_without_catch_all_is_404() -> None:
    table = RoutingTable([provider("a", "gpt-4o")])
    with pytest.raises(ModelNotFound, match="`gpt-5`") as info:
        table.resolve("gpt-5", "/chat/completions")
    assert info.value.param == "model" and info.value.status == 404
    assert names(table.default_route) == ["a"]


def aliased() -> RoutingTable:
    providers = [provider("oai", api_keys=("k1", "k2")), provider("az", kind="azure"),
                 provider("emb", capabilities=("embeddings",))]
    models = [
        ModelConfig(name="gpt-4o", deployments=(DeploymentConfig(provider="oai", model="gpt-4o-2024-08-06", weight=2),
                                                DeploymentConfig(provider="az", model="my-gpt4o")),
                    fallbacks=("mini",)),
        ModelConfig(name="mini", deployments=(DeploymentConfig(provider="oai", model="gpt-4o-mini"),)),
        ModelConfig(name="embed", deployments=(DeploymentConfig(provider="emb", model="te3"),
                                               DeploymentConfig(provider="oai", model="te3"))),
    ]
    return RoutingTable(providers, models, RoutingConfig())


def test_aliases_map_to_ordered_deployments_with_weights_and_fallbacks() -> None:
    table = aliased()
    route = table.resolve("gpt-4o", "/chat/completions")
    assert [(d.name, w) for d, w in route.entries] == [("oai/gpt-4o-2024-08-06", 2), ("az/my-gpt4o", 1)]
    assert [f.name for f in route.fallbacks] == ["mini"]
    assert table.catch_all_providers() == []  # every provider is used by an alias: no pass-through
    with pytest.raises(ModelNotFound):
        table.resolve("gpt-3.5", "/chat/completions")
    # both deployments on "oai" share its keys
    assert table.resolve("mini", "/chat/completions").entries[0][0].keys is route.entries[0][0].keys


def test_a_capability_a_deployment_lacks_is_never_routed_there() -> None:
    table = aliased()
    route = table.resolve("embed", "/embeddings")
    assert [d.name for d, _ in route.by_capability["embeddings"]] == ["emb/te3", "oai/te3"]
    assert [d.name for d, _ in route.by_capability["chat"]] == ["oai/te3"]  # emb has embeddings only
    with pytest.raises(ModelNotFound, match="does not support /v1/messages"):
        table.resolve("gpt-4o", "/messages")  # openai and azure don't speak Anthropic's Messages


def test_reload_keeps_key_and_breaker_state() -> None:
    old = aliased()
    deployment = old.resolve("gpt-4o", "/chat/completions").entries[0][0]
    cool_down(deployment.keys.keys[0], 100.0, 30)
    for _ in range(5):
        deployment.breaker.record_failure(100.0)
    new = RoutingTable([provider("oai", api_keys=("k1", "k3"))],
                       [ModelConfig(name="gpt-4o", deployments=(DeploymentConfig(provider="oai",
                                                                                 model="gpt-4o-2024-08-06"),))],
                       RoutingConfig(), previous=old)
    kept = new.resolve("gpt-4o", "/chat/completions").entries[0][0]
    assert kept.breaker.state == "open"
    k1, k3 = kept.keys.keys
    assert k1.cooldown_until == 130.0 and k3.cooldown_until == 0.0


def test_reload_keeps_a_passthrough_deployments_breakers_per_model() -> None:
    old = RoutingTable([provider("any")], routing=RoutingConfig(breaker_failures=1))
    deployment = old.resolve("model-a", "/chat/completions").entries[0][0]
    assert deployment.upstream_model is None and deployment.models is not None
    deployment.breaker_for("model-a").record_failure(100.0)
    new = RoutingTable([provider("any")], routing=RoutingConfig(breaker_failures=1, breaker_open_s=60),
                       previous=old)
    kept = new.resolve("model-b", "/chat/completions").entries[0][0]
    assert kept.breaker_for("model-a").state == "open" and kept.breaker_for("model-b").state == "closed"
    assert kept.breaker is deployment.breaker


# Through the app, against the upstream double run in process.


@pytest.fixture(scope="module")
def routed() -> Iterator[Gateway]:
    with Gateway(ROUTED, double()) as gw:
        yield gw


def chat(gw: Gateway, model: str, **headers: str) -> Response:
    return gw.post("/v1/chat/completions", json={"model": model, "messages": []}, headers=headers)


def test_alias_renames_the_model_upstream(routed: Gateway) -> None:
    body = b'{"model": "rotated", "messages": [{"role": "user", "content": "hi"}], "n": 1}'
    response = routed.post("/v1/chat/completions", content=body)
    assert response.status_code == 200
    assert response.headers["x-llmgate-deployment"] == "rotating/upstream-name"
    sent = '{"model":"upstream-name","messages":[{"role": "user", "content": "hi"}],"n":1}'
    assert seen()["last_body"] == sent


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
    assert routed.health("broken/down")["breaker"]["state"] == "open"
    response = chat(routed, "down")  # now llmgate answers at once, without calling the upstream
    assert response.status_code == 503 and response.json()["error"]["code"] == "no_healthy_deployment"
    assert response.headers["x-llmgate-attempts"] == "0"


def test_other_4xx_pass_through_at_once(routed: Gateway) -> None:
    response = chat(routed, "rotated", **{"x-mock-status": "422"})
    assert response.status_code == 422 and response.headers["x-llmgate-attempts"] == "1"
    assert response.json()["error"]["message"] == "mock error 422"


def test_unknown_alias_and_missing_capability_are_404(routed: Gateway) -> None:
    response = chat(routed, "gpt-5")
    assert response.status_code == 404 and response.json()["error"]["code"] == "model_not_found"
    response = chat(routed, "text-embedding-3-small")  # the embedder serves embeddings only
    assert response.status_code == 404 and "does not support /v1/chat/completions" in response.text


def test_models_lists_the_aliases(routed: Gateway) -> None:
    ids = [m["id"] for m in routed.get("/v1/models").json()["data"]]
    assert ids == ["rotated", "revoked", "primary", "backup", "down", "gpt-4o",
                   "text-embedding-3-small", "claude-sonnet-4-5-20250929", "claude-3-5-haiku-20241022"]


def test_models_route_to_their_provider(small_gateway: Gateway) -> None:
    small_gateway.post("/v1/chat/completions", json={"model": "special-model"})
    up = seen()
    assert (up["last_path"], up["last_auth"]) == ("/pinned/v1/chat/completions", "Bearer sk-pinned-provider-key-000000")
    small_gateway.post("/v1/chat/completions", json={"model": "other"})
    assert seen()["last_path"] == "/v1/chat/completions"
