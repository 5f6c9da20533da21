"""What a token and a project both have: limits, counters of the current budget period, the counts not written
back yet, a soft-limit threshold, and a queue for requests over rpm/tpm. Pure but for the queue's futures."""

from __future__ import annotations

import math
from collections import deque
from typing import TYPE_CHECKING

from llmgate.access.limits import Counters, Limits, start_period
from llmgate.access.periods import window
from llmgate.store.base import UsageDelta

if TYPE_CHECKING:
    import asyncio


class Budgeted:
    """A token's or project's limits and counts on this instance."""

    __slots__ = (
        "alert_threshold",
        "alerted",
        "anchor",
        "counters",
        "limits",
        "queue_ms",
        "unflushed_cost",
        "unflushed_requests",
        "unflushed_tokens",
        "waitline",
    )

    def __init__(self, request_count: int, tokens_used: int, cost_used: float) -> None:
        self.counters = Counters(request_count, tokens_used, cost_used)
        self.limits = Limits()
        self.anchor = 0.0
        """Where duration periods (`30d`) are counted from: the creation time."""
        self.unflushed_requests = 0
        self.unflushed_tokens = 0
        self.unflushed_cost = 0.0
        self.queue_ms = 0
        self.alert_threshold: float | None = None
        self.alerted: set[str] = set()
        """Budgets whose soft-limit alert went out this period (`budget_tokens`, `budget_cost`, `max_requests`)."""
        self.waitline: deque[asyncio.Future[None]] | None = None
        """Requests queued for an rpm/tpm slot, in arrival order; None until one queues."""

    def take_stored(self, counts: tuple[int, int, float], stored_start: float, now: float) -> None:
        """The store's counts (all instances' write-backs) for the current period, kept with what this instance
        counted and has not written back; a new period starts from zero."""
        start, end = window(self.limits.period, self.anchor, now)
        counters = self.counters
        if counters.period_start != start:
            self.start_period(start, end)
        counters.period_end = end
        if stored_start != start:
            return  # the store still holds an earlier period's counts
        requests, tokens, cost = counts
        counters.request_count = max(counters.request_count, requests + self.unflushed_requests)
        counters.tokens_used = max(counters.tokens_used, tokens + self.unflushed_tokens)
        counters.cost_used = max(counters.cost_used, cost + self.unflushed_cost)

    def roll(self, now: float) -> None:
        """Start the next period when the current one has ended (a float comparison while it has not)."""
        if now >= self.counters.period_end:
            self.start_period(*window(self.limits.period, self.anchor, now))

    def start_period(self, start: float, end: float) -> None:
        """Counts of an ended period are dropped: the store drops them too once a later period's arrive."""
        start_period(self.counters, start, end)
        self.unflushed_requests = self.unflushed_tokens = 0
        self.unflushed_cost = 0.0
        self.alerted.clear()

    def crossed(self) -> list[tuple[str, float, float]]:
        """The budgets past the alert threshold that have not alerted this period: (field, used, limit)."""
        threshold = self.alert_threshold
        if threshold is None:
            return []
        limits, counters = self.limits, self.counters
        found = []
        for name, used, limit in (("max_requests", counters.request_count, limits.max_requests),
                                  ("budget_tokens", counters.tokens_used, limits.budget_tokens),
                                  ("budget_cost", counters.cost_used, limits.budget_cost)):
            if limit is not None and used >= threshold * limit and name not in self.alerted:
                self.alerted.add(name)
                found.append((name, float(used), float(limit)))
        return found

    def take_delta(self, entry_id: str, now: float) -> UsageDelta:
        """What was counted since the last write-back, in the current period; the unflushed counts go to zero."""
        delta = UsageDelta(entry_id, self.unflushed_requests, self.unflushed_tokens, now, self.unflushed_cost,
                           self.counters.period_start)
        self.unflushed_requests = self.unflushed_tokens = 0
        self.unflushed_cost = 0.0
        return delta

    @property
    def resets_at(self) -> float | None:
        """When the period's counts start again from zero; None for a lifetime budget."""
        end = self.counters.period_end
        return None if end == math.inf else end
