"""The circuit breaker's states, with the clock passed in."""

from llmgate.config import RoutingConfig
from llmgate.routing.breaker import Breaker, ModelBreakers

CONFIG = RoutingConfig(breaker_failures=3, breaker_error_rate=0.5, breaker_min_requests=10, breaker_window_s=10,
                       breaker_open_s=5)


def test_opens_after_consecutive_failures() -> None:
    breaker = Breaker(CONFIG)
    assert breaker.record_failure(0.0) is False
    breaker.record_success(0.1)  # a success resets the streak
    assert [breaker.record_failure(t) for t in (1.0, 1.1, 1.2)] == [False, False, True]
    assert breaker.state == "open" and not breaker.allows(3.0)


def test_opens_on_the_error_rate_over_the_window() -> None:
    breaker = Breaker(CONFIG)
    for i in range(10):  # alternate: never 3 in a row, but half of 10+ outcomes fail
        t = i * 0.1
        breaker.record_success(t) if i % 2 else breaker.record_failure(t)
    assert breaker.state == "closed"  # 5 failures of 10: at the rate, not yet opened (the last was a success)
    assert breaker.record_failure(1.1) is True


def test_old_outcomes_leave_the_window() -> None:
    breaker = Breaker(CONFIG)
    for i in range(8):
        breaker.record_failure(i * 0.01) if i % 3 == 0 else breaker.record_success(i * 0.01)
    assert breaker.window_counts(0.1) == (3, 8)
    failures, total = breaker.window_counts(15.0)  # half-way through the next window: the old counts weigh half
    assert (failures, total) == (1.5, 4.0)
    assert breaker.window_counts(25.0) == (0, 0)


def test_half_open_lets_one_probe_through_and_closes_on_success() -> None:
    breaker = Breaker(CONFIG)
    for t in (0.0, 0.1, 0.2):
        breaker.record_failure(t)
    assert not breaker.allows(5.1)
    assert breaker.allows(5.2)
    breaker.claim(5.2)
    assert breaker.state == "half_open" and not breaker.allows(5.3)  # a single probe
    breaker.record_success(5.4)
    assert breaker.state == "closed" and breaker.allows(5.4) and breaker.consecutive == 0


def test_a_failed_probe_opens_again_and_a_lost_probe_frees_the_slot() -> None:
    breaker = Breaker(CONFIG)
    for t in (0.0, 0.1, 0.2):
        breaker.record_failure(t)
    breaker.claim(6.0)
    assert breaker.record_failure(6.1) is True
    assert breaker.state == "open" and breaker.open_until == 11.1 and breaker.opened == 2
    breaker.claim(12.0)
    breaker.release()  # the client left: another request may probe
    assert breaker.allows(12.1)


def test_a_breaker_per_model_each_on_its_own() -> None:
    models = ModelBreakers(CONFIG, Breaker(CONFIG))
    a, b = models.get("model-a"), models.get("model-b")
    assert a is not b and models.get("model-a") is a
    for t in (0.0, 0.1, 0.2):
        a.record_failure(t)
    assert not a.allows(1.0) and b.allows(1.0) and models.shared.allows(1.0)
    assert [m for m, _ in models.items()] == ["model-b", "model-a"]  # least recently used first


def test_model_breakers_are_bounded_and_evict_only_closed_ones() -> None:
    models = ModelBreakers(CONFIG, Breaker(CONFIG), cap=3)
    first, second, third = (models.get(m) for m in ("m1", "m2", "m3"))
    for t in (0.0, 0.1, 0.2):
        first.record_failure(t)  # m1 open: it stays
    models.get("m2")  # m2 used again: m3 is now the least recently used closed one
    fourth = models.get("m4")
    assert [m for m, _ in models.items()] == ["m1", "m2", "m4"]
    assert models.get("m1") is first and models.get("m2") is second and models.get("m4") is fourth
    assert models.get("m3") is not third  # evicted: a new, closed one took m2's place as the oldest closed
    for breaker in (first, *(b for _, b in models.items())):
        for t in (1.0, 1.1, 1.2):
            breaker.record_failure(t)
    assert all(b.state == "open" for _, b in models.items())
    assert models.get("m5") is models.shared  # nothing closed to evict: new models share one breaker
    assert len(models.items()) == 3


def test_reconfigure_keeps_every_models_state() -> None:
    models = ModelBreakers(CONFIG, Breaker(CONFIG))
    breaker = models.get("m")
    for t in (0.0, 0.1, 0.2):
        breaker.record_failure(t)
    models.reconfigure(RoutingConfig(breaker_open_s=100))
    assert models.get("m") is breaker and breaker.state == "open"
    breaker.claim(6.0)
    breaker.record_failure(6.1)
    assert breaker.open_until == 106.1  # the new thresholds apply
