"""State metrics sampled from a real routing table, event bus and lag monitor: breakers, cooldowns, the queue."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from llmgate.config import DeploymentConfig, ModelConfig, ProviderConfig, RoutingConfig
from llmgate.observe.lag import LoopLag
from llmgate.observe.metrics import GatewayMetrics
from llmgate.observe.state_metrics import Deltas, StateSampler
from llmgate.routing.keys import cool_down, disable
from llmgate.routing.table import RoutingTable
from llmgate.usage.bus import EventBus
from llmgate.usage.event import Exchange, build_event

ROUTING = RoutingConfig(breaker_failures=2, breaker_open_s=5)
PROVIDERS = [ProviderConfig(name="a", base_url="http://a", api_keys=("sk-a-one-0123456789", "sk-a-two-0123456789")),
             ProviderConfig(name="b", base_url="http://b", api_key="sk-b-0123456789abcdef")]
MODELS = [ModelConfig(name="gpt-4o", deployments=(DeploymentConfig(provider="a"), DeploymentConfig(provider="b")))]


def values(metrics: GatewayMetrics) -> dict[tuple[str, tuple[str, ...]], float]:
    found = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.values())))] = sample.value
    return found


class Gateway:
    """What the sampler reads, real: a routing table (swapped on reload), an event bus, a lag monitor."""

    def __init__(self, spill: Path) -> None:
        self.table = RoutingTable(PROVIDERS, MODELS, ROUTING)
        self.bus = EventBus([], build_event, max_queue=2, spill_path=str(spill))
        self.lag = LoopLag()
        self.metrics = GatewayMetrics()
        self.sampler = StateSampler(self.metrics, lambda: self.table, self.bus, self.lag)

    def deployment(self, name: str):  # type: ignore[no-untyped-def]
        return next(d for d in self.table.deployments() if d.name == name)


def test_breaker_states_and_openings(tmp_path: Path) -> None:
    gw = Gateway(tmp_path / "spill.jsonl")
    gw.sampler.sample()
    found = values(gw.metrics)
    assert found[("llmgate_breaker_state", ("a/gpt-4o", "closed"))] == 1
    assert found[("llmgate_breaker_state", ("a/gpt-4o", "open"))] == 0
    breaker = gw.deployment("a/gpt-4o").breaker
    breaker.record_failure(1.0)
    breaker.record_failure(1.1)  # opens
    gw.sampler.sample()
    found = values(gw.metrics)
    assert found[("llmgate_breaker_state", ("a/gpt-4o", "open"))] == 1
    assert found[("llmgate_breaker_state", ("a/gpt-4o", "closed"))] == 0
    assert found[("llmgate_breaker_state", ("b/gpt-4o", "closed"))] == 1
    assert found[("llmgate_breaker_opened_total", ("a/gpt-4o",))] == 1
    gw.sampler.sample()  # sampling again counts nothing twice
    assert values(gw.metrics)[("llmgate_breaker_opened_total", ("a/gpt-4o",))] == 1


def test_cooldowns_count_per_provider_across_a_reload(tmp_path: Path) -> None:
    gw = Gateway(tmp_path / "spill.jsonl")
    first, second = gw.table.keyrings["a"].keys
    cool_down(first, 0.0, 1e9)  # resting long after the test
    cool_down(first, 0.0, 1e9)
    disable(second)
    gw.sampler.sample()
    found = values(gw.metrics)
    assert found[("llmgate_key_cooldowns_total", ("a",))] == 2
    assert found[("llmgate_keys_resting", ("a",))] == 1
    assert found[("llmgate_keys_disabled", ("a",))] == 1
    assert found[("llmgate_keys_resting", ("b",))] == 0
    # A reload keeps both keys' state (same secrets): their counts go on from where they were.
    gw.table = RoutingTable(PROVIDERS, MODELS, ROUTING, previous=gw.table)
    cool_down(gw.table.keyrings["a"].keys[0], 0.0, 1.0)
    gw.sampler.sample()
    assert values(gw.metrics)[("llmgate_key_cooldowns_total", ("a",))] == 3
    # A reload that drops provider a's first key: its past cooldowns stay counted; the new key starts at 0.
    fewer = [ProviderConfig(name="a", base_url="http://a", api_keys=("sk-a-three-012345678",)), PROVIDERS[1]]
    gw.table = RoutingTable(fewer, MODELS, ROUTING, previous=gw.table)
    cool_down(gw.table.keyrings["a"].keys[0], 0.0, 1.0)
    gw.sampler.sample()
    assert values(gw.metrics)[("llmgate_key_cooldowns_total", ("a",))] == 4


def test_a_deployment_a_reload_removed_leaves_every_state(tmp_path: Path) -> None:
    gw = Gateway(tmp_path / "spill.jsonl")
    gw.sampler.sample()
    gw.table = RoutingTable(PROVIDERS, [ModelConfig(name="gpt-4o", deployments=(DeploymentConfig(provider="b"),))],
                            ROUTING, previous=gw.table)
    gw.sampler.sample()
    found = values(gw.metrics)
    assert all(found[("llmgate_breaker_state", ("a/gpt-4o", state))] == 0 for state in ("closed", "open",
                                                                                        "half_open"))
    assert found[("llmgate_breaker_state", ("b/gpt-4o", "closed"))] == 1


def test_queue_depth_spills_drops_and_sink_failures(tmp_path: Path) -> None:
    gw = Gateway(tmp_path / "spill.jsonl")
    for n in range(3):  # max_queue=2: the third spills
        exchange = Exchange(b"r%d" % n, "POST", "/v1/chat/completions")
        exchange.status = 200
        gw.bus.emit(exchange)
    gw.bus.sink_failures["store"] = 4  # what the bus counts when a sink raises (tests/unit/usage/test_bus.py)
    gw.lag.record(0.25)
    gw.lag.record(0.05)
    gw.sampler.sample()
    found = values(gw.metrics)
    assert found[("llmgate_usage_queue_depth", ())] == 2
    assert found[("llmgate_usage_events_spilled_total", ())] == 1
    assert found[("llmgate_usage_events_dropped_total", ())] == 0
    assert found[("llmgate_usage_sink_failures_total", ("store",))] == 4
    assert found[("llmgate_event_loop_lag_seconds", ())] == 0.05
    assert found[("llmgate_event_loop_lag_peak_seconds", ())] == 0.25
    gw.bus.spill_path = None
    gw.bus.emit(Exchange(b"r9", "POST", "/v1/chat/completions"))  # full, no spill file: dropped, counted
    gw.sampler.sample()
    found = values(gw.metrics)
    assert found[("llmgate_usage_events_dropped_total", ())] == 1
    assert found[("llmgate_usage_events_spilled_total", ())] == 1


def test_deltas_count_growth_per_object_and_forget_the_unseen() -> None:
    deltas = Deltas()
    a, b = object(), object()
    assert (deltas.advance(a, 3), deltas.advance(b, 1)) == (3, 1)
    deltas.end_pass()
    assert (deltas.advance(a, 5), deltas.advance(b, 1)) == (2, 0)
    deltas.end_pass()
    assert deltas.advance(a, 5) == 0  # b not seen this pass: forgotten
    deltas.end_pass()
    assert deltas.advance(b, 2) == 2
    assert deltas.advance(a, 1) == 0  # went down (a reset): nothing to add


def test_a_passthrough_deployment_shows_each_state_its_models_breakers_are_in(tmp_path: Path) -> None:
    gw = Gateway(tmp_path / "spill.jsonl")
    gw.table = RoutingTable([*PROVIDERS, ProviderConfig(name="any", base_url="http://any")], MODELS, ROUTING)
    catch_all = gw.deployment("any")
    catch_all.breaker_for("model-b").record_success(1.0)
    gw.sampler.sample()
    found = values(gw.metrics)
    assert found[("llmgate_breaker_state", ("any", "closed"))] == 1
    assert found[("llmgate_breaker_state", ("any", "open"))] == 0
    for t in (1.0, 1.1):
        catch_all.breaker_for("model-a").record_failure(t)  # opens model-a's breaker only
    gw.sampler.sample()
    found = values(gw.metrics)
    assert found[("llmgate_breaker_state", ("any", "open"))] == 1  # model-a
    assert found[("llmgate_breaker_state", ("any", "closed"))] == 1  # model-b, and requests naming no model
    assert found[("llmgate_breaker_opened_total", ("any",))] == 1
    for t in (2.0, 2.1):
        catch_all.breaker_for("model-b").record_failure(t)
    gw.sampler.sample()
    found = values(gw.metrics)
    assert found[("llmgate_breaker_opened_total", ("any",))] == 2  # the openings of every model's breaker
