"""rpm / tpm / request-count / budget checks for one token on this instance: pure, the clock passed in.

rpm and tpm are sliding windows over the last 60 s: a log of request times and of (time, tokens) pairs,
trimmed as they age out, so a burst at the end of one minute still counts at the start of the next.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Literal, NamedTuple

WINDOW_S = 60.0

Kind = Literal["requests", "tokens", "max_requests", "budget", "cost_budget"]


class Limits(NamedTuple):
    """A token's limits; None means unlimited."""

    max_requests: int | None = None
    rpm: int | None = None
    tpm: int | None = None
    budget_tokens: int | None = None
    budget_cost: float | None = None
    """In the currency of the configured `[prices]`."""


class Counters:
    """What this instance has counted for one token: windows and running totals."""

    __slots__ = ("cost_used", "request_count", "request_times", "token_events", "tokens_used", "window_tokens")

    def __init__(self, request_count: int = 0, tokens_used: int = 0, cost_used: float = 0.0) -> None:
        self.request_count = request_count
        self.tokens_used = tokens_used
        self.cost_used = cost_used
        self.request_times: deque[float] = deque()
        self.token_events: deque[tuple[float, int]] = deque()
        self.window_tokens = 0


class Refusal(NamedTuple):
    """Why a request is refused, when it may be retried, and the x-ratelimit-* headers to send."""

    kind: Kind
    message: str
    retry_after_s: float | None
    headers: dict[str, str]


def admit(limits: Limits, counters: Counters, now: float) -> Refusal | None:
    """Count the request and return None, or refuse it (and count nothing)."""
    if limits.max_requests is not None and counters.request_count >= limits.max_requests:
        return Refusal("max_requests", f"This token has used all of its {limits.max_requests} requests.", None,
                       _headers(limits, counters, now))
    if limits.budget_tokens is not None and counters.tokens_used >= limits.budget_tokens:
        return Refusal("budget", f"This token has used its budget of {limits.budget_tokens} tokens.", None,
                       _headers(limits, counters, now))
    if limits.budget_cost is not None and counters.cost_used >= limits.budget_cost:
        return Refusal("cost_budget", f"This token has spent its budget of {limits.budget_cost:g} "
                       f"(spent: {counters.cost_used:.6g}).", None, _headers(limits, counters, now))
    if limits.rpm is not None or limits.tpm is not None:  # the windows are kept only for these
        _trim(counters, now)
    if limits.rpm is not None and len(counters.request_times) >= limits.rpm:
        wait = counters.request_times[len(counters.request_times) - limits.rpm] + WINDOW_S - now
        return Refusal("requests", f"Rate limit reached: {limits.rpm} requests per minute. "
                       f"Try again in {format_duration(wait)}.", wait, _headers(limits, counters, now))
    if limits.tpm is not None and counters.window_tokens >= limits.tpm:
        wait = _tokens_reset_s(limits.tpm, counters, now)
        return Refusal("tokens", f"Rate limit reached: {limits.tpm} tokens per minute. "
                       f"Try again in {format_duration(wait)}.", wait, _headers(limits, counters, now))
    counters.request_count += 1
    if limits.rpm is not None:
        counters.request_times.append(now)
    return None


def record_tokens(counters: Counters, tokens: int, now: float, has_tpm: bool) -> None:
    """Add the LLM tokens a response used (to the budget, and to the tpm window when there is one)."""
    if tokens <= 0:
        return
    counters.tokens_used += tokens
    if has_tpm:
        counters.token_events.append((now, tokens))
        counters.window_tokens += tokens


def _trim(counters: Counters, now: float) -> None:
    start = now - WINDOW_S
    times = counters.request_times
    while times and times[0] <= start:
        times.popleft()
    events = counters.token_events
    while events and events[0][0] <= start:
        counters.window_tokens -= events.popleft()[1]


def _tokens_reset_s(tpm: int, counters: Counters, now: float) -> float:
    """Seconds until enough tokens leave the window to bring it under `tpm`."""
    excess = counters.window_tokens - tpm + 1
    for at, tokens in counters.token_events:
        excess -= tokens
        if excess <= 0:
            return max(at + WINDOW_S - now, 0.0)
    return WINDOW_S


def _headers(limits: Limits, counters: Counters, now: float) -> dict[str, str]:
    headers: dict[str, str] = {}
    if limits.rpm is not None:
        times = counters.request_times
        reset = times[0] + WINDOW_S - now if times else 0.0
        headers |= rate_headers("requests", limits.rpm, limits.rpm - len(times), reset)
    elif limits.max_requests is not None:
        headers |= rate_headers("requests", limits.max_requests, limits.max_requests - counters.request_count, None)
    if limits.tpm is not None:
        headers |= rate_headers("tokens", limits.tpm, limits.tpm - counters.window_tokens,
                                _tokens_reset_s(limits.tpm, counters, now) if counters.token_events else 0.0)
    elif limits.budget_tokens is not None:
        headers |= rate_headers("tokens", limits.budget_tokens, limits.budget_tokens - counters.tokens_used, None)
    return headers


def rate_headers(unit: str, limit: int, remaining: int, reset_s: float | None) -> dict[str, str]:
    """OpenAI's x-ratelimit-{limit,remaining,reset}-{requests,tokens}; no reset for what never resets."""
    headers = {f"x-ratelimit-limit-{unit}": str(limit), f"x-ratelimit-remaining-{unit}": str(max(remaining, 0))}
    if reset_s is not None:
        headers[f"x-ratelimit-reset-{unit}"] = format_duration(reset_s)
    return headers


def format_duration(seconds: float) -> str:
    """OpenAI's style: `1s`, `6m0s`, `20ms`."""
    if seconds < 1:
        return f"{max(math.ceil(seconds * 1000), 0)}ms"
    whole = math.ceil(seconds)
    return f"{whole // 60}m{whole % 60}s" if whole >= 60 else f"{whole}s"


def retry_after(seconds: float) -> str:
    """The `retry-after` value: whole seconds, at least 1."""
    return str(max(math.ceil(seconds), 1))
