"""Deployments, aliases, and which deployment and key take the next attempt. Pure; `now` and `random` passed in.

Strategy: weighted random ("simple shuffle") among the available deployments. It needs no shared state, so
every worker process and every gateway replica spreads load the same way without coordinating; least-busy
would only see one worker's in-flight counts and chases noise at low concurrency. Unavailable means: breaker
open for the model asked (or its one half-open probe taken), over its rpm, or no key left that is not resting or
disabled.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from llmgate.config import HedgeConfig
from llmgate.providers.base import Provider
from llmgate.routing.breaker import Breaker, ModelBreakers
from llmgate.routing.keys import KeyRing, KeyState

if TYPE_CHECKING:
    import asyncio

_TTFB_SAMPLES = 128


class Deployment:
    """A provider serving one upstream model (or, for pass-through, whatever model is asked)."""

    __slots__ = ("_minute_count", "_minute_start", "_minute_tokens", "breaker", "header", "keys", "models", "name",
                 "provider", "rpm", "tpm", "upstream_model")

    def __init__(self, name: str, provider: Provider, upstream_model: str | None, keys: KeyRing, breaker: Breaker,
                 rpm: int | None = None, tpm: int | None = None, models: ModelBreakers | None = None) -> None:
        self.name = name
        self.header = name.encode()
        self.provider = provider
        self.upstream_model = upstream_model
        """None: send the model the caller asked for (pass-through)."""
        self.keys = keys
        self.breaker = breaker
        """Its one upstream model's breaker; for pass-through, that of requests naming no model."""
        self.models = models
        """Pass-through only: a breaker per upstream model asked."""
        self.rpm = rpm
        self.tpm = tpm
        self._minute_start = 0.0
        self._minute_count = 0
        self._minute_tokens = 0

    def breaker_for(self, model: str | None) -> Breaker:
        """The breaker of the upstream model that a request for `model` goes to here."""
        models = self.models
        if models is None or not model:
            return self.breaker
        return models.get(model)

    def is_available(self, now: float, breaker: Breaker | None = None) -> bool:
        """Could it take a request now (for the upstream model of `breaker`, by default its own breaker's)?"""
        return (breaker or self.breaker).allows(now) and self.under_limits(now) and self.keys.has_available(now)

    def under_limits(self, now: float) -> bool:
        """Under its rpm and tpm for the current minute (a fixed window from its first request)."""
        if (self.rpm is None and self.tpm is None) or now - self._minute_start >= 60.0:
            return True
        return (self.rpm is None or self._minute_count < self.rpm) and \
            (self.tpm is None or self._minute_tokens < self.tpm)

    def claim(self, now: float, breaker: Breaker) -> None:
        """An attempt goes here: count it against rpm and take `breaker`'s half-open probe if it needs one."""
        if self.rpm is not None or self.tpm is not None:
            self._roll_minute(now)
            self._minute_count += 1
        if breaker.state != "closed":
            breaker.claim(now)

    def record_tokens(self, tokens: int, now: float) -> None:
        """Count a delivered answer's tokens against tpm (its usage, read by the meter: routes whose deployments
        have a tpm meter their answers; the others stay on the zero-parse path)."""
        if self.tpm is not None:
            self._roll_minute(now)
            self._minute_tokens += tokens

    def _roll_minute(self, now: float) -> None:
        if now - self._minute_start >= 60.0:
            self._minute_start, self._minute_count, self._minute_tokens = now, 0, 0


class HedgeState:
    """An alias's hedging budget and its recent times to first byte."""

    __slots__ = ("_next", "config", "hedges", "requests", "samples")

    def __init__(self, config: HedgeConfig) -> None:
        self.config = config
        self.requests = 0
        self.hedges = 0
        self.samples: list[float] = []
        self._next = 0

    def record_ttfb(self, seconds: float) -> None:
        if len(self.samples) < _TTFB_SAMPLES:
            self.samples.append(seconds)
        else:
            self.samples[self._next] = seconds
            self._next = (self._next + 1) % _TTFB_SAMPLES

    def delay_s(self) -> float:
        """The fixed deadline, or the recent p95 time to first byte (1 s until 20 samples are known)."""
        if self.config.after_ms is not None:
            return self.config.after_ms / 1000
        if len(self.samples) < 20:
            return 1.0
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]

    def may_hedge(self) -> bool:
        """Within the cap: hedges stay at most `max_ratio` of the alias's requests."""
        return self.hedges + 1 <= self.config.max_ratio * self.requests


Entry = tuple[Deployment, float]  # a deployment and its weight in one alias


class Route:
    """An alias: its deployments (with weights) per capability, its fallbacks and hedging."""

    __slots__ = ("_dialects", "by_capability", "counts_tokens", "entries", "fallbacks", "hedge", "name", "queue_ms",
                 "waitline")

    def __init__(self, name: str, entries: Sequence[Entry], hedge: HedgeConfig | None = None) -> None:
        self.name = name
        self.entries = tuple(entries)
        self.by_capability: dict[str | None, tuple[Entry, ...]] = {None: self.entries}
        for deployment, _ in self.entries:
            for capability in deployment.provider.capabilities:
                if capability not in self.by_capability:
                    self.by_capability[capability] = tuple(
                        e for e in self.entries if capability in e[0].provider.capabilities)
        self.fallbacks: tuple[Route, ...] = ()
        self.counts_tokens = any(deployment.tpm is not None for deployment, _ in self.entries)
        """A deployment here has a tpm limit: answers are metered to count their tokens against it."""
        self.hedge = HedgeState(hedge) if hedge is not None else None
        self.queue_ms = 0.0
        """How long a request waits for a deployment under its rpm/tpm when all are at their limit."""
        self.waitline: deque[asyncio.Future[None]] | None = None
        """Requests waiting for a deployment under its limits, in arrival order (pipeline/deployment_queue.py)."""
        self._dialects = {capability: entries[0][0].provider.config.kind
                          for capability, entries in self.by_capability.items() if entries}

    def has_room(self, now: float) -> bool:
        """Whether a deployment of the alias is under its rpm/tpm (breakers and keys are forward's concern)."""
        return any(deployment.under_limits(now) for deployment, _ in self.entries)

    def dialect(self, capability: str | None) -> str:
        """The provider kind of the first deployment serving `capability`: `anthropic` means translate."""
        return self._dialects.get(capability, "openai")


Pick = tuple[Deployment, KeyState]


def choose(entries: tuple[Entry, ...], model: str | None, now: float, exclude: Sequence[Deployment],
           random: Callable[[], float], tried: Sequence[KeyState] = ()) -> Pick | None:
    """A deployment by weight among those not in `exclude` that are available for `model`, and its least recently
    used key (one not in `tried` if it has any left)."""
    if len(entries) == 1:  # the common case, kept cheap: no list, no random draw
        deployment = entries[0][0]
        if deployment in exclude:
            return None
        breaker = deployment.breaker_for(model)
        if not breaker.allows(now) or not deployment.under_limits(now):
            return None
        key = deployment.keys.choose(now, tried)
        if key is None:
            return None
        deployment.claim(now, breaker)
        return deployment, key
    # keys are checked by keys.choose below, which also claims one: no separate has_available() pass
    candidates = [e for e in entries if e[0] not in exclude and e[0].breaker_for(model).allows(now)
                  and e[0].under_limits(now)]
    while candidates:
        index = _weighted_index(candidates, random())
        deployment = candidates[index][0]
        key = deployment.keys.choose(now, tried)
        if key is not None:
            deployment.claim(now, deployment.breaker_for(model))
            return deployment, key
        del candidates[index]
    return None


def choose_last_resort(entries: tuple[Entry, ...], model: str | None, now: float) -> Pick | None:
    """When every key is resting: the first deployment whose breaker for `model` allows, with a resting key.

    With nowhere else to send the request, the upstream's own answer (it may have capacity again, or limits
    per model) beats refusing it ourselves; a single-key setup thus behaves as it would without llmgate.
    """
    for deployment, _ in entries:
        breaker = deployment.breaker_for(model)
        if breaker.allows(now) and deployment.under_limits(now):
            key = deployment.keys.choose_resting()
            if key is not None:
                deployment.claim(now, breaker)
                return deployment, key
    return None


def _weighted_index(candidates: list[Entry], draw: float) -> int:
    total = 0.0
    for _, weight in candidates:
        total += weight
    point = draw * total
    for index, (_, weight) in enumerate(candidates):
        point -= weight
        if point < 0:
            return index
    return len(candidates) - 1
