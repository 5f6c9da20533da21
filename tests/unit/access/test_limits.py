"""Sliding windows and quotas, with the clock passed in: no sleeps."""

from __future__ import annotations

from llmgate.access.limits import WINDOW_S, Counters, Limits, admit, format_duration, record_tokens, retry_after


def test_unlimited_counts_requests() -> None:
    counters = Counters()
    assert all(admit(Limits(), counters, float(t)) is None for t in range(1000))
    assert counters.request_count == 1000 and not counters.request_times


def test_rpm_is_a_sliding_window() -> None:
    limits, counters = Limits(rpm=3), Counters()
    assert [admit(limits, counters, t) is None for t in (0.0, 10.0, 20.0, 30.0)] == [True, True, True, False]
    refusal = admit(limits, counters, 59.0)
    assert refusal is not None and refusal.kind == "requests" and refusal.retry_after_s == 1.0
    assert refusal.headers == {"x-ratelimit-limit-requests": "3", "x-ratelimit-remaining-requests": "0",
                               "x-ratelimit-reset-requests": "1s"}
    assert admit(limits, counters, 60.0) is None  # the request at 0 s has left the window
    assert admit(limits, counters, 60.5) is not None
    assert counters.request_count == 4  # refusals are not counted


def test_max_requests_and_budget_never_reset() -> None:
    counters = Counters(request_count=4)
    refusal = admit(Limits(max_requests=5), counters, 0.0)
    assert refusal is None
    refusal = admit(Limits(max_requests=5), counters, 10 * WINDOW_S)
    assert refusal is not None and refusal.kind == "max_requests" and refusal.retry_after_s is None
    assert refusal.headers["x-ratelimit-remaining-requests"] == "0"
    spent = Counters(tokens_used=100)
    refusal = admit(Limits(budget_tokens=100), spent, 0.0)
    assert refusal is not None and refusal.kind == "budget" and "x-ratelimit-reset-tokens" not in refusal.headers


def test_cost_budget() -> None:
    limits = Limits(budget_cost=0.5)
    assert admit(limits, Counters(cost_used=0.4999), 0.0) is None
    refusal = admit(limits, Counters(cost_used=0.5), 0.0)
    assert refusal is not None and refusal.kind == "cost_budget" and refusal.retry_after_s is None
    assert refusal.message == "This token has spent its budget of 0.5 (spent: 0.5)."


def test_tpm_counts_recorded_tokens_in_the_window() -> None:
    limits, counters = Limits(tpm=100), Counters()
    assert admit(limits, counters, 0.0) is None
    record_tokens(counters, 60, 1.0, has_tpm=True)
    assert admit(limits, counters, 2.0) is None
    record_tokens(counters, 50, 3.0, has_tpm=True)
    refusal = admit(limits, counters, 4.0)
    assert refusal is not None and refusal.kind == "tokens"
    assert refusal.retry_after_s == 57.0  # once the 60 tokens of t=1 leave, 50 < 100
    assert refusal.headers["x-ratelimit-remaining-tokens"] == "0"
    assert admit(limits, counters, 61.0) is None
    assert counters.tokens_used == 110


def test_record_tokens_ignores_nothing_and_skips_the_window_without_tpm() -> None:
    counters = Counters()
    record_tokens(counters, 0, 0.0, has_tpm=True)
    record_tokens(counters, 7, 0.0, has_tpm=False)
    assert (counters.tokens_used, counters.window_tokens, len(counters.token_events)) == (7, 0, 0)


def test_durations() -> None:
    assert [format_duration(s) for s in (0.0201, 1.0, 59.2, 360.0)] == ["21ms", "1s", "1m0s", "6m0s"]
    assert [format_duration(s) for s in (3600.0, 93780.0)] == ["1h0m0s", "26h3m0s"]  # a budget period's reset
    assert [retry_after(s) for s in (0.01, 1.0, 1.2)] == ["1", "1", "2"]
