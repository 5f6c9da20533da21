"""Model prices (the `[prices]` table of the config file) and the cost of a request's tokens. Pure.

    [prices."gpt-4o"]
    input_per_mtok = 2.5          # per million prompt tokens
    output_per_mtok = 10.0        # per million completion tokens
    cached_input_per_mtok = 1.25  # per million prompt tokens served from the provider's cache (default: input)

    [prices."claude-*"]           # a trailing * matches a prefix; the longest matching prefix wins

A request is priced by the model the caller asked for (the alias), else by the model the deployment that
answered sends upstream; an exact name beats a prefix.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated

import msgspec

from llmgate.usage.meter import TokenUsage

Rate = Annotated[float, msgspec.Meta(ge=0)]


class Price(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """What a model costs, per million tokens, in one currency (USD by convention)."""

    input_per_mtok: Rate = 0.0
    output_per_mtok: Rate = 0.0
    cached_input_per_mtok: Rate | None = None
    """Prompt tokens the provider served from its cache; default: `input_per_mtok`."""


class PriceTable:
    """Looks up a model's price: exact names first, then the longest matching `prefix*`."""

    __slots__ = ("_exact", "_prefixes", "source")

    def __init__(self, prices: Mapping[str, Price]) -> None:
        self.source = prices
        self._exact = {name: p for name, p in prices.items() if not name.endswith("*")}
        self._prefixes = sorted(((name[:-1], p) for name, p in prices.items() if name.endswith("*")),
                                key=lambda item: -len(item[0]))

    def find(self, model: str | None) -> Price | None:
        if not model:
            return None
        price = self._exact.get(model)
        if price is not None:
            return price
        for prefix, candidate in self._prefixes:
            if model.startswith(prefix):
                return candidate
        return None

    def price_of(self, alias: str | None, upstream_model: str | None) -> Price | None:
        """The price for a request: by its alias, else by the deployment's upstream model."""
        return self.find(alias) or self.find(upstream_model)


def cost_of(price: Price, usage: TokenUsage) -> float:
    """The cost of `usage` at `price`: uncached prompt, cached prompt and completion tokens, each at its rate."""
    cached = min(usage.cached or 0, usage.prompt)
    cached_rate = price.cached_input_per_mtok if price.cached_input_per_mtok is not None else price.input_per_mtok
    total = ((usage.prompt - cached) * price.input_per_mtok + cached * cached_rate
             + usage.completion * price.output_per_mtok)
    return round(total / 1_000_000, 10)


class Pricing:
    """The cost of a request at the current prices (`prices()` is read each time: a reload changes them)."""

    __slots__ = ("_prices", "_table")

    def __init__(self, prices: Callable[[], Mapping[str, Price]]) -> None:
        self._prices = prices
        self._table = PriceTable({})

    def priced(self) -> bool:
        """Whether any price is configured (else no cost is worth computing)."""
        return bool(self._prices())

    def cost(self, alias: str | None, deployment: str | None, usage: TokenUsage) -> float | None:
        """None when no price applies (none configured for the alias or the deployment's upstream model)."""
        prices = self._prices()
        if not prices:
            return None
        if prices is not self._table.source:
            self._table = PriceTable(prices)
        price = self._table.price_of(alias, upstream_model(deployment))
        return cost_of(price, usage) if price is not None else None


def upstream_model(deployment: str | None) -> str | None:
    """The model a deployment (`provider/model`) sends upstream; None for a pass-through (`provider`)."""
    if not deployment:
        return None
    _, slash, model = deployment.partition("/")
    return model if slash else None
