"""API key rotation: least-recently-used among the keys not cooling down; 429 cooldowns; disabled keys. Pure.

A 429 rests only the key that got it, for as long as the upstream asks (`retry-after-ms`, `retry-after`,
`x-ratelimit-reset-requests` / `-tokens`), else a default. A 401/403 disables the key until the next reload.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from llmgate.log import mask_secret
from llmgate.providers.base import AuthHeaders


class KeyState:
    """One API key of one provider and its health."""

    __slots__ = ("auth_headers", "cooldown_until", "disabled", "failures", "last_used", "masked", "rate_limits",
                 "secret")

    def __init__(self, secret: str, auth_headers: AuthHeaders) -> None:
        self.secret = secret
        self.masked = mask_secret(secret) if secret else "<none>"
        self.auth_headers = auth_headers
        self.cooldown_until = 0.0
        self.disabled = False
        self.last_used = 0
        self.rate_limits = 0
        self.failures = 0

    def is_available(self, now: float) -> bool:
        return not self.disabled and self.cooldown_until <= now


class KeyRing:
    """The keys of one provider, shared by every deployment on it."""

    __slots__ = ("_uses", "keys")

    def __init__(self, keys: Iterable[KeyState]) -> None:
        self.keys = tuple(keys)
        self._uses = 0

    def choose(self, now: float, tried: Sequence[KeyState] = ()) -> KeyState | None:
        """The least recently used available key (and mark it used), or None when all rest or are disabled.

        Keys in `tried` (those a retried request already failed on) come last: another key first, if any.
        """
        keys = self.keys
        if len(keys) == 1:
            key = keys[0]
            if key.disabled or key.cooldown_until > now:
                return None
        else:
            best: KeyState | None = None
            again: KeyState | None = None
            for candidate in keys:  # inlined is_available: this runs per request
                if candidate.disabled or candidate.cooldown_until > now:
                    continue
                if tried and candidate in tried:
                    if again is None or candidate.last_used < again.last_used:
                        again = candidate
                elif best is None or candidate.last_used < best.last_used:
                    best = candidate
            chosen = best or again
            if chosen is None:
                return None
            key = chosen
        self._uses += 1
        key.last_used = self._uses
        return key

    def choose_resting(self) -> KeyState | None:
        """The least recently used key that is not disabled, resting or not (the last resort)."""
        usable = [k for k in self.keys if not k.disabled]
        if not usable:
            return None
        key = min(usable, key=lambda k: k.last_used)
        self._uses += 1
        key.last_used = self._uses
        return key

    def has_available(self, now: float) -> bool:
        return any(k.is_available(now) for k in self.keys)

    def next_available_at(self) -> float | None:
        """When the first resting key comes back (None if every key is disabled)."""
        times = [k.cooldown_until for k in self.keys if not k.disabled]
        return min(times) if times else None


def cool_down(key: KeyState, now: float, seconds: float) -> None:
    """Rest `key` for `seconds` (a longer rest already running is kept)."""
    key.rate_limits += 1
    key.cooldown_until = max(key.cooldown_until, now + seconds)


def disable(key: KeyState) -> bool:
    """Disable `key`; True the first time (so it is logged once)."""
    if key.disabled:
        return False
    key.disabled = True
    return True


_DURATION = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m(?!s))?\s*(?:(\d+(?:\.\d+)?)s)?"
                       r"\s*(?:(\d+(?:\.\d+)?)ms)?\s*$")


def parse_duration_s(value: str) -> float | None:
    """OpenAI's `x-ratelimit-reset-*` format (`6m0s`, `1.5s`, `250ms`, `1h2m3s`) or plain seconds, or None."""
    value = value.strip()
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    match = _DURATION.match(value)
    if match is None or not any(match.groups()):
        return None
    h, m, s, ms = (float(g) if g else 0.0 for g in match.groups())
    return h * 3600 + m * 60 + s + ms / 1000


def retry_after_s(headers: Iterable[tuple[bytes, bytes]]) -> float | None:
    """How long the upstream asks us to wait, from a 429's headers; None when it does not say.

    Precedence: `retry-after-ms` (OpenAI), `retry-after` (seconds; an HTTP date is not trusted, clocks differ),
    then the longest `x-ratelimit-reset-requests` / `x-ratelimit-reset-tokens` (OpenAI's `6m0s` format).
    """
    found: dict[bytes, bytes] = {}
    for name, value in headers:
        lower = name.lower()
        if lower in (b"retry-after-ms", b"retry-after") or lower.startswith(b"x-ratelimit-reset"):
            found[lower] = value
    raw_ms = found.get(b"retry-after-ms")
    if raw_ms is not None:
        ms = parse_duration_s(raw_ms.decode("latin-1"))
        if ms is not None:
            return ms / 1000
    raw = found.get(b"retry-after")
    if raw is not None:
        seconds = parse_duration_s(raw.decode("latin-1"))
        if seconds is not None:
            return seconds
    resets = [parse_duration_s(v.decode("latin-1")) for k, v in found.items() if k.startswith(b"x-ratelimit-reset")]
    known = [r for r in resets if r is not None]
    return max(known) if known else None
