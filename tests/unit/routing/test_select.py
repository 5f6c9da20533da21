"""Choosing a deployment and a key: weights, health, rpm, the last resort, hedging's cap."""

from collections import Counter

from llmgate.config import HedgeConfig, ProviderConfig, RoutingConfig
from llmgate.providers.registry import build_provider
from llmgate.routing.breaker import Breaker, ModelBreakers
from llmgate.routing.keys import KeyRing, KeyState, cool_down, disable
from llmgate.routing.select import Deployment, HedgeState, Route, choose, choose_last_resort
from tests.inprocess.gateway import Gateway, Response
from tests.inprocess.upstream import DOUBLE_URL, double

CONFIG = RoutingConfig(breaker_failures=1, breaker_open_s=10)


def deployment(name: str, keys: int = 1, rpm: int | None = None) -> Deployment:
    provider = build_provider(ProviderConfig(name=name, base_url="http://x"))
    ring = KeyRing(KeyState(f"sk-{name}-{i}", ()) for i in range(keys))
    return Deployment(name, provider, "m", ring, Breaker(CONFIG), rpm=rpm)


class Draws:
    """An injected random(): evenly spread draws, so weights show exactly."""

    def __init__(self, n: int) -> None:
        self.values = iter((i + 0.5) / n for i in range(n))

    def __call__(self) -> float:
        return next(self.values)


def test_weighted_among_the_available() -> None:
    a, b = deployment("a"), deployment("b")
    route = Route("r", [(a, 3.0), (b, 1.0)])
    draws = Draws(400)
    picks = Counter(choose(route.entries, "m", 0.0, [], draws)[0].name for _ in range(400))  # type: ignore[index]
    assert picks == {"a": 300, "b": 100}


def test_unhealthy_excluded_and_rate_limited_are_skipped() -> None:
    a, b, c = deployment("a"), deployment("b"), deployment("c", keys=2)
    entries = Route("r", [(a, 1.0), (b, 1.0), (c, 1.0)]).entries
    a.breaker.record_failure(0.0)  # open
    disable(c.keys.keys[0])
    cool_down(c.keys.keys[1], 0.0, 60)
    for _ in range(10):
        assert choose(entries, "m", 1.0, [], lambda: 0.0)[0] is b  # type: ignore[index]
    assert choose(entries, "m", 1.0, [b], lambda: 0.0) is None
    assert choose(entries, "m", 61.0, [a, b], lambda: 0.0)[0] is c  # type: ignore[index]  # its second key is back
    assert choose(entries, "m", 11.0, [b, c], lambda: 0.0)[0] is a  # type: ignore[index]  # the half-open probe
    assert a.breaker.state == "half_open" and choose(entries, "m", 11.0, [b, c], lambda: 0.0) is None


def test_rpm_limit() -> None:
    a = deployment("a", rpm=2)
    entries = Route("r", [(a, 1.0)]).entries
    assert choose(entries, "m", 0.0, [], lambda: 0.0) and choose(entries, "m", 1.0, [], lambda: 0.0)
    assert choose(entries, "m", 2.0, [], lambda: 0.0) is None
    assert choose(entries, "m", 60.0, [], lambda: 0.0) is not None  # a new minute


def test_last_resort_uses_a_resting_key_but_not_an_open_breaker() -> None:
    a, b = deployment("a"), deployment("b")
    entries = Route("r", [(a, 1.0), (b, 1.0)]).entries
    cool_down(a.keys.keys[0], 0.0, 60)
    cool_down(b.keys.keys[0], 0.0, 60)
    b.breaker.record_failure(0.0)
    assert choose(entries, "m", 1.0, [], lambda: 0.0) is None
    assert choose_last_resort(entries, "m", 1.0) == (a, a.keys.keys[0])


def test_capabilities_split_the_entries() -> None:
    chat = deployment("chat")
    emb = Deployment("emb", build_provider(ProviderConfig(name="emb", base_url="http://x",
                                                          capabilities=("embeddings",))),
                     "m", KeyRing([KeyState("", ())]), Breaker(CONFIG))
    route = Route("r", [(chat, 1.0), (emb, 1.0)])
    assert [d.name for d, _ in route.by_capability["embeddings"]] == ["chat", "emb"]
    assert [d.name for d, _ in route.by_capability["chat"]] == ["chat"]
    assert "messages" not in route.by_capability


def test_hedging_cap_and_deadline() -> None:
    hedge = HedgeState(HedgeConfig(max_ratio=0.05))
    hedge.requests = 19
    assert not hedge.may_hedge()
    hedge.requests = 20
    assert hedge.may_hedge()
    hedge.hedges = 1
    assert not hedge.may_hedge()  # 2 hedges need 40 requests
    assert hedge.delay_s() == 1.0  # until 20 times to first byte are known
    for i in range(100):
        hedge.record_ttfb(i / 100)
    assert hedge.delay_s() == 0.95
    assert HedgeState(HedgeConfig(after_ms=250)).delay_s() == 0.25


def test_tpm_limit_counts_reported_tokens() -> None:
    a = deployment("a")
    a.tpm = 1000
    entries = Route("r", [(a, 1.0)]).entries
    assert choose(entries, "m", 0.0, [], lambda: 0.0) is not None
    a.record_tokens(600, 1.0)
    assert choose(entries, "m", 2.0, [], lambda: 0.0) is not None
    a.record_tokens(600, 3.0)
    assert choose(entries, "m", 4.0, [], lambda: 0.0) is None
    assert choose(entries, "m", 60.0, [], lambda: 0.0) is not None


def passthrough(name: str, keys: int = 1) -> Deployment:
    provider = build_provider(ProviderConfig(name=name, base_url="http://x"))
    ring = KeyRing(KeyState(f"sk-{name}-{i}", ()) for i in range(keys))
    shared = Breaker(CONFIG)
    return Deployment(name, provider, None, ring, shared, models=ModelBreakers(CONFIG, shared))


def test_a_passthrough_deployment_rests_only_the_model_that_failed() -> None:
    only = passthrough("only")
    entries = Route("*", [(only, 1.0)]).entries
    only.breaker_for("model-a").record_failure(0.0)  # opens (breaker_failures=1)
    assert choose(entries, "model-a", 1.0, [], lambda: 0.0) is None
    assert choose_last_resort(entries, "model-a", 1.0) is None
    assert choose(entries, "model-b", 1.0, [], lambda: 0.0) == (only, only.keys.keys[0])
    assert choose(entries, None, 1.0, [], lambda: 0.0) is not None  # no model named: the shared breaker
    assert only.is_available(1.0) and not only.is_available(1.0, only.breaker_for("model-a"))
    assert choose(entries, "model-a", 11.0, [], lambda: 0.0) is not None  # model-a's half-open probe
    assert only.breaker_for("model-a").state == "half_open" and only.breaker.state == "closed"


def test_an_alias_deployment_has_one_breaker_whatever_the_model_asked() -> None:
    a = deployment("a")
    assert a.breaker_for("m") is a.breaker_for("x") is a.breaker_for(None) is a.breaker


def test_a_retry_on_the_same_deployment_prefers_an_untried_key() -> None:
    only = deployment("only", keys=3)
    entries = Route("r", [(only, 1.0)]).entries
    first = choose(entries, "m", 0.0, [], lambda: 0.0)
    assert first is not None
    tried = [first[1]]
    for _ in range(2):
        pick = choose(entries, "m", 0.0, [], lambda: 0.0, tried)
        assert pick is not None and pick[1] not in tried
        tried.append(pick[1])
    again = choose(entries, "m", 0.0, [], lambda: 0.0, tried)
    assert again is not None and again[1] is first[1]  # every key tried: the least recently used again


def test_tpm_moves_traffic_once_a_deployment_has_used_its_tokens() -> None:
    """Through the app, against the upstream double run in process."""
    config = f"""
[[providers]]
name = "small"
base_url = "{DOUBLE_URL}/small/v1"

[[providers]]
name = "large"
base_url = "{DOUBLE_URL}/large/v1"

[[models]]
name = "budgeted"
deployments = [{{ provider = "small", weight = 1000000, tpm = 100 }}, {{ provider = "large", weight = 0.000001 }}]
"""

    def chat(gw: Gateway, stream: bool = False) -> Response:
        return gw.post("/v1/chat/completions", json={"model": "budgeted", "stream": stream, "messages": []})

    with Gateway(config, double()) as gw:
        used = [chat(gw).headers["x-llmgate-deployment"] for _ in range(4)]
        # the double's answers use 35 tokens each: the 100-token minute is over after the third
        assert used == ["small/budgeted"] * 3 + ["large/budgeted"]
    with Gateway(config, double()) as gw:  # a fresh minute
        streams = [chat(gw, stream=True) for _ in range(5)]
    # a stream's usage is asked for (31 tokens: 11 + 20 chunks) and not shown to a client that did not ask
    assert [s.headers["x-llmgate-deployment"] for s in streams] == ["small/budgeted"] * 4 + ["large/budgeted"]
    assert all(b'"usage":{' not in s.content and s.content.endswith(b"data: [DONE]\n\n") for s in streams)
