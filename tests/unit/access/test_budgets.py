"""Budgeted entries and project checks, pure: counts per period, rolling over, soft-limit crossings, refusals
that say when they reset; `now` passed in."""

from __future__ import annotations

from llmgate.access.admission import check_project
from llmgate.access.budgets import Budgeted
from llmgate.access.limits import Counters, Limits, refuse_quota
from llmgate.access.projects import ProjectEntry
from llmgate.store.base import Project, UserLimits

DAY = 86400.0
T0 = 20_000 * DAY  # a UTC midnight


def daily(**limits: float) -> Budgeted:
    entry = Budgeted(0, 0, 0.0)
    entry.limits = Limits(**limits, period="daily")  # type: ignore[arg-type]
    return entry


def test_stored_counts_count_only_for_the_current_period() -> None:
    entry = daily(budget_tokens=100)
    entry.take_stored((0, 0, 0.0), T0, T0)
    entry.unflushed_tokens = 5
    entry.take_stored((3, 40, 0.5), T0, T0 + 10)  # the store's counts are today's: kept with what is unflushed
    assert (entry.counters.request_count, entry.counters.tokens_used, entry.resets_at) == (3, 45, T0 + DAY)
    entry.take_stored((9, 90, 0.9), T0 - DAY, T0 + DAY + 1)  # tomorrow; the store still holds yesterday's
    assert (entry.counters.request_count, entry.counters.tokens_used, entry.unflushed_tokens) == (0, 0, 0)


def test_roll_starts_the_next_period_once_it_is_due() -> None:
    entry = daily(max_requests=2)
    entry.take_stored((2, 0, 0.0), T0, T0)
    entry.unflushed_requests = 1
    entry.roll(T0 + DAY - 1)
    assert entry.counters.request_count == 2
    entry.roll(T0 + DAY)
    assert (entry.counters.request_count, entry.unflushed_requests, entry.resets_at) == (0, 0, T0 + 2 * DAY)
    delta = entry.take_delta("x", T0 + DAY)
    assert (delta.requests, delta.period_start) == (0, T0 + DAY)


def test_a_soft_limit_is_crossed_once_per_period() -> None:
    entry = daily(budget_tokens=100, budget_cost=1.0)
    entry.alert_threshold = 0.8
    entry.take_stored((0, 79, 0.9), T0, T0)
    assert entry.crossed() == [("budget_cost", 0.9, 1.0)]
    entry.counters.tokens_used = 80
    assert entry.crossed() == [("budget_tokens", 80.0, 100.0)]
    assert entry.crossed() == []
    entry.roll(T0 + DAY)
    entry.counters.tokens_used = 99
    assert entry.crossed() == [("budget_tokens", 99.0, 100.0)]


def test_a_periodic_refusal_says_when_it_resets() -> None:
    entry = daily(budget_tokens=10)
    entry.take_stored((1, 10, 0.0), T0, T0)
    refusal = refuse_quota(entry.limits, entry.counters, T0 + DAY - 90)
    assert refusal is not None and refusal.retry_after_s == 90
    assert refusal.headers["x-ratelimit-reset-tokens"] == "1m30s" and "resets at" in refusal.message
    refusal = refuse_quota(Limits(budget_tokens=10), Counters(tokens_used=10), T0)  # a lifetime budget
    assert refusal is not None and refusal.retry_after_s is None and "x-ratelimit-reset-tokens" not in refusal.headers


def test_project_check_covers_its_end_users() -> None:
    project = Project(id="p", name="p", created_at=0.0, updated_at=0.0, max_requests=3, budget_period="daily",
                      per_user=UserLimits(max_requests=1))
    entry = ProjectEntry(project, T0)
    refusal, alice = check_project(entry, "alice", T0)
    assert refusal is None and alice is not None
    alice.request_count = 1
    refusal, _ = check_project(entry, "alice", T0 + 1)
    assert refusal is not None and refusal.param == "user.max_requests"
    assert check_project(entry, None, T0 + 1) == (None, None)
    refusal, _ = check_project(entry, "alice", T0 + DAY)  # a new day: the end user's count starts over too
    assert refusal is None
