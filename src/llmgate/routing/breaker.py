"""Circuit breakers: closed → open → half-open (one probe) → closed. Pure; `now` is passed in.

One per (deployment, upstream model): an alias's deployment serves one upstream model and has one breaker; a
pass-through deployment serves whatever model is asked and keeps a breaker per model (`ModelBreakers`), so one
model failing upstream does not refuse the others.

Opens after `failures` consecutive failures, or when failures reach `error_rate` of at least `min_requests`
outcomes within the window (two fixed buckets: the current one and the previous, weighted by overlap — a
sliding window without a list of timestamps). After `open_s` one probe request is let through; its success
closes the breaker, its failure opens it again.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Literal

from llmgate.config import RoutingConfig

BreakerState = Literal["closed", "open", "half_open"]
MAX_MODEL_BREAKERS = 1024
"""Per pass-through deployment: model names come from clients, so their breakers are bounded (least recently used
closed ones make room)."""


class Breaker:
    """The health of one deployment for one upstream model. Failures: 5xx, connection errors, timeouts before
    the first byte."""

    __slots__ = ("_bucket_start", "_config", "_cur_fail", "_cur_total", "_prev_fail", "_prev_total", "consecutive",
                 "open_until", "opened", "probe_in_flight", "state")

    def __init__(self, config: RoutingConfig) -> None:
        self._config = config
        self.state: BreakerState = "closed"
        self.consecutive = 0
        self.open_until = 0.0
        self.opened = 0
        self.probe_in_flight = False
        self._bucket_start = 0.0
        self._cur_fail = self._cur_total = self._prev_fail = self._prev_total = 0

    def reconfigure(self, config: RoutingConfig) -> None:
        """Keep the state, take new thresholds (config reload)."""
        self._config = config

    def allows(self, now: float) -> bool:
        """May a request go to this deployment now? (Does not claim the half-open probe: see `claim`.)"""
        if self.state == "closed":
            return True
        if self.state == "open":
            return now >= self.open_until
        return not self.probe_in_flight

    def claim(self, now: float) -> None:
        """A request is going to this deployment: an open breaker past its wait becomes half-open, this the probe."""
        if self.state != "closed":
            self.state = "half_open"
            self.probe_in_flight = True

    def record_success(self, now: float) -> None:
        self.consecutive = 0
        self._count(now, failed=False)
        if self.state != "closed":
            self.state = "closed"
            self.probe_in_flight = False

    def record_failure(self, now: float) -> bool:
        """Count a failure; True when it opened the breaker."""
        self.consecutive += 1
        self._count(now, failed=True)
        if self.state == "half_open" or (self.state == "closed" and self._should_open(now)):
            self._open(now)
            return True
        return False

    def release(self) -> None:
        """The request ended without telling (client left, the caller's own 4xx): free the probe slot."""
        self.probe_in_flight = False

    def window_counts(self, now: float) -> tuple[float, float]:
        """(failures, outcomes) over the sliding window."""
        self._roll(now)
        window = self._config.breaker_window_s
        weight = max(0.0, 1.0 - (now - self._bucket_start) / window)
        return (self._cur_fail + self._prev_fail * weight, self._cur_total + self._prev_total * weight)

    def _should_open(self, now: float) -> bool:
        config = self._config
        if self.consecutive >= config.breaker_failures:
            return True
        failures, total = self.window_counts(now)
        return total >= config.breaker_min_requests and failures >= config.breaker_error_rate * total

    def _open(self, now: float) -> None:
        self.state = "open"
        self.probe_in_flight = False
        self.opened += 1
        self.open_until = now + self._config.breaker_open_s

    def _count(self, now: float, failed: bool) -> None:
        if now - self._bucket_start >= self._config.breaker_window_s:
            self._roll(now)
        self._cur_total += 1
        if failed:
            self._cur_fail += 1

    def _roll(self, now: float) -> None:
        window = self._config.breaker_window_s
        elapsed = now - self._bucket_start
        if elapsed < window:
            return
        if elapsed < 2 * window:
            self._prev_fail, self._prev_total = self._cur_fail, self._cur_total
            self._bucket_start += window
        else:
            self._prev_fail = self._prev_total = 0
            self._bucket_start = now
        self._cur_fail = self._cur_total = 0


class ModelBreakers:
    """A pass-through deployment's breakers, one per upstream model asked, created on first use.

    At most `cap` are kept: a new model evicts the least recently used closed breaker (a closed one holds only
    recent counts; an open one is the refusal that protects the upstream, so it stays). With none closed to
    evict, new models share `shared`, the breaker of requests that name no model.
    """

    __slots__ = ("_config", "by_model", "cap", "shared")

    def __init__(self, config: RoutingConfig, shared: Breaker, cap: int = MAX_MODEL_BREAKERS) -> None:
        self._config = config
        self.shared = shared
        self.cap = cap
        self.by_model: OrderedDict[str, Breaker] = OrderedDict()
        """Least recently used first."""

    def get(self, model: str) -> Breaker:
        """The breaker of `model` (created on first use), now the most recently used."""
        by_model = self.by_model
        breaker = by_model.get(model)
        if breaker is not None:
            by_model.move_to_end(model)
            return breaker
        if len(by_model) >= self.cap and not self._evict():
            return self.shared
        breaker = by_model[model] = Breaker(self._config)
        return breaker

    def reconfigure(self, config: RoutingConfig) -> None:
        """Keep every model's state, take new thresholds (config reload)."""
        self._config = config
        self.shared.reconfigure(config)
        for breaker in self.by_model.values():
            breaker.reconfigure(config)

    def items(self) -> list[tuple[str, Breaker]]:
        """(model, breaker), least recently used first."""
        return list(self.by_model.items())

    def _evict(self) -> bool:
        for model, breaker in self.by_model.items():
            if breaker.state == "closed":
                del self.by_model[model]
                return True
        return False
