"""ProviderConfig → Provider, by `kind`."""

from __future__ import annotations

from llmgate.config import ProviderConfig
from llmgate.providers.anthropic import Anthropic
from llmgate.providers.azure import Azure
from llmgate.providers.base import Provider
from llmgate.providers.openai_compatible import OpenAICompatible

PROVIDER_KINDS: dict[str, type[OpenAICompatible | Azure | Anthropic]] = {
    "openai": OpenAICompatible,
    "azure": Azure,
    "anthropic": Anthropic,
}


def build_provider(config: ProviderConfig) -> Provider:
    """The Provider for a (resolved) config."""
    provider: Provider = PROVIDER_KINDS[config.kind](config)
    return provider
