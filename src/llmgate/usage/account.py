"""Accounting for one finished request, in the event bus's background task: the event, its tokens (the
provider's, else tiktoken's estimate), its cost, and the raw body log's line."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from loguru import logger

from llmgate.usage.event import Exchange, UsageEvent, build_event, end_user
from llmgate.usage.meter import TokenUsage
from llmgate.usage.prices import Price, Pricing

if TYPE_CHECKING:
    from llmgate.usage.raw import RawLogSink


def needs_estimate(exchange: Exchange) -> bool:
    """A successful answer without usage, whose request body was kept (only with the usage log on: without it
    there is nothing to estimate from, and tiktoken stays unloaded)."""
    meter = exchange.meter
    return exchange.status == 200 and meter is not None and exchange.request_body is not None and \
        meter.usage() is None


class EventBuilder:
    """`build(exchange)` for the EventBus: `build_event`, then estimate, price and capture."""

    def __init__(self, prices: Callable[[], Mapping[str, Price]], raw: RawLogSink | None = None,
                 end_user_header: str = "") -> None:
        self._pricing = Pricing(prices)
        self.end_user_header = end_user_header.lower()
        """Where the end user is named when the body's `user` does not (LLMGATE_END_USER_HEADER)."""
        """At the current prices (read each batch, so a config reload changes them)."""
        self.raw = raw
        self._priced = True
        """Whether any price is configured: read once a batch (`prepare`), not once an event."""
        self.estimated = 0
        self.estimate_failures = 0

    async def prepare(self, batch: Sequence[Exchange]) -> None:
        """Before a batch is built: load, in a worker thread, the tiktoken encodings its estimates will need.

        An encoding costs ~0.4 s of CPU and ~60 MB; it is loaded the first time a provider leaves usage out, not
        at start-up, and never by a gateway whose providers always report it.
        """
        from llmgate.usage.counting import encoding_for_model, encoding_is_loaded

        self._priced = self._pricing.priced()
        models = {exchange.model or "" for exchange in batch if needs_estimate(exchange)}
        for model in models:
            if not encoding_is_loaded(model):
                await asyncio.to_thread(encoding_for_model, model)

    def __call__(self, exchange: Exchange) -> UsageEvent:
        event = build_event(exchange)
        if exchange.forwarded is not None:
            event.end_user = end_user(None, exchange.forwarded, self.end_user_header)
        if event.total_tokens is None and needs_estimate(exchange):
            self._estimate(exchange, event)
        if event.total_tokens is not None and self._priced:
            event.cost = 0.0 if event.cached else self.cost(event)
        if self.raw is not None:
            self.raw.capture(exchange, event)
        return event

    def cost(self, event: UsageEvent) -> float | None:
        usage = TokenUsage(event.prompt_tokens or 0, event.completion_tokens or 0, event.total_tokens or 0,
                           event.cached_tokens)
        return self._pricing.cost(event.model, event.deployment, usage)

    def _estimate(self, exchange: Exchange, event: UsageEvent) -> None:
        from llmgate.usage.estimate import estimate_usage  # tiktoken: loaded the first time it is needed

        assert exchange.meter is not None
        try:
            usage = estimate_usage(exchange.endpoint, exchange.model, exchange.request_body, exchange.meter.body)
        except Exception:  # an estimate is best effort: the event goes out without tokens
            self.estimate_failures += 1
            logger.exception("could not estimate the tokens of request {}", event.request_id)
            return
        if usage is not None:
            self.estimated += 1
            event.prompt_tokens, event.completion_tokens, event.total_tokens = usage.prompt, usage.completion, \
                usage.total
            event.estimated = True
