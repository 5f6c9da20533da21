"""A virtual token's (or JWT caller's) request ended: the LLM tokens its answer used (and, at the configured prices,
their cost) go to its budgets and tpm window, and its project's and end user's; Redis's too when limits are
shared."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llmgate.access.tokens import TokenCache
    from llmgate.pipeline.request import V1Request
    from llmgate.usage.prices import Pricing


async def settle(tokens: TokenCache, pricing: Pricing, request: V1Request) -> None:
    """Count what a successful answer used against the caller's token and project (a JWT caller's project alone),
    and the end user `admit` counted the request for; nothing for the master key, nor for an answer from the
    response cache (no upstream tokens)."""
    entry, exchange = request.entry, request.exchange
    meter = exchange.meter
    if entry is None or meter is None or exchange.status != 200 or exchange.cache == "hit":
        return
    usage = meter.usage()
    if usage is None:
        return
    cost = pricing.cost(exchange.model, exchange.deployment, usage) or 0.0
    if tokens.record_usage(entry, usage.total, tokens.clock(), cost, request.user):
        await tokens.record_shared_usage(entry, usage.total, cost, request.user)
