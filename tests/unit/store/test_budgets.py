"""Project limits and budget periods in the store, on both backends: round trips, and write-backs that add to
the same period's counts, start over for a later period and drop an earlier one's."""

from __future__ import annotations

import pytest

from llmgate.store.base import Store, UsageDelta, UserLimits
from tests.unit.store.test_base import NOW, project, run, store, token  # noqa: F401 - the two-backend fixture

DAY1, DAY2 = 1_800_000_000.0, 1_800_086_400.0


def test_project_limits_round_trip(store: Store) -> None:  # noqa: F811
    p = project(max_requests=10, rpm_limit=5, tpm_limit=1000, budget_tokens=10**12, budget_cost=12.5,
                budget_period="30d", alert_threshold=0.8, queue_ms=250,
                per_user=UserLimits(rpm_limit=2, budget_cost=0.5))
    run(store, store.create_project(p))
    assert run(store, store.get_project(p.id)) == p
    changed = run(store, store.update_project(p.id, {"budget_period": "daily", "per_user": UserLimits(),
                                                      "rpm_limit": None, "period_start": 0.0}, NOW + 1))
    assert (changed.budget_period, changed.per_user, changed.rpm_limit) == ("daily", UserLimits(), None)
    assert not changed.per_user.is_set() and changed.has_limits()


def test_token_budget_period_round_trips(store: Store) -> None:  # noqa: F811
    p = project()
    run(store, store.create_project(p))
    t = token(p.id, budget_period="weekly", queue_ms=100, alert_threshold=0.5)
    run(store, store.create_token(t))
    got = run(store, store.get_token(t.id))
    assert (got.budget_period, got.queue_ms, got.alert_threshold, got.period_start) == ("weekly", 100, 0.5, 0.0)


def test_write_backs_follow_the_period(store: Store) -> None:  # noqa: F811
    p = project(budget_tokens=100, budget_period="daily")
    run(store, store.create_project(p))
    t = token(p.id, budget_tokens=100, budget_period="daily")
    run(store, store.create_token(t))

    def add(period_start: float, requests: int, tokens: int, cost: float = 0.0) -> None:
        run(store, store.add_usage([UsageDelta(t.id, requests, tokens, NOW, cost, period_start)],
                                   [UsageDelta(p.id, requests, tokens, NOW, cost, period_start)]))

    add(DAY1, 2, 20, 0.5)
    add(DAY1, 1, 5)
    for got in (run(store, store.get_token(t.id)), run(store, store.get_project(p.id))):
        assert (got.request_count, got.tokens_used, got.period_start) == (3, 25, DAY1)
        assert got.cost_used == pytest.approx(0.5)
    add(DAY2, 1, 7)  # a later period: starts over
    add(DAY1, 9, 90)  # a late write-back of the earlier period: dropped
    for got in (run(store, store.get_token(t.id)), run(store, store.get_project(p.id))):
        assert (got.request_count, got.tokens_used, got.cost_used, got.period_start) == (1, 7, 0.0, DAY2)
