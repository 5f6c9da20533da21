"""Circuit breaker per deployment: closed → open → half-open (one probe) → closed. Pure; `now` is passed in.

Opens after `failures` consecutive failures, or when failures reach `error_rate` of at least `min_requests`
outcomes within the window (two fixed buckets: the current one and the previous, weighted by overlap — a
sliding window without a list of timestamps). After `open_s` one probe request is let through; its success
closes the breaker, its failure opens it again.
"""

from __future__ import annotations

from typing import Literal

from llmgate.config import RoutingConfig

BreakerState = Literal["closed", "open", "half_open"]


class Breaker:
    """The health of one deployment. Failures: 5xx, connection errors, timeouts before the first byte."""

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
