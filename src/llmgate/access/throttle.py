"""Failed authentication, throttled per client address: a token bucket per address, touched only on failure.

An address may fail `burst` times at once, and regains `per_s` attempts a second; past that its failures are
answered 429 with `retry-after` instead of 401, so a client guessing keys (or a script with a stale one) is told to
back off and is answered as cheaply as possible. A valid credential is never slowed: the check runs first and
only a failure reaches the table, whatever the address's bucket holds (several callers behind one proxy address
are not locked out by one of them). The table is bounded: past `max_addresses` the address that failed least
recently is forgotten. Every address counts, loopback too (a local script is a client like any other).
"""

from __future__ import annotations

import math
from typing import Any

from llmgate.errors import AuthThrottled

MAX_ADDRESSES = 10_000
"""Addresses remembered at most (a few hundred KiB): past it, the one that failed least recently is forgotten."""


class AuthThrottle:
    """Token buckets of failed authentications, per client address (see the module docstring)."""

    __slots__ = ("_buckets", "burst", "max_addresses", "per_s")

    def __init__(self, burst: int, per_s: float, max_addresses: int = MAX_ADDRESSES) -> None:
        self.burst = burst
        """Failures an address may make at once; 0 turns the throttle off."""
        self.per_s = per_s
        self.max_addresses = max_addresses
        self._buckets: dict[str, tuple[float, float]] = {}
        """address → (attempts left, when counted), least recently failed first"""

    def failed(self, address: str, now: float) -> None:
        """Count a failed authentication from `address` at `now` (monotonic seconds); `AuthThrottled` (429, with
        `retry-after`) when the address has none left."""
        if self.burst <= 0:
            return
        buckets = self._buckets
        bucket = buckets.pop(address, None)
        if bucket is None:
            left = float(self.burst)
            if len(buckets) >= self.max_addresses:
                del buckets[next(iter(buckets))]
        else:
            left = min(float(self.burst), bucket[0] + (now - bucket[1]) * self.per_s)
        if left < 1:
            buckets[address] = (left, now)
            wait_s = max(1, math.ceil((1 - left) / self.per_s))
            raise AuthThrottled(f"Too many failed authentications from this address; retry after {wait_s} s.",
                                headers={"retry-after": str(wait_s)})
        buckets[address] = (left - 1, now)

    def __len__(self) -> int:
        return len(self._buckets)


def client_address(scope: dict[str, Any]) -> str:
    """The peer's address from an ASGI scope (what the throttle counts by; no forwarded header is trusted)."""
    client = scope.get("client")
    return str(client[0]) if client else ""
