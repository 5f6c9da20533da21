"""rpm / tpm / request-count / budget checks for one token, project or end user on this instance: pure, the
clock passed in.

rpm and tpm are sliding windows over the last 60 s: a log of request times and of (time, tokens) pairs,
trimmed as they age out, so a burst at the end of one minute still counts at the start of the next.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Literal, NamedTuple

from llmgate.access.periods import describe, iso
from llmgate.errors import GatewayError, QuotaExhausted, RateLimited

WINDOW_S = 60.0

Kind = Literal["requests", "tokens", "max_requests", "budget", "cost_budget"]


class Limits(NamedTuple):
    """A token's (or project's, or end user's) limits; None means unlimited."""

    max_requests: int | None = None
    rpm: int | None = None
    tpm: int | None = None
    budget_tokens: int | None = None
    budget_cost: float | None = None
    """In the currency of the configured `[prices]`."""
    owner: str = "This token"
    """Who has the limits, as refusals name it."""
    scope: str = "token"
    """`token`, `project` or `user`: a refusal's `param` is `<scope>.<limit's field>`."""
    period: str | None = None
    """When max_requests and the budgets reset (access/periods.py); None: never."""


class Counters:
    """What this instance has counted for one token: windows and running totals."""

    __slots__ = ("cost_used", "period_end", "period_start", "request_count", "request_times", "token_events",
                 "tokens_used", "window_tokens")

    def __init__(self, request_count: int = 0, tokens_used: int = 0, cost_used: float = 0.0) -> None:
        self.request_count = request_count
        self.tokens_used = tokens_used
        self.cost_used = cost_used
        self.period_start = 0.0
        self.period_end = math.inf
        """When the counts above start again from zero (inf: a lifetime budget)."""
        self.request_times: deque[float] = deque()
        self.token_events: deque[tuple[float, int]] = deque()
        self.window_tokens = 0


class Refusal(NamedTuple):
    """Why a request is refused, when it may be retried, and the x-ratelimit-* headers to send."""

    kind: Kind
    message: str
    retry_after_s: float | None
    headers: dict[str, str]
    param: str | None = None
    """The limit that refused it, `<scope>.<field>` (`project.budget_tokens`)."""


def start_period(counters: Counters, start: float, end: float) -> None:
    """A new period began: its counts start from zero (the rpm/tpm windows are not periods: they stay)."""
    counters.request_count = counters.tokens_used = 0
    counters.cost_used = 0.0
    counters.period_start, counters.period_end = start, end


def refuse_quota(limits: Limits, counters: Counters, now: float) -> Refusal | None:
    """The refusal of a spent max_requests or budget (for this period), else None; counts nothing."""
    if limits.max_requests is not None and counters.request_count >= limits.max_requests:
        return _spent(limits, counters, now, "max_requests", "max_requests",
                      f"{limits.owner} has used all of its {limits.max_requests} requests")
    if limits.budget_tokens is not None and counters.tokens_used >= limits.budget_tokens:
        return _spent(limits, counters, now, "budget", "budget_tokens",
                      f"{limits.owner} has used its {describe(limits.period)} of {limits.budget_tokens} tokens")
    if limits.budget_cost is not None and counters.cost_used >= limits.budget_cost:
        return _spent(limits, counters, now, "cost_budget", "budget_cost",
                      f"{limits.owner} has spent its {describe(limits.period)} of {limits.budget_cost:g} "
                      f"(spent: {counters.cost_used:.6g})")
    return None


def _spent(limits: Limits, counters: Counters, now: float, kind: Kind, field: str, what: str) -> Refusal:
    headers = _headers(limits, counters, now)
    if counters.period_end == math.inf:
        return Refusal(kind, what + ".", None, headers, f"{limits.scope}.{field}")
    wait = counters.period_end - now
    unit = "requests" if kind == "max_requests" else "tokens"
    headers[f"x-ratelimit-reset-{unit}"] = format_duration(wait)
    return Refusal(kind, f"{what}; it resets at {iso(counters.period_end)} (in {format_duration(wait)}).", wait,
                   headers, f"{limits.scope}.{field}")


def refuse_rate(limits: Limits, counters: Counters, now: float) -> Refusal | None:
    """The refusal of an rpm or tpm limit reached, else None; counts nothing."""
    if limits.rpm is not None or limits.tpm is not None:  # the windows are kept only for these
        _trim(counters, now)
    if limits.rpm is not None and len(counters.request_times) >= limits.rpm:
        wait = counters.request_times[len(counters.request_times) - limits.rpm] + WINDOW_S - now
        return Refusal("requests", f"Rate limit reached{_of(limits)}: {limits.rpm} requests per minute. "
                       f"Try again in {format_duration(wait)}.", wait, _headers(limits, counters, now),
                       f"{limits.scope}.rpm_limit")
    if limits.tpm is not None and counters.window_tokens >= limits.tpm:
        wait = _tokens_reset_s(limits.tpm, counters, now)
        return Refusal("tokens", f"Rate limit reached{_of(limits)}: {limits.tpm} tokens per minute. "
                       f"Try again in {format_duration(wait)}.", wait, _headers(limits, counters, now),
                       f"{limits.scope}.tpm_limit")
    return None


def _of(limits: Limits) -> str:
    return "" if limits.scope == "token" else f" for {limits.owner[0].lower()}{limits.owner[1:]}"


def count_request(limits: Limits, counters: Counters, now: float) -> None:
    """An admitted request: count it (and its time, when an rpm limit keeps the window)."""
    counters.request_count += 1
    if limits.rpm is not None:
        counters.request_times.append(now)


def admit(limits: Limits, counters: Counters, now: float) -> Refusal | None:
    """Count the request and return None, or refuse it (and count nothing)."""
    refusal = refuse_quota(limits, counters, now) or refuse_rate(limits, counters, now)
    if refusal is not None:
        return refusal
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
    """OpenAI's style: `1s`, `6m0s`, `20ms`; and `26h3m0s` for a budget period's reset."""
    if seconds < 1:
        return f"{max(math.ceil(seconds * 1000), 0)}ms"
    whole = math.ceil(seconds)
    if whole >= 3600:
        return f"{whole // 3600}h{whole % 3600 // 60}m{whole % 60}s"
    return f"{whole // 60}m{whole % 60}s" if whole >= 60 else f"{whole}s"


def retry_after(seconds: float) -> str:
    """The `retry-after` value: whole seconds, at least 1."""
    return str(max(math.ceil(seconds), 1))


_QUOTA_CODES = {"max_requests": "request_limit_reached", "budget": "token_budget_exhausted",
                "cost_budget": "cost_budget_exhausted"}


def refusal_error(refusal: Refusal) -> GatewayError:
    """A Refusal as its 429: rate limits say when to retry, exhausted quotas say that retrying will not help."""
    headers = dict(refusal.headers)
    if refusal.retry_after_s is not None:
        headers["retry-after"] = retry_after(refusal.retry_after_s)
    if refusal.kind in _QUOTA_CODES:
        error: GatewayError = QuotaExhausted(refusal.message, headers=headers)
        error.code = _QUOTA_CODES[refusal.kind]
    else:
        error = RateLimited(refusal.message, kind=refusal.kind, headers=headers)
    error.param = refusal.param
    return error
