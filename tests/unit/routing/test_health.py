"""The /health/deployments snapshot: breakers (per model on a pass-through deployment), counts, keys masked."""

from llmgate.config import DeploymentConfig, ModelConfig, ProviderConfig, RoutingConfig
from llmgate.routing.health import deployments_health
from llmgate.routing.keys import cool_down
from llmgate.routing.table import RoutingTable

ROUTING = RoutingConfig(breaker_failures=2, breaker_open_s=10)


def table() -> RoutingTable:
    providers = [ProviderConfig(name="any", base_url="http://any", api_key="sk-any-0123456789abcdef"),
                 ProviderConfig(name="oai", base_url="http://oai", api_key="sk-oai-0123456789abcdef")]
    models = [ModelConfig(name="mini", deployments=(DeploymentConfig(provider="oai", model="gpt-4o-mini"),))]
    return RoutingTable(providers, models, ROUTING)


def test_a_passthrough_deployment_shows_each_models_breaker() -> None:
    routes = table()
    catch_all = routes.resolve("model-a", "/chat/completions").entries[0][0]
    for t in (1.0, 1.1):
        catch_all.breaker_for("model-a").record_failure(t)  # opens
    catch_all.breaker_for("model-b").record_success(1.2)
    passthrough, alias = sorted(deployments_health(routes, 2.0), key=lambda d: d["name"])
    assert passthrough["name"] == "any" and passthrough["model"] is None
    assert passthrough["healthy"] and passthrough["breaker"]["state"] == "closed"  # other models are served
    assert passthrough["recent"] == {"errors": 2, "requests": 3}
    model_a, model_b = passthrough["models"]
    assert model_a == {"model": "model-a", "healthy": False, "recent": {"errors": 2, "requests": 2},
                       "breaker": {"state": "open", "consecutive_failures": 2, "opened_count": 1,
                                   "half_open_in_s": 9.1}}
    assert model_b["model"] == "model-b" and model_b["healthy"] and model_b["breaker"]["state"] == "closed"
    assert alias["name"] == "oai/gpt-4o-mini" and "models" not in alias
    assert alias["keys"] == [{"key": "sk-****cdef", "state": "ok", "cooling_down_for_s": None, "rate_limited": 0,
                              "failures": 0}]


def test_healthy_means_a_request_could_go_there_now() -> None:
    routes = table()
    catch_all = routes.resolve("model-a", "/chat/completions").entries[0][0]
    catch_all.breaker_for("model-b")
    cool_down(catch_all.keys.keys[0], 0.0, 30)  # its only key rests: no model can be served
    (passthrough,) = [d for d in deployments_health(routes, 1.0) if d["name"] == "any"]
    assert not passthrough["healthy"] and not passthrough["models"][0]["healthy"]
    assert passthrough["keys"][0]["state"] == "cooling_down"
