"""Prices: lookup by alias then upstream model, exact before the longest prefix; cost by rate; config errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmgate.config import ConfigError, load_settings
from llmgate.usage.meter import TokenUsage
from llmgate.usage.prices import Price, PriceTable, cost_of

GPT4O = Price(input_per_mtok=2.5, output_per_mtok=10, cached_input_per_mtok=1.25)


def test_lookup_exact_then_longest_prefix_then_upstream_model() -> None:
    claude, sonnet = Price(input_per_mtok=1), Price(input_per_mtok=3)
    table = PriceTable({"gpt-4o": GPT4O, "claude-*": claude, "claude-sonnet-*": sonnet})
    assert table.find("gpt-4o") is GPT4O
    assert table.find("gpt-4o-mini") is None
    assert table.find("claude-sonnet-4-5") is sonnet
    assert table.find("claude-haiku") is claude
    assert table.price_of("my-alias", "gpt-4o") is GPT4O
    assert table.price_of("claude-haiku", "gpt-4o") is claude
    assert table.price_of(None, None) is None


def test_cost_splits_cached_prompt_tokens() -> None:
    # 1000 prompt (400 cached) + 200 completion: 600 * 2.5 + 400 * 1.25 + 200 * 10 per million
    assert cost_of(GPT4O, TokenUsage(1000, 200, 1200, 400)) == pytest.approx(0.004)
    assert cost_of(Price(input_per_mtok=2), TokenUsage(1_000_000, 0, 1_000_000, 10)) == pytest.approx(2.0)


def test_prices_from_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[prices."gpt-4o"]\ninput_per_mtok = 2.5\noutput_per_mtok = 10\n'
                    'cached_input_per_mtok = 1.25\n[prices."claude-*"]\ninput_per_mtok = 3\n')
    settings = load_settings({}, str(path))
    assert settings.prices["gpt-4o"] == GPT4O
    assert settings.prices["claude-*"].output_per_mtok == 0


@pytest.mark.parametrize(("toml", "message"), [
    ('[prices."gpt-4o"]\ninput_per_mtok = "a lot"\n', 'prices."gpt-4o".input_per_mtok: expected a number, got "a lot"'),
    ('[prices."gpt-4o"]\ninput_per_mtok = -1\n', 'prices."gpt-4o".input_per_mtok: expected a number >= 0, got -1'),
    ('[prices."gpt-4o"]\ninput_per_mtoken = 1\n', 'prices."gpt-4o".input_per_mtoken: unknown key'),
    ('[prices]\n"gpt-4o" = 3\n', 'prices."gpt-4o": expected a table, got 3'),
    ('[prices."*"]\ninput_per_mtok = 1\n', 'prices."*": expected a model name'),
    ('[prices."gpt-*-mini"]\ninput_per_mtok = 1\n', 'prices."gpt-*-mini": expected a model name'),
])
def test_bad_prices_name_the_key(tmp_path: Path, toml: str, message: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as caught:
        load_settings({}, str(path))
    assert message in str(caught.value)
